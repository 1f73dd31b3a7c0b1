"""Input preparation shared by every command: read, schedule, select, pack, background, truth.

What a command does before its first window: read the observations, lay out the window schedule
(``window.select``'s range of it), pack each window's observations to one capacity, read the first
background and the truth, and build the method once. ``dacli assimilate``, ``sweep``,
``check-adjoints``, ``validate``, ``forecast``, ``train`` and ``tune`` call these functions;
:func:`prepare_inputs` does all of it. No JAX computation happens here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from dacli.adjoints.stepping import KStepAdjoint
from dacli.build.problem import Problem, build_dynamics, build_problem
from dacli.config.registry import capabilities
from dacli.config.schema import Config, window_range
from dacli.errors import ConfigError
from dacli.io.inputs import FileMapping
from dacli.io.observation_set import ObservationSet
from dacli.io.observations import read_observations
from dacli.io.states import read_states, state_at
from dacli.methods.variational import AbstractVariationalMethod
from dacli.models.base import StateLayout
from dacli.observations.windows import (
    PackedObservations,
    WindowSchedule,
    make_schedule,
    outside_every_window,
    pack_observations,
)

log = logging.getLogger("dacli")

# Spread probes for the Desroziers background check (tr(H B H^T) by Hutchinson's estimator).
SPREAD_PROBES = 8

# Measured (benchmarks/QG.md): ForwardMode at 65 536 controls (QG 256 x 256) asked for 128 GiB on
# an H100.
FORWARD_MODE_CONTROL_WARNING = 4096


@dataclass(frozen=True)
class PreparedInputs:
    """Everything read and built before the first window is solved."""

    layout: StateLayout
    observations: ObservationSet
    schedule: WindowSchedule
    packed: PackedObservations
    background: np.ndarray  # (n,) the first window's background
    truth: tuple[np.ndarray, np.ndarray] | None  # (times, states) of the [truth] file
    problem: Problem


def prepare_inputs(config: Config, reverse_only: bool = False) -> PreparedInputs:
    """Read observations, background and truth; schedule and pack windows; build the method.

    ``reverse_only``: the command differentiates the model in reverse mode only, so the model's
    hand-written adjoint may serve (:func:`dacli.build.problem.adjoint_rule_choice`). For a
    command that computes nothing (``dacli validate``) use the single steps instead: this packs
    every window and builds the method.
    """
    layout = build_dynamics(config.model).layout()
    observations = read_observations(config.observations, layout, config.time.axis())
    schedule, packed = schedule_windows(config, observations)
    log.info(
        "observations: %d read, %d assimilated over %d window(s), %d rejected by QC, %d outside "
        "every window, %d outside the model domain, %d repeated%s",
        len(observations),
        packed.used.sum(),
        schedule.count,
        packed.rejected.sum(),
        packed.outside,
        observations.rejected_outside_domain,
        observations.rejected_duplicate,
        f", {observations.rejected_preqc} dropped by the file's PreQC"
        if config.observations.layout == "ioda"
        else "",
    )
    background = initial_background(config, layout, float(schedule.starts[0]))
    truth = read_truth(config, layout)
    problem = build_problem(
        config,
        schedule.steps,
        packed.values.shape[1],
        spread_probes=spread_probes(config),
        reverse_only=reverse_only,
    )
    return PreparedInputs(layout, observations, schedule, packed, background, truth, problem)


def spread_probes(config: Config) -> int:
    """The random probes of the Desroziers background check: SPREAD_PROBES tangent-linear runs
    per window and a second compiled linearisation (Lorenz-96 sample: +3.8 s compile, 0-6 % per
    window), so only when the observation-space diagnostics are asked for; else 0."""
    return SPREAD_PROBES if config.output.observation_diagnostics is not None else 0


def full_schedule(config: Config, observations: ObservationSet) -> WindowSchedule:
    """Every window of the run (window.select not applied)."""
    window = config.window
    last_time = float(observations.times.max()) if len(observations) else None
    return make_schedule(
        window.start,
        window.length,
        window.effective_shift,
        config.model.dt,
        window.assimilate,
        window.count,
        last_time,
    )


def schedule_windows(
    config: Config, observations: ObservationSet
) -> tuple[WindowSchedule, PackedObservations]:
    """The window schedule (window.select's range of it) and each window's observations padded to
    one capacity (no JAX); ``packed.outside`` counts the observations outside every window of the
    whole run."""
    whole = full_schedule(config, observations)
    schedule = (
        whole if config.window.select is None else select_windows(whole, config.window.select)
    )
    packed = pack_observations(
        observations,
        schedule,
        config.observations.time_tolerance,
        dtype=np.float64 if config.run.precision == "float64" else np.float32,
    )
    if (
        schedule is not whole
    ):  # outside every window of the run, not of this range: the same in every part
        packed = dataclasses.replace(packed, outside=outside_every_window(observations, whole))
    return schedule, packed


def selection_ends_early(config: Config, observations: ObservationSet) -> bool:
    """True when window.select stops before the last window of the whole schedule."""
    if config.window.select is None:
        return False
    stop = window_range(config.window.select)[1]
    return stop is not None and stop < full_schedule(config, observations).count


def select_windows(schedule: WindowSchedule, select: str) -> WindowSchedule:
    """The windows ``select`` ('A:B', from 0) names; a ConfigError if the schedule has fewer."""
    start, stop = window_range(select)
    stop = schedule.count if stop is None else stop
    if stop > schedule.count:
        raise ConfigError(
            [
                f"window.select: {select!r} asks for windows up to {stop - 1}, the schedule "
                f"has {schedule.count} (0 to {schedule.count - 1})"
            ]
        )
    return dataclasses.replace(schedule, starts=schedule.starts[start:stop])


def chunk_size(count: int, configured: int | None = None, largest: int = 32) -> int:
    """Windows per compiled chunk: ``configured``, else up to ``largest`` with at least four chunks.

    Windows inside a chunk run in one compiled scan (no Python between them); chunk boundaries
    are where progress is reported, and where a run stops on a signal and resumes.
    """
    if configured is not None:
        return max(1, min(configured, count))
    return max(1, min(largest, count // 4 or 1))


def check_stepwise(config: Config, problem: Problem) -> None:
    """run.minimiser_steps_per_chunk needs an optimistix minimisation it can step (the nonlinear
    formulation); a ConfigError otherwise."""
    learned = capabilities(config.method.kind).learned
    if learned or problem.formulation.name != "nonlinear":
        what = "4DVarNet" if learned else f"the {problem.formulation.name} formulation"
        raise ConfigError(
            [
                f"run.minimiser_steps_per_chunk: steps an optimistix minimisation (the "
                f"nonlinear formulation); {what} runs each window in one compiled program — "
                "use run.windows_per_chunk = 1 to bound the wait for a stop instead"
            ]
        )
    method = problem.method
    assert isinstance(method, AbstractVariationalMethod)  # not 4DVarNet (refused above)
    if isinstance(method.minimiser_adjoint, KStepAdjoint):
        raise ConfigError(
            [
                "run.minimiser_steps_per_chunk: with minimiser_adjoint = KStepAdjoint the "
                "analysis is refined by k Newton steps after the solve; use another "
                "minimiser_adjoint (it only matters for gradients through the minimisation, "
                "not for dacli assimilate)"
            ]
        )
    if config.run.windows_per_chunk not in (None, 1):
        raise ConfigError(
            [
                f"run.windows_per_chunk: {config.run.windows_per_chunk} with "
                "run.minimiser_steps_per_chunk, which runs one window per chunk; leave "
                "windows_per_chunk unset"
            ]
        )


def warn_forward_mode(config: Config, control_size: int) -> None:
    """ForwardMode builds dJ/dv from one tangent-linear run per control (jacfwd): say so when that
    is large."""
    if (
        config.method.forward_adjoint.lower() == "forwardmode"
        and control_size > FORWARD_MODE_CONTROL_WARNING
    ):
        log.warning(
            "forward_adjoint ForwardMode builds the gradient from %d tangent-linear model runs "
            "(one per control element, jax.jacfwd): memory and time grow with the state; for "
            "controls above %d use RecursiveCheckpointAdjoint (or BacksolveAdjoint)",
            control_size,
            FORWARD_MODE_CONTROL_WARNING,
        )


def initial_background(
    config: Config, layout: StateLayout, start: float | None = None
) -> np.ndarray:
    """The first window's background: ``background.state`` or the file's state at ``start``
    (default window.start)."""
    start = config.window.start if start is None else start
    if config.background.state is not None:
        if abs(start - config.window.start) > 0.5 * config.model.dt:
            raise ConfigError(
                [
                    f"window.select: the first selected window starts at {start:g}, but "
                    f"background.state is the state at window.start ({config.window.start:g}); "
                    "give background.path, a file with a state at that time (e.g. the "
                    "previous task's analysis)"
                ]
            )
        state = np.asarray(config.background.state, float)
        if state.size != layout.size:
            raise ConfigError(
                [
                    f"background.state: expected {layout.size} values (the model state size), "
                    f"found {state.size}"
                ]
            )
        return state
    time_axis = config.time.axis()
    times, states = read_states(
        config.background.path, layout, "background", time_axis, FileMapping.of(config.background)
    )
    return state_at(
        times,
        states,
        start,
        config.background.path,
        "background",
        0.5 * config.model.dt,
        interpolate=config.background.interpolate_time,
        time_axis=time_axis,
    )


def read_truth(config: Config, layout: StateLayout) -> tuple[np.ndarray, np.ndarray] | None:
    """(times, states) of the [truth] file read with its names/dims/select; None without [truth]."""
    if config.truth is None:
        return None
    return read_states(
        config.truth.path, layout, "truth", config.time.axis(), FileMapping.of(config.truth)
    )
