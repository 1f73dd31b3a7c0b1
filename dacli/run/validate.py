"""``dacli validate``: the config is valid and every input file opens and fits the model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dacli.build.problem import adjoint_rule_choice, build_dynamics, plan_method
from dacli.config.registry import capabilities
from dacli.config.schema import Config
from dacli.io.covariance import read_covariance_matrix
from dacli.io.inputs import FileMapping
from dacli.io.observations import read_observations
from dacli.io.saved_trees import read_header
from dacli.io.states import read_states
from dacli.layout import StateLayout
from dacli.observations.windows import observations_per_window, padded_capacity
from dacli.run.inputs import (
    full_schedule,
    initial_background,
    read_truth,
    select_windows,
    spread_probes,
)

# A field left out of the JSON summary when it is None (the CLI's dacli.cli.render.result_json).
OPTIONAL = {"json": "optional"}


@dataclass(frozen=True)
class NetworkFile:
    """What a learned method's network file says of its training."""

    network_epochs: int | None
    network_validation_rmse: float | None


@dataclass(frozen=True)
class ValidationResult:
    """What ``dacli validate`` found (the ``--json`` summary, in this order); None: not
    applicable."""

    config: str
    state_size: int
    time_axis: str
    observations: int
    valid_observations: int
    observations_outside_domain: int
    observations_duplicate: int
    observation_times: str | None = field(default=None, metadata=OPTIONAL)  # first .. last
    # the time of the background state read, for a range of windows
    background_start: str | None = field(default=None, metadata=OPTIONAL)
    subwindows: int | None = field(default=None, metadata=OPTIONAL)  # weak4dvar
    windows: int = 0
    observations_in_windows: int = 0
    windows_without_observations: int = 0
    method: str = ""
    formulation: str = ""
    minimiser: str = ""
    model_adjoint: str = ""  # as dacli assimilate would differentiate the model
    background_times: int | None = field(default=None, metadata=OPTIONAL)
    truth_times: int | None = field(default=None, metadata=OPTIONAL)
    network: NetworkFile | None = field(default=None, metadata={"json": "inline"})


def validate(config: Config) -> ValidationResult:
    """Open every input without computing; return what was found. Raises on any problem.

    Nothing is allocated per window beyond a count: the schedule is bounded
    (:data:`dacli.observations.windows.MAX_WINDOWS`) and observations are counted per window,
    not packed. Not a check of the gradients: that is ``dacli check-adjoints``.
    """
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    time_axis = config.time.axis()
    observations = read_observations(config.observations, layout, time_axis)
    schedule = full_schedule(config, observations)
    if config.window.select is not None:
        schedule = select_windows(schedule, config.window.select)
    counts = observations_per_window(observations, schedule)
    # size of background.state, or the file's state at the first (selected) window's start
    initial_background(config, layout, float(schedule.starts[0]))
    plan = plan_method(config, layout.size, schedule.steps, padded_capacity(int(counts.max())))
    covariances = [config.background.covariance]
    if plan.subwindows is not None:
        assert config.method.model_error is not None  # subwindows come from [method.model_error]
        covariances.append(config.method.model_error.covariance)
    for covariance in covariances:
        if covariance.kind == "matrix":
            read_covariance_matrix(covariance.path, covariance.variable)
    observed = (
        f"{time_axis.describe(observations.times.min())} .. "
        f"{time_axis.describe(observations.times.max())}"
        if len(observations)
        else None
    )
    ranged = config.window.select is not None and config.background.path is not None
    return ValidationResult(
        config=str(config.run.name),
        state_size=layout.size,
        time_axis=f"{time_axis.units} ({time_axis.calendar})",
        observations=len(observations),
        valid_observations=int(np.sum(observations.valid)),
        observations_outside_domain=observations.rejected_outside_domain,
        observations_duplicate=observations.rejected_duplicate,
        observation_times=observed,
        background_start=time_axis.describe(float(schedule.starts[0])) if ranged else None,
        subwindows=plan.subwindows,
        windows=schedule.count,
        observations_in_windows=int(counts.sum()),
        windows_without_observations=int(np.sum(counts == 0)),
        method=config.method.kind,
        formulation=plan.formulation.name,
        minimiser=plan.minimiser.name,
        model_adjoint=_model_adjoint(config, dynamics),
        background_times=_background_times(config, layout, time_axis),
        truth_times=_truth_times(config, layout),
        network=_network(config),
    )


def _model_adjoint(config: Config, dynamics) -> str:
    """How ``dacli assimilate`` would differentiate the model ("hand-written" or "autodiff")."""
    return adjoint_rule_choice(config, dynamics, spread_probes(config), reverse_only=True)[1].name


def _background_times(config: Config, layout, time_axis) -> int | None:
    """How many states the background file holds (None for background.state)."""
    if config.background.path is None:
        return None
    return len(
        read_states(
            config.background.path,
            layout,
            "background",
            time_axis,
            FileMapping.of(config.background),
        )[0]
    )


def _truth_times(config: Config, layout: StateLayout) -> int | None:
    """How many states the [truth] file holds; None without one."""
    truth = read_truth(config, layout)
    return None if truth is None else len(truth[0])


def _network(config: Config) -> NetworkFile | None:
    """A learned method's trained network must exist (it is checked against the run when loaded)."""
    if not capabilities(config.method.kind).learned:
        return None
    assert config.network is not None  # the config validator requires [network] for it
    header = read_header(config.network.file)
    return NetworkFile(header.get("epoch"), header.get("best_validation_rmse"))
