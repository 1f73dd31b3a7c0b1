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

from dacli.build.registry import capabilities
from dacli.config.schema import Config
from dacli.errors import NumericalError

log = logging.getLogger("dacli")


@dataclass
class AssimilationResult:
    output: str
    summary: dict
    windows: dict[str, np.ndarray] = field(repr=False)


WindowCallback = Callable[[int, int, dict], None]


# Spread probes for the Desroziers background check (tr(H B H^T) by Hutchinson's estimator).
SPREAD_PROBES = 8

# (J, Jb, Jo, Jq) -> diagnostic names
COST_TERMS = ("cost", "cost_background", "cost_observation", "cost_model_error")


def _window_record(k, schedule, packed, analysis, truth_segment, segment) -> dict:
    from dacli.diagnostics.metrics import departure_stats, rmse_per_time, time_mean

    mask = packed.mask[k]
    omb = departure_stats(packed.values[k], analysis["background_equivalents"], mask)
    oma = departure_stats(packed.values[k], analysis["analysis_equivalents"], mask)
    record = {
        "window_start": float(schedule.starts[k]),
        "window_end": float(schedule.starts[k] + schedule.length),
        **{f"{term}_initial": float(analysis["cost_initial"][i]) for i, term in enumerate(COST_TERMS)},
        **{f"{term}_final": float(analysis["cost_final"][i]) for i, term in enumerate(COST_TERMS)},
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


def assimilate(config: Config, *, overwrite: bool = False, resume: bool = False, restart: bool = False,
               command: str = "dacli assimilate", on_window: WindowCallback | None = None) -> AssimilationResult:
    """Run the configured assimilation over every window and write the analysis file.

    SIGTERM, SIGINT and ``run.stop_signal`` stop the run at the next chunk boundary with a
    checkpoint (:mod:`dacli.run.stopping`); ``resume=True`` continues from it to the same output,
    ``restart=True`` discards it (:func:`dacli.run.resume.check_resume`).
    """
    from dacli.run.stopping import StopSignals

    with StopSignals(config.run.stop_signal) as stop:  # from the start: a signal while compiling counts too
        return _assimilate(config, stop, overwrite=overwrite, resume=resume, restart=restart, command=command,
                           on_window=on_window)


def _assimilate(config: Config, stop, *, overwrite: bool, resume: bool, restart: bool, command: str,
                on_window: WindowCallback | None) -> AssimilationResult:
    from dacli.run.runtime import configure, describe_device

    platform = configure(config.run.precision, config.run.device, config.run.compilation_cache)

    import jax
    import jax.numpy as jnp

    from dacli.diagnostics.consistency import desroziers, qc_flags
    from dacli.diagnostics.metrics import rmse_per_time, time_mean
    from dacli.io.analysis import AnalysisRecord, analysis_dataset
    from dacli.io.feedback import feedback_dataset
    from dacli.io.netcdf import check_writable, write_netcdf_atomically
    from dacli.io.states import states_at
    from dacli.methods.chunked import analyse_in_chunks
    from dacli.methods.variational import analyse_windows
    from dacli.run.resume import ResumeFile, check_resume, checkpoint_path
    from dacli.run.stopping import Interrupted

    overwrite = overwrite or config.output.overwrite
    check_writable(config.output.path, overwrite)
    check_resume(checkpoint_path(config), resume, restart)
    feedback_path = config.output.observation_diagnostics
    if feedback_path is not None:
        check_writable(feedback_path, overwrite)
    dt = config.model.dt
    inputs = prepare_inputs(config)
    schedule, packed, problem = inputs.schedule, inputs.packed, inputs.problem
    layout, truth = inputs.layout, inputs.truth
    log.info("method %s (%s formulation), minimiser %s, forward_adjoint %s, minimiser_adjoint %s, %s on %s",
             config.method.kind, problem.formulation.name, problem.minimiser.name, config.method.forward_adjoint,
             config.method.minimiser_adjoint, config.run.precision, platform)
    for what, choice in (("formulation", problem.formulation), ("minimiser", problem.minimiser)):
        if choice.reason != "as configured":
            log.info("%s %s chosen: %s", what, choice.name, choice.reason)

    if truth is not None:
        end = schedule.starts[-1] + schedule.length
        if truth[0].min() > schedule.starts[0] + 0.5 * dt or truth[0].max() < end - 0.5 * dt:
            log.warning("truth file %s covers [%g, %g], the windows [%g, %g]: RMSE only where the truth reaches",
                        config.truth.path, truth[0].min(), truth[0].max(), schedule.starts[0], end)
    xb = jnp.asarray(inputs.background, problem.dtype)
    warn_forward_mode(config, problem.method.zero_control(xb).size)
    records, analysis_parts, background_parts, time_parts = [], [], [], []
    equivalents, outer_loops, spreads = {"background": [], "analysis": []}, [], []
    window_starts, window_ends = [], []
    ends_early = selection_ends_early(config, inputs.observations)
    stepwise = config.run.minimiser_steps_per_chunk
    if stepwise is not None:
        check_stepwise(config, problem)
    chunk = chunk_size(schedule.count, 1 if stepwise else config.run.windows_per_chunk)
    chunk_seconds = []  # wall time of each chunk computed by this process (the first includes compilation)

    def absorb(first: int, results) -> None:
        """Check and record the windows of one finished chunk (``results``: numpy arrays)."""
        chunk_outer = {name: getattr(results.outer, name) for name in results.outer.__dataclass_fields__}
        for offset, k in enumerate(range(first, min(first + chunk, schedule.count))):
            analysis = {name: getattr(results, name)[offset] for name in results.__dataclass_fields__
                        if name not in ("outer", "background_spread")}
            window_outer = {name: values[offset] for name, values in chunk_outer.items()}
            if not (all(np.all(np.isfinite(v)) for key, v in analysis.items() if key != "converged")
                    and np.all(np.isfinite(window_outer["cost"]))):
                raise NumericalError(
                    f"window {k + 1} (start {schedule.starts[k]:g}) produced non-finite values "
                    "(NaN/Inf in the trajectory, cost or gradient); no output was written. "
                    "Try a smaller model.dt, a smaller background error, or check the observations"
                )
            last = k == schedule.count - 1
            segment = slice(0, schedule.stored_steps(k))
            times = schedule.starts[k] + dt * np.arange(segment.stop)
            truth_segment = None
            if truth is not None:
                truth_segment = states_at(*truth, times, config.truth.path, "truth", 0.5 * dt, missing="nan")
            # A range that stops before the run's end (--windows) stores its last window whole (the
            # next range starts from its end) but scores it, like a whole run, over its shift only.
            scored = segment if last and not ends_early else slice(0, schedule.steps_per_shift)
            record = _window_record(k, schedule, packed, analysis,
                                    None if truth_segment is None else truth_segment[scored], scored)
            records.append(record)
            analysis_parts.append(analysis["analysis_trajectory"][segment])
            background_parts.append(analysis["background_trajectory"][segment])
            time_parts.append(times)
            window_starts.append(analysis["analysis_initial"])
            window_ends.append(analysis["analysis_trajectory"][-1])
            equivalents["background"].append(analysis["background_equivalents"])
            equivalents["analysis"].append(analysis["analysis_equivalents"])
            outer_loops.append(window_outer)
            spreads.append(float(results.background_spread[offset]))
            if window_outer["cost"].size and log.isEnabledFor(logging.DEBUG):
                log.debug("window %d: %s", k + 1, describe_outer_loops(window_outer))
            if not record["converged"]:
                log.warning("window %d: minimiser did not converge in %d iterations (|grad| = %.3g); best iterate kept",
                            k + 1, record["iterations"], record["gradient_norm"])
            if on_window is not None:
                on_window(k, schedule.count, record)

    def chunk_arguments(first: int):
        indices = np.minimum(np.arange(first, first + chunk), schedule.count - 1)  # pad the last chunk
        return (jnp.asarray(schedule.starts[indices], problem.dtype),
                jax.tree_util.tree_map(lambda a: jnp.asarray(a[indices]), packed.stacked()),
                jnp.asarray(np.arange(first, first + chunk) < schedule.count))

    finished = []  # each finished chunk's results (numpy): what a checkpoint holds
    resumable = ResumeFile(checkpoint_path(config), config, schedule.count, chunk)
    if resume:
        like = jax.eval_shape(lambda b, *a: analyse_windows(problem.method, b, *a, schedule.steps_per_shift)[1],
                              xb, *chunk_arguments(0))
        xb, finished = resumable.load(xb, like)
        xb = jnp.asarray(xb, problem.dtype)
        log.info("resuming after window %d of %d from %s", min(len(finished) * chunk, schedule.count),
                 schedule.count, resumable.path)
        for index, results in enumerate(finished):
            absorb(index * chunk, results)

    def stop_now(where: str, kept: str = "", restart: str = ""):
        """Checkpoint the finished windows and stop (raise); ``where`` says where the run was."""
        from dacli.io.checkpoints import json_safe

        resumable.save(np.asarray(xb), finished, stop.name(), json_safe(records))
        raise Interrupted(f"stopped by {stop.name()} {where} of {schedule.count}; checkpoint {resumable.path} "
                          f"written{kept}, no analysis file; rerun the same command with --resume to finish{restart}",
                          stop.requested())

    def stop_within_window(first):
        def check():
            if stop.requested() is not None:
                stop_now(f"during window {first + 1}", f" (windows 1 to {first})", f" (window {first + 1} starts again)")
        return check

    if finished:
        stop.raise_if_requested(f"before window {len(finished) * chunk + 1} of {schedule.count}",
                                f"checkpoint {resumable.path} unchanged; rerun the same command with --resume to finish")
    else:
        stop.raise_if_requested(f"before window 1 of {schedule.count}",
                                "nothing computed, nothing to resume: rerun the same command")
    for first in range(len(finished) * chunk, schedule.count, chunk):
        started = time.perf_counter()
        if stepwise is None:
            xb, results = analyse_windows(problem.method, xb, *chunk_arguments(first), schedule.steps_per_shift)
        else:  # one window, its minimiser in compiled calls of `stepwise` iterations
            start, window_obs, _ = chunk_arguments(first)
            single = analyse_in_chunks(problem.method, xb, start[0], jax.tree_util.tree_map(lambda a: a[0], window_obs),
                                       stepwise, between=stop_within_window(first))
            xb = single.analysis_trajectory[schedule.steps_per_shift]
            results = jax.tree_util.tree_map(lambda a: a[None], single)
        results = jax.tree_util.tree_map(np.asarray, results)
        chunk_seconds.append(time.perf_counter() - started)
        absorb(first, results)
        finished.append(results)
        if stop.requested() is not None and first + chunk < schedule.count:
            stop_now(f"after window {first + chunk}")

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
        "observations_rejected_preqc": int(inputs.observations.rejected_preqc),
        "observations_duplicate": int(inputs.observations.rejected_duplicate),
        "cost_initial_mean": float(windows["cost_initial"].mean()),
        "cost_final_mean": float(windows["cost_final"].mean()),
        "iterations_mean": float(windows["iterations"].mean()),
        "windows_per_compiled_chunk": chunk,
        "compile_and_first_chunk_seconds": round(chunk_seconds[0], 3) if chunk_seconds else None,
        # Timed per computed window: the last chunk is padded to full size, and padding runs too.
        "seconds_per_window_after_first_chunk": (round(sum(chunk_seconds[1:]) / (len(chunk_seconds) - 1) / chunk, 6)
                                                 if len(chunk_seconds) > 1 else None),
        "device": describe_device(),
        "precision": config.run.precision,
        "method": config.method.kind,
        "formulation": problem.formulation.name,
        "minimiser": problem.minimiser.name,
        "minimiser_reason": problem.minimiser.reason,
    }
    outer = {name: np.stack([o[name] for o in outer_loops]) for name in outer_loops[0]}
    if outer["cost"].shape[1]:
        summary["outer_loops"] = outer["cost"].shape[1]
        summary["inner_iterations_mean"] = float(outer["inner_iterations"].sum(axis=1).mean())
        summary["outer_cost_mean"] = [*outer["cost"][..., 0].mean(axis=0).tolist(), float(windows["cost_final"].mean())]
        summary["inner_iterations_per_loop_mean"] = outer["inner_iterations"].mean(axis=0).tolist()
        log.info("outer loops, mean over windows: nonlinear J %s (final); CG iterations %s",
                 " -> ".join(f"{j:.6g}" for j in summary["outer_cost_mean"]),
                 ", ".join(f"{n:.1f}" for n in summary["inner_iterations_per_loop_mean"]))
    equivalents = {kind: np.stack(parts) for kind, parts in equivalents.items()}  # (K, P) each
    consistency = desroziers(packed.values, packed.std, equivalents["background"], equivalents["analysis"],
                             packed.mask, np.asarray(spreads), windows["cost_final"])
    summary["desroziers"] = consistency.as_dict()
    log.info("%s", consistency.describe())
    if truth is not None:
        truth_all = states_at(*truth, times, config.truth.path, "truth", 0.5 * dt, missing="nan")
        summary["background_rmse"] = time_mean(rmse_per_time(background_states, truth_all))
        summary["analysis_rmse"] = time_mean(rmse_per_time(analysis_states, truth_all))
    provenance = _provenance(config, summary, jax)
    window_states = {"analysis_window_start": np.stack(window_starts), "analysis_window_end": np.stack(window_ends)}
    record = AnalysisRecord(layout, times, analysis_states, background_states, windows, window_states, provenance,
                            outer_loop_diagnostics(outer))
    title = config.output.title or config.run.name
    dataset = analysis_dataset(record, config.time.axis(), title, config.output.institution, command)
    write_netcdf_atomically(dataset, config.output.path, overwrite)
    if feedback_path is not None:
        flags = qc_flags(inputs.observations, packed)
        feedback = feedback_dataset(inputs.observations, packed, schedule.starts, equivalents["background"],
                                    equivalents["analysis"], flags, layout, config.time.axis(),
                                    title, command, {**{f"desroziers_{k}": v for k, v in consistency.as_dict().items()},
                                                     "method": config.method.kind})
        write_netcdf_atomically(feedback, feedback_path, overwrite)
        summary["observation_diagnostics"] = str(feedback_path)
    resumable.remove()  # the run is complete: its checkpoint has served
    return AssimilationResult(output=str(config.output.path), summary=summary, windows=windows)


