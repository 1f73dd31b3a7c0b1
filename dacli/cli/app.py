"""The ``dacli`` command line: parse, call one run function, render, map errors to exit codes.

Heavy imports (JAX and friends) happen inside commands so ``dacli --help`` is instant.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from dacli import __version__, stop_signals
from dacli.errors import CHECK_FAILED, INTERNAL_ERROR, INTERRUPTED_SIGINT, USAGE_ERROR, DacliError

app = typer.Typer(
    name="dacli",
    help="Variational data assimilation from the command line (strong-constraint 4DVar on JAX).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

ConfigPath = Annotated[Path, typer.Argument(help="TOML configuration file.", show_default=False)]
SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: --set method.max_steps=50 (repeatable).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="Only warnings and errors on stderr.")]
VerboseOption = Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")]
TracebackOption = Annotated[bool, typer.Option("--traceback", help="Show the Python traceback on errors.")]
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | gpu (overrides run.device).")]
StrictOption = Annotated[bool, typer.Option(
    "--strict", help="Exit with status 1 if the minimiser did not converge in every window (the output is still written).")]
PrecisionOption = Annotated[Optional[str], typer.Option("--precision", help="float32 | float64 (overrides run.precision).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dacli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False) -> None:
    """Variational data assimilation from the command line."""


def _fail(message: str, code: int) -> None:
    typer.echo(f"dacli: error: {message}", err=True)
    raise typer.Exit(code)


def _guard(traceback: bool, action):
    """Run ``action``; map user errors to their exit codes, never show a traceback unless asked."""
    try:
        return action()
    except typer.Exit:
        raise
    except DacliError as exc:
        if getattr(exc, "signal_number", None) is not None:  # a clean stop on a signal, not an error
            typer.echo(f"dacli: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        if traceback:
            import traceback as tb

            tb.print_exc()
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", INTERRUPTED_SIGINT)
    except Exception as exc:  # a bug: say so, keep the exit code distinct
        if traceback:
            import traceback as tb

            tb.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)", INTERNAL_ERROR)


def _load(config: Path, overrides: list[str] | None, device: str | None, precision: str | None):
    from dacli.build.registry import check_names
    from dacli.config.loading import load_config

    items = list(overrides or [])
    if device is not None:
        items.append(f'run.device="{device}"')
    if precision is not None:
        items.append(f'run.precision="{precision}"')
    return load_config(config, items, extra_checks=[check_names])


def _command_line() -> str:
    return "dacli " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _result_json(result) -> dict:
    """:func:`dacli.cli.render.result_json`, imported when a command prints JSON."""
    from dacli.cli.render import result_json

    return result_json(result)


def _emit_json(payload: dict) -> None:
    from dacli.io.checkpoints import json_safe

    sys.stdout.write(json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False) + "\n")


@app.command()
def assimilate(
    config: ConfigPath,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
    strict: StrictOption = False,
    resume: Annotated[bool, typer.Option("--resume", help=(
        "Continue a run stopped by a signal from its checkpoint (<output.path>.checkpoint)."))] = False,
    restart: Annotated[bool, typer.Option("--restart", help=(
        "Discard a stopped run's checkpoint and start afresh (without it, an existing checkpoint is refused; "
        "--overwrite replaces output files, never a checkpoint)."))] = False,
    windows: Annotated[Optional[str], typer.Option("--windows", help=(
        "Run only windows A <= k < B (from 0), e.g. one job-array task's share: --windows 100:200 "
        "(sets window.select)."))] = None,
) -> None:
    """Assimilate the observations over every window and write the analysis NetCDF.

    SIGTERM, SIGINT (and run.stop_signal, e.g. Slurm's USR1) stop it at the next chunk of windows
    with a checkpoint (exit 143 / 130); --resume finishes it."""
    from dacli.cli.logs import WindowProgress, setup_logging

    setup_logging(quiet, verbose)

    def action():
        overrides = [*(set_ or []), *([f'window.select="{windows}"'] if windows is not None else [])]
        cfg = _load(config, overrides, device, precision)  # before the run module imports JAX
        from dacli.run.assimilate import assimilate as run_assimilate

        with WindowProgress(quiet) as progress:
            result = run_assimilate(cfg, overwrite=overwrite, resume=resume, restart=restart,
                                    command=_command_line(), on_window=progress)
        return result

    result = _guard(traceback, action)
    log = logging.getLogger("dacli")
    s = result.summary
    rmse = (f", RMSE background {s.background_rmse:.4g} -> analysis {s.analysis_rmse:.4g}"
            if s.analysis_rmse is not None else "")
    log.info("wrote %s: %d window(s), %d/%d converged%s", result.output, s.windows, s.converged_windows,
             s.windows, rmse)
    if json_:
        _emit_json(_result_json(s))
    if strict and s.converged_windows < s.windows:
        typer.echo(f"dacli: check failed: the minimiser did not converge in {s.windows - s.converged_windows} "
                   f"of {s.windows} window(s) (--strict); the output was written", err=True)
        raise typer.Exit(CHECK_FAILED)


@app.command()
def simulate(
    config: ConfigPath,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
) -> None:
    """Make a twin experiment: truth run, synthetic observations and a background (NetCDF)."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        from dacli.run.simulate import simulate as run_simulate

        return run_simulate(_load(config, set_, device, precision), overwrite=overwrite)

    result = _guard(traceback, action)
    from dacli.cli.render import result_json

    summary = result_json(result)
    for kind, path in summary["files"].items():
        logging.getLogger("dacli").info("wrote %s: %s", kind, path)
    if json_:
        _emit_json(summary)


@app.command()
def forecast(
    config: ConfigPath,
    lead_time: Annotated[float, typer.Option("--lead-time", help="How far ahead, in model time units.", show_default=False)],
    interval: Annotated[Optional[float], typer.Option("--interval", help=(
        "Output interval in model time units: a whole number of model steps (default: model.dt)."))] = None,
    from_: Annotated[Optional[Path], typer.Option("--from", help=(
        "Start from an analysis file of dacli assimilate (default: its last window's end) or a state file "
        "(default: its last time). Without it: the config's background at window.start."))] = None,
    start_time: Annotated[Optional[list[float]], typer.Option("--start-time", help=(
        "Start at this model time of the --from file (repeatable); a window end gives that window's end analysis."))] = None,
    all_windows: Annotated[bool, typer.Option("--all-windows", help=(
        "Start from the analysis at the end of every window of the --from analysis file."))] = False,
    members: Annotated[int, typer.Option("--members", min=1, help=(
        "Ensemble size: members start from x0 + B^(1/2) z (B from background.covariance, seed run.seed); "
        "1 = the deterministic forecast only."))] = 1,
    truth: Annotated[Optional[Path], typer.Option("--truth", help=(
        "A truth state file to verify against (RMSE, anomaly correlation per lead time); default: the config's truth.path.")
    )] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help=(
        "Output file (default: output.path with 'analysis' replaced by 'forecast')."))] = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
) -> None:
    """Forecast from an analysis (or the background), optionally as an ensemble; verify against a truth; write NetCDF."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        cfg = _load(config, set_, device, precision)  # before the run module imports JAX
        from dacli.run.forecast import forecast as run_forecast

        return run_forecast(cfg, initial=from_, start_times=start_time,
                            all_windows=all_windows, lead_time=lead_time, interval=interval, members=members,
                            truth=truth, output=out, overwrite=overwrite, command=_command_line())

    result = _guard(traceback, action)
    s = result.summary
    if result.process != 0:  # a multi-process launch: process 0 reports and wrote the file
        logging.getLogger("dacli").debug("process %d of %d: computed its share of the forecasts; process 0 wrote %s",
                                         result.process, s.processes, result.output)
        return
    leads, measured = s.lead_times, s.scores
    picks = sorted({len(leads) // 4, len(leads) // 2, len(leads) - 1} - {0}) or [len(leads) - 1]
    scores = ""
    if measured.rmse is not None:
        scores = "; RMSE " + ", ".join(f"{measured.rmse[i]:.3g} at {leads[i]:g}" for i in picks)
        scores += "; anomaly correlation " + ", ".join(f"{measured.anomaly_correlation[i]:.3g}" for i in picks)
    if measured.spread is not None:
        scores += "; spread " + ", ".join(f"{measured.spread[i]:.3g}" for i in picks)
    logging.getLogger("dacli").info("wrote %s: %d start time(s), %d member(s), lead %g every %g%s", result.output,
                                    len(s.start_times), s.members, s.lead_time, s.interval, scores)
    if json_:
        _emit_json(_result_json(s))


@app.command()
def train(
    config: ConfigPath,
    set_: SetOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <train.directory>/last.eqx.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help=(
        "Discard a stopped training's checkpoint (<train.directory>/last.eqx) and start afresh."))] = False,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
) -> None:
    """Train 4DVarNet (config sections network and train) on twin windows; checkpoint every epoch.

    With a method without a network (strong4dvar, weak4dvar, 3dvar) tune its hyperparameters
    instead, as dacli tune does."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        from dacli.build.registry import capabilities
        from dacli.cli.logs import TrainingProgress
        from dacli.run.train import train as run_train
        from dacli.run.tune import tune as run_tune

        cfg = _load(config, set_, device, precision)
        if not capabilities(cfg.method.kind).learned and not resume:  # --resume: run_train refuses
            logging.getLogger("dacli").info(
                "method.kind = %r has no network: dacli train tunes its hyperparameters, "
                "as dacli tune does", cfg.method.kind)
            return run_tune(cfg, overwrite=overwrite)
        with TrainingProgress(quiet) as progress:
            return run_train(cfg, resume=resume, overwrite=overwrite, restart=restart,
                             on_batch=progress.batch, on_epoch=progress.epoch)

    result = _guard(traceback, action)
    from dacli.run.tune import TuneResult

    if isinstance(result, TuneResult):
        _report_tuning(result, json_)
        return
    from dacli.cli.render import result_json

    logging.getLogger("dacli").info(
        "trained %d epoch(s): validation RMSE %.4g (best %.4g; observation error %.4g); "
        "best model %s", result.epochs, result.validation_rmse, result.best_validation_rmse,
        result.observation_error_std, result.files.best)
    if json_:
        _emit_json(result_json(result))


