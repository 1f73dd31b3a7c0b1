"""Gradient checks: linearity, tangent-linear, dot-product (adjoint) and Taylor tests.

Autodiff removes the hand-writing of adjoints, not the risk (Errico 1997, "What is an adjoint
model?", BAMS 78): custom derivative rules, non-differentiable operations and approximate
adjoint strategies still break gradients. These are the tests JEDI/OOPS ships for its toy
models, written for any JAX function:

* linearity of the tangent-linear model, M'(a dx1 + b dx2) = a M' dx1 + b M' dx2;
* tangent-linear test, |M(x + a dx) - M(x) - a M' dx| / |M(x + a dx) - M(x)| -> 0 about tenfold
  per decade of a, down to round-off;
* dot-product test, <M' dx, dy> = <dx, M'^T dy>;
* Taylor (gradient) test of a scalar cost, (J(x + a h) - J(x)) / (a <grad J, h>) -> 1 with the
  remainder |J(x + a h) - J(x) - a <grad J, h>| shrinking like a^2.

The tangent-linear M' dx comes from ``jax.jvp`` when the function supports forward mode. A
function with a ``jax.custom_vjp`` rule has no forward mode: the tangent-linear test then uses
the Jacobian built from the vjp rule, and the dot-product test compares the vjp with a central
finite difference (accurate to ~1e-8 relative in float64) under a tolerance widened to match,
and says so. Every check returns a :class:`CheckResult` with its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

ALPHAS = 10.0 ** -np.arange(0, 13)


# A check's verdict. Only FAILED changes the exit code; NOT_APPLICABLE (the strategy cannot
# differentiate this model: no forward mode through a custom_vjp, ...), INCONCLUSIVE (the
# comparison means nothing here, e.g. a minimisation that did not converge) and NOT_RECOMMENDED
# (a strategy the config does not select gives a wrong gradient on this window) are reported
# with their reason and logged as warnings.
PASSED = "passed"
FAILED = "failed"
NOT_APPLICABLE = "not applicable"
INCONCLUSIVE = "inconclusive"
NOT_RECOMMENDED = "not recommended"
STATUSES = (PASSED, FAILED, NOT_APPLICABLE, INCONCLUSIVE, NOT_RECOMMENDED)


@dataclass(frozen=True)
class CheckResult:
    """One check's numbers and verdict: ``status`` is one of :data:`STATUSES`; ``passed`` is
    ``status == "passed"`` (the field given, ``status`` follows it unless set)."""

    check: str
    component: str
    value: float
    tolerance: float
    passed: bool
    detail: str = ""
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", PASSED if self.passed else FAILED)
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")
        object.__setattr__(self, "passed", self.status == PASSED)

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def with_status(self, status: str, reason: str) -> CheckResult:
        """This result with another verdict and its reason appended to the detail."""
        detail = f"{self.detail}; {reason}" if self.detail else reason
        return replace(self, status=status, detail=detail)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Tolerances:
    """Defaults by precision (float64 / float32); every field is configurable."""

    dot_product: float
    tangent_linear: float
    taylor: float
    linearity: float
    finite_difference_dot_product: float

    @classmethod
    def for_dtype(cls, dtype) -> Tolerances:
        if jnp.dtype(dtype) == jnp.float64:
            return cls(
                dot_product=1e-12,
                tangent_linear=1e-6,
                taylor=1e-4,
                linearity=1e-12,
                finite_difference_dot_product=1e-6,
            )
        return cls(
            dot_product=1e-4,
            tangent_linear=1e-2,
            taylor=1e-2,
            linearity=1e-4,
            finite_difference_dot_product=1e-2,
        )


@eqx.filter_jit
def _jvp(function: Callable, x, dx):
    """M' dx by forward mode, compiled once per function and shapes: the forward-mode test, the
    linearity, tangent-linear and dot-product checks of one function all reuse this program."""
    return jax.jvp(function, (x,), (dx,))[1]


@eqx.filter_jit
def _vjp(function: Callable, x, dy):
    """M'^T dy by reverse mode (one compiled program: forward pass and pullback)."""
    return jax.vjp(function, x)[1](dy)[0]


