"""Build engine objects (model, solver, adjoints, minimiser, B^{1/2}, method) from a config."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import lineax as lx
from jax.typing import DTypeLike

from dacli.build.choices import Choice, choose_formulation, choose_minimiser
from dacli.build.dynamics import build_dynamics
from dacli.build.factories import (
    build_forward_adjoint,
    build_minimiser,
    build_minimiser_adjoint,
    build_ode_solver,
    build_variational_method,
)
from dacli.build.network import load_trained_network
from dacli.build.traceability import check_forward_mode, forward_mode_settings
from dacli.config.registry import capabilities
from dacli.config.schema import Config, CovarianceConfig, MatrixCovariance, MethodConfig
from dacli.covariances.background import background_sqrt_operator
from dacli.errors import ConfigError
from dacli.io.covariance import read_covariance_matrix
from dacli.methods.incremental import IncrementalSettings
from dacli.methods.learned import FourDVarNetMethod
from dacli.methods.variational import AbstractMethod, AbstractVariationalMethod
from dacli.models.base import Dynamics, StateLayout, adjoint_rule
from dacli.observations.windows import whole_steps

__all__ = [
    "MethodPlan",
    "adjoint_rule_choice",
    "Problem",
    "build_covariance_sqrt",
    "build_dynamics",
    "build_forward_adjoint",
    "build_minimiser",
    "build_minimiser_adjoint",
    "build_problem",
    "plan_method",
    "subwindow_count",
]


def build_covariance_sqrt(
    covariance: CovarianceConfig, key: str, layout: StateLayout, dtype: DTypeLike
) -> lx.AbstractLinearOperator:
    """The square root of a covariance section (``key`` names it in messages): B^1/2 or Q^1/2."""
    matrix, where = None, ""
    if isinstance(covariance, MatrixCovariance):  # kind = "matrix"
        matrix = read_covariance_matrix(covariance.path, covariance.variable)
        where = f" ({covariance.path}, variable {covariance.variable!r})"
    try:
        return background_sqrt_operator(
            covariance.kind,
            covariance.std,
            layout,
            getattr(covariance, "length_scale", None),
            dtype,
            matrix,
        )
    except ValueError as exc:
        raise ConfigError([f"{key}{where}: {exc}"]) from None


def subwindow_count(config: MethodConfig, window_steps: int, dt: float) -> int:
    """Weak constraint: the number of sub-windows, which must divide the window's model steps."""
    model_error = config.model_error
    assert model_error is not None  # weak constraint: MethodConfig requires [method.model_error]
    if model_error.subwindows is not None:
        count, key = model_error.subwindows, "method.model_error.subwindows"
    else:
        key = "method.model_error.subwindow_length"
        assert model_error.subwindow_length is not None  # exactly one of the two (validator)
        steps = whole_steps(model_error.subwindow_length, dt, key)
        count = window_steps // steps if window_steps % steps == 0 else 0
        if count == 0:
            raise ConfigError(
                [
                    f"{key}: {model_error.subwindow_length} does not divide the window "
                    f"({window_steps} steps of {dt})"
                ]
            )
    if window_steps % count:
        raise ConfigError(
            [f"{key}: {count} sub-windows do not divide the window's {window_steps} model steps"]
        )
    return count


@dataclass(frozen=True)
class MethodPlan:
    """What the configuration decides before anything is built: ``dacli validate`` reports it."""

    formulation: Choice
    minimiser: Choice
    subwindows: int | None  # weak constraint only
    control_size: int


def plan_method(
    config: Config, state_size: int, window_steps: int, observation_capacity: int
) -> MethodPlan:
    """Formulation, minimiser (sized by control and padded observations), sub-windows."""
    method = config.method
    if capabilities(method.kind).learned:
        network = config.network
        assert network is not None  # a learned method's config has [network] (Config's validator)
        return MethodPlan(
            choose_formulation(method),
            Choice(
                f"{network.update} x {network.iterations}",
                f"4DVarNet's learned {network.update} solver, "
                f"{network.iterations} iterations (from {network.file})",
            ),
            None,
            state_size * window_steps,
        )
    has_model_error = capabilities(method.kind).model_error
    subwindows = subwindow_count(method, window_steps, config.model.dt) if has_model_error else None
    control_size = state_size * ((subwindows or 0) + 1)
    return MethodPlan(
        choose_formulation(method),
        choose_minimiser(method, control_size, control_size + observation_capacity),
        subwindows,
        control_size,
    )


@dataclass(frozen=True)
class Problem:
    """The engine objects a run needs, built once, and the choices made for the user."""

    dynamics: Dynamics
    layout: StateLayout
    method: AbstractMethod  # a variational method, or FourDVarNetMethod
    dtype: DTypeLike
    formulation: Choice
    minimiser: Choice
    model_adjoint: Choice  # the model's hand-written adjoint, or autodiff (adjoint_rule_choice)


