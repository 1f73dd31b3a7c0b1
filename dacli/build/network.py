"""Build 4DVarNet from the [network] section, for a model's state layout."""

from __future__ import annotations

from dacli.build.registry import SOLVER_ADJOINTS
from dacli.config.schema import NetworkConfig


def build_solver_adjoint(config: NetworkConfig):
    name = SOLVER_ADJOINTS.canonical(config.solver_adjoint)
    factory = SOLVER_ADJOINTS.resolve(name)
    if name == "KStepAdjoint":
        return factory(k=config.solver_adjoint_steps)
    if name == "RecursiveCheckpointAdjoint":
        return factory(checkpoints=config.checkpoints)
    return factory()


def network_shape(layout, window_steps: int) -> dict:
    """Channels and spatial shape of a window in the networks' layout (dacli.learned.data.to_channels)."""
    from dacli.learned.data import is_periodic, spatial_dims

    if layout.axes:
        return {"channels": window_steps, "spatial_shape": list(layout.shape), "spatial_dims": spatial_dims(layout),
                "periodic": is_periodic(layout)}
    return {"channels": len(layout.variables), "spatial_shape": [window_steps], "spatial_dims": 1, "periodic": False}


def build_network(config: NetworkConfig, shape: dict, observation_error_std: float, offset: float, scale: float,
                  key, dtype):
    from dacli.learned.fourdvarnet import FourDVarNet

    return FourDVarNet(shape["channels"], shape["spatial_dims"], periodic=shape["periodic"], hidden=config.hidden,
                       modulator_hidden=config.modulator_hidden, kernel=config.kernel, iterations=config.iterations,
                       observation_error_std=observation_error_std, prior_weight=config.prior_weight,
                       solver_adjoint=build_solver_adjoint(config), solver=config.solver, offset=offset, scale=scale,
                       key=key, dtype=dtype)