def _report_tuning(result, json_: bool) -> None:
    """A tuning's log line, and its JSON summary or TOML snippet on stdout."""
    from dacli.cli.render import result_json

    logging.getLogger("dacli").info(
        "tuned %s of %s in %d step(s): validation analysis RMSE %.4g -> %.4g; wrote %s",
        ", ".join(result.parameters), result.method, result.steps, result.validation_rmse_before,
        result.validation_rmse_after, result.files.snippet)
    if json_:
        _emit_json({"mode": "tune", **result_json(result)})
    else:
        typer.echo(result.snippet, nl=False)


@app.command()
def tune(
    config: ConfigPath,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
) -> None:
    """Tune a variational method's B, R, Q scales and B's length scale on twin-experiment windows.

    Settings in config section tune; the tuned values are written as a TOML snippet
    (tune.output)."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        from dacli.run.tune import tune as run_tune

        return run_tune(_load(config, set_, device, precision), overwrite=overwrite)

    _report_tuning(_guard(traceback, action), json_)


@app.command()
def validate(
    config: ConfigPath,
    set_: SetOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
) -> None:
    """Check the config and open every input file, without computing anything."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        cfg = _load(config, set_, None, None)  # before the run module imports JAX
        from dacli.run.validate import validate as run_validate

        return run_validate(cfg)

    summary = _result_json(_guard(traceback, action))
    logging.getLogger("dacli").info("%s is valid: %s", config, ", ".join(f"{k} {v}" for k, v in summary.items() if k != "config"))
    if json_:
        _emit_json(summary)