def build_problem(
    config: Config,
    window_steps: int,
    observation_capacity: int = 0,
    spread_probes: int = 0,
    reverse_only: bool = False,
) -> Problem:
    """Everything for ``config``; ``window_steps`` = model steps per window,
    ``observation_capacity`` = padded observations per window (sizes the automatic minimiser
    choice), ``spread_probes`` = random probes for the Desroziers background check (0 = skip),
    ``reverse_only``: the command differentiates the model in reverse mode only (``dacli
    assimilate``, ``dacli sweep``), so the model's hand-written adjoint may serve
    (:func:`adjoint_rule_choice`)."""
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    check_forward_mode(dynamics, config.model.name, forward_mode_settings(config, spread_probes))
    dynamics, model_adjoint = adjoint_rule_choice(config, dynamics, spread_probes, reverse_only)
    plan = plan_method(config, layout.size, window_steps, observation_capacity)
    method: AbstractMethod
    if capabilities(config.method.kind).learned:
        method = FourDVarNetMethod(
            load_trained_network(config, layout, window_steps, dtype),
            dynamics,
            build_ode_solver(config.model),
            window_steps,
            config.model.dt,
            layout.shape,
        )
    else:
        method = _variational_method(
            config, plan, dynamics, layout, window_steps, dtype, spread_probes
        )
    return Problem(
        dynamics=dynamics,
        layout=layout,
        method=method,
        dtype=dtype,
        formulation=plan.formulation,
        minimiser=plan.minimiser,
        model_adjoint=model_adjoint,
    )


def adjoint_rule_choice(
    config: Config, dynamics: Dynamics, spread_probes: int, reverse_only: bool
) -> tuple[Dynamics, Choice]:
    """The dynamics a run differentiates and how its reverse pass is taken: with the model's
    hand-written adjoint (:meth:`dacli.models.base.Dynamics.with_adjoint_rule`, "hand-written")
    where ``model.adjoint = "auto"``, the model has one and nothing in the run linearises the
    model forward (a ``jax.custom_vjp`` rule has no forward mode), else by JAX ("autodiff").

    Forward linearisations: the settings of :func:`forward_mode_settings` (incremental
    formulation, ForwardMode, a OneStep/KStep minimiser adjoint, the spread probes) and every
    command that is not ``reverse_only`` (tuning, training, the tangent-linear checks of ``dacli
    check-adjoints``, which test the rule separately). 4DVarNet runs its model as trained, by
    JAX.
    """
    if config.model.adjoint == "autodiff":
        return dynamics, Choice("autodiff", "as configured")
    rule = adjoint_rule(dynamics)
    if rule is None:
        return dynamics, Choice("autodiff", "the model has no hand-written adjoint")
    if capabilities(config.method.kind).learned:
        return dynamics, Choice("autodiff", f"method.kind = {config.method.kind} runs as trained")
    forward = [setting for setting, _ in forward_mode_settings(config, spread_probes)]
    if not reverse_only:
        forward.append("this command")
    if forward:
        return dynamics, Choice(
            "autodiff",
            f"the model's hand-written adjoint has no forward mode, which {forward[0]} needs",
        )
    return rule, Choice(
        "hand-written",
        f"{type(rule).__name__}: nothing in this run linearises the model forward, and the "
        "model's own adjoint runs fewer kernels than JAX's transpose (model.adjoint = "
        '"autodiff" turns it off)',
    )


def _variational_method(
    config: Config,
    plan: MethodPlan,
    dynamics: Dynamics,
    layout: StateLayout,
    window_steps: int,
    dtype: DTypeLike,
    spread_probes: int,
) -> AbstractVariationalMethod:
    """The configured variational method (weak constraint: with Q^{1/2} and its sub-windows)."""
    method_config = config.method
    extra = {}
    if plan.subwindows is not None:
        assert method_config.model_error is not None  # sub-windows: weak constraint, which has Q
        extra = dict(
            model_error_sqrt=build_covariance_sqrt(
                method_config.model_error.covariance, "method.model_error.covariance", layout, dtype
            ),
            subwindows=plan.subwindows,
        )
    incremental = None
    if plan.formulation.name == "incremental":
        settings = method_config.incremental
        incremental = IncrementalSettings(
            settings.outer_loops, settings.inner_steps, settings.gradient_reduction
        )
    return build_variational_method(
        method_config.kind,
        dynamics=dynamics,
        ode_solver=build_ode_solver(config.model),
        forward_adjoint=build_forward_adjoint(method_config),
        background_sqrt=build_covariance_sqrt(
            config.background.covariance, "background.covariance", layout, dtype
        ),
        minimiser=build_minimiser(method_config, plan.minimiser.name),
        minimiser_adjoint=build_minimiser_adjoint(method_config),
        nsteps=window_steps,
        dt=config.model.dt,
        max_steps=method_config.max_steps,
        incremental=incremental,
        spread_probes=spread_probes,
        **extra,
    )
