"""One-step and k-step differentiation through a converged minimisation (Bolte et al. 2023).

Bolte, Pauwels & Vaiter (2023), "One-step differentiation of iterative algorithms", NeurIPS:
run the solver to convergence under ``stop_gradient``, then differentiate only the last k
iterations of a fast algorithm. Here the iteration is Newton's, v+ = v - H^{-1} grad J(v),
with Hessian-vector products and a matrix-free CG solve (lineax): at a fixed point one
differentiated Newton step reproduces the implicit-function gradient exactly (the Jacobian of
the Newton map vanishes there), at the memory cost of k steps instead of the whole solve.
Hessian-vector products are forward-over-reverse, so the dynamics' ``forward_adjoint`` must
support forward mode (DirectAdjoint or ForwardMode) — as for optimistix's ImplicitAdjoint.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PyTree


class KStepAdjoint(eqx.Module):
    """Differentiate only the last ``k`` Newton steps after a converged, undifferentiated solve."""

    k: int = eqx.field(static=True, default=1)
    rtol: float = eqx.field(static=True, default=1e-10)
    atol: float = eqx.field(static=True, default=1e-10)

    def refine(self, gradient: Callable[[Array, PyTree], Array], v: Array, args: PyTree) -> Array:
        """k differentiable Newton steps from the (stopped-gradient) solution ``v``.

        ``gradient(v, args)`` is dJ/dv; the Hessian is applied as its forward-mode derivative.
        """
        # CG cannot reach a tolerance below the precision's round-off: there, float32 iterations
        # break down into NaN (Lorenz-96, dacli check-adjoints --precision float32).
        floor = 100 * float(jnp.finfo(v.dtype).eps)
        solver = lx.CG(
            rtol=max(self.rtol, floor), atol=max(self.atol, floor), max_steps=10 * v.size
        )
        structure = jax.eval_shape(lambda: v)

        def newton_step(_, u):
            def hessian_times(direction):
                return jax.jvp(lambda w: gradient(w, args), (u,), (direction,))[1]

            hessian = lx.FunctionLinearOperator(
                hessian_times, structure, tags=(lx.symmetric_tag, lx.positive_semidefinite_tag)
            )
            return (
                u + lx.linear_solve(hessian, -gradient(u, args), solver=solver, throw=False).value
            )

        # One compiled step body, differentiated k times, from a point with no gradient.
        return jax.lax.fori_loop(0, self.k, newton_step, jax.lax.stop_gradient(v))


def OneStepAdjoint() -> KStepAdjoint:  # noqa: N802  (reads like the other adjoint classes)
    """Bolte et al.'s one-step differentiation: :class:`KStepAdjoint` with k = 1."""
    return KStepAdjoint(k=1)
