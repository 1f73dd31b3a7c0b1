"""Incremental variational assimilation: Gauss-Newton outer loops, conjugate-gradient inner loops.

Courtier, Thepaut & Hollingsworth (1994), QJRMS 120; Lawless, Gratton & Nichols (2005) show it is
a Gauss-Newton method. Outer loop k re-runs the nonlinear model from the current control v_k
and linearises the whitened departures d(v) about it (tangent-linear L, adjoint L^T). The inner
loop minimises the quadratic cost in the B^{1/2}-preconditioned control space,

    Jq(dv) = 1/2 |v_k + dv|^2 + 1/2 |d(v_k) + L dv|^2,

i.e. solves (I + L^T L) dv = -(v_k + L^T d(v_k)) with lineax's conjugate gradients, matrix-free
(one tangent-linear and one adjoint run per iteration). The Hessian's eigenvalues are >= 1, so CG
needs about as many iterations as there are eigenvalues well above 1 — far fewer than the control
dimension when the observations are few or smooth (the point of the preconditioning). The inner
loop stops when the quadratic's gradient norm has fallen by ``gradient_reduction`` or after
``inner_steps`` iterations.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array

from dacli.methods.signatures import WindowArgs


class IncrementalSettings(eqx.Module):
    """Outer loops, inner CG iterations per loop, and the inner loops' gradient-norm reduction."""

    outer_loops: int = eqx.field(static=True, default=3)
    inner_steps: int = eqx.field(static=True, default=50)
    gradient_reduction: float = eqx.field(static=True, default=1e-3)


class OuterLoops(eqx.Module):
    """What each outer loop reports (JEDI/OOPS's per-iteration lines); leading axis = outer loop."""

    cost: jax.Array  # (L, 4) nonlinear (J, Jb, Jo, Jq) at the loop's linearisation state
    quadratic_initial: jax.Array  # (L,) quadratic cost at the inner loop's start (= nonlinear J)
    quadratic_final: jax.Array  # (L,) quadratic cost at the inner loop's end
    inner_iterations: jax.Array  # (L,) CG iterations used
    gradient_reduction: jax.Array  # (L,) |grad Jq| at the end / at the start of the inner loop
    inner_converged: jax.Array  # (L,) the requested reduction was reached within inner_steps

    @classmethod
    def none(cls, dtype) -> OuterLoops:
        """Zero outer loops: what the nonlinear formulation reports."""
        empty = jnp.zeros((0,), dtype)
        return cls(
            jnp.zeros((0, 4), dtype),
            empty,
            empty,
            jnp.zeros((0,), jnp.int32),
            empty,
            jnp.zeros((0,), bool),
        )


def minimise_incrementally(
    method, v0: Array, args: WindowArgs, settings: IncrementalSettings
) -> tuple[Array, OuterLoops]:
    """Run ``settings.outer_loops`` outer loops from ``v0``; returns (final control,
    :class:`OuterLoops`).

    ``method`` supplies ``linearised_departures(v, args)`` and ``penalties(v)`` (see
    :class:`dacli.methods.variational.AbstractVariationalMethod`).
    """
    structure = jax.eval_shape(lambda: v0)

    def outer_loop(v, _):
        departures, tangent_linear, adjoint = method.linearised_departures(v, args)
        jb, jq = method.penalties(v)
        jo = 0.5 * jnp.sum(departures**2)
        rhs = -(v + adjoint(departures))  # minus the gradient of Jq at dv = 0

        def hessian_times(direction):
            return direction + adjoint(tangent_linear(direction))

        hessian = lx.FunctionLinearOperator(
            hessian_times, structure, tags=(lx.symmetric_tag, lx.positive_semidefinite_tag)
        )
        start_norm = jnp.linalg.norm(rhs)
        # Absolute tolerance on the two-norm of the residual = the quadratic's gradient; floored at
        # round-off, so that a loop starting at an already converged control counts as converged.
        round_off = 100 * jnp.finfo(v.dtype).eps * (1.0 + jnp.linalg.norm(v))
        tolerance = jnp.maximum(settings.gradient_reduction * start_norm, round_off)
        solver = lx.CG(rtol=0.0, atol=tolerance, norm=optx.two_norm, max_steps=settings.inner_steps)
        solution = lx.linear_solve(hessian, rhs, solver=solver, throw=False)
        increment = solution.value
        change = tangent_linear(increment)
        gradient_end = (v + increment) + adjoint(departures + change)
        quadratic_final = 0.5 * jnp.sum((v + increment) ** 2) + 0.5 * jnp.sum(
            (departures + change) ** 2
        )
        reduction = jnp.where(
            start_norm > 0,
            jnp.linalg.norm(gradient_end) / jnp.where(start_norm > 0, start_norm, 1.0),
            0.0,
        )
        record = (
            jnp.stack([jb + jq + jo, jb, jo, jq]),
            jb + jq + jo,
            quadratic_final,
            solution.stats["num_steps"].astype(jnp.int32),
            reduction,
            solution.result == lx.RESULTS.successful,
        )
        return v + increment, record

    final, records = jax.lax.scan(outer_loop, v0, None, length=settings.outer_loops)
    return final, OuterLoops(*records)
