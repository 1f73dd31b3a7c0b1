"""``dacli forecast``: run the model forward from analyses (or the background), verify, write.

Initial states: without ``--from`` the config's background at ``window.start``; with an analysis
file the analysis at the end of its last window (by default), of every window
(``all_windows``) or at given ``start_times`` — a window end there gives that window's end
analysis (it has seen observations up to that time only), any other stored time the analysis
trajectory; a state file (truth, background) gives its state at those times (default: its
last). Every start time and ensemble member is one item of a single batched, compiled forecast
(:func:`dacli.parallel.map_over_processes`: sharded over the local devices, split over processes):
the model is integrated ``lead_time / interval`` times ``interval`` in one
``lax.scan`` per item. Members start from x0 + B^{1/2} z, z ~ N(0, I) (``run.seed``), B the
configured background covariance; the unperturbed forecast is always made too. Verification
(:mod:`dacli.diagnostics.verification`) against a truth file scores every lead time the truth
reaches and leaves NaN (with a warning) where it does not. Returns a summary; prints nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from dacli.build.factories import build_ode_solver
from dacli.build.problem import build_covariance_sqrt, build_dynamics
from dacli.config.schema import Config
from dacli.diagnostics import verification as v
from dacli.diagnostics.verification import ensemble_statistics
from dacli.errors import ConfigError, DataError, NumericalError
from dacli.io.forecast import ForecastRecord, forecast_dataset, read_starting_states
from dacli.io.inputs import FileMapping
from dacli.io.netcdf import check_writable, write_netcdf_atomically
from dacli.io.states import SAME_TIME, read_states, states_at
from dacli.models.integrate import Forecaster
from dacli.observations.windows import whole_steps
from dacli.parallel import initialize_distributed, map_over_processes
from dacli.run.inputs import initial_background
from dacli.run.phases import PhaseCallback, compile_phases
from dacli.run.runtime import configure, describe_device, place_work
from dacli.run.stopping import StopSignals

log = logging.getLogger("dacli")

# A field left out of the JSON summary when it is None (the CLI's dacli.cli.render.result_json).
OPTIONAL = {"json": "optional"}


@dataclass(frozen=True)
class ForecastScores:
    """Scores per lead time (L,); None where not computed: the spread needs an ensemble, the
    rest a truth."""

    spread: tuple[float, ...] | None = field(default=None, metadata=OPTIONAL)
    verified_starts: tuple[int, ...] | None = field(default=None, metadata=OPTIONAL)
    rmse: tuple[float, ...] | None = field(default=None, metadata=OPTIONAL)
    anomaly_correlation: tuple[float, ...] | None = field(default=None, metadata=OPTIONAL)
    rmse_ensemble_mean: tuple[float, ...] | None = field(default=None, metadata=OPTIONAL)
    anomaly_correlation_ensemble_mean: tuple[float, ...] | None = field(
        default=None, metadata=OPTIONAL
    )


@dataclass(frozen=True)
class ForecastSummary:
    """The forecast's numbers (the ``--json`` summary, in this order)."""

    output: str
    source: str = field(metadata={"json_name": "from"})  # the --from file, or "background"
    initial_states: str
    start_times: tuple[float, ...]
    lead_time: float
    interval: float
    lead_times: tuple[float, ...]
    model_steps: int
    members: int
    seed: int
    truth: str | None
    scores: ForecastScores = field(metadata={"json": "inline"})
    forecast_seconds: float
    device: str
    precision: str
    processes: int  # processes of a multi-process launch (1 otherwise)


@dataclass(frozen=True)
class ForecastResult:
    output: str
    summary: ForecastSummary
    start_times: np.ndarray = field(repr=False)  # (S,)
    lead_times: np.ndarray = field(repr=False)  # (L,) 0 included
    forecast: np.ndarray = field(repr=False)  # (S, L, n) from the unperturbed initial states
    ensemble: np.ndarray | None = field(repr=False)  # (S, N, L, n), or None for one member
    scores: dict[str, np.ndarray] = field(repr=False)  # per lead time (dacli.io.forecast.SCORES)
    process: int = 0  # this process's index in a multi-process launch; process 0 wrote the file


