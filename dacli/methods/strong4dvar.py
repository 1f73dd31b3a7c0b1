"""Strong-constraint 4DVar: the model is a perfect constraint over the window.

    x0 = xb + B^{1/2} v,   J(v) = 1/2 v^T v + 1/2 sum_p ((y_p - H_p(M(x0))) / sigma_p)^2

Le Dimet & Talagrand (1986); Courtier & Talagrand (1987). Solved directly (nonlinear
formulation) or by outer/inner loops (incremental, Courtier et al. 1994): see
:mod:`dacli.methods.variational`.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx

from dacli.adjoints.stepping import KStepAdjoint
from dacli.methods.incremental import IncrementalSettings
from dacli.methods.variational import (
    AbstractVariationalMethod,
    WindowAnalysis,
    analyse_window,
    analyse_windows,
    linearise_departures,
    model_departures,
)
from dacli.models.base import Dynamics


class StrongConstraint4DVar(AbstractVariationalMethod, strict=True):
    """Strong-constraint 4DVar: x(t) = M(x0), control v = v0 (see the module docstring).

    The fields are those every variational method has (see
    :class:`~dacli.methods.variational.AbstractVariationalMethod`). When the model is not
    trusted over the window, use :class:`~dacli.methods.weak4dvar.WeakConstraint4DVar`.
    """

    dynamics: Dynamics
    solver: diffrax.AbstractSolver
    forward_adjoint: diffrax.AbstractAdjoint
    background_sqrt: lx.AbstractLinearOperator
    minimiser: optx.AbstractMinimiser | optx.AbstractLeastSquaresSolver | None
    minimiser_adjoint: optx.AbstractAdjoint | KStepAdjoint
    nsteps: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    log_background_scale: jax.Array | float = 0.0
    incremental: IncrementalSettings | None = None
    spread_probes: int = eqx.field(static=True, default=0)

    def zero_control(self, background):
        return jnp.zeros_like(background)

    def background_control(self, v):
        return v

    def penalties(self, v):
        return 0.5 * jnp.sum(v**2), jnp.zeros((), v.dtype)

    def forecast(self, v, args):
        background, t_start, _ = args
        return self.trajectory(self.initial_state(v, background), t_start)

    def observed(self, forecast, v, args):
        return forecast

    def departures(self, v, args):
        return model_departures(self, v, args)

    def linearised_departures(self, v, args):
        return linearise_departures(self, v, args)


__all__ = ["StrongConstraint4DVar", "WindowAnalysis", "analyse_window", "analyse_windows"]
