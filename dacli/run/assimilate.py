"""``dacli assimilate``: cycle a variational method over the observation windows.

Reads observations, background and (optionally) truth (:mod:`dacli.run.inputs`); cycles the
method over the windows in compiled chunks (:func:`dacli.methods.cycling.cycle`), each analysis
propagated to the next window start as the next background; derives the diagnostics
(:mod:`dacli.diagnostics.summary`); writes one CF NetCDF file atomically. Returns a typed
:class:`AssimilationResult`; prints nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix

from dacli.config.schema import Config
from dacli.diagnostics.consistency import Desroziers, qc_flags
from dacli.diagnostics.summary import (
    CycleSummary,
    OuterLoopSummary,
    check_finite,
    describe_outer_loops,
    stored_times,
    summarise,
    window_records,
)
from dacli.diagnostics.time_average import TimeAverages, burn_in_windows, time_averages
from dacli.io.analysis import AnalysisRecord, analysis_dataset
from dacli.io.feedback import feedback_dataset
from dacli.io.json_values import json_safe
from dacli.io.netcdf import check_writable, write_netcdf_atomically
from dacli.io.states import states_at
from dacli.methods.cycling import Chunking, CycledAnalyses, chunk_structure, cycle
from dacli.methods.variational import WindowAnalysis
from dacli.run.inputs import (
    PreparedInputs,
    check_stepwise,
    chunk_size,
    prepare_inputs,
    selection_ends_early,
    warn_forward_mode,
)
from dacli.run.phases import PhaseCallback, compile_phases
from dacli.run.resume import ResumeFile, check_resume, checkpoint_path
from dacli.run.runtime import configure, describe_device, place_work
from dacli.run.stopping import Interrupted, StopSignals

log = logging.getLogger("dacli")

# A field left out of the JSON summary when it is None (the CLI's dacli.cli.render.result_json).
OPTIONAL = {"json": "optional"}


@dataclass(frozen=True)
class AssimilationSummary:
    """The run's numbers (the ``--json`` summary, in this order)."""

    output: str
    windows: int
    converged_windows: int
    observations_used: int
    observations_rejected: int
    observations_outside_windows: int
    observations_outside_domain: int
    observations_rejected_preqc: int
    observations_duplicate: int
    cost_initial_mean: float
    cost_final_mean: float
    iterations_mean: float
    windows_per_compiled_chunk: int
    compile_and_first_chunk_seconds: float | None  # None when every chunk was resumed
    # timed per computed window, padding included
    seconds_per_window_after_first_chunk: float | None
    device: str
    precision: str
    method: str
    formulation: str
    minimiser: str
    minimiser_reason: str
    model_adjoint: str  # "hand-written" or "autodiff" (adjoint_rule_choice)
    model_adjoint_reason: str
    outer_loops: OuterLoopSummary | None = field(default=None, metadata={"json": "inline"})
    desroziers: Desroziers | None = None
    background_rmse: float | None = field(default=None, metadata=OPTIONAL)  # None: no truth
    analysis_rmse: float | None = field(default=None, metadata=OPTIONAL)
    # the feedback file, when written
    observation_diagnostics: str | None = field(default=None, metadata=OPTIONAL)
    # per-window RMSE (and spread) averaged after [diagnostics] burn_in; None: nothing to average
    time_averages: TimeAverages | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class AssimilationResult:
    output: str
    summary: AssimilationSummary
    # per-window diagnostics (K,), named as in the analysis file
    windows: dict[str, np.ndarray] = field(repr=False)


WindowCallback = Callable[[int, int, dict], None]


