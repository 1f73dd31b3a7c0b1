"""Weak-constraint 4DVar, model-error forcing formulation (Tremolet 2006, QJRMS 132; 2007).

The window's nsteps model steps are split into K sub-windows of equal length. At the end of
sub-window k a model-error forcing eta_k is added to the state:

    x_k = M_k(x_{k-1}) + eta_k,   k = 1..K,   eta_k = Q^{1/2} w_k,

so the control vector is (v0, w_1..w_K) with x0 = xb + B^{1/2} v0, and

    J = 1/2 |v0|^2 + 1/2 sum_k |w_k|^2 + Jo = Jb + Jq + Jo,   Jq = 1/2 sum_k eta_k^T Q^{-1} eta_k.

Observations at a sub-window boundary see the forced state. As Q -> 0 the forcings vanish and
the analysis tends to strong-constraint 4DVar's. Solved directly or incrementally like every
method (:mod:`dacli.methods.variational`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from dacli.methods.signatures import State, Trajectory, WindowArgs
from dacli.methods.variational import AbstractModelObserved, AbstractVariationalFields
from dacli.models.integrate import integrate


class WeakConstraint4DVar(AbstractVariationalFields, AbstractModelObserved, strict=True):
    """Weak-constraint 4DVar with ``subwindows`` forcings of covariance Q = Q^{1/2} Q^{1/2}^T.

    The fields are strong-constraint 4DVar's
    (:class:`~dacli.methods.variational.AbstractVariationalFields`) plus ``model_error_sqrt``
    (Q^{1/2}) and ``subwindows`` (K, dividing ``nsteps``). With a perfect model use
    :class:`~dacli.methods.strong4dvar.StrongConstraint4DVar`: the forcings only add controls.
    """

    model_error_sqrt: lx.AbstractLinearOperator | None = None
    subwindows: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if self.model_error_sqrt is None:
            raise ValueError("weak-constraint 4DVar needs model_error_sqrt (Q^{1/2})")
        if self.subwindows < 1 or self.nsteps % self.subwindows:
            raise ValueError(
                f"{self.subwindows} sub-windows do not divide the window's {self.nsteps} model "
                "steps"
            )

    def zero_control(self, background: State) -> Float[Array, "subwindows+1 n"]:
        return jnp.zeros((self.subwindows + 1,) + background.shape, background.dtype)

    def background_control(self, v: Float[Array, "subwindows+1 n"]) -> State:
        return v[0]

    def penalties(
        self, v: Float[Array, "subwindows+1 n"]
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        return 0.5 * jnp.sum(v[0] ** 2), 0.5 * jnp.sum(v[1:] ** 2)

    def forcings(self, v: Float[Array, "subwindows+1 n"]) -> Float[Array, "subwindows n"]:
        """eta_k = Q^{1/2} w_k, shape (K, n)."""
        assert self.model_error_sqrt is not None  # __check_init__
        return jax.vmap(self.model_error_sqrt.mv)(v[1:])

    def forecast(self, v: Float[Array, "subwindows+1 n"], args: WindowArgs) -> Trajectory:
        background, t_start, _ = args
        x0 = self.initial_state(v, background)
        steps = self.nsteps // self.subwindows

        def subwindow(state, inputs):
            k, forcing = inputs
            segment = integrate(
                self.dynamics,
                state,
                t_start + k * steps * self.dt,
                steps,
                self.dt,
                self.ode_solver,
                self.forward_adjoint,
            )[1:]
            segment = segment.at[-1].add(forcing)
            return segment[-1], segment

        _, segments = jax.lax.scan(subwindow, x0, (jnp.arange(self.subwindows), self.forcings(v)))
        return jnp.concatenate([x0[None], segments.reshape(self.nsteps, -1)])
