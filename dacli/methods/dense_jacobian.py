"""Residuals whose linearisation is their Jacobian matrix, built once by forward mode.

Gauss-Newton and Levenberg-Marquardt need the residuals' whole Jacobian every iteration (their
linear solve, a QR, takes it as a matrix). With ``jac="fwd"`` optimistix linearises the residuals
(:func:`jax.linearize`) and lineax materialises that linear function by mapping it over the
identity. Computing the Jacobian with :func:`jax.jacfwd` instead (one batched tangent program) and
handing the minimiser the matrix product is cheaper: on Lorenz-96 (n = 40, a 16-step window, CPU)
0.27 ms against 0.67 ms per Jacobian, and a Gauss-Newton solve of 10 iterations 2.4-3.0 against
3.8-4.9 ms (interleaved rounds), with the same iterates (benchmarks/README.md, DAPPER's dto = 0.2
setup).

Not for reverse-mode dynamics (a user solver or adjoint without forward mode) nor a large
control vector: the Jacobian is p x n numbers, and each linearisation costs n tangent runs even
when only one product is wanted. :class:`dacli.methods.variational.AbstractVariationalMethod`
uses it for exactly the least-squares solvers with ``forward_adjoint = "ForwardMode"``.
Reference: JAX's custom JVP rules, https://docs.jax.dev/en/latest/notebooks/Custom_derivative_rules_for_Python_code.html.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, PyTree


def _is_symbolic_zero(tangent) -> bool:
    return isinstance(tangent, SymbolicZero)


def _all_zero(tangents: PyTree) -> bool:
    return all(_is_symbolic_zero(t) for t in jax.tree.leaves(tangents, is_leaf=_is_symbolic_zero))


def _instantiated(tangents: PyTree) -> PyTree:
    return jax.tree.map(
        lambda t: t.instantiate() if _is_symbolic_zero(t) else t,
        tangents,
        is_leaf=_is_symbolic_zero,
    )


def _with_itself_as_aux(function: Callable[[Array], PyTree]) -> Callable[[Array], tuple]:
    """``function`` returning its value twice: differentiated, and as jacfwd's aux (one run)."""

    def both(u: Array) -> tuple[PyTree, PyTree]:
        value = function(u)
        return value, value

    return both


def with_dense_jacobian(
    residuals: Callable[[Array, PyTree], PyTree], v: Array, others: PyTree
) -> PyTree:
    """``residuals(v, others)``, differentiated in ``v`` through its Jacobian matrix.

    The JVP of ``v`` is ``J dv`` with ``J = jax.jacfwd(residuals)(v, others)``; a tangent of
    ``others`` (tuning differentiates B's scale or the observations) adds an ordinary JVP in
    ``others`` alone. ``residuals`` must not close over traced values: pass them in ``others``.
    """

    @jax.custom_jvp
    def linearised(v: Array, others: PyTree) -> PyTree:
        return residuals(v, others)

    def rule(primals, tangents):
        v, others = primals
        dv, d_others = tangents
        value, parts = None, []
        if not _is_symbolic_zero(dv):
            value_twice = _with_itself_as_aux(lambda u: residuals(u, others))
            jacobian, value = jax.jacfwd(value_twice, has_aux=True)(v)
            parts.append(jax.tree.map(lambda j: jnp.tensordot(j, dv, axes=dv.ndim), jacobian))
        if not _all_zero(d_others):
            value, tangent = jax.jvp(
                lambda o: residuals(v, o), (others,), (_instantiated(d_others),)
            )
            parts.append(tangent)
        if not parts:  # every tangent a symbolic zero
            value = residuals(v, others)
            return value, jax.tree.map(jnp.zeros_like, value)
        return value, functools.reduce(lambda a, b: jax.tree.map(jnp.add, a, b), parts)

    linearised.defjvp(rule, symbolic_zeros=True)
    return linearised(v, others)
