"""``dacli plot``: PNG figures of an analysis file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, fail, run_command
from dacli.cli.options import OUTPUT
from dacli.cli.render import log_written
from dacli.errors import USAGE_ERROR

AnalysisPath = Annotated[
    Path, typer.Argument(help="An analysis file written by dacli assimilate.", show_default=False)
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar="PREFIX",
        help=(
            "Prefix of the PNG files, not a file name: writes PREFIX_KIND.png, KIND being maps, "
            "hovmoller, timeseries or diagnostics (default: the analysis path without .nc)."
        ),
        show_default=False,
    ),
]
# The spelling before issue 18: refused with the new one, so scripts learn it.
RenamedOutOption = Annotated[Path | None, typer.Option("--out", hidden=True)]
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
    str | None,
    typer.Option(
        "--time",
        help=(
            "2-D models: the time to map, the nearest stored one (default: the last): model time "
            "in the file's time units, or a date such as 2020-01-11 or '2020-01-11 06:00' in the "
            "file's calendar."
        ),
    ),
]
TruthOption = Annotated[
    Path | None,
    typer.Option(
        "--truth",
        help=(
            "A truth state file on the same grid: the pictures add the truth and the analysis "
            "error (default: the run's truth file, when the analysis file names one)."
        ),
    ),
]
ObservationsOption = Annotated[
    Path | None,
    typer.Option(
        "--observations",
        help=(
            "An observation-space diagnostics file from dacli assimilate: the pictures show the "
            "observations used, coloured by O-B (default: the run's own, when it wrote one)."
        ),
    ),
]


@command("overwrite", *OUTPUT)
def plot(
    analysis: AnalysisPath,
    output: OutputOption = None,
    point: PointOption = None,
    time: TimeOption = None,
    truth: TruthOption = None,
    observations: ObservationsOption = None,
    out: RenamedOutOption = None,
    *,
    options: CommandOptions,
) -> None:
    """Draw an analysis file (PNG): maps (2-D) or a Hovmöller diagram (1-D) with the truth and \
the observations, time series, and per-window diagnostics (RMSE, J/Jb/Jo, O-B/O-A, iterations)."""
    if out is not None:
        fail("--out is now -o/--output PREFIX (the prefix of the PNG files)", USAGE_ERROR)

    def work():
        from dacli.run.plot import plot as run_plot

        return run_plot(
            analysis,
            output,
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