def assimilate(
    config: Config,
    *,
    overwrite: bool = False,
    resume: bool = False,
    restart: bool = False,
    command: str = "dacli assimilate",
    on_window: WindowCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> AssimilationResult:
    """Run the configured assimilation over every window and write the analysis file.

    SIGTERM, SIGINT and ``run.stop_signal`` stop the run at the next chunk boundary with a
    checkpoint (:mod:`dacli.run.stopping`); ``resume=True`` continues from it to the same output,
    ``restart=True`` discards it (:func:`dacli.run.resume.check_resume`). ``on_phase`` hears
    "reading", "tracing", "compiling" (:mod:`dacli.run.phases`) before the first window is done.
    """
    # From the start: a signal while compiling counts too.
    with StopSignals(config.run.stop_signal) as stop:
        return _assimilate(
            config,
            stop,
            overwrite=overwrite,
            resume=resume,
            restart=restart,
            command=command,
            on_window=on_window,
            on_phase=on_phase,
        )


def _assimilate(
    config: Config,
    stop: StopSignals,
    *,
    overwrite: bool,
    resume: bool,
    restart: bool,
    command: str,
    on_window: WindowCallback | None,
    on_phase: PhaseCallback | None = None,
) -> AssimilationResult:
    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    overwrite = overwrite or config.output.overwrite
    check_writable(config.output.path, overwrite)
    check_resume(checkpoint_path(config), resume, restart)
    if config.output.observation_diagnostics is not None:
        check_writable(config.output.observation_diagnostics, overwrite)
    if on_phase is not None:
        on_phase("reading")
    inputs = prepare_inputs(config, reverse_only=True)
    problem = inputs.problem
    state = jax.ShapeDtypeStruct((problem.layout.size,), problem.dtype)
    control_size = jax.eval_shape(problem.method.zero_control, state).size  # nothing computed
    platform = place_work(config.run.device, control_size, "the control vector")
    _log_choices(config, inputs, platform)
    truth = _truth_at_stored_times(config, inputs)
    background = jnp.asarray(inputs.background, problem.dtype)
    warn_forward_mode(config, control_size)
    stepwise = config.run.minimiser_steps_per_chunk
    if stepwise is not None:
        check_stepwise(config, problem)
    chunking = Chunking(
        chunk_size(inputs.schedule.count, 1 if stepwise else config.run.windows_per_chunk), stepwise
    )
    watcher = _ChunkWatcher(config, inputs, stop, chunking, truth, on_window)
    with compile_phases(on_phase):
        cycled = watcher.run(background, resume)
    numbers = summarise(
        cycled.analyses,
        inputs.schedule,
        inputs.packed,
        truth,
        selection_ends_early(config, inputs.observations),
    )
    summary = _summary(config, inputs, chunking, cycled, numbers)
    if numbers.outer is not None:
        log.info(
            "outer loops, mean over windows: nonlinear J %s (final); CG iterations %s",
            " -> ".join(f"{j:.6g}" for j in numbers.outer.outer_cost_mean),
            ", ".join(f"{n:.1f}" for n in numbers.outer.inner_iterations_per_loop_mean),
        )
    log.info("%s", numbers.desroziers.describe())
    if summary.time_averages is not None:
        log.info("%s", summary.time_averages.describe())
    summary = _write(config, inputs, numbers, summary, overwrite, command)
    watcher.resumable.remove()  # the run is complete: its checkpoint has served
    return AssimilationResult(
        output=str(config.output.path), summary=summary, windows=numbers.table()
    )


def _log_choices(config: Config, inputs: PreparedInputs, platform: str) -> None:
    """The method and numerics in use, and why a choice was made for the user."""
    problem = inputs.problem
    log.info(
        "method %s (%s formulation), minimiser %s, forward_adjoint %s, minimiser_adjoint %s, "
        "%s on %s",
        config.method.kind,
        problem.formulation.name,
        problem.minimiser.name,
        config.method.forward_adjoint,
        config.method.minimiser_adjoint,
        config.run.precision,
        platform,
    )
    choices = (
        ("formulation", problem.formulation),
        ("minimiser", problem.minimiser),
        ("model adjoint", problem.model_adjoint),
    )
    for what, choice in choices:
        if choice.reason != "as configured":
            log.info("%s %s chosen: %s", what, choice.name, choice.reason)


def _truth_at_stored_times(config: Config, inputs: PreparedInputs) -> np.ndarray | None:
    """The truth at the times the run stores (NaN where the file does not reach), or None."""
    if inputs.truth is None:
        return None
    assert config.truth is not None  # the truth was read from config.truth.path
    schedule, dt = inputs.schedule, config.model.dt
    truth_times = inputs.truth[0]
    end = schedule.starts[-1] + schedule.length
    if truth_times.min() > schedule.starts[0] + 0.5 * dt or truth_times.max() < end - 0.5 * dt:
        log.warning(
            "truth file %s covers [%g, %g], the windows [%g, %g]: RMSE only where the truth "
            "reaches",
            config.truth.path,
            truth_times.min(),
            truth_times.max(),
            schedule.starts[0],
            end,
        )
    return states_at(
        *inputs.truth, stored_times(schedule), config.truth.path, "truth", 0.5 * dt, missing="nan"
    )


class _ChunkWatcher:
    """Between compiled chunks: checks and reports the finished windows; on a stop signal writes
    the run checkpoint (:class:`dacli.run.resume.ResumeFile`) and raises :class:`Interrupted`."""

    def __init__(
        self,
        config: Config,
        inputs: PreparedInputs,
        stop: StopSignals,
        chunking: Chunking,
        truth: np.ndarray | None,
        on_window: WindowCallback | None,
    ):
        self.inputs, self.stop, self.chunking, self.truth, self.on_window = (
            inputs,
            stop,
            chunking,
            truth,
            on_window,
        )
        self.ends_early = selection_ends_early(config, inputs.observations)
        self.count = inputs.schedule.count
        self.resumable = ResumeFile(checkpoint_path(config), config, self.count, chunking.windows)
        self.records: list[dict] = []  # the finished windows' diagnostics (a checkpoint's header)
        self.finished: list[
            WindowAnalysis
        ] = []  # each finished chunk (numpy): what a checkpoint holds
        self.background: np.ndarray | None = None  # the cycled background after the finished chunks

    def run(self, background: jax.Array, resume: bool) -> CycledAnalyses:
        """Cycle every window not yet finished (after a checkpoint's chunks with ``resume``)."""
        size, method = self.chunking.windows, self.inputs.problem.method
        if resume:
            like = chunk_structure(
                method,
                background,
                self.inputs.schedule,
                self.inputs.packed.stacked(),
                self.chunking,
            )
            loaded, finished = self.resumable.load(background, like)
            background = jnp.asarray(loaded, self.inputs.problem.dtype)
            log.info(
                "resuming after window %d of %d from %s",
                min(len(finished) * size, self.count),
                self.count,
                self.resumable.path,
            )
            for index, chunk in enumerate(finished):
                self.absorb(index * size, chunk)
            self.finished = list(finished)
        self.background = np.asarray(background)
        if self.finished:
            self.stop.raise_if_requested(
                f"before window {len(self.finished) * size + 1} of {self.count}",
                f"checkpoint {self.resumable.path} unchanged; rerun the same command with --resume "
                "to finish",
            )
        else:
            self.stop.raise_if_requested(
                f"before window 1 of {self.count}",
                "nothing computed, nothing to resume: rerun the same command",
            )
        return cycle(
            method,
            background,
            self.inputs.schedule,
            self.inputs.packed.stacked(),
            chunking=self.chunking,
            on_chunk=self.on_chunk,
            on_step=self.on_step if self.chunking.minimiser_steps else None,
            finished=tuple(self.finished),
        )

    def absorb(self, first: int, chunk: WindowAnalysis) -> None:
        """Check and report the windows of one finished chunk (numpy)."""
        schedule = self.inputs.schedule
        check_finite(first, chunk, schedule)
        records = window_records(
            first, chunk, schedule, self.inputs.packed, self.truth, self.ends_early
        )
        for offset, record in enumerate(records):
            k = first + offset
            if chunk.outer.cost.shape[1] and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "window %d: %s",
                    k + 1,
                    describe_outer_loops(
                        jax.tree_util.tree_map(lambda a, i=offset: a[i], chunk.outer)
                    ),
                )
            if not record.converged:
                log.warning(
                    "window %d: minimiser did not converge in %d iterations (|grad| = %.3g); best "
                    "iterate kept",
                    k + 1,
                    record.iterations,
                    record.gradient_norm,
                )
            self.records.append(record.as_dict())
            if self.on_window is not None:
                self.on_window(k, self.count, record.as_dict())

    def on_chunk(self, first: int, chunk: WindowAnalysis, background: np.ndarray) -> None:
        self.absorb(first, chunk)
        self.finished.append(chunk)
        self.background = background
        size = self.chunking.windows
        if self.stop.requested() is not None and first + size < self.count:
            self._stop_now(f"after window {first + size}")

    def on_step(self, window: int) -> None:
        if self.stop.requested() is not None:
            self._stop_now(
                f"during window {window + 1}",
                f" (windows 1 to {window})",
                f" (window {window + 1} starts again)",
            )

    def _stop_now(self, where: str, kept: str = "", restart: str = "") -> None:
        """Checkpoint the finished windows and stop (raise); ``where`` says where the run was."""
        stop, number = self.stop, self.stop.requested()
        assert self.background is not None and number is not None  # after a chunk, on a stop
        self.resumable.save(self.background, self.finished, stop.name(), json_safe(self.records))
        raise Interrupted(
            f"stopped by {stop.name()} {where} of {self.count}; checkpoint {self.resumable.path} "
            f"written{kept}, no analysis file; rerun the same command with --resume to finish"
            f"{restart}",
            number,
        )