@app.command()
def plot(
    analysis: Annotated[Path, typer.Argument(help="An analysis file written by dacli assimilate.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", help="Prefix of the PNG files (default: the analysis path without .nc).")] = None,
    point: Annotated[Optional[str], typer.Option("--point", help=(
        "Grid point for the time series: an index on a 1-D grid, 'iy,ix' on a 2-D one (default: the middle)."))] = None,
    time: Annotated[Optional[float], typer.Option("--time", help=(
        "2-D models: model time to map, in the file's time units; the nearest stored time (default: the last)."))] = None,
    truth: Annotated[Optional[Path], typer.Option("--truth", help=(
        "2-D models: a truth state file on the same grid; the maps add the truth and the analysis error."))] = None,
    observations: Annotated[Optional[Path], typer.Option("--observations", help=(
        "2-D models: a feedback file from dacli assimilate; the maps show the observations used around --time."))] = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
) -> None:
    """Draw an analysis file: maps (2-D) or a Hovmoller diagram (1-D), time series, RMSE and cost per window (PNG)."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        from dacli.run.plot import plot as run_plot

        return run_plot(analysis, out, point, overwrite, time=time, truth=truth, observations=observations)

    written = _guard(traceback, action)
    for kind, path in written.items():
        logging.getLogger("dacli").info("wrote %s: %s", kind, path)
    if json_:
        _emit_json(written)


@app.command()
def sweep(
    config: ConfigPath,
    values: Annotated[str, typer.Option("--values", help=(
        "KEY=v1,v2,...: the error scale to sweep (background.covariance.std, method.model_error.covariance.std) "
        "and its values; each is one whole cycled run."), show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the table as CSV.")] = None,
    set_: SetOption = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
) -> None:
    """The cycled experiment once per value of an error scale, all values in one program over the devices."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)

    def action():
        import dataclasses

        cfg = _load(config, set_, device, precision)  # before the run module imports JAX
        from dacli.run.sweep import parse_values, sweep as run_sweep, write_table

        key, numbers = parse_values(values)
        if out is not None:
            from dacli.io.netcdf import check_writable

            check_writable(out, overwrite)
        result = run_sweep(cfg, key, numbers)
        if out is not None and result.process == 0:  # a multi-process launch: process 0 writes the table
            write_table(result, out, overwrite)
            result = dataclasses.replace(result, table=str(out))
        return result

    result = _guard(traceback, action)
    log = logging.getLogger("dacli")
    if result.process != 0:  # a multi-process launch: process 0 reports
        log.debug("process %d of %d: ran its share of the values; process 0 reports", result.process,
                  result.processes)
        return
    for row in result.rows:
        rmse = (f", RMSE background {row.background_rmse:.4g} -> analysis {row.analysis_rmse:.4g}"
                if row.analysis_rmse is not None else "")
        log.info("%s = %g: mean J %.6g, %d/%d converged, %.1f iterations%s", result.key, row.value,
                 row.cost_final_mean, row.converged_windows, row.windows, row.iterations_mean, rmse)
    if json_:  # each row's value named after the swept key, as in the table
        _emit_json({**_result_json(result), "rows": [row.named(result.key) for row in result.rows],
                    "best": result.best.named(result.key)})


