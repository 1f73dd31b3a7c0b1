"""Build engine objects (model, solver, adjoints, minimiser, B^{1/2}, method) from a config."""

from __future__ import annotations

from dataclasses import dataclass

from dacli.build.registry import (
    FORWARD_ADJOINTS,
    MINIMISER_ADJOINTS,
    MINIMISERS,
    SOLVERS,
    resolve_model_factory,
)
from dacli.config.schema import Config, MethodConfig, ModelConfig
from dacli.errors import ConfigError


def build_dynamics(config: ModelConfig):
    """The model object: factory(**parameters), checked against the Dynamics contract."""
    from dacli.models.base import Dynamics

    factory = resolve_model_factory(config.name)
    try:
        dynamics = factory(**config.parameters)
    except (TypeError, ValueError) as exc:
        raise ConfigError([f"model.parameters: model {config.name!r} rejected its parameters: {exc}"]) from None
    if not isinstance(dynamics, Dynamics):
        raise ConfigError([
            f"model.name: {config.name!r} returned {type(dynamics).__name__}, not a dacli.models.Dynamics "
            "(see README, 'Bring your own model')"
        ])
    return dynamics


def build_forward_adjoint(config: MethodConfig):
    adjoint_cls = FORWARD_ADJOINTS.resolve(config.forward_adjoint)
    if FORWARD_ADJOINTS.canonical(config.forward_adjoint) == "RecursiveCheckpointAdjoint":
        return adjoint_cls(checkpoints=config.checkpoints)
    if config.checkpoints is not None:
        raise ConfigError([f"method.checkpoints: only used by RecursiveCheckpointAdjoint, not {config.forward_adjoint}"])
    return adjoint_cls()


def build_minimiser(config: MethodConfig):
    name = MINIMISERS.canonical(config.minimiser)
    minimiser_cls = MINIMISERS.resolve(name)
    if name == "GradientDescent":
        return minimiser_cls(learning_rate=config.learning_rate, rtol=config.rtol, atol=config.atol)
    return minimiser_cls(rtol=config.rtol, atol=config.atol)


def build_minimiser_adjoint(config: MethodConfig):
    name = MINIMISER_ADJOINTS.canonical(config.minimiser_adjoint)
    adjoint = MINIMISER_ADJOINTS.resolve(name)
    return adjoint(k=config.minimiser_adjoint_steps) if name == "KStepAdjoint" else adjoint()


def build_background_sqrt(config: Config, layout, dtype):
    from dacli.covariances.background import background_sqrt_operator
    from dacli.io.covariance import read_covariance_matrix

    covariance = config.background.covariance
    matrix = None
    if covariance.kind == "matrix":
        matrix = read_covariance_matrix(covariance.path, covariance.variable)
    try:
        return background_sqrt_operator(covariance.kind, covariance.std, layout, covariance.length_scale, dtype, matrix)
    except ValueError as exc:
        where = f" ({covariance.path}, variable {covariance.variable!r})" if matrix is not None else ""
        raise ConfigError([f"background.covariance{where}: {exc}"]) from None


@dataclass(frozen=True)
class Problem:
    """The engine objects a run needs, built once."""

    dynamics: object
    layout: object
    method: object
    dtype: object


def build_problem(config: Config, window_steps: int) -> Problem:
    """Everything for ``config``; ``window_steps`` = model steps per window."""
    import jax.numpy as jnp

    from dacli.methods.strong4dvar import StrongConstraint4DVar

    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    method = StrongConstraint4DVar(
        dynamics=dynamics,
        solver=SOLVERS.resolve(config.model.solver)(),
        forward_adjoint=build_forward_adjoint(config.method),
        background_sqrt=build_background_sqrt(config, layout, dtype),
        minimiser=build_minimiser(config.method),
        minimiser_adjoint=build_minimiser_adjoint(config.method),
        nsteps=window_steps,
        dt=config.model.dt,
        max_steps=config.method.max_steps,
    )
    return Problem(dynamics=dynamics, layout=layout, method=method, dtype=dtype)