def _summary(
    config: Config,
    inputs: PreparedInputs,
    chunking: Chunking,
    cycled: CycledAnalyses,
    numbers: CycleSummary,
) -> AssimilationSummary:
    """The run's numbers as :class:`AssimilationSummary` (no feedback file yet)."""
    table, packed, seconds = numbers.table(), inputs.packed, cycled.chunk_seconds
    size = chunking.windows
    return AssimilationSummary(
        output=str(config.output.path),
        windows=inputs.schedule.count,
        converged_windows=int(table["converged"].sum()),
        observations_used=int(packed.used.sum()),
        observations_rejected=int(packed.rejected.sum()),
        observations_outside_windows=int(packed.outside),
        observations_outside_domain=int(inputs.observations.rejected_outside_domain),
        observations_rejected_preqc=int(inputs.observations.rejected_preqc),
        observations_duplicate=int(inputs.observations.rejected_duplicate),
        cost_initial_mean=float(table["cost_initial"].mean()),
        cost_final_mean=float(table["cost_final"].mean()),
        iterations_mean=float(table["iterations"].mean()),
        windows_per_compiled_chunk=size,
        compile_and_first_chunk_seconds=round(seconds[0], 3) if seconds else None,
        # Timed per computed window: the last chunk is padded to full size, and padding runs too.
        seconds_per_window_after_first_chunk=(
            round(sum(seconds[1:]) / (len(seconds) - 1) / size, 6) if len(seconds) > 1 else None
        ),
        device=describe_device(),
        precision=config.run.precision,
        method=config.method.kind,
        formulation=inputs.problem.formulation.name,
        minimiser=inputs.problem.minimiser.name,
        minimiser_reason=inputs.problem.minimiser.reason,
        model_adjoint=inputs.problem.model_adjoint.name,
        model_adjoint_reason=inputs.problem.model_adjoint.reason,
        outer_loops=numbers.outer,
        desroziers=numbers.desroziers,
        background_rmse=numbers.background_rmse,
        analysis_rmse=numbers.analysis_rmse,
        time_averages=_time_averages(config, inputs, cycled, numbers),
    )


