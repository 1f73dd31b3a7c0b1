"""``dacli assimilate``: cycle the method over every window and write the analysis NetCDF."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, command_line, run_configured
from dacli.cli.logs import WindowProgress
from dacli.cli.options import CONFIGURED, ConfigPath
from dacli.cli.render import rmse_change
from dacli.errors import CHECK_FAILED

StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help=(
            "Exit with status 1 if the minimiser did not converge in every window (the output is "
            "still written)."
        ),
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help=("Continue a run stopped by a signal from its checkpoint (<output.path>.checkpoint)."),
    ),
]
RestartOption = Annotated[
    bool,
    typer.Option(
        "--restart",
        help=(
            "Discard a stopped run's checkpoint and start afresh (without it, an existing "
            "checkpoint is refused; --overwrite replaces output files, never a checkpoint)."
        ),
    ),
]


def _window_range(text: str | None) -> str | None:
    """--windows checked as it is parsed: a wrong one is an option error (exit 2)."""
    if text is not None:
        from dacli.config.schema import window_range

        try:
            window_range(text)
        except ValueError as wrong:
            raise typer.BadParameter(str(wrong)) from None
    return text


OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="The analysis file to write (sets output.path; default: the config's output.path).",
        show_default=False,
    ),
]
WindowsOption = Annotated[
    str | None,
    typer.Option(
        "--windows",
        callback=_window_range,
        help=(
            "Run only windows A <= k < B (from 0), e.g. one job-array task's share: --windows "
            "100:200 (sets window.select)."
        ),
    ),
]


@command("output", *CONFIGURED, "strict", "resume", "restart", "windows")
def assimilate(
    config: ConfigPath,
    output: OutputOption = None,
    strict: StrictOption = False,
    resume: ResumeOption = False,
    restart: RestartOption = False,
    windows: WindowsOption = None,
    *,
    options: CommandOptions,
) -> None:
    """Assimilate the observations over every window and write the analysis NetCDF.

    SIGTERM, SIGINT (and run.stop_signal, e.g. Slurm's USR1) stop it at the next chunk of windows
    with a checkpoint (exit 143 / 130); --resume finishes it.
    """

    def work(cfg):
        from dacli.run.assimilate import assimilate as run_assimilate

        with WindowProgress(options.quiet) as progress:
            return run_assimilate(
                cfg,
                overwrite=options.overwrite,
                resume=resume,
                restart=restart,
                command=command_line(),
                on_window=progress,
                on_phase=progress.phase,
            )

    def report(result) -> None:
        s = result.summary
        logging.getLogger("dacli").info(
            "wrote %s: %d window(s), %d/%d converged%s",
            result.output,
            s.windows,
            s.converged_windows,
            s.windows,
            rmse_change(s.background_rmse, s.analysis_rmse),
        )
        options.emit(s)
        if strict and s.converged_windows < s.windows:
            typer.echo(
                f"dacli: check failed: the minimiser did not converge in "
                f"{s.windows - s.converged_windows} of {s.windows} window(s) (--strict); "
                "the output was written",
                err=True,
            )
            raise typer.Exit(CHECK_FAILED)

    extra = [f'window.select="{windows}"'] if windows is not None else []
    if output is not None:  # a TOML string (JSON's escapes are TOML's)
        extra.append(f"output.path={json.dumps(str(output))}")
    run_configured(options, config, work, report, extra=extra)
