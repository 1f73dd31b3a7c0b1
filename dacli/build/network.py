"""Build 4DVarNet from the [network] section, for a model's state layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from dacli.build.dynamics import build_dynamics
from dacli.build.factories import build_iteration_adjoint, build_ode_solver
from dacli.config.schema import Config, ModelConfig, NetworkConfig, with_new_names
from dacli.errors import ConfigError
from dacli.io.saved_trees import load_tree, read_header
from dacli.learned.data import is_periodic, spatial_dims
from dacli.learned.fourdvarnet import FourDVarNet
from dacli.learned.networks import ModelPrior
from dacli.models.base import StateLayout

__all__ = [
    "ARCHITECTURE_KEYS",
    "build_model_prior",
    "build_network",
    "build_iteration_adjoint",
    "load_trained_network",
    "network_shape",
    "time_axis",
]


def network_shape(layout: StateLayout, window_steps: int) -> dict:
    """Channels and spatial shape of a window in the networks' layout
    (dacli.learned.data.to_channels), as the network file's header records it."""
    if layout.axes:
        return {
            "channels": window_steps,
            "spatial_shape": list(layout.shape),
            "spatial_dims": spatial_dims(layout),
            "periodic": is_periodic(layout),
        }
    return {
        "channels": len(layout.variables),
        "spatial_shape": [window_steps],
        "spatial_dims": 1,
        "periodic": False,
    }


def build_model_prior(
    network: NetworkConfig, model: ModelConfig, layout: StateLayout
) -> ModelPrior | None:
    """network.prior = "model": one step of ``model`` (the [model] section) as Phi; None for a
    learned prior."""
    if network.prior != "model":
        return None
    return ModelPrior(
        build_dynamics(model),
        build_ode_solver(model),
        float(model.dt),
        tuple(layout.shape) if layout.axes else (),
    )


def time_axis(layout: StateLayout) -> int:
    """The window's time axis in the networks' layout: (n, T) without a grid, (T, *grid) with it."""
    return 0 if layout.axes else 1


def build_network(
    config: NetworkConfig,
    shape: dict,
    observation_error_std: float,
    offset: float,
    scale: float,
    key: jax.Array,
    dtype: DTypeLike,
    model_prior: ModelPrior | None = None,
    window_axis: int = 1,
) -> FourDVarNet:
    """4DVarNet for windows of ``shape``; ``model_prior`` (:func:`build_model_prior`) when
    network.prior = "model"; ``window_axis``: :func:`time_axis` of the layout (where the
    background term finds the first step)."""
    if (config.prior == "model") != (model_prior is not None):
        needs = "needs" if model_prior is None else "takes no"
        raise ValueError(f"network.prior = {config.prior!r} {needs} model_prior")
    return FourDVarNet(
        shape["channels"],
        shape["spatial_dims"],
        periodic=shape["periodic"],
        hidden=config.hidden,
        modulator_hidden=config.modulator_hidden,
        kernel=config.kernel,
        iterations=config.iterations,
        observation_error_std=observation_error_std,
        prior_weight=config.prior_weight,
        iteration_adjoint=build_iteration_adjoint(config),
        update=config.update,
        offset=offset,
        scale=scale,
        model_prior=model_prior,
        background=config.background,
        background_weight=config.background_weight,
        time_axis=window_axis,
        key=key,
        dtype=dtype,
    )


# [network] keys that fix the architecture (the arrays' shapes) or what the network was trained to
# use; the rest only matter in training. Checkpoints written before a key existed hold its default.
ARCHITECTURE_KEYS = ("hidden", "modulator_hidden", "kernel", "update", "prior", "background")


def load_trained_network(
    config: Config, layout: StateLayout, window_steps: int, dtype: DTypeLike
) -> FourDVarNet:
    """The network of ``network.file``, refused (naming what differs) unless it fits this run.

    The network file must come from the same model (name and parameters), the same window layout
    (channels and grid, i.e. window length and state size), the same architecture and the same
    precision; ``network.iterations`` (K) may differ from training's.
    """
    network = config.network
    assert network is not None  # a learned method's config has [network] (Config's validator)
    path = network.file
    header = read_header(path)
    problems = []
    if (
        header["model"]["name"] != config.model.name
        or header["model"]["parameters"] != config.model.parameters
    ):
        problems.append(
            f"it was trained on model {header['model']['name']!r} with parameters "
            f"{header['model']['parameters']}; this run has {config.model.name!r} with "
            f"{config.model.parameters}"
        )
    expected = network_shape(layout, window_steps)
    if header["shape"] != expected:
        problems.append(
            f"it reconstructs windows of {header['shape']['channels']} channels over "
            f"{header['shape']['spatial_shape']}; this run's windows ({window_steps} model steps "
            "of a state "
            f"of {layout.size}) need {expected['channels']} over {expected['spatial_shape']} "
            "(window.length and the model must be those of the training)"
        )
    for key in ARCHITECTURE_KEYS:
        trained = with_new_names("network", header["network"]).get(
            key, type(network).model_fields[key].default
        )
        configured = getattr(network, key)
        if trained != configured:
            why = (
                " (a network uses the cycled background only if it was trained with backgrounds: "
                "set it as in training, or retrain with dacli train)"
                if key == "background"
                else ""
            )
            problems.append(
                f"network.{key} is {configured!r} here but {trained!r} in the network file{why}"
            )
    if header["precision"] != config.run.precision:
        problems.append(
            f'it holds {header["precision"]} weights; set run.precision = "{header["precision"]}"'
        )
    if problems:
        raise ConfigError(
            [f"network.file: {path} does not fit this configuration: {p}" for p in problems]
        )
    skeleton = build_network(
        network,
        header["shape"],
        header["observation_error_std"],
        header["offset"],
        header["scale"],
        jax.random.PRNGKey(0),
        jnp.dtype(dtype),
        build_model_prior(network, config.model, layout),
        time_axis(layout),
    )
    return load_tree(path, skeleton)[1]
