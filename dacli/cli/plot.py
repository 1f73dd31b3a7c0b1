"""``dacli plot``: PNG figures of an analysis file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, run_command
from dacli.cli.options import OUTPUT
from dacli.cli.render import log_written

AnalysisPath = Annotated[
    Path, typer.Argument(help="An analysis file written by dacli assimilate.", show_default=False)
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Prefix of the PNG files (default: the analysis path without .nc)."),
]
PointOption = Annotated[
    str | None,
    typer.Option(
        "--point",
        help=(
            "Grid point for the time series: an index on a 1-D grid, 'iy,ix' on a 2-D one "
            "(default: the middle)."
        ),
    ),
]
TimeOption = Annotated[
    float | None,
    typer.Option(
        "--time",
        help=(
            "2-D models: model time to map, in the file's time units; the nearest stored time "
            "(default: the last)."
        ),
    ),
]
TruthOption = Annotated[
    Path | None,
    typer.Option(
        "--truth",
        help=(
            "2-D models: a truth state file on the same grid; the maps add the truth and the "
            "analysis error."
        ),
    ),
]
ObservationsOption = Annotated[
    Path | None,
    typer.Option(
        "--observations",
        help=(
            "2-D models: a feedback file from dacli assimilate; the maps show the observations "
            "used around --time."
        ),
    ),
]


@command("overwrite", *OUTPUT)
def plot(
    analysis: AnalysisPath,
    out: OutOption = None,
    point: PointOption = None,
    time: TimeOption = None,
    truth: TruthOption = None,
    observations: ObservationsOption = None,
    *,
    options: CommandOptions,
) -> None:
    """Draw an analysis file: maps (2-D) or a Hovmoller diagram (1-D), time series, RMSE and cost \
per window (PNG)."""

    def work():
        from dacli.run.plot import plot as run_plot

        return run_plot(
            analysis,
            out,
            point,
            options.overwrite,
            time=time,
            truth=truth,
            observations=observations,
        )

    def report(written) -> None:
        log_written(written)
        options.emit(written)

    run_command(options, work, report)