def default_output(config: Config) -> str:
    """``output.path`` with 'analysis' replaced by 'forecast' (else '_forecast' appended)."""
    path = Path(config.output.path)
    stem = (
        path.stem.replace("analysis", "forecast")
        if "analysis" in path.stem
        else f"{path.stem}_forecast"
    )
    return str(path.with_name(stem + ".nc"))


def lead_steps(lead_time: float, interval: float, dt: float) -> tuple[int, int]:
    """(outputs, model steps per output) for ``--lead-time`` and ``--interval``; ConfigError (exit
    2) unless
    the interval is a whole number of model steps and the lead time a whole number of intervals."""
    if not (np.isfinite(lead_time) and lead_time > 0):
        raise ConfigError(
            [f"--lead-time: must be a positive number of model time units, found {lead_time}"]
        )
    if not (np.isfinite(interval) and interval > 0):
        raise ConfigError(
            [f"--interval: must be a positive number of model time units, found {interval}"]
        )
    stride = whole_steps(interval, dt, "--interval")
    outputs = lead_time / interval
    if abs(outputs - round(outputs)) > 1e-6 * max(1.0, outputs) or round(outputs) < 1:
        raise ConfigError(
            [f"--lead-time: {lead_time} is not a whole number of --interval ({interval})"]
        )
    return int(round(outputs)), stride


@dataclass(frozen=True)
class Starts:
    times: np.ndarray  # (S,)
    states: np.ndarray  # (S, n)
    source: str  # the file, or "background"
    description: str


def choose_starts(
    config: Config, layout, initial, start_times: Sequence[float] | None, all_windows: bool
) -> Starts:
    """The initial times and states (see the module docstring)."""
    if start_times and all_windows:
        raise ConfigError(["--start-time and --all-windows: give one or the other"])
    if initial is None:
        if start_times or all_windows:
            raise ConfigError(
                [
                    f"--{'all-windows' if all_windows else 'start-time'}: picks states of a --from "
                    "file; without --from the forecast starts from the config's background at "
                    "window.start"
                ]
            )
        where = config.background.path or "background.state"
        return Starts(
            np.array([config.window.start]),
            initial_background(config, layout)[None],
            "background",
            f"background ({where}) at window.start",
        )
    source = read_starting_states(initial, layout, config.model.name, config.time.axis())
    ends, end_states = source.window_ends, source.window_end_states  # both or neither
    if all_windows:
        if ends is None:
            raise DataError(
                f"--all-windows: {initial} is not an analysis file with per-window analyses "
                "(window_end and <variable>_analysis_window_end)"
            )
        assert end_states is not None
        return Starts(
            ends, end_states, str(initial), f"analysis at the end of each of {len(ends)} windows"
        )
    if not start_times:
        if ends is not None:
            assert end_states is not None
            return Starts(
                ends[-1:], end_states[-1:], str(initial), "analysis at the end of the last window"
            )
        return Starts(
            source.times[-1:],
            source.states[-1:],
            str(initial),
            f"{source.kind} at the file's last time",
        )
    return _given_starts(config, source, initial, start_times)


def _given_starts(config: Config, source, initial, start_times: Sequence[float]) -> Starts:
    """The states of a --from file at the --start-time values: a stored time within half a model
    step stands for the time asked (with a warning), a window end's analysis replaces the
    trajectory's state there. Not for the file's last time or --all-windows (choose_starts)."""
    tolerance = 0.5 * config.model.dt
    ends, end_states = source.window_ends, source.window_end_states  # both or neither
    wanted = np.array(start_times, float)  # a copy: window ends replace the times they stand for
    what = "--from analysis" if source.kind == "analysis" else "--from state"
    states = states_at(source.times, source.states, wanted, initial, what, tolerance)
    # A stored time up to half a model step away stands for the time asked: the forecast starts at
    # the stored time (its state's time), and says so, rather than relabel that state.
    stored = states_at(source.times, source.times[:, None], wanted, initial, what, tolerance)[:, 0]
    moved = np.abs(stored - wanted) > SAME_TIME * tolerance
    describe = config.time.axis().describe
    for asked, used in zip(wanted[moved], stored[moved], strict=True):
        log.warning(
            "%s file %s: holds no state at exactly --start-time %s; starting from its state at "
            "%s, %.6g away",
            what,
            initial,
            describe(asked),
            describe(used),
            abs(used - asked),
        )
    wanted[moved] = stored[moved]
    at_end = np.zeros(len(wanted), bool)
    if ends is not None:
        assert end_states is not None
        nearest = np.argmin(np.abs(ends[None, :] - wanted[:, None]), axis=1)
        at_end = np.abs(ends[nearest] - wanted) <= tolerance
        states[at_end] = end_states[nearest[at_end]]
        wanted[at_end] = ends[nearest[at_end]]
    description = (
        f"{source.kind} at the given start times"
        if ends is None
        else f"analysis at the given start times ({at_end.sum()} window end(s), "
        f"{len(wanted) - at_end.sum()} from the analysis trajectory)"
    )
    return Starts(wanted, states, str(initial), description)


