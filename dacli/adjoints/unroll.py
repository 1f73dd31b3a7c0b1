"""How gradients flow through a fixed number of iterations of a learned solver (4DVarNet's).

One final strategy class per way of differentiating K applications of a step z -> F(z, args),
all subclasses of :class:`AbstractIterationAdjoint` (equinox's abstract/final pattern):

* :class:`Unrolled` — the plain unrolled ``lax.scan``: every iterate stored; for debugging and
  small K (config name ``DirectAdjoint``).
* :class:`Checkpointed` — exact reverse mode through the unrolled iterations with binomial
  checkpointing (``equinox.internal.scan``, ``kind="checkpointed"``): memory ~ checkpoints,
  recomputation ~ log (config name ``RecursiveCheckpointAdjoint``, the default).
* :class:`KStep` — the first K - k iterations under ``stop_gradient``, the last k differentiated
  (Bolte, Pauwels & Vaiter 2023, "One-step differentiation of iterative algorithms", NeurIPS):
  memory flat in K (config names ``KStepAdjoint``, and ``OneStepAdjoint`` for k = 1).
* :class:`Implicit` — the iterations are a fixed-point iteration z = F(z, theta)
  (optimistix.FixedPointIteration, K steps); gradients by the implicit-function theorem at the
  final iterate, one linear solve with (I - dF/dz)^T. Exact when the iteration has converged
  (Bai, Kolter & Koltun 2019, "Deep equilibrium models"), O(1) memory; wrong when it has not
  (config name ``ImplicitAdjoint``).

The forward value is the same for every strategy: K applications of the step. These are not the
minimiser adjoints of the variational methods (optimistix's, and
:class:`dacli.adjoints.stepping.KStepAdjoint`), which differentiate through a minimisation.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import equinox.internal as eqxi
import jax
import lineax as lx
import optimistix as optx
from jaxtyping import Array, PyTree

Step = Callable[[Any, Any], Any]  # step(z, args) -> the next iterate, same structure as z


def _without_gradient(tree):
    return jax.tree_util.tree_map(
        lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, tree
    )


def _scan(
    step: Step,
    z,
    args,
    length: int,
    kind: Literal["lax", "checkpointed"] = "lax",
    checkpoints: int | None = None,
):
    if length == 0:
        return z
    body = lambda carry, _: (step(carry, args), None)  # noqa: E731
    return eqxi.scan(body, z, None, length=length, kind=kind, checkpoints=checkpoints)[0]


class AbstractIterationAdjoint(eqx.Module):
    """A way to differentiate ``iterations`` applications of a step (see the module docstring)."""

    @abc.abstractmethod
    def iterate(
        self, step: Step, z0: PyTree[Array], args: PyTree, iterations: int
    ) -> PyTree[Array]:
        """``step`` applied ``iterations`` times to ``z0`` (``step(z, args)``), differentiable
        with respect to ``args`` (and ``z0``) in this strategy's way."""


class Unrolled(AbstractIterationAdjoint, strict=True):
    """Reverse mode through a plain ``lax.scan``: every iterate kept. Memory grows with K."""

    def iterate(
        self, step: Step, z0: PyTree[Array], args: PyTree, iterations: int
    ) -> PyTree[Array]:
        return _scan(step, z0, args, iterations)


class Checkpointed(AbstractIterationAdjoint, strict=True):
    """Reverse mode with binomial checkpointing; ``checkpoints`` None lets equinox choose."""

    checkpoints: int | None = eqx.field(static=True, default=None)

    def iterate(
        self, step: Step, z0: PyTree[Array], args: PyTree, iterations: int
    ) -> PyTree[Array]:
        return _scan(step, z0, args, iterations, "checkpointed", self.checkpoints)


class KStep(AbstractIterationAdjoint, strict=True):
    """Only the last ``k`` iterations differentiated (k = 1: one-step differentiation)."""

    k: int = eqx.field(static=True, default=1)

    def iterate(
        self, step: Step, z0: PyTree[Array], args: PyTree, iterations: int
    ) -> PyTree[Array]:
        live = min(self.k, iterations)
        warm = _scan(step, _without_gradient(z0), _without_gradient(args), iterations - live)
        return _scan(step, _without_gradient(warm), args, live)


def _matrix_free_solver() -> lx.AbstractLinearSolver:
    return lx.GMRES(rtol=1e-8, atol=1e-8, max_steps=200, restart=40)


class Implicit(AbstractIterationAdjoint, strict=True):
    """Implicit-function gradient at the final iterate; ``linear_solver`` solves with
    (I - dF/dz)^T, which is neither symmetric nor small (GMRES by default)."""

    linear_solver: lx.AbstractLinearSolver = eqx.field(default_factory=_matrix_free_solver)

    def iterate(
        self, step: Step, z0: PyTree[Array], args: PyTree, iterations: int
    ) -> PyTree[Array]:
        adjoint = optx.ImplicitAdjoint(linear_solver=self.linear_solver)
        solution: optx.Solution = optx.fixed_point(
            step,
            optx.FixedPointIteration(rtol=0.0, atol=0.0),
            z0,
            args,
            max_steps=iterations,
            throw=False,
            adjoint=adjoint,
        )
        return solution.value
