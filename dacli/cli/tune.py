"""``dacli tune``: a variational method's error scales fitted on twin-experiment windows."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, run_configured
from dacli.cli.logs import compile_display
from dacli.cli.options import CONFIGURED, ConfigPath
from dacli.cli.render import result_json

OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="The TOML snippet of tuned values to write (sets tune.output; default: tuned.toml).",
        show_default=False,
    ),
]


@command("output", *CONFIGURED)
def tune(config: ConfigPath, output: OutputOption = None, *, options: CommandOptions) -> None:
    """Tune a variational method's B, R, Q scales and B's length scale on twin-experiment windows.

    Settings in config section tune; the tuned values are written as a TOML snippet (tune.output,
    or -o).
    """

    def work(cfg):
        from dacli.run.tune import tune as run_tune

        with compile_display():
            return run_tune(cfg, overwrite=options.overwrite)

    extra: list[str] = [] if output is None else [f"tune.output={json.dumps(str(output))}"]
    run_configured(options, config, work, lambda result: report_tuning(result, options), extra)


def report_tuning(result, options: CommandOptions) -> None:
    """A tuning's log line, and its JSON summary (--json) or else its TOML snippet on stdout."""
    logging.getLogger("dacli").info(
        "tuned %s of %s in %d step(s): validation analysis RMSE %.4g -> %.4g; wrote %s",
        ", ".join(result.parameters),
        result.method,
        result.steps,
        result.validation_rmse_before,
        result.validation_rmse_after,
        result.files.snippet,
    )
    if options.json:
        options.emit({"mode": "tune", **result_json(result)})
    else:
        typer.echo(result.snippet, nl=False)