def _time_averages(
    config: Config, inputs: PreparedInputs, cycled: CycledAnalyses, numbers: CycleSummary
) -> TimeAverages | None:
    """The per-window RMSE (with a truth) and background spread (when estimated) averaged after
    the burn-in of ``[diagnostics]`` (:mod:`dacli.diagnostics.time_average`)."""
    table, schedule = numbers.table(), inputs.schedule
    spread = np.asarray(cycled.analyses.background_spread, float)
    used = np.maximum(table["observations_used"], 1)
    burn_in = burn_in_windows(
        schedule.starts, config.window.start, config.diagnostics.burn_in, schedule.dt
    )
    return time_averages(
        {
            "analysis_rmse": table["analysis_rmse"],
            "background_rmse": table["background_rmse"],
            "background_spread": np.sqrt(spread / used),  # NaN when not estimated
        },
        burn_in,
        config.diagnostics.confidence,
    )


def _write(
    config: Config,
    inputs: PreparedInputs,
    numbers: CycleSummary,
    summary: AssimilationSummary,
    overwrite: bool,
    command: str,
) -> AssimilationSummary:
    """Write the analysis file (and the feedback file when asked); returns the summary naming
    what was written."""
    window_states = {
        "analysis_window_start": numbers.window_start_states,
        "analysis_window_end": numbers.window_end_states,
    }
    record = AnalysisRecord(
        inputs.layout,
        numbers.times,
        numbers.analysis,
        numbers.background,
        numbers.table(),
        window_states,
        _provenance(config, summary),
        numbers.outer_loop_table,
    )
    title = config.output.title or config.run.name
    dataset = analysis_dataset(record, config.time.axis(), config.output.discovery(title), command)
    write_netcdf_atomically(dataset, config.output.path, overwrite)
    feedback_path = config.output.observation_diagnostics
    if feedback_path is None:
        return summary
    flags = qc_flags(inputs.observations, inputs.packed)
    attributes = {
        **{f"desroziers_{k}": v for k, v in numbers.desroziers.as_dict().items()},
        "method": config.method.kind,
    }
    feedback = feedback_dataset(
        inputs.observations,
        inputs.packed,
        inputs.schedule.starts,
        numbers.background_equivalents,
        numbers.analysis_equivalents,
        flags,
        inputs.layout,
        config.time.axis(),
        config.output.discovery(title),
        command,
        attributes,
    )
    write_netcdf_atomically(feedback, feedback_path, overwrite)
    return replace(summary, observation_diagnostics=str(feedback_path))