def forecast(
    config: Config,
    *,
    initial: str | Path | None = None,
    start_times: Sequence[float] | None = None,
    all_windows: bool = False,
    lead_time: float,
    interval: float | None = None,
    members: int = 1,
    truth: str | Path | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    command: str = "dacli forecast",
    on_phase: PhaseCallback | None = None,
) -> ForecastResult:
    """Forecast ``lead_time`` ahead every ``interval`` (default: model.dt) and write the file.

    A stop signal before the forecasts are computed ends it (exit 143, nothing to resume); one that
    arrives later lets it finish and write the file (:mod:`dacli.run.stopping`). ``on_phase`` hears
    "reading", "tracing", "compiling", "verifying" (:mod:`dacli.run.phases`).
    """
    with StopSignals(config.run.stop_signal) as stop:
        if on_phase is not None:
            on_phase("reading")
        return _forecast(
            config,
            stop,
            initial=initial,
            start_times=start_times,
            all_windows=all_windows,
            lead_time=lead_time,
            interval=interval,
            members=members,
            truth=truth,
            output=output,
            overwrite=overwrite,
            command=command,
            on_phase=on_phase,
        )


def _forecast(
    config: Config,
    stop: StopSignals,
    *,
    initial,
    start_times,
    all_windows,
    lead_time,
    interval,
    members,
    truth,
    output,
    overwrite,
    command,
    on_phase: PhaseCallback | None = None,
) -> ForecastResult:
    process, processes = initialize_distributed()  # under srun with several tasks: before JAX
    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    dt = config.model.dt
    interval = dt if interval is None else interval
    if members < 1:
        raise ConfigError([f"--members: must be at least 1, found {members}"])
    outputs, stride = lead_steps(lead_time, interval, dt)
    output, overwrite = output or default_output(config), overwrite or config.output.overwrite
    check_writable(output, overwrite)
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    starts = choose_starts(config, layout, initial, start_times, all_windows)
    count = len(starts.times)
    platform = place_work(config.run.device, layout.size * count * members, "forecast states")
    truth_path = truth if truth is not None else (config.truth.path if config.truth else None)
    _log_plan(starts, lead_time, interval, outputs * stride, dt, members, config, platform)
    x0, t0 = _initial_states(config, layout, starts, members, dtype)
    forecaster = Forecaster(dynamics, build_ode_solver(config.model), outputs, stride, dt)
    trajectories, seconds = _run(forecaster, x0, t0, dtype, interval, stop, count, on_phase)
    lead_times = np.round(interval * np.arange(outputs + 1), 12)  # 0.6, not 0.6000000000000001
    control, ensemble = _split_members(trajectories, count, members)
    scores, reference = verify(
        config, layout, truth_path, t0[:count], lead_times, control, ensemble
    )
    arrays = ForecastArrays(t0[:count], lead_times, control, ensemble, scores, reference)
    summary = _summary(
        config,
        starts,
        arrays,
        output,
        truth_path,
        lead_time,
        interval,
        outputs * stride,
        members,
        seconds,
        processes,
    )
    if process == 0:  # every process holds every forecast; one writes the file
        _write(config, layout, summary, arrays, command, overwrite)
    return ForecastResult(
        str(output), summary, t0[:count], lead_times, control, ensemble, scores, process
    )


