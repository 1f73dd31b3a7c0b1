"""3DVar and 3D-FGAT: the degenerate cases users compare 4DVar against.

* **3DVar** treats every observation of the window as valid at the analysis time, the window
  start: the departures are y - H(x0) whatever the observation time (persistence in place of
  the model). The analysis is then propagated by the model as in 4DVar. Lorenc (1986).
* **3D-FGAT** (first guess at appropriate time) computes the departures against the nonlinear
  model trajectory, y - H(M_t(x0)), but its tangent-linear model is the identity: the increment
  is constant in time (Lawless 2010, QJRMS 136; Fisher & Andersson 2001). It exists only in the
  incremental formulation, whose inner loops use that identity tangent-linear model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.observations.operator import whitened_departures


class ThreeDVar(StrongConstraint4DVar):
    """3DVar: observations compared with the analysis-time state (see the module docstring)."""

    def persisted(self, v, args):
        x0 = self.initial_state(v, args[0])
        return jnp.broadcast_to(x0, (self.nsteps + 1,) + x0.shape)

    def observed(self, forecast, v, args):
        return self.persisted(v, args)

    def departures(self, v, args):
        return whitened_departures(self.persisted(v, args), args[2])  # no model run


class ThreeDFGAT(StrongConstraint4DVar):
    """3D-FGAT: 4DVar departures, identity tangent-linear model (incremental formulation only)."""

    def linearised_departures(self, v, args):
        persistence = ThreeDVar(**{name: getattr(self, name) for name in self.__dataclass_fields__})
        value = self.departures(v, args)
        _, tangent_linear = jax.linearize(lambda u: persistence.departures(u, args), v)
        transpose = jax.linear_transpose(tangent_linear, v)
        return value, tangent_linear, lambda dd: transpose(dd)[0]
