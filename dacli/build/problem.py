"""Build engine objects (model, solver, adjoints, minimiser, B^{1/2}, method) from a config."""

from __future__ import annotations

from dataclasses import dataclass

from dacli.build.choices import Choice, choose_formulation, choose_minimiser
from dacli.build.registry import capabilities
from dacli.build.registry import (
    FORWARD_ADJOINTS,
    METHODS,
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


def build_minimiser(config: MethodConfig, name: str):
    """The optimistix minimiser ``name`` (already chosen, see :mod:`dacli.build.choices`); None for CG."""
    if name == "CG":
        return None  # the incremental formulation's inner loops build their own lineax.CG
    minimiser_cls = MINIMISERS.resolve(name)
    if name == "GradientDescent":
        return minimiser_cls(learning_rate=config.learning_rate, rtol=config.rtol, atol=config.atol)
    return minimiser_cls(rtol=config.rtol, atol=config.atol)


def build_minimiser_adjoint(config: MethodConfig):
    name = MINIMISER_ADJOINTS.canonical(config.minimiser_adjoint)
    adjoint = MINIMISER_ADJOINTS.resolve(name)
    return adjoint(k=config.minimiser_adjoint_steps) if name == "KStepAdjoint" else adjoint()


def build_covariance_sqrt(covariance, key: str, layout, dtype):
    """The square root of a covariance section (``key`` names it in messages): B^{1/2} or Q^{1/2}."""
    from dacli.covariances.background import background_sqrt_operator
    from dacli.io.covariance import read_covariance_matrix

    matrix = None
    if covariance.kind == "matrix":
        matrix = read_covariance_matrix(covariance.path, covariance.variable)
    try:
        return background_sqrt_operator(covariance.kind, covariance.std, layout, covariance.length_scale, dtype, matrix)
    except ValueError as exc:
        where = f" ({covariance.path}, variable {covariance.variable!r})" if matrix is not None else ""
        raise ConfigError([f"{key}{where}: {exc}"]) from None


def subwindow_count(config: MethodConfig, window_steps: int, dt: float) -> int:
    """Weak constraint: the number of sub-windows, which must divide the window's model steps."""
    from dacli.observations.windows import whole_steps

    model_error = config.model_error
    if model_error.subwindows is not None:
        count, key = model_error.subwindows, "method.model_error.subwindows"
    else:
        key = "method.model_error.subwindow_length"
        steps = whole_steps(model_error.subwindow_length, dt, key)
        count = window_steps // steps if window_steps % steps == 0 else 0
        if count == 0:
            raise ConfigError([f"{key}: {model_error.subwindow_length} does not divide the window "
                               f"({window_steps} steps of {dt})"])
    if window_steps % count:
        raise ConfigError([f"{key}: {count} sub-windows do not divide the window's {window_steps} model steps"])
    return count


@dataclass(frozen=True)
class MethodPlan:
    """What the configuration decides before anything is built (no JAX): ``dacli validate`` reports it."""

    formulation: Choice
    minimiser: Choice
    subwindows: int | None  # weak constraint only
    control_size: int


def plan_method(config: Config, state_size: int, window_steps: int, observation_capacity: int) -> MethodPlan:
    """Formulation, minimiser (sized by control and padded observations) and sub-windows of ``config``."""
    method = config.method
    if capabilities(method.kind).learned:
        network = config.network
        return MethodPlan(choose_formulation(method), Choice(
            f"{network.solver} x {network.iterations}", f"4DVarNet's learned {network.solver} solver, "
            f"{network.iterations} iterations (from {network.checkpoint})"), None, state_size * window_steps)
    subwindows = subwindow_count(method, window_steps, config.model.dt) if method.kind == "weak4dvar" else None
    control_size = state_size * ((subwindows or 0) + 1)
    return MethodPlan(choose_formulation(method), choose_minimiser(method, control_size, control_size + observation_capacity),
                      subwindows, control_size)


@dataclass(frozen=True)
class Problem:
    """The engine objects a run needs, built once, and the choices made for the user."""

    dynamics: object
    layout: object
    method: object
    dtype: object
    formulation: Choice
    minimiser: Choice


def build_problem(config: Config, window_steps: int, observation_capacity: int = 0, spread_probes: int = 0) -> Problem:
    """Everything for ``config``; ``window_steps`` = model steps per window, ``observation_capacity`` =
    padded observations per window (sizes the automatic minimiser choice), ``spread_probes`` = random
    probes for the Desroziers background check (0 = skip)."""
    import jax.numpy as jnp

    from dacli.methods.incremental import IncrementalSettings

    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    method_config = config.method
    plan = plan_method(config, layout.size, window_steps, observation_capacity)
    extra = {}
    if plan.subwindows is not None:
        extra = dict(model_error_sqrt=build_covariance_sqrt(method_config.model_error.covariance,
                                                            "method.model_error.covariance", layout, dtype),
                     subwindows=plan.subwindows)
    formulation, minimiser = plan.formulation, plan.minimiser
    if capabilities(method_config.kind).learned:
        from dacli.build.network import load_trained_network
        from dacli.methods.learned import FourDVarNetMethod

        method = FourDVarNetMethod(load_trained_network(config, layout, window_steps, dtype), dynamics,
                                   SOLVERS.resolve(config.model.solver)(), window_steps, config.model.dt, layout.shape)
        return Problem(dynamics=dynamics, layout=layout, method=method, dtype=dtype,
                       formulation=formulation, minimiser=minimiser)
    incremental = None
    if formulation.name == "incremental":
        settings = method_config.incremental
        incremental = IncrementalSettings(settings.outer_loops, settings.inner_steps, settings.gradient_reduction)
    method = METHODS.resolve(method_config.kind)(
        dynamics=dynamics,
        solver=SOLVERS.resolve(config.model.solver)(),
        forward_adjoint=build_forward_adjoint(method_config),
        background_sqrt=build_covariance_sqrt(config.background.covariance, "background.covariance", layout, dtype),
        minimiser=build_minimiser(method_config, minimiser.name),
        minimiser_adjoint=build_minimiser_adjoint(method_config),
        nsteps=window_steps,
        dt=config.model.dt,
        max_steps=method_config.max_steps,
        incremental=incremental,
        spread_probes=spread_probes,
        **extra,
    )
    return Problem(dynamics=dynamics, layout=layout, method=method, dtype=dtype,
                   formulation=formulation, minimiser=minimiser)
