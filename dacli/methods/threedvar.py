"""3DVar and 3D-FGAT: the degenerate cases users compare 4DVar against.

* **3DVar** treats every observation of the window as valid at the analysis time, the window
  start: the departures are y - H(x0) whatever the observation time (persistence in place of
  the model). The analysis is then propagated by the model as in 4DVar. Lorenc (1986).
* **3D-FGAT** (first guess at appropriate time) computes the departures against the nonlinear
  model trajectory, y - H(M_t(x0)), but its tangent-linear model is the identity: the increment
  is constant in time (Lawless 2010, QJRMS 136; Fisher & Andersson 2001). It exists only in the
  incremental formulation, whose inner loops use that identity tangent-linear model: it wraps a
  strong-constraint 4DVar and replaces only its linearisation.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Float

from dacli.adjoints.stepping import KStepAdjoint
from dacli.methods.incremental import IncrementalSettings
from dacli.methods.signatures import LinearisedDepartures, State, Trajectory, WindowArgs
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.methods.variational import (
    AbstractInitialStateControl,
    AbstractVariationalFields,
    AbstractVariationalMethod,
    linearise_departures,
)
from dacli.models.base import Dynamics
from dacli.observations.operator import whitened_departures


class ThreeDVar(AbstractVariationalFields, AbstractInitialStateControl, strict=True):
    """3DVar: observations compared with the analysis-time state (see the module docstring).

    Same fields, control and forecast as
    :class:`~dacli.methods.strong4dvar.StrongConstraint4DVar`; only the observed trajectory
    differs. Not for observations spread over a window in which the state changes: that is
    what 4DVar (or 3D-FGAT, its cheap approximation) is for.
    """

    def persisted(self, v: Array, args: WindowArgs) -> Trajectory:
        """The analysis-time state x0 of ``v`` at every step of the window (no model run)."""
        x0 = self.initial_state(v, args[0])
        return jnp.broadcast_to(x0, (self.nsteps + 1,) + x0.shape)

    def observed(self, forecast: Trajectory, v: Array, args: WindowArgs) -> Trajectory:
        return self.persisted(v, args)

    def departures(self, v: Array, args: WindowArgs) -> Float[Array, " p"]:
        return whitened_departures(self.persisted(v, args), args[2])  # no model run

    def linearised_departures(self, v: Array, args: WindowArgs) -> LinearisedDepartures:
        return linearise_departures(self, v, args)


class ThreeDFGAT(AbstractVariationalMethod, strict=True):
    """3D-FGAT: the wrapped 4DVar's departures, identity tangent-linear model.

    Everything but the linearisation is ``strong``'s. Meaningful only in the incremental
    formulation (the nonlinear one never linearises, and then is ``strong`` itself).
    """

    strong: StrongConstraint4DVar

    # The abstract fields of AbstractVariationalMethod are read through to ``strong`` by the
    # properties below, which equinox accepts for an AbstractVar; mypy's dataclass model does not
    # (it takes AbstractVar[T] for a field T: equinox issues 882 and 1123), hence the per-line
    # ignores, and this __init__, equinox's workaround, so that they are not asked for as
    # arguments.
    def __init__(self, strong: StrongConstraint4DVar):
        self.strong = strong

    @property  # type: ignore[misc]
    def dynamics(self) -> Dynamics:  # type: ignore[override]
        return self.strong.dynamics

    @property  # type: ignore[misc]
    def ode_solver(self) -> diffrax.AbstractSolver:  # type: ignore[override]
        return self.strong.ode_solver

    @property  # type: ignore[misc]
    def forward_adjoint(self) -> diffrax.AbstractAdjoint:  # type: ignore[override]
        return self.strong.forward_adjoint

    @property  # type: ignore[misc]
    def background_sqrt(self) -> lx.AbstractLinearOperator:
        return self.strong.background_sqrt

    @property  # type: ignore[misc]
    def minimiser(  # type: ignore[override]
        self,
    ) -> optx.AbstractMinimiser | optx.AbstractLeastSquaresSolver | None:
        return self.strong.minimiser

    @property  # type: ignore[misc]
    def minimiser_adjoint(self) -> optx.AbstractAdjoint | KStepAdjoint:  # type: ignore[override]
        return self.strong.minimiser_adjoint

    @property  # type: ignore[misc]
    def nsteps(self) -> int:  # type: ignore[override]
        return self.strong.nsteps

    @property  # type: ignore[misc]
    def dt(self) -> float:  # type: ignore[override]
        return self.strong.dt

    @property  # type: ignore[misc]
    def max_steps(self) -> int:  # type: ignore[override]
        return self.strong.max_steps

    @property  # type: ignore[misc]
    def log_background_scale(self) -> jax.Array | float:  # type: ignore[override]
        return self.strong.log_background_scale

    @property  # type: ignore[misc]
    def incremental(self) -> IncrementalSettings | None:  # type: ignore[override]
        return self.strong.incremental

    @property  # type: ignore[misc]
    def spread_probes(self) -> int:  # type: ignore[override]
        return self.strong.spread_probes

    def zero_control(self, background: State) -> Array:
        return self.strong.zero_control(background)

    def background_control(self, v: Array) -> State:
        return self.strong.background_control(v)

    def penalties(self, v: Array) -> tuple[Float[Array, ""], Float[Array, ""]]:
        return self.strong.penalties(v)

    def forecast(self, v: Array, args: WindowArgs) -> Trajectory:
        return self.strong.forecast(v, args)

    def observed(self, forecast: Trajectory, v: Array, args: WindowArgs) -> Trajectory:
        return self.strong.observed(forecast, v, args)

    def departures(self, v: Array, args: WindowArgs) -> Float[Array, " p"]:
        return self.strong.departures(v, args)

    def linearised_departures(self, v: Array, args: WindowArgs) -> LinearisedDepartures:
        """4DVar's departures with 3DVar's (persistence) tangent-linear model and its transpose."""
        persistence = ThreeDVar(
            **{name: getattr(self.strong, name) for name in self.strong.__dataclass_fields__}
        )
        value = self.departures(v, args)
        _, tangent_linear = jax.linearize(lambda u: persistence.departures(u, args), v)
        transpose = jax.linear_transpose(tangent_linear, v)
        return value, tangent_linear, lambda dd: transpose(dd)[0]