@eqx.filter_jit
def _jacobian_tangent(function: Callable, x, dx):
    """M' dx from the Jacobian the vjp rule builds (no forward mode), compiled once per function."""
    jacobian = jax.jacrev(function)(x)
    return jnp.tensordot(jacobian, dx, axes=dx.ndim)


@eqx.filter_jit
def _evaluate(function: Callable, x):
    """M(x), compiled once per function: every perturbation size and finite difference reuses it."""
    return function(x)


def has_forward_mode(function: Callable, x: Array) -> bool:
    """Whether ``jax.jvp`` works through ``function`` (it does not through custom_vjp rules)."""
    try:  # a real (compiled) jvp: abstract evaluation alone misses errors inside diffrax's loops
        _jvp(function, x, x)
        return True
    except TypeError:
        return False


def tangent_linear(function: Callable, x: Array, dx: Array, forward: bool) -> Array:
    """M' dx from the derivative rules: jvp, or (no forward mode) the Jacobian built by vjp."""
    if forward:
        return _jvp(function, x, dx)
    return _jacobian_tangent(function, x, dx)


def tangent(function: Callable, x: Array, dx: Array, forward: bool) -> Array:
    """M' dx independent of the vjp: exact by jvp, else a central finite difference."""
    if forward:
        return _jvp(function, x, dx)
    # Central differences: truncation ~h^2, round-off ~eps/h, balanced at h ~ eps^(1/3) (scaled).
    step = jnp.finfo(x.dtype).eps ** (1.0 / 3.0) * (1.0 + jnp.linalg.norm(x)) / jnp.linalg.norm(dx)
    return (_evaluate(function, x + step * dx) - _evaluate(function, x - step * dx)) / (2.0 * step)


def _inner(a, b) -> float:
    return float(jnp.vdot(jnp.ravel(a), jnp.ravel(b)))


def _relative(a, b) -> float:
    scale = max(abs(a), abs(b), np.finfo(float).tiny)
    return abs(a - b) / scale


def linearity_check(
    function: Callable,
    x: Array,
    dx1: Array,
    dx2: Array,
    component: str,
    tolerance: float,
    forward: bool = True,
) -> CheckResult:
    """|M'(a dx1 + b dx2) - a M'dx1 - b M'dx2| / |a M'dx1 + b M'dx2| for a = 0.7, b = -1.3."""
    # compiled once per function
    jvp = lambda d: tangent_linear(function, x, d, forward)  # noqa: E731
    combined = jvp(0.7 * dx1 - 1.3 * dx2)
    separate = 0.7 * jvp(dx1) - 1.3 * jvp(dx2)
    error = float(jnp.linalg.norm(combined - separate) / jnp.linalg.norm(separate))
    return CheckResult(
        "linearity",
        component,
        error,
        tolerance,
        bool(error <= tolerance),
        "relative error of M'(a dx1 + b dx2) against a M'dx1 + b M'dx2",
    )


def tangent_linear_check(
    function: Callable,
    x: Array,
    dx: Array,
    component: str,
    tolerance: float,
    alphas=ALPHAS,
    forward: bool = True,
) -> CheckResult:
    """TL test over a = 1 .. 1e-12: minimum relative error and convergence rate per decade.

    A correct tangent-linear model gives errors falling about tenfold per decade until
    round-off takes over; a wrong or non-differentiable one stalls at O(1).
    """
    direction = tangent_linear(function, x, dx, forward)
    base = _evaluate(function, x)  # one compilation for every perturbation size
    measured: list[float] = []
    for alpha in alphas:
        difference = _evaluate(function, x + alpha * dx) - base
        denominator = float(jnp.linalg.norm(difference))
        if denominator == 0.0:
            measured.append(np.nan)
            continue
        measured.append(float(jnp.linalg.norm(difference - alpha * direction)) / denominator)
    errors = np.asarray(measured)
    finite = np.isfinite(errors)
    minimum = float(np.nanmin(errors)) if finite.any() else float("inf")
    best = int(np.nanargmin(errors)) if finite.any() else 0
    # Rate: the median decrease per decade over the first decades (before round-off dominates).
    head = errors[:5][np.isfinite(errors[:5]) & (errors[:5] > 0)]
    rate = float(np.median(head[:-1] / head[1:])) if head.size > 1 else float("nan")
    # Before the minimum, every decade still above tolerance must shrink the error (a correct TL
    # gives ~10x). A stall means the linearisation is wrong where the perturbation is finite —
    # e.g. a rounding step whose zero derivative only matches below the rounding grid.
    stalls = [
        alphas[i]
        for i in range(best)
        if errors[i] > tolerance and errors[i + 1] > tolerance and errors[i] / errors[i + 1] < 2.0
    ]
    passed = minimum <= tolerance and not stalls
    detail = (
        f"min over a=1..1e-{len(alphas) - 1}; convergence {rate:.3g}x per decade "
        "(about 10 when correct)"
    )
    if stalls:
        detail += (
            f"; the error stalls near {errors[np.searchsorted(-alphas, -stalls[0])]:.2g} for a = "
            f"{stalls[0]:g}..{stalls[-1] / 10:g}: a non-differentiable or wrongly linearised "
            "operation"
        )
    elif not passed:
        detail += "; the tangent-linear model does not match the model's finite differences"
    return CheckResult("tangent-linear", component, minimum, tolerance, passed, detail)


