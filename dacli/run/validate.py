"""``dacli validate``: the config is valid and every input file opens and fits the model."""

from __future__ import annotations

from dacli.config.schema import Config


def validate(config: Config) -> dict:
    """Open every input without computing; return what was found. Raises on any problem."""
    import numpy as np

    from dacli.build.problem import build_dynamics, plan_method
    from dacli.io.covariance import read_covariance_matrix
    from dacli.io.observations import read_observations
    from dacli.io.states import read_states
    from dacli.run.assimilate import initial_background, schedule_windows

    layout = build_dynamics(config.model).layout()
    observations = read_observations(config.observations, layout, config.output.time_units)
    summary = {
        "config": str(config.run.name),
        "state_size": layout.size,
        "observations": len(observations),
        "valid_observations": int(np.sum(observations.valid)),
    }
    schedule, packed = schedule_windows(config, observations)
    # size of background.state, or the file's state at the first (selected) window's start
    initial_background(config, layout, float(schedule.starts[0]))
    method = config.method
    plan = plan_method(config, layout.size, schedule.steps, packed.values.shape[1])
    covariances = [config.background.covariance]
    if plan.subwindows is not None:
        covariances.append(method.model_error.covariance)
        summary["subwindows"] = plan.subwindows
    for covariance in covariances:
        if covariance.kind == "matrix":
            read_covariance_matrix(covariance.path, covariance.variable)
    summary.update(windows=schedule.count, observations_assimilated=int(packed.used.sum()), method=method.kind,
                   formulation=plan.formulation.name, minimiser=plan.minimiser.name)
    if config.background.path is not None:
        summary["background_times"] = len(read_states(config.background.path, layout, "background")[0])
    if config.truth is not None:
        summary["truth_times"] = len(read_states(config.truth.path, layout, "truth")[0])
    if method.kind == "4dvarnet":  # the trained network must exist (it is checked against the run when loaded)
        from dacli.io.checkpoints import read_header

        header = read_header(config.network.checkpoint)
        summary["network_epochs"] = header.get("epoch")
        summary["network_validation_rmse"] = header.get("best_validation_rmse")
    return summary