def _provenance(config: Config, summary: AssimilationSummary) -> dict:
    assert summary.desroziers is not None  # every run computes it
    return {
        "engine": f"jax {jax.__version__}, diffrax {diffrax.__version__}, "
        f"optimistix {optimistix.__version__}",
        "config": config.model_dump_json(),
        "method": config.method.kind,
        "formulation": summary.formulation,
        "minimiser": summary.minimiser,
        "minimiser_reason": summary.minimiser_reason,
        "model_adjoint": summary.model_adjoint,
        "model_adjoint_reason": summary.model_adjoint_reason,
        "forward_adjoint": config.method.forward_adjoint,
        "minimiser_adjoint": config.method.minimiser_adjoint,
        "precision": config.run.precision,
        "device": summary.device,
        "windows": summary.windows,
        "converged_windows": summary.converged_windows,
        "observations_used": summary.observations_used,
        "observations_rejected": summary.observations_rejected,
        "observations_outside_windows": summary.observations_outside_windows,
        "observations_outside_domain": summary.observations_outside_domain,
        "observations_rejected_preqc": summary.observations_rejected_preqc,
        "observations_duplicate": summary.observations_duplicate,
        **{f"desroziers_{key}": value for key, value in summary.desroziers.as_dict().items()},
        **(summary.time_averages.attributes() if summary.time_averages is not None else {}),
    }
