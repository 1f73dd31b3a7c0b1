"""``dacli validate``: the config is valid and every input file opens and fits the model."""

from __future__ import annotations

from dacli.build.registry import capabilities
from dacli.config.schema import Config


def validate(config: Config) -> dict:
    """Open every input without computing; return what was found. Raises on any problem.

    Nothing is allocated per window beyond a count: the schedule is bounded
    (:data:`dacli.observations.windows.MAX_WINDOWS`) and observations are counted per window,
    not packed.
    """
    import numpy as np

    from dacli.build.problem import build_dynamics, plan_method
    from dacli.io.inputs import FileMapping
    from dacli.io.observations import read_observations
    from dacli.io.states import read_states
    from dacli.observations.windows import observations_per_window, padded_capacity
    from dacli.run.assimilate import full_schedule, initial_background, read_truth, select_windows

    layout = build_dynamics(config.model).layout()
    time_axis = config.time.axis()
    observations = read_observations(config.observations, layout, time_axis)
    summary = {
        "config": str(config.run.name),
        "state_size": layout.size,
        "time_axis": f"{time_axis.units} ({time_axis.calendar})",
        "observations": len(observations),
        "valid_observations": int(np.sum(observations.valid)),
        "observations_outside_domain": observations.rejected_outside_domain,
        "observations_duplicate": observations.rejected_duplicate,
    }
    if len(observations):
        summary["observation_times"] = f"{time_axis.describe(observations.times.min())} .. " \
                                       f"{time_axis.describe(observations.times.max())}"
    schedule = full_schedule(config, observations)
    if config.window.select is not None:
        schedule = select_windows(schedule, config.window.select)
    counts = observations_per_window(observations, schedule)
    # size of background.state, or the file's state at the first (selected) window's start
    initial_background(config, layout, float(schedule.starts[0]))
    if config.window.select is not None and config.background.path is not None:
        summary["background_start"] = time_axis.describe(float(schedule.starts[0]))  # the state read, of a range
    method = config.method
    plan = plan_method(config, layout.size, schedule.steps, padded_capacity(int(counts.max())))
    covariances = [config.background.covariance]
    if plan.subwindows is not None:
        covariances.append(method.model_error.covariance)
        summary["subwindows"] = plan.subwindows
    for covariance in covariances:
        if covariance.kind == "matrix":
            from dacli.io.covariance import read_covariance_matrix

            read_covariance_matrix(covariance.path, covariance.variable)
    summary.update(windows=schedule.count, observations_in_windows=int(counts.sum()),
                   windows_without_observations=int(np.sum(counts == 0)), method=method.kind,
                   formulation=plan.formulation.name, minimiser=plan.minimiser.name)
    if config.background.path is not None:
        summary["background_times"] = len(read_states(config.background.path, layout, "background", time_axis,
                                                      FileMapping.of(config.background))[0])
    if config.truth is not None:
        summary["truth_times"] = len(read_truth(config, layout)[0])
    if capabilities(method.kind).learned:  # the trained network must exist (it is checked against the run when loaded)
        from dacli.io.checkpoints import read_header

        header = read_header(config.network.checkpoint)
        summary["network_epochs"] = header.get("epoch")
        summary["network_validation_rmse"] = header.get("best_validation_rmse")
    return summary