def _log_plan(
    starts: Starts, lead_time, interval, model_steps, dt, members, config: Config, platform
) -> None:
    """Say what the forecast will compute (log, info), before it is compiled."""
    log.info(
        "forecast from %s: %d start time(s), lead %g every %g (%d model steps of %g), "
        "%d member(s), %s on %s",
        starts.description,
        len(starts.times),
        lead_time,
        interval,
        model_steps,
        dt,
        members,
        config.run.precision,
        platform,
    )


def _split_members(
    trajectories: np.ndarray, count: int, members: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(control (S, L, n), ensemble (S, N, L, n) or None) from the batched (S + S N, L, n)
    forecasts (_initial_states' order: the starts, then each start's members)."""
    control = trajectories[:count]
    if members == 1:
        return control, None
    return control, trajectories[count:].reshape(count, members, *trajectories.shape[1:])


def _summary(
    config: Config,
    starts: Starts,
    arrays: ForecastArrays,
    output,
    truth_path,
    lead_time: float,
    interval: float,
    model_steps: int,
    members: int,
    seconds: float,
    processes: int,
) -> ForecastSummary:
    """The forecast's typed summary (``--json``, the file's provenance) from its arrays."""
    return ForecastSummary(
        output=str(output),
        source=starts.source,
        initial_states=starts.description,
        start_times=tuple(arrays.start_times.tolist()),
        lead_time=lead_time,
        interval=interval,
        lead_times=tuple(arrays.lead_times.tolist()),
        model_steps=model_steps,
        members=members,
        seed=config.run.seed,
        truth=str(truth_path) if truth_path is not None else None,
        scores=ForecastScores(
            **{name: tuple(values.tolist()) for name, values in arrays.scores.items()}
        ),
        forecast_seconds=round(seconds, 3),
        device=describe_device(),
        precision=config.run.precision,
        processes=processes,
    )


def _run(
    forecaster: Forecaster,
    x0: np.ndarray,
    t0: np.ndarray,
    dtype,
    interval: float,
    stop: StopSignals,
    count: int,
    on_phase: PhaseCallback | None = None,
) -> tuple[np.ndarray, float]:
    """(every forecast (items, L, n), computed in one batched program; its seconds), unless a stop
    signal came first (from ``count`` start times); a NumericalError if one blew up."""
    stop.raise_if_requested(
        f"before the forecasts from {count} start time(s)",
        "nothing computed, nothing to resume: rerun the same command",
    )
    started = time.perf_counter()
    with compile_phases(on_phase):
        trajectories = np.asarray(
            map_over_processes(forecaster, jnp.asarray(x0, dtype), jnp.asarray(t0, dtype))
        )
    if on_phase is not None:
        on_phase("verifying")
    seconds = time.perf_counter() - started
    if not np.all(np.isfinite(trajectories)):
        bad = np.argwhere(~np.isfinite(trajectories).all(axis=-1))[0]
        raise NumericalError(
            f"the forecast from time {t0[bad[0]]:g} became non-finite (NaN/Inf) at lead "
            f"{bad[1] * interval:g}; no output was written. Try a smaller model.dt"
        )
    return trajectories, seconds


def _initial_states(
    config: Config, layout, starts: Starts, members: int, dtype
) -> tuple[np.ndarray, np.ndarray]:
    """(states, times) of every forecast: the starts, then ``members`` perturbed copies of each,
    x0 + B^{1/2} z with z ~ N(0, I) (``run.seed``), independent per start time."""
    x0 = np.asarray(starts.states, float)
    t0 = np.asarray(starts.times, float)
    if members == 1:
        return x0, t0
    count, n = len(t0), layout.size
    root = build_covariance_sqrt(
        config.background.covariance, "background.covariance", layout, dtype
    )
    z = np.random.default_rng(config.run.seed).normal(size=(count * members, n))
    perturbations = np.asarray(jax.vmap(root.mv)(jnp.asarray(z, dtype))).reshape(count, members, n)
    return (
        np.concatenate([x0, (x0[:, None] + perturbations).reshape(count * members, n)]),
        np.concatenate([t0, np.repeat(t0, members)]),
    )


@dataclass(frozen=True)
class ForecastArrays:
    """What the forecast file holds besides its provenance."""

    start_times: np.ndarray  # (S,)
    lead_times: np.ndarray  # (L,)
    control: np.ndarray  # (S, L, n)
    ensemble: np.ndarray | None  # (S, N, L, n)
    scores: dict[str, np.ndarray]  # per lead time
    reference: np.ndarray | None  # the climatology of the anomaly correlation


def _write(
    config: Config,
    layout,
    summary: ForecastSummary,
    arrays: ForecastArrays,
    command: str,
    overwrite: bool,
) -> None:
    """The forecast file, with the ensemble statistics when there are members."""
    ensemble_mean = ensemble_spread = None
    if arrays.ensemble is not None:
        ensemble_mean, ensemble_spread = ensemble_statistics(arrays.ensemble)
    record = ForecastRecord(
        layout,
        arrays.start_times,
        arrays.lead_times,
        arrays.control,
        arrays.ensemble,
        ensemble_mean,
        ensemble_spread,
        arrays.scores,
        arrays.reference,
        _provenance(config, summary),
    )
    title = config.output.title or config.run.name
    discovery = config.output.discovery(f"{title}: forecast")
    dataset = forecast_dataset(record, config.time.axis(), discovery, command)
    write_netcdf_atomically(dataset, summary.output, overwrite)


def verify(config: Config, layout, truth_path, start_times, lead_times, control, ensemble):
    """Scores per lead time (and the climatology used for anomalies): spread for an ensemble; RMSE
    and
    anomaly correlation of the forecast (and ensemble mean) where the truth reaches."""
    scores = {}
    if ensemble is not None:
        scores["spread"] = v.ensemble_spread_by_lead(ensemble)
    if truth_path is None:
        return scores, None
    mapping = (
        FileMapping.of(config.truth) if config.truth is not None else FileMapping()
    )  # [truth]'s names, dims
    truth_times, truth_states = read_states(
        truth_path, layout, "truth", config.time.axis(), mapping
    )
    valid = (start_times[:, None] + lead_times[None, :]).ravel()
    truth = states_at(
        truth_times, truth_states, valid, truth_path, "truth", 0.5 * config.model.dt, missing="nan"
    )
    truth = truth.reshape(len(start_times), len(lead_times), layout.size)
    reference = v.climatology(truth_states)
    verified = v.verified_count(truth)
    if (verified < len(start_times)).any():
        log.warning(
            "truth file %s covers [%g, %g]; the forecasts' valid times [%g, %g]: scored only "
            "where the truth "
            "reaches (%d of %d lead times verified for every start; NaN where none)",
            truth_path,
            truth_times.min(),
            truth_times.max(),
            valid.min(),
            valid.max(),
            int((verified == len(start_times)).sum()),
            len(lead_times),
        )
    scores["verified_starts"] = verified
    scores["rmse"] = v.rmse_by_lead(control, truth)
    scores["anomaly_correlation"] = v.anomaly_correlation_by_lead(control, truth, reference)
    if ensemble is not None:
        mean = ensemble.mean(axis=1)
        scores["rmse_ensemble_mean"] = v.rmse_by_lead(mean, truth)
        scores["anomaly_correlation_ensemble_mean"] = v.anomaly_correlation_by_lead(
            mean, truth, reference
        )
    return scores, reference


def _provenance(config: Config, summary: ForecastSummary) -> dict:
    provenance = {
        "engine": f"jax {jax.__version__}, diffrax {diffrax.__version__}",
        "config": config.model_dump_json(),
        "model": config.model.name,
        "solver": config.model.ode_solver,
        "model_dt": config.model.dt,
        "initial_source": summary.source,
        "initial_states": summary.initial_states,
        "lead_time": summary.lead_time,
        "interval": summary.interval,
        "members": summary.members,
        "precision": summary.precision,
        "device": summary.device,
        "climatology": (
            "time mean of the truth file per grid point"
            if summary.truth
            else "none (no truth file)"
        ),
    }
    if summary.members > 1:
        provenance.update(
            seed=summary.seed,
            perturbations=(
                "x0 + B^(1/2) z, z ~ N(0, I); B from background.covariance "
                f"({config.background.covariance.kind})"
            ),
        )
    if summary.truth:
        provenance["truth"] = summary.truth
    return provenance