def dot_product_check(
    function: Callable,
    x: Array,
    dx: Array,
    dy: Array,
    component: str,
    tolerances: Tolerances,
    forward: bool | None = None,
) -> CheckResult:
    """<M' dx, dy> against <dx, M'^T dy>; the adjoint from jax.vjp."""
    forward = has_forward_mode(function, x) if forward is None else forward
    adjoint = _vjp(function, x, dy)
    left = _inner(tangent(function, x, dx, forward), dy)
    right = _inner(dx, adjoint)
    error = _relative(left, right)
    tolerance = tolerances.dot_product if forward else tolerances.finite_difference_dot_product
    detail = f"<M'dx, dy> = {left:.16g}, <dx, M'^T dy> = {right:.16g}"
    if not forward:
        detail += " (no forward mode: M'dx by central finite differences)"
    return CheckResult("dot-product", component, error, tolerance, bool(error <= tolerance), detail)


def symmetry_check(
    operator: Callable, u: Array, w: Array, component: str, tolerance: float
) -> CheckResult:
    """<A u, w> against <u, A w> for an operator that should be symmetric (e.g. B)."""
    left, right = _inner(operator(u), w), _inner(u, operator(w))
    error = _relative(left, right)
    return CheckResult(
        "symmetry",
        component,
        error,
        tolerance,
        bool(error <= tolerance),
        f"<Au, w> = {left:.16g}, <u, Aw> = {right:.16g}",
    )


def taylor_check(
    cost: Callable,
    gradient: Callable,
    x: Array,
    h: Array,
    component: str,
    tolerance: float,
    alphas=ALPHAS[:9],
) -> CheckResult:
    """(J(x + a h) - J(x)) / (a <g, h>) -> 1; remainder slope ~2 per decade (second order)."""
    j0 = float(cost(x))
    slope = _inner(gradient(x), h)
    ratio_list: list[float] = []
    remainder_list: list[float] = []
    for alpha in alphas:
        change = float(cost(x + alpha * h)) - j0
        ratio_list.append(change / (alpha * slope) if slope != 0 else np.nan)
        remainder_list.append(abs(change - alpha * slope))
    ratios, remainders = np.asarray(ratio_list), np.asarray(remainder_list)
    best = float(np.nanmin(np.abs(ratios - 1.0)))
    head = remainders[:4][remainders[:4] > 0]
    order = float(np.median(np.log10(head[:-1] / head[1:]))) if head.size > 1 else float("nan")
    passed = best <= tolerance
    detail = (
        f"min |ratio - 1| over a=1..1e-{len(alphas) - 1}; remainder order {order:.2f} "
        "(2 when correct)"
    )
    if not passed:
        detail += "; the gradient is inconsistent with the cost"
    return CheckResult("taylor", component, best, tolerance, passed, detail)


def agreement_check(value, reference, component: str, tolerance: float, what: str) -> CheckResult:
    """Relative difference of two gradients (e.g. under two adjoint strategies)."""
    error = float(jnp.linalg.norm(value - reference) / jnp.linalg.norm(reference))
    return CheckResult("agreement", component, error, tolerance, bool(error <= tolerance), what)
