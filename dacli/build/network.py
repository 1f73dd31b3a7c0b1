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


# [network] keys that fix the architecture (the arrays' shapes); the rest only matter in training.
ARCHITECTURE_KEYS = ("hidden", "modulator_hidden", "kernel", "solver")


def load_trained_network(config, layout, window_steps: int, dtype):
    """The network of ``network.checkpoint``, refused (naming what differs) unless it fits this run.

    The checkpoint must come from the same model (name and parameters), the same window layout
    (channels and grid, i.e. window length and state size), the same architecture and the same
    precision; ``network.iterations`` (K) may differ from training's.
    """
    import jax
    import jax.numpy as jnp

    from dacli.errors import ConfigError
    from dacli.io.checkpoints import load_checkpoint, read_header

    path = config.network.checkpoint
    header = read_header(path)
    problems = []
    if header["model"]["name"] != config.model.name or header["model"]["parameters"] != config.model.parameters:
        problems.append(f"it was trained on model {header['model']['name']!r} with parameters "
                        f"{header['model']['parameters']}; this run has {config.model.name!r} with {config.model.parameters}")
    expected = network_shape(layout, window_steps)
    if header["shape"] != expected:
        problems.append(f"it reconstructs windows of {header['shape']['channels']} channels over "
                        f"{header['shape']['spatial_shape']}; this run's windows ({window_steps} model steps of a state "
                        f"of {layout.size}) need {expected['channels']} over {expected['spatial_shape']} "
                        "(window.length and the model must be those of the training)")
    for key in ARCHITECTURE_KEYS:
        trained, configured = header["network"].get(key), getattr(config.network, key)
        if trained != configured:
            problems.append(f"network.{key} is {configured!r} here but {trained!r} in the checkpoint")
    if header["precision"] != config.run.precision:
        problems.append(f"it holds {header['precision']} weights; set run.precision = \"{header['precision']}\"")
    if problems:
        raise ConfigError([f"network.checkpoint: {path} does not fit this configuration: {p}" for p in problems])
    skeleton = build_network(config.network, header["shape"], header["observation_error_std"], header["offset"],
                             header["scale"], jax.random.PRNGKey(0), jnp.dtype(dtype))
    return load_checkpoint(path, skeleton)[1]