def outer_loop_diagnostics(outer: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per window and outer loop (K, L) arrays named as in the analysis file; empty when L = 0."""
    if not outer["cost"].shape[1]:
        return {}
    named = {f"outer_{term}": outer["cost"][..., i] for i, term in enumerate(COST_TERMS)}
    named.update(outer_quadratic_cost_initial=outer["quadratic_initial"], outer_quadratic_cost_final=outer["quadratic_final"],
                 outer_inner_iterations=outer["inner_iterations"], outer_gradient_reduction=outer["gradient_reduction"],
                 outer_inner_converged=outer["inner_converged"])
    return named


def describe_outer_loops(outer: dict[str, np.ndarray]) -> str:
    """One line per outer loop, JEDI/OOPS style: J, Jb, Jo, Jq, quadratic cost, inner iterations, reduction."""
    return "; ".join(
        f"outer {i + 1}: J {cost[0]:.6g} (Jb {cost[1]:.4g}, Jo {cost[2]:.4g}, Jq {cost[3]:.4g}), quadratic "
        f"{start:.6g} -> {end:.6g} in {iterations} CG iterations, |grad| reduced to {reduction:.2g}"
        for i, (cost, start, end, iterations, reduction) in enumerate(zip(
            outer["cost"], outer["quadratic_initial"], outer["quadratic_final"], outer["inner_iterations"],
            outer["gradient_reduction"])))


def chunk_size(count: int, configured: int | None = None, largest: int = 32) -> int:
    """Windows per compiled chunk: ``configured``, else up to ``largest`` with at least four chunks.

    Windows inside a chunk run in one compiled scan (no Python between them); chunk boundaries
    are where progress is reported, and where a run stops on a signal and resumes.
    """
    if configured is not None:
        return max(1, min(configured, count))
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

    layout = build_dynamics(config.model).layout()
    observations = read_observations(config.observations, layout, config.time.axis())
    schedule, packed = schedule_windows(config, observations)
    log.info("observations: %d read, %d assimilated over %d window(s), %d rejected by QC, %d outside every "
             "window, %d outside the model domain, %d repeated%s", len(observations), packed.used.sum(), schedule.count,
             packed.rejected.sum(), packed.outside, observations.rejected_outside_domain, observations.rejected_duplicate,
             f", {observations.rejected_preqc} dropped by the file's PreQC" if config.observations.layout == "ioda" else "")
    background = initial_background(config, layout, float(schedule.starts[0]))
    truth = read_truth(config, layout)
    # The Desroziers background check costs SPREAD_PROBES tangent-linear runs per window and a
    # second compiled linearisation (Lorenz-96 sample: +3.8 s compile, 0-6 % per window): done
    # when the observation-space diagnostics are asked for.
    probes = SPREAD_PROBES if config.output.observation_diagnostics is not None else 0
    problem = build_problem(config, schedule.steps, packed.values.shape[1], spread_probes=probes)
    return PreparedInputs(layout, observations, schedule, packed, background, truth, problem)


def full_schedule(config: Config, observations):
    """Every window of the run (window.select not applied)."""
    from dacli.observations.windows import make_schedule

    window = config.window
    last_time = float(observations.times.max()) if len(observations) else None
    return make_schedule(window.start, window.length, window.effective_shift, config.model.dt,
                         window.assimilate, window.count, last_time)


def schedule_windows(config: Config, observations):
    """The window schedule (window.select's range of it) and each window's observations padded to one
    capacity (no JAX); ``packed.outside`` counts the observations outside every window of the whole run."""
    import dataclasses

    from dacli.observations.windows import outside_every_window, pack_observations

    whole = full_schedule(config, observations)
    schedule = whole if config.window.select is None else select_windows(whole, config.window.select)
    packed = pack_observations(observations, schedule, config.observations.time_tolerance,
                               dtype=np.float64 if config.run.precision == "float64" else np.float32)
    if schedule is not whole:  # outside every window of the run, not of this range: the same in every part
        packed = dataclasses.replace(packed, outside=outside_every_window(observations, whole))
    return schedule, packed


def selection_ends_early(config: Config, observations) -> bool:
    """True when window.select stops before the last window of the whole schedule."""
    from dacli.config.schema import window_range

    if config.window.select is None:
        return False
    stop = window_range(config.window.select)[1]
    return stop is not None and stop < full_schedule(config, observations).count


def select_windows(schedule, select: str):
    """The windows ``select`` ('A:B', from 0) names; a ConfigError if the schedule has fewer."""
    import dataclasses

    from dacli.config.schema import window_range
    from dacli.errors import ConfigError

    start, stop = window_range(select)
    stop = schedule.count if stop is None else stop
    if stop > schedule.count:
        raise ConfigError([f"window.select: {select!r} asks for windows up to {stop - 1}, the schedule has "
                           f"{schedule.count} (0 to {schedule.count - 1})"])
    return dataclasses.replace(schedule, starts=schedule.starts[start:stop])


def check_stepwise(config: Config, problem) -> None:
    """run.minimiser_steps_per_chunk needs an optimistix minimisation it can step (the nonlinear formulation)."""
    from dacli.adjoints.stepping import KStepAdjoint
    from dacli.errors import ConfigError

    learned = capabilities(config.method.kind).learned
    if learned or problem.formulation.name != "nonlinear":
        what = "4DVarNet" if learned else f"the {problem.formulation.name} formulation"
        raise ConfigError([f"run.minimiser_steps_per_chunk: steps an optimistix minimisation (the nonlinear "
                           f"formulation); {what} runs each window in one compiled program — use "
                           "run.windows_per_chunk = 1 to bound the wait for a stop instead"])
    if isinstance(problem.method.minimiser_adjoint, KStepAdjoint):
        raise ConfigError(["run.minimiser_steps_per_chunk: with minimiser_adjoint = KStepAdjoint the analysis is "
                           "refined by k Newton steps after the solve; use another minimiser_adjoint (it only matters "
                           "for gradients through the minimisation, not for dacli assimilate)"])
    if config.run.windows_per_chunk not in (None, 1):
        raise ConfigError([f"run.windows_per_chunk: {config.run.windows_per_chunk} with run.minimiser_steps_per_chunk, "
                           "which runs one window per chunk; leave windows_per_chunk unset"])


# Measured (benchmarks/QG.md): ForwardMode at 65 536 controls (QG 256 x 256) asked for 128 GiB on an H100.
FORWARD_MODE_CONTROL_WARNING = 4096


def warn_forward_mode(config: Config, control_size: int) -> None:
    """ForwardMode builds dJ/dv from one tangent-linear run per control (jacfwd): say so when that is large."""
    if config.method.forward_adjoint.lower() == "forwardmode" and control_size > FORWARD_MODE_CONTROL_WARNING:
        log.warning("forward_adjoint ForwardMode builds the gradient from %d tangent-linear model runs (one per "
                    "control element, jax.jacfwd): memory and time grow with the state; for controls above %d "
                    "use RecursiveCheckpointAdjoint (or BacksolveAdjoint)", control_size, FORWARD_MODE_CONTROL_WARNING)


def initial_background(config: Config, layout, start: float | None = None) -> np.ndarray:
    """The first window's background: ``background.state`` or the file's state at ``start`` (window.start)."""
    from dacli.errors import ConfigError
    from dacli.io.inputs import FileMapping
    from dacli.io.states import read_states, state_at

    start = config.window.start if start is None else start
    if config.background.state is not None:
        if abs(start - config.window.start) > 0.5 * config.model.dt:
            raise ConfigError([f"window.select: the first selected window starts at {start:g}, but background.state "
                               f"is the state at window.start ({config.window.start:g}); give background.path, a "
                               "file with a state at that time (e.g. the previous task's analysis)"])
        state = np.asarray(config.background.state, float)
        if state.size != layout.size:
            raise ConfigError([f"background.state: expected {layout.size} values (the model state size), found {state.size}"])
        return state
    time_axis = config.time.axis()
    times, states = read_states(config.background.path, layout, "background", time_axis,
                                FileMapping.of(config.background))
    return state_at(times, states, start, config.background.path, "background", 0.5 * config.model.dt,
                    interpolate=config.background.interpolate_time, time_axis=time_axis)


def read_truth(config: Config, layout):
    """(times, states) of the [truth] file read with its names/dims/select, or None without [truth]."""
    from dacli.io.inputs import FileMapping
    from dacli.io.states import read_states

    if config.truth is None:
        return None
    return read_states(config.truth.path, layout, "truth", config.time.axis(), FileMapping.of(config.truth))


def _provenance(config: Config, summary: dict, jax) -> dict:
    import diffrax
    import optimistix

    return {
        "engine": f"jax {jax.__version__}, diffrax {diffrax.__version__}, optimistix {optimistix.__version__}",
        "config": config.model_dump_json(),
        "method": config.method.kind,
        "formulation": summary["formulation"],
        "minimiser": summary["minimiser"],
        "minimiser_reason": summary["minimiser_reason"],
        "forward_adjoint": config.method.forward_adjoint,
        "minimiser_adjoint": config.method.minimiser_adjoint,
        "precision": config.run.precision,
        "device": summary["device"],
        "windows": summary["windows"],
        "converged_windows": summary["converged_windows"],
        "observations_used": summary["observations_used"],
        "observations_rejected": summary["observations_rejected"],
        "observations_outside_windows": summary["observations_outside_windows"],
        "observations_outside_domain": summary["observations_outside_domain"],
        "observations_rejected_preqc": summary["observations_rejected_preqc"],
        "observations_duplicate": summary["observations_duplicate"],
        **{f"desroziers_{key}": value for key, value in summary["desroziers"].items()},
    }
