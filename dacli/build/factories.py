"""One factory per registry name: the engine object a configuration record asks for.

Each table here has exactly the names of its :class:`dacli.config.registry.Registry` (checked at
import), and each factory takes the configuration record its options live in: a minimiser is
built from ``[method]`` (tolerances, a learning rate), a forward adjoint from ``[method]``
(checkpoints), an iteration adjoint from ``[network]`` (k, checkpoints). The registry checks
names without JAX; this module is where JAX, diffrax and optimistix are imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import diffrax
import optimistix as optx

from dacli.adjoints.stepping import KStepAdjoint
from dacli.adjoints.unroll import AbstractIterationAdjoint, Checkpointed, Implicit, KStep, Unrolled
from dacli.config.registry import (
    FORWARD_ADJOINTS,
    INNER_SOLVER,
    ITERATION_ADJOINTS,
    METHODS,
    MINIMISER_ADJOINTS,
    MINIMISERS,
    MODELS,
    ODE_SOLVERS,
    Registry,
)
from dacli.config.schema import MethodConfig, ModelConfig, NetworkConfig
from dacli.errors import ConfigError
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.methods.threedvar import ThreeDFGAT, ThreeDVar
from dacli.methods.variational import AbstractVariationalMethod
from dacli.methods.weak4dvar import WeakConstraint4DVar
from dacli.models.base import Dynamics
from dacli.models.lorenz import Lorenz63, Lorenz96
from dacli.models.qg import QuasiGeostrophic
from dacli.models.solvers import RK4

Minimiser = optx.AbstractMinimiser | optx.AbstractLeastSquaresSolver
MinimiserAdjoint = optx.AbstractAdjoint | KStepAdjoint

MODEL_CLASSES: dict[str, Callable[..., Dynamics]] = {  # called with model.parameters
    "lorenz63": Lorenz63,
    "lorenz96": Lorenz96,
    "qg": QuasiGeostrophic,
}

ODE_SOLVER_FACTORIES: dict[
    str, Callable[[], diffrax.AbstractSolver]
] = {  # model.ode_solver takes no options
    "Tsit5": diffrax.Tsit5,
    "Dopri5": diffrax.Dopri5,
    "Dopri8": diffrax.Dopri8,
    "Bosh3": diffrax.Bosh3,
    "RK4": RK4,
    "Heun": diffrax.Heun,
    "Midpoint": diffrax.Midpoint,
    "Ralston": diffrax.Ralston,
    "Euler": diffrax.Euler,
}


def _tolerances(minimiser: Callable[..., Minimiser]) -> Callable[[MethodConfig], Minimiser]:
    return lambda config: minimiser(rtol=config.rtol, atol=config.atol)


MINIMISER_FACTORIES: dict[str, Callable[[MethodConfig], Minimiser | None]] = {
    "LBFGS": _tolerances(optx.LBFGS),
    "BFGS": _tolerances(optx.BFGS),
    "NonlinearCG": _tolerances(optx.NonlinearCG),
    "GradientDescent": lambda config: optx.GradientDescent(
        learning_rate=config.learning_rate, rtol=config.rtol, atol=config.atol
    ),
    "GaussNewton": _tolerances(optx.GaussNewton),
    "LevenbergMarquardt": _tolerances(optx.LevenbergMarquardt),
    INNER_SOLVER: lambda config: (
        None
    ),  # the incremental formulation's inner loops build their own lineax.CG
}


def _without_checkpoints(
    adjoint: Callable[[], diffrax.AbstractAdjoint],
) -> Callable[[MethodConfig], diffrax.AbstractAdjoint]:
    def build(config: MethodConfig) -> diffrax.AbstractAdjoint:
        if config.adjoint_checkpoints is not None:
            raise ConfigError(
                [
                    f"method.adjoint_checkpoints: only used by RecursiveCheckpointAdjoint, "
                    f"not {config.forward_adjoint}"
                ]
            )
        return adjoint()

    return build


FORWARD_ADJOINT_FACTORIES: dict[str, Callable[[MethodConfig], diffrax.AbstractAdjoint]] = {
    "RecursiveCheckpointAdjoint": lambda config: diffrax.RecursiveCheckpointAdjoint(
        checkpoints=config.adjoint_checkpoints
    ),
    "BacksolveAdjoint": _without_checkpoints(diffrax.BacksolveAdjoint),
    "DirectAdjoint": _without_checkpoints(diffrax.DirectAdjoint),
    "ForwardMode": _without_checkpoints(diffrax.ForwardMode),
}

MINIMISER_ADJOINT_FACTORIES: dict[str, Callable[[MethodConfig], MinimiserAdjoint]] = {
    "ImplicitAdjoint": lambda config: optx.ImplicitAdjoint(),
    "RecursiveCheckpointAdjoint": lambda config: optx.RecursiveCheckpointAdjoint(),
    "OneStepAdjoint": lambda config: KStepAdjoint(k=1),
    "KStepAdjoint": lambda config: KStepAdjoint(k=config.minimiser_adjoint_steps),
}

ITERATION_ADJOINT_FACTORIES: dict[str, Callable[[NetworkConfig], AbstractIterationAdjoint]] = {
    "RecursiveCheckpointAdjoint": lambda config: Checkpointed(
        checkpoints=config.adjoint_checkpoints
    ),
    "DirectAdjoint": lambda config: Unrolled(),
    "OneStepAdjoint": lambda config: KStep(k=1),
    "KStepAdjoint": lambda config: KStep(k=config.iteration_adjoint_steps),
    "ImplicitAdjoint": lambda config: Implicit(),
}

# called with the method's fields
METHOD_FACTORIES: dict[str, Callable[..., AbstractVariationalMethod]] = {
    "strong4dvar": StrongConstraint4DVar,
    "weak4dvar": WeakConstraint4DVar,
    "3dvar": ThreeDVar,
    "3dfgat": lambda **fields: ThreeDFGAT(StrongConstraint4DVar(**fields)),  # wraps strong 4DVar
}

FACTORIES: dict[str, Mapping[str, Callable]] = {}  # registry kind -> its table


def _register(registry: Registry, table: Mapping[str, Callable]) -> None:
    if set(table) != set(registry.names):
        raise RuntimeError(
            f"the {registry.kind} factories ({sorted(table)}) do not match the registry's names "
            f"({sorted(registry.names)})"
        )
    FACTORIES[registry.kind] = table


for _registry, _table in (
    (MODELS, MODEL_CLASSES),
    (ODE_SOLVERS, ODE_SOLVER_FACTORIES),
    (MINIMISERS, MINIMISER_FACTORIES),
    (FORWARD_ADJOINTS, FORWARD_ADJOINT_FACTORIES),
    (MINIMISER_ADJOINTS, MINIMISER_ADJOINT_FACTORIES),
    (ITERATION_ADJOINTS, ITERATION_ADJOINT_FACTORIES),
    (METHODS, METHOD_FACTORIES),
):
    _register(_registry, _table)


def _factory(registry: Registry, name: str) -> Callable:
    canonical = registry.canonical(name)
    if canonical is None or canonical not in FACTORIES[registry.kind]:
        raise KeyError(registry.problem(name))
    return FACTORIES[registry.kind][canonical]


def build_ode_solver(config: ModelConfig) -> diffrax.AbstractSolver:
    """The ODE solver ``model.ode_solver`` names."""
    return _factory(ODE_SOLVERS, config.ode_solver)()


def build_minimiser(config: MethodConfig, name: str) -> Minimiser | None:
    """The minimiser ``name`` (already chosen, see :mod:`dacli.build.choices`) with ``config``'s
    options; None for the inner solver CG (the incremental inner loops build their own)."""
    return _factory(MINIMISERS, name)(config)


def build_forward_adjoint(config: MethodConfig) -> diffrax.AbstractAdjoint:
    """``method.forward_adjoint``: how gradients cross the dynamics
    (``method.adjoint_checkpoints``)."""
    return _factory(FORWARD_ADJOINTS, config.forward_adjoint)(config)


def build_minimiser_adjoint(config: MethodConfig) -> MinimiserAdjoint:
    """``method.minimiser_adjoint``: how gradients cross the minimisation (tuning)."""
    return _factory(MINIMISER_ADJOINTS, config.minimiser_adjoint)(config)


def build_iteration_adjoint(config: NetworkConfig) -> AbstractIterationAdjoint:
    """``network.iteration_adjoint``: how training differentiates 4DVarNet's solver iterations."""
    return _factory(ITERATION_ADJOINTS, config.iteration_adjoint)(config)


def build_variational_method(kind: str, **fields) -> AbstractVariationalMethod:
    """The variational method ``kind`` (``method.kind``) from its fields (dynamics, B^1/2, ...)."""
    return _factory(METHODS, kind)(**fields)
