"""``dacli check-adjoints``: the gradient tests (linearity, tangent-linear, dot product, Taylor)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, fail, run_command, run_configured
from dacli.cli.logs import compile_display, is_terminal
from dacli.cli.options import OUTPUT
from dacli.cli.render import render_checks, render_failures, render_warnings
from dacli.errors import CHECK_FAILED, USAGE_ERROR

OptionalConfigPath = Annotated[
    Path | None,
    typer.Argument(
        help="TOML configuration; omit to check every built-in model and operator.",
        show_default=False,
    ),
]
NoStrategiesOption = Annotated[
    bool,
    typer.Option(
        "--no-strategies",
        help="Skip the agreement of every adjoint strategy (faster); the configured gradient "
        "through the analysis is still checked.",
    ),
]


QuickOption = Annotated[
    bool,
    typer.Option(
        "--quick",
        help="Only the dot-product, tangent-linear and Taylor tests (for a model's own CI).",
    ),
]


@command("overrides", *OUTPUT, "device", "precision", "no_strategies", "quick")
def check_adjoints(
    config: OptionalConfigPath = None,
    no_strategies: NoStrategiesOption = False,
    quick: QuickOption = False,
    *,
    options: CommandOptions,
) -> None:
    """Prove the gradients right: linearity, tangent-linear, dot-product and Taylor tests, and \
agreement of every adjoint strategy."""

    level = "quick" if quick else "full"

    def work(cfg=None):
        from dacli.run.check_adjoints import check_adjoints as run_checks

        with compile_display():
            if cfg is None:
                return run_checks(
                    None,
                    precision=options.precision or "float64",
                    device=options.device or "auto",
                    strategies=not no_strategies,
                    level=level,
                )
            return run_checks(cfg, strategies=not no_strategies, level=level)

    if config is not None:
        run_configured(options, config, work, lambda result: _report(result, options))
        return
    if options.overrides:
        fail("--set needs a configuration file", USAGE_ERROR)
    run_command(options, work, lambda result: _report(result, options))


def _report(report, options: CommandOptions) -> None:
    """The table of checks (not with -q), the JSON summary, then the failures (exit 1) or a
    log line that all passed."""
    if not options.quiet:
        render_checks(report.results, is_terminal())
    options.emit(report)
    render_warnings(report.results)
    if not report.passed:
        render_failures(report.results)
        raise typer.Exit(CHECK_FAILED)
    passed = sum(r.passed for r in report.results)
    logging.getLogger("dacli").info(
        "no check failed: %d of %d passed (%s, %s)",
        passed,
        len(report.results),
        report.precision,
        report.device,
    )
