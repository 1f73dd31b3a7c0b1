"""``dacli validate``: the config is valid and every input file opens and fits the model."""

from __future__ import annotations

from dacli.config.schema import Config


def validate(config: Config) -> dict:
    """Open every input without computing; return what was found. Raises on any problem."""
    import numpy as np

    from dacli.build.choices import choose_formulation, choose_minimiser
    from dacli.build.problem import build_dynamics, subwindow_count
    from dacli.io.covariance import read_covariance_matrix
    from dacli.io.observations import read_observations
    from dacli.run.assimilate import initial_background
    from dacli.io.states import read_states
    from dacli.observations.windows import make_schedule, pack_observations

    layout = build_dynamics(config.model).layout()
    observations = read_observations(config.observations, layout)
    summary = {
        "config": str(config.run.name),
        "state_size": layout.size,
        "observations": len(observations),
        "valid_observations": int(np.sum(observations.valid)),
    }
    initial_background(config, layout)  # size of background.state, or the file's state at window.start
    window = config.window
    schedule = make_schedule(window.start, window.length, window.effective_shift, config.model.dt, window.assimilate,
                             window.count, float(observations.times.max()) if len(observations) else None)
    packed = pack_observations(observations, schedule, config.observations.time_tolerance)
    method = config.method
    control_size = layout.size
    covariances = [config.background.covariance]
    if method.kind == "weak4dvar":
        subwindows = subwindow_count(method, schedule.steps, config.model.dt)
        control_size *= subwindows + 1
        covariances.append(method.model_error.covariance)
        summary["subwindows"] = subwindows
    for covariance in covariances:
        if covariance.kind == "matrix":
            read_covariance_matrix(covariance.path, covariance.variable)
    summary.update(
        windows=schedule.count,
        observations_assimilated=int(packed.used.sum()),
        method=method.kind,
        formulation=choose_formulation(method).name,
        minimiser=choose_minimiser(method, control_size, control_size + packed.values.shape[1]).name,
    )
    if config.background.path is not None:
        summary["background_times"] = len(read_states(config.background.path, layout, "background")[0])
    if config.truth is not None:
        summary["truth_times"] = len(read_states(config.truth.path, layout, "truth")[0])
    return summary
