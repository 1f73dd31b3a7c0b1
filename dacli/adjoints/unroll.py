"""How gradients flow through a fixed number of iterations of a learned solver (4DVarNet's).

One spec object per strategy, the same ones the ``minimiser_adjoint`` slot uses:

* ``optimistix.RecursiveCheckpointAdjoint(checkpoints)`` — exact reverse mode through the
  unrolled iterations with binomial checkpointing (``equinox.internal.scan``,
  ``kind="checkpointed"``): memory ~ checkpoints, recomputation ~ log.
* ``diffrax.DirectAdjoint()`` — the plain unrolled ``lax.scan``: every iterate stored; for
  debugging and small K.
* :class:`~dacli.adjoints.stepping.KStepAdjoint` (``OneStepAdjoint`` = k 1) — the first K - k
  iterations under ``stop_gradient``, the last k differentiated (Bolte, Pauwels & Vaiter 2023,
  "One-step differentiation of iterative algorithms", NeurIPS): memory flat in K.
* ``optimistix.ImplicitAdjoint(linear_solver)`` — the iterations are a fixed-point iteration
  z = F(z, theta) (optimistix.FixedPointIteration, K steps); gradients by the implicit-function
  theorem at the final iterate, one linear solve with (I - dF/dz)^T. Exact when the iteration
  has converged (Bai, Kolter & Koltun 2019, "Deep equilibrium models"), O(1) memory.

The forward value is the same for every strategy: K applications of the step.
"""

from __future__ import annotations

from typing import Any, Callable

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import lineax as lx
import optimistix as optx

from dacli.adjoints.stepping import KStepAdjoint


def implicit_adjoint() -> optx.ImplicitAdjoint:
    """ImplicitAdjoint with a matrix-free solver: (I - dF/dz) is neither symmetric nor small."""
    return optx.ImplicitAdjoint(linear_solver=lx.GMRES(rtol=1e-8, atol=1e-8, max_steps=200, restart=40))


def _without_gradient(tree):
    return jax.tree_util.tree_map(lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, tree)


def _scan(step: Callable, z, args, length: int, kind: str = "lax", checkpoints=None):
    if length == 0:
        return z
    body = lambda carry, _: (step(carry, args), None)  # noqa: E731
    return eqxi.scan(body, z, None, length=length, kind=kind, checkpoints=checkpoints)[0]


def iterate(step: Callable[[Any, Any], Any], z0, args, iterations: int, adjoint) -> Any:
    """``step`` applied ``iterations`` times to ``z0`` (``step(z, args)``), differentiable w.r.t.
    ``args`` (and ``z0``) as ``adjoint`` says (see the module docstring)."""
    if isinstance(adjoint, KStepAdjoint):
        live = min(adjoint.k, iterations)
        warm = _scan(step, _without_gradient(z0), _without_gradient(args), iterations - live)
        return _scan(step, _without_gradient(warm), args, live)
    if isinstance(adjoint, optx.ImplicitAdjoint):
        solution = optx.fixed_point(step, optx.FixedPointIteration(rtol=0.0, atol=0.0), z0, args,
                                    max_steps=iterations, throw=False, adjoint=adjoint)
        return solution.value
    if isinstance(adjoint, optx.RecursiveCheckpointAdjoint):
        return _scan(step, z0, args, iterations, "checkpointed", adjoint.checkpoints)
    if isinstance(adjoint, diffrax.DirectAdjoint):
        return _scan(step, z0, args, iterations)
    raise ValueError(f"unsupported solver adjoint {type(adjoint).__name__} (choose from: RecursiveCheckpointAdjoint, "
                     "DirectAdjoint, OneStepAdjoint, KStepAdjoint, ImplicitAdjoint)")
