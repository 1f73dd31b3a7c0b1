"""``dacli assimilate``: cycle a variational method over the observation windows.

Reads observations, background and (optionally) truth; builds the method once; runs one
compiled window solve per window (fixed shapes, so compilation happens once); propagates each
analysis to the next window start as the next background; writes one CF NetCDF file
atomically. Returns a summary; prints nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dacli.config.schema import Config
from dacli.errors import NumericalError

log = logging.getLogger("dacli")


@dataclass
class AssimilationResult:
    output: str
    summary: dict
    windows: dict[str, np.ndarray] = field(repr=False)


WindowCallback = Callable[[int, int, dict], None]


def _window_record(k, schedule, packed, analysis, truth_segment, segment) -> dict:
    from dacli.diagnostics.metrics import departure_stats, rmse_per_time, time_mean

    mask = packed.mask[k]
    omb = departure_stats(packed.values[k], analysis["background_equivalents"], mask)
    oma = departure_stats(packed.values[k], analysis["analysis_equivalents"], mask)
    record = {
        "window_start": float(schedule.starts[k]),
        "window_end": float(schedule.starts[k] + schedule.length),
        "cost_initial": float(analysis["cost_initial"][0]),
        "cost_background_initial": float(analysis["cost_initial"][1]),
        "cost_observation_initial": float(analysis["cost_initial"][2]),
        "cost_final": float(analysis["cost_final"][0]),
        "cost_background_final": float(analysis["cost_final"][1]),
        "cost_observation_final": float(analysis["cost_final"][2]),
        "iterations": int(analysis["iterations"]),
        "gradient_norm": float(analysis["gradient_norm"]),
        "converged": bool(analysis["converged"]),
        "observations_used": int(packed.used[k]),
        "observations_rejected": int(packed.rejected[k]),
        "omb_mean": omb[0], "omb_rms": omb[1], "oma_mean": oma[0], "oma_rms": oma[1],
        "background_rmse": float("nan"), "analysis_rmse": float("nan"),
    }
    if truth_segment is not None:
        record["background_rmse"] = time_mean(rmse_per_time(analysis["background_trajectory"][segment], truth_segment))
        record["analysis_rmse"] = time_mean(rmse_per_time(analysis["analysis_trajectory"][segment], truth_segment))
    return record


def assimilate(config: Config, *, overwrite: bool = False, command: str = "dacli assimilate",
               on_window: WindowCallback | None = None) -> AssimilationResult:
    """Run the configured assimilation over every window and write the analysis file."""
    from dacli.run.runtime import configure, describe_device

    platform = configure(config.run.precision, config.run.device)

    import jax
    import jax.numpy as jnp

    from dacli.diagnostics.metrics import rmse_per_time, time_mean
    from dacli.io.analysis import AnalysisRecord, analysis_dataset
    from dacli.io.netcdf import check_writable, write_netcdf_atomically
    from dacli.io.states import states_at
    from dacli.methods.strong4dvar import analyse_windows

    overwrite = overwrite or config.output.overwrite
    check_writable(config.output.path, overwrite)
    dt = config.model.dt
    inputs = prepare_inputs(config)
    schedule, packed, problem = inputs.schedule, inputs.packed, inputs.problem
    layout, truth = inputs.layout, inputs.truth
    log.info("method %s, minimiser %s, forward_adjoint %s, minimiser_adjoint %s, %s on %s",
             config.method.kind, config.method.minimiser, config.method.forward_adjoint,
             config.method.minimiser_adjoint, config.run.precision, platform)

    if truth is not None:
        end = schedule.starts[-1] + schedule.length
        if truth[0].min() > schedule.starts[0] + 0.5 * dt or truth[0].max() < end - 0.5 * dt:
            log.warning("truth file %s covers [%g, %g], the windows [%g, %g]: RMSE only where the truth reaches",
                        config.truth.path, truth[0].min(), truth[0].max(), schedule.starts[0], end)
    xb = jnp.asarray(inputs.background, problem.dtype)
    records, analysis_parts, background_parts, time_parts = [], [], [], []
    window_starts, window_ends = [], []
    chunk = chunk_size(schedule.count)
    chunks = -(-schedule.count // chunk)
    compile_seconds = run_seconds = 0.0
    for first in range(0, schedule.count, chunk):
        indices = np.minimum(np.arange(first, first + chunk), schedule.count - 1)  # pad the last chunk
        started = time.perf_counter()
        xb, results = analyse_windows(
            problem.method, xb, jnp.asarray(schedule.starts[indices], problem.dtype),
            jax.tree_util.tree_map(lambda a: jnp.asarray(a[indices]), packed.stacked()),
            jnp.asarray(np.arange(first, first + chunk) < schedule.count), schedule.steps_per_shift)
        results = jax.tree_util.tree_map(np.asarray, results)
        elapsed = time.perf_counter() - started
        if first == 0:
            compile_seconds = elapsed
        else:
            run_seconds += elapsed
        for offset, k in enumerate(range(first, min(first + chunk, schedule.count))):
            analysis = {name: getattr(results, name)[offset] for name in results.__dataclass_fields__}
            if not all(np.all(np.isfinite(v)) for key, v in analysis.items() if key != "converged"):
                raise NumericalError(
                    f"window {k + 1} (start {schedule.starts[k]:g}) produced non-finite values "
                    "(NaN/Inf in the trajectory, cost or gradient); no output was written. "
                    "Try a smaller model.dt, a smaller background error, or check the observations"
                )
            last = k == schedule.count - 1
            segment = slice(0, schedule.steps + 1) if last else slice(0, schedule.steps_per_shift)
            times = schedule.starts[k] + dt * np.arange(segment.stop)
            truth_segment = None
            if truth is not None:
                truth_segment = states_at(*truth, times, config.truth.path, "truth", 0.5 * dt, missing="nan")
            record = _window_record(k, schedule, packed, analysis, truth_segment, segment)
            records.append(record)
            analysis_parts.append(analysis["analysis_trajectory"][segment])
            background_parts.append(analysis["background_trajectory"][segment])
            time_parts.append(times)
            window_starts.append(analysis["analysis_initial"])
            window_ends.append(analysis["analysis_trajectory"][-1])
            if not record["converged"]:
                log.warning("window %d: minimiser did not converge in %d iterations (|grad| = %.3g); best iterate kept",
                            k + 1, record["iterations"], record["gradient_norm"])
            if on_window is not None:
                on_window(k, schedule.count, record)

    windows = {name: np.array([r[name] for r in records]) for name in records[0]}
    times = np.concatenate(time_parts)
    analysis_states = np.concatenate(analysis_parts)
    background_states = np.concatenate(background_parts)
    summary = {
        "output": str(config.output.path),
        "windows": schedule.count,
        "converged_windows": int(windows["converged"].sum()),
        "observations_used": int(packed.used.sum()),
        "observations_rejected": int(packed.rejected.sum()),
        "observations_outside_windows": int(packed.outside),
        "observations_outside_domain": int(inputs.observations.rejected_outside_domain),
        "cost_initial_mean": float(windows["cost_initial"].mean()),
        "cost_final_mean": float(windows["cost_final"].mean()),
        "iterations_mean": float(windows["iterations"].mean()),
        "windows_per_compiled_chunk": chunk,
        "compile_and_first_chunk_seconds": round(compile_seconds, 3),
        # Timed per computed window: the last chunk is padded to full size, and padding runs too.
        "seconds_per_window_after_first_chunk": (round(run_seconds / (chunks - 1) / chunk, 6)
                                                 if chunks > 1 else None),
        "device": describe_device(),
        "precision": config.run.precision,
    }
    if truth is not None:
        truth_all = states_at(*truth, times, config.truth.path, "truth", 0.5 * dt, missing="nan")
        summary["background_rmse"] = time_mean(rmse_per_time(background_states, truth_all))
        summary["analysis_rmse"] = time_mean(rmse_per_time(analysis_states, truth_all))
    provenance = _provenance(config, summary, jax)
    window_states = {"analysis_window_start": np.stack(window_starts), "analysis_window_end": np.stack(window_ends)}
    record = AnalysisRecord(layout, times, analysis_states, background_states, windows, window_states, provenance)
    dataset = analysis_dataset(record, config.output.time_units, config.output.title or config.run.name,
                               config.output.institution, command)
    write_netcdf_atomically(dataset, config.output.path, overwrite)
    return AssimilationResult(output=str(config.output.path), summary=summary, windows=windows)


def chunk_size(count: int, largest: int = 32) -> int:
    """Windows per compiled chunk: up to ``largest``, at least four chunks when there are enough.

    Windows inside a chunk run in one compiled scan (no Python between them); chunk boundaries
    are where progress is reported, and where the run could be stopped and resumed.
    """
    return max(1, min(largest, count // 4 or 1))


@dataclass
class PreparedInputs:
    """Everything read and built before the first window is solved."""

    layout: object
    observations: object
    schedule: object
    packed: object
    background: np.ndarray
    truth: tuple[np.ndarray, np.ndarray] | None
    problem: object


def prepare_inputs(config: Config) -> PreparedInputs:
    """Read observations, background and truth; schedule and pack windows; build the method."""
    from dacli.build.problem import build_dynamics, build_problem
    from dacli.io.observations import read_observations
    from dacli.io.states import read_states
    from dacli.observations.windows import make_schedule, pack_observations

    layout = build_dynamics(config.model).layout()
    observations = read_observations(config.observations, layout)
    window = config.window
    last_time = float(observations.times.max()) if len(observations) else None
    schedule = make_schedule(window.start, window.length, window.effective_shift, config.model.dt,
                             window.assimilate, window.count, last_time)
    packed = pack_observations(observations, schedule, config.observations.time_tolerance,
                               dtype=np.float64 if config.run.precision == "float64" else np.float32)
    log.info("observations: %d read, %d assimilated over %d window(s), %d rejected by QC, %d outside every "
             "window, %d outside the model domain", len(observations), packed.used.sum(), schedule.count,
             packed.rejected.sum(), packed.outside, observations.rejected_outside_domain)
    background = initial_background(config, layout)
    truth = read_states(config.truth.path, layout, "truth") if config.truth else None
    problem = build_problem(config, schedule.steps)
    return PreparedInputs(layout, observations, schedule, packed, background, truth, problem)


def initial_background(config: Config, layout) -> np.ndarray:
    """The first window's background: ``background.state`` or the file's state at window.start."""
    from dacli.errors import ConfigError
    from dacli.io.states import read_states, state_at

    if config.background.state is not None:
        state = np.asarray(config.background.state, float)
        if state.size != layout.size:
            raise ConfigError([f"background.state: expected {layout.size} values (the model state size), found {state.size}"])
        return state
    times, states = read_states(config.background.path, layout, "background")
    return state_at(times, states, config.window.start, config.background.path, "background", 0.5 * config.model.dt)


def _provenance(config: Config, summary: dict, jax) -> dict:
    import diffrax
    import optimistix

    return {
        "engine": f"jax {jax.__version__}, diffrax {diffrax.__version__}, optimistix {optimistix.__version__}",
        "config": config.model_dump_json(),
        "method": config.method.kind,
        "minimiser": config.method.minimiser,
        "forward_adjoint": config.method.forward_adjoint,
        "minimiser_adjoint": config.method.minimiser_adjoint,
        "precision": config.run.precision,
        "device": summary["device"],
        "windows": summary["windows"],
        "converged_windows": summary["converged_windows"],
        "observations_used": summary["observations_used"],
        "observations_rejected": summary["observations_rejected"],
        "observations_outside_windows": summary["observations_outside_windows"],
    }
