"""``dacli forecast``: forecasts (or an ensemble) from an analysis, verified, written as NetCDF."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, command_line, run_configured
from dacli.cli.logs import phase_callback
from dacli.cli.options import (
    CONFIGURED,
    ConfigPath,
    DeprecatedOutOption,
    chosen_output,
    warn_deprecated_out,
)

LeadTimeOption = Annotated[
    float,
    typer.Option("--lead-time", help="How far ahead, in model time units.", show_default=False),
]
IntervalOption = Annotated[
    float | None,
    typer.Option(
        "--interval",
        help=(
            "Output interval in model time units: a whole number of model steps (default: "
            "model.dt)."
        ),
    ),
]
FromOption = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help=(
            "Start from an analysis file of dacli assimilate (default: its last window's end) or "
            "a state "
            "file (default: its last time). Without it: the config's background at window.start."
        ),
    ),
]
StartTimeOption = Annotated[
    list[float] | None,
    typer.Option(
        "--start-time",
        help=(
            "Start at this model time of the --from file (repeatable); a window end gives that "
            "window's end analysis."
        ),
    ),
]
AllWindowsOption = Annotated[
    bool,
    typer.Option(
        "--all-windows",
        help=("Start from the analysis at the end of every window of the --from analysis file."),
    ),
]
MembersOption = Annotated[
    int,
    typer.Option(
        "--members",
        min=1,
        help=(
            "Ensemble size: members start from x0 + B^(1/2) z (B from background.covariance, seed "
            "run.seed); 1 = the deterministic forecast only."
        ),
    ),
]
TruthOption = Annotated[
    Path | None,
    typer.Option(
        "--truth",
        help=(
            "A truth state file to verify against (RMSE, anomaly correlation per lead time); "
            "default: the config's truth.path."
        ),
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help=(
            "The forecast file to write (default: output.path with 'analysis' replaced by "
            "'forecast')."
        ),
        show_default=False,
    ),
]


@command("output", *CONFIGURED)
def forecast(
    config: ConfigPath,
    lead_time: LeadTimeOption,
    interval: IntervalOption = None,
    from_: FromOption = None,
    start_time: StartTimeOption = None,
    all_windows: AllWindowsOption = False,
    members: MembersOption = 1,
    truth: TruthOption = None,
    output: OutputOption = None,
    out: DeprecatedOutOption = None,
    *,
    options: CommandOptions,
) -> None:
    """Forecast from an analysis (or the background), optionally as an ensemble; verify against a
    truth; write NetCDF."""
    target = chosen_output(output, out)

    def work(cfg):
        from dacli.run.forecast import forecast as run_forecast

        warn_deprecated_out(out)
        return run_forecast(
            cfg,
            initial=from_,
            start_times=start_time,
            all_windows=all_windows,
            lead_time=lead_time,
            interval=interval,
            members=members,
            truth=truth,
            output=target,
            overwrite=options.overwrite,
            command=command_line(),
            on_phase=phase_callback(),
        )

    run_configured(options, config, work, lambda result: _report(result, options))


def _report(result, options: CommandOptions) -> None:
    """The forecast's log line (scores at a few lead times) and its JSON summary, on process 0."""
    s, log = result.summary, logging.getLogger("dacli")
    if result.process != 0:  # a multi-process launch: process 0 reports and wrote the file
        log.debug(
            "process %d of %d: computed its share of the forecasts; process 0 wrote %s",
            result.process,
            s.processes,
            result.output,
        )
        return
    leads, measured = s.lead_times, s.scores
    picks = sorted({len(leads) // 4, len(leads) // 2, len(leads) - 1} - {0}) or [len(leads) - 1]
    scores = ""
    if measured.rmse is not None:
        scores = "; RMSE " + ", ".join(f"{measured.rmse[i]:.3g} at {leads[i]:g}" for i in picks)
        scores += "; anomaly correlation " + ", ".join(
            f"{measured.anomaly_correlation[i]:.3g}" for i in picks
        )
    if measured.spread is not None:
        scores += "; spread " + ", ".join(f"{measured.spread[i]:.3g}" for i in picks)
    log.info(
        "wrote %s: %d start time(s), %d member(s), lead %g every %g%s",
        result.output,
        len(s.start_times),
        s.members,
        s.lead_time,
        s.interval,
        scores,
    )
    options.emit(s)