@app.command()
def merge(
    inputs: Annotated[list[Path], typer.Argument(help=(
        "Analysis files of consecutive window ranges of one run (dacli assimilate --windows A:B), any order; "
        "at least two."), show_default=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="The merged analysis file to write.",
                                                   show_default=False)] = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
) -> None:
    """Put the analysis files of a run's window ranges (job-array tasks) back together as one file:
    dacli merge -o OUT PART PART..."""
    from dacli.cli.logs import setup_logging

    setup_logging(quiet, verbose)
    if output is None:  # never from the positional arguments: neither order can then replace a part
        _fail(f"merge: give the merged file with -o/--output: dacli merge -o OUT PART PART... (found no -o; the "
              f"arguments {' '.join(map(str, inputs))} are all taken as parts)", USAGE_ERROR)

    def action():
        from dacli.run.merge import merge as run_merge

        return run_merge(output, inputs, overwrite=overwrite, command=_command_line())

    merged = _guard(traceback, action)
    logging.getLogger("dacli").info("wrote %s: %d windows from %d files", merged.output, merged.windows,
                                    len(merged.parts))
    if json_:
        _emit_json(_result_json(merged))


@app.command("check-adjoints")
def check_adjoints(
    config: Annotated[Optional[Path], typer.Argument(help="TOML configuration; omit to check every built-in model and operator.", show_default=False)] = None,
    set_: SetOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    traceback: TracebackOption = False,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
    no_strategies: Annotated[bool, typer.Option("--no-strategies", help="Skip the adjoint-strategy agreement checks (faster).")] = False,
) -> None:
    """Prove the gradients right: linearity, tangent-linear, dot-product and Taylor tests, and agreement of every adjoint strategy."""
    from dacli.cli.logs import is_terminal, setup_logging
    from dacli.cli.render import render_checks, render_failures

    setup_logging(quiet, verbose)

    def action():
        if config is None and set_:
            _fail("--set needs a configuration file", 2)
        cfg = None if config is None else _load(config, set_, device, precision)  # before JAX is imported
        from dacli.run.check_adjoints import check_adjoints as run_checks

        if cfg is None:
            return run_checks(None, precision=precision or "float64", device=device or "auto",
                              strategies=not no_strategies)
        return run_checks(cfg, strategies=not no_strategies)

    report = _guard(traceback, action)
    if not quiet:
        render_checks(report.results, is_terminal())
    if json_:
        _emit_json(_result_json(report))
    if not report.passed:
        render_failures(report.results)
        raise typer.Exit(CHECK_FAILED)
    logging.getLogger("dacli").info("all %d checks passed (%s, %s)", len(report.results), report.precision, report.device)


def main() -> None:
    """Run the command line; :func:`dacli.__main__.main` installed the stop-signal handlers before."""
    try:
        app()
    except SystemExit as finished:
        received = stop_signals.requested()
        if finished.code in (0, None) and received is not None:
            import signal

            logging.getLogger("dacli").warning("received %s after the work was done: ended normally",
                                               signal.Signals(received).name)
        raise
