"""Gradient checks: linearity, tangent-linear, dot-product (adjoint) and Taylor tests.

Autodiff removes the hand-writing of adjoints, not the risk (Errico 1997, "What is an adjoint
model?", BAMS 78): custom derivative rules, non-differentiable operations and approximate
adjoint strategies still break gradients. These are the tests JEDI/OOPS ships for its toy
models, written for any JAX function:

* linearity of the tangent-linear model, M'(a dx1 + b dx2) = a M' dx1 + b M' dx2;
* tangent-linear test, |M(x + a dx) - M(x) - a M' dx| / |M(x + a dx) - M(x)| -> 0 about tenfold
  per decade of a, down to round-off; judged against the numerics (truncation C2 a plus
  round-off R / a, R checked against float epsilon), so a long chaotic window or a high-order
  solver passes at its floor 2 sqrt(C2 R) above the tolerance, and a wrong rule, rounding or a
  lower-precision computation fails (:func:`tangent_linear_check`);
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

    @classmethod
    def unjudged(
        cls, check: str, component: str, tolerance: float, status: str, reason: str
    ) -> CheckResult:
        """A check that produced no number (not applicable, inconclusive), with its reason."""
        return cls(check, component, float("nan"), tolerance, False, reason, status=status)

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


def cannot_differentiate(exc: BaseException) -> bool:
    """Whether ``exc`` is JAX or a library refusing a derivative — forward mode through a
    custom_vjp (JAX's TypeError, equinox's "cannot be autodifferentiated" RuntimeError), reverse
    mode through a dynamic loop (ValueError), ... — so the strategy is *not applicable*, rather
    than a bug to report."""
    if isinstance(exc, (TypeError, NotImplementedError, ValueError)):
        return True
    return isinstance(exc, RuntimeError) and "autodifferentiated" in str(exc)


def first_line(exc: BaseException) -> str:
    """An exception's message in one line (its type when it has none), for a check's detail."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@eqx.filter_jit
def _jvp(function: Callable, x, dx):
    """M' dx by forward mode, compiled once per function and shapes: the forward-mode test, the
    linearity, tangent-linear and dot-product checks of one function all reuse this program."""
    return jax.jvp(function, (x,), (dx,))[1]


@eqx.filter_jit
def _linearised_pair(function: Callable, x, dx, dy):
    """(M' dx, M'^T dy) from one linearisation of ``function`` at x: the tangent-linear map and
    its transpose (what reverse mode runs) at the very same point. Separate jvp and vjp programs
    may round the trajectory differently (XLA fuses each program its own way), and a long
    chaotic window amplifies that into a disagreement that is no adjoint error: measured 3.3e-12
    on Lorenz-96 over 4 time units (80 Tsit5 steps); 1.5e-14 from one linearisation."""
    _, linear = jax.linearize(function, x)
    return linear(dx), jax.linear_transpose(linear, x)(dy)[0]


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


# Central-difference steps, as multiples of the balanced step eps^(1/3) (1 + |x|) / |dx|: a
# strongly nonlinear window (large third derivative) needs a smaller one, a noisy model a larger.
DIFFERENCE_SCALES = (1.0, 0.1, 10.0)


def tangent(function: Callable, x: Array, dx: Array, forward: bool, scale: float = 1.0) -> Array:
    """M' dx independent of the vjp: exact by jvp, else a central finite difference (its step
    ``scale`` times the balanced one)."""
    if forward:
        return _jvp(function, x, dx)
    # Central differences: truncation ~h^2, round-off ~eps/h, balanced at h ~ eps^(1/3) (scaled).
    step = (
        scale
        * jnp.finfo(x.dtype).eps ** (1.0 / 3.0)
        * (1.0 + jnp.linalg.norm(x))
        / jnp.linalg.norm(dx)
    )
    return (_evaluate(function, x + step * dx) - _evaluate(function, x - step * dx)) / (2.0 * step)


def _inner(a, b) -> float:
    return float(jnp.vdot(jnp.ravel(a), jnp.ravel(b)))


def relative_difference(a, b) -> float:
    """|a - b| relative to the larger of the two (1 when one of them is 0)."""
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


# Tangent-linear criterion (see tangent_linear_check). The error of the TL test behaves as
# e(a) ~ C2 a + R / a: truncation (the model's curvature, first order in a) and round-off (the
# difference M(x + a dx) - M(x) loses ~eps |x| absolute, i.e. R ~ eps |x| / |dx| relative to
# a |M' dx|). A correct rule reaches the floor min_a (C2 a + R / a) = 2 sqrt(C2 R); a wrong one
# adds a constant (its relative error) that stops the tenfold decrease.
TL_NONLINEAR = 0.5  # decades with a larger error are outside the linear regime: not judged
TL_RATE = 5.0  # median decrease per decade the truncation branch must show (10 when correct)
TL_FLOOR_FACTOR = 4.0  # minimum allowed above the predicted floor 2 sqrt(C2 R) (grid, noise)
TL_ROUNDOFF_SAFETY = 1000.0  # measured round-off allowed above eps (|x|/|dx| + |M|/|M'dx|)
TL_CLIFF = 1000.0  # a drop larger than this within one decade is a discontinuity, not Taylor


@dataclass(frozen=True)
class TangentLinearFit:
    """The TL test's error curve read as e(a) ~ C2 a + R / a (see :func:`fit_tangent_linear`).

    ``minimum`` and ``best``: the smallest error and its index; ``rate``: median decrease per
    decade over the truncation branch (NaN when fewer than two of its decades lie above
    round-off); ``curvature``: C2, the smallest e(a) / a on that branch; ``roundoff``: R
    measured on the two smallest perturbations of the round-off branch (``estimate`` where it
    is not visible); ``peak``: the largest R any round-off decade (one whose error has
    risen above twice the minimum) implies (where a lower-precision computation shows);
    ``estimate``: R predicted from float epsilon; ``floor``: 2 sqrt(C2 R); ``cliff``: index i
    of a drop > TL_CLIFF from decade i to i + 1 before the minimum (-1 when none); ``stalls``:
    indices i where the error, above tolerance and round-off, shrank less than 2x from decade
    i to i + 1 before the minimum.
    """

    minimum: float
    best: int
    rate: float
    curvature: float
    roundoff: float
    peak: float
    estimate: float
    floor: float
    cliff: int
    stalls: tuple[int, ...]


def fit_tangent_linear(
    errors: np.ndarray, alphas: np.ndarray, estimate: float, tolerance: float
) -> TangentLinearFit:
    """Read a TL error curve (relative errors at decreasing ``alphas``) as truncation + round-off.

    ``estimate`` is the round-off level R predicted from float epsilon and the scales of x and
    M(x). Pure numpy: no model is evaluated.
    """
    errors, alphas = np.asarray(errors, float), np.asarray(alphas, float)
    finite = np.isfinite(errors)
    if not finite.any():
        nan = np.nan
        return TangentLinearFit(np.inf, 0, nan, nan, nan, nan, estimate, nan, -1, ())
    best = int(np.nanargmin(errors))
    minimum = float(errors[best])
    # Round-off branch: the decades below the minimum until the error saturates (e ~ 1: the
    # difference is noise); R from its two smallest perturbations, where a wrong rule's constant
    # error (times a) weighs least.
    below = []
    for i in range(best + 1, len(errors)):
        if not (finite[i] and 0 < errors[i] < TL_NONLINEAR):
            break  # saturated: smaller perturbations only measure noise
        below.append(i)
    last = below[-2:]
    roundoff = float(np.exp(np.mean(np.log(errors[last] * alphas[last])))) if last else estimate
    # Round-off shows as an error rising again below the minimum; a wrong rule's plateau
    # continuing there (within 2x of the minimum) is not round-off.
    rising = [i for i in below if errors[i] > 2.0 * minimum]
    peak = float(np.max(errors[rising] * alphas[rising])) if rising else estimate
    level = max(roundoff, estimate)
    # Truncation branch: linear regime, at or above the minimum, round-off under a third.
    branch = [
        i
        for i in range(best + 1)
        if finite[i] and 0 < errors[i] < TL_NONLINEAR and errors[i] >= 3 * level / alphas[i]
    ]
    pairs = [i for i in branch if i + 1 in branch]
    rate = float(np.median(errors[pairs] / errors[[i + 1 for i in pairs]])) if pairs else np.nan
    curvature = float(np.min(errors[branch] / alphas[branch])) if branch else np.nan
    floor = 2.0 * float(np.sqrt(curvature * roundoff)) if branch else np.nan
    ratios = errors[:best] / errors[1 : best + 1]
    cliff = next((i for i in range(best) if errors[i] < 2.0 and ratios[i] > TL_CLIFF), -1)
    stalls = tuple(
        i
        for i in range(best)
        if errors[i + 1] > tolerance and errors[i + 1] > 3 * level / alphas[i + 1] and ratios[i] < 2
    )
    return TangentLinearFit(
        minimum, best, rate, curvature, roundoff, peak, estimate, floor, cliff, stalls
    )


def _decades(alphas: np.ndarray, indices) -> str:
    return f"a = {alphas[indices[0]]:g}..{alphas[indices[-1]]:g}"


def _tangent_linear_numbers(fit: TangentLinearFit, alphas: np.ndarray) -> str:
    """The curve's numbers: minimum, rate, predicted floor and round-off against its estimate."""
    rate = f"{fit.rate:.3g}x" if np.isfinite(fit.rate) else "not measurable"
    text = (
        f"min {fit.minimum:.3g} at a = {alphas[fit.best]:g} over a = 1..{alphas[-1]:g}; "
        f"convergence {rate} per decade above round-off (about 10 when correct)"
    )
    if np.isfinite(fit.floor):
        text += (
            f"; predicted floor 2 sqrt(C2 R) = {fit.floor:.2g} (C2 = {fit.curvature:.2g}, "
            f"round-off R = {fit.roundoff:.2g}, {fit.roundoff / fit.estimate:.2g}x the "
            f"float-epsilon estimate {fit.estimate:.2g})"
        )
    return text


def _stall(fit: TangentLinearFit, alphas: np.ndarray, errors: np.ndarray) -> str:
    """'the error stalls near E for a = ..' for decades that do not shrink, or ''."""
    plateau = [i for i, e in enumerate(errors) if np.isfinite(e) and e <= 2.0 * fit.minimum]
    if fit.stalls:
        span = [fit.stalls[0], fit.stalls[-1] + 1]
    elif len(plateau) >= 3:
        span = [plateau[0], plateau[-1]]
    else:
        return ""
    level = float(np.nanmedian(errors[span[0] : span[1] + 1]))
    return f"the error stalls near {level:.2g} for {_decades(alphas, span)}"


def _tangent_linear_fault(fit: TangentLinearFit, alphas: np.ndarray, errors: np.ndarray) -> str:
    """Why a TL curve is not that of a correct model: the first signature found, in words."""
    stall = _stall(fit, alphas, errors)
    wrong = "a non-differentiable or wrongly linearised operation"
    if fit.cliff >= 0:
        drop = errors[fit.cliff] / errors[fit.cliff + 1]
        lead = f"{stall}, then drops" if stall else "the error drops"
        return (
            f"{lead} {drop:.2g}x within one decade "
            f"({_decades(alphas, [fit.cliff, fit.cliff + 1])}): {wrong} (rounding, a kink or "
            "branch within the perturbation)"
        )
    if stall and not fit.stalls:  # a plateau around the minimum: the rule's own error
        return f"{stall}: {wrong}; the tangent-linear model is off by about that much"
    if fit.peak > TL_ROUNDOFF_SAFETY * fit.estimate:
        return (
            f"round-off up to {fit.peak / fit.estimate:.2g}x the float-epsilon estimate (allowed "
            f"{TL_ROUNDOFF_SAFETY:g}x): part of the model computes in lower precision "
            "(e.g. a float32 downcast)"
        )
    if stall:
        return f"{stall}: {wrong}"
    if not np.isfinite(fit.rate):
        return (
            "fewer than two decades lie in the linear regime above round-off: the window is too "
            "nonlinear for this precision to test (test a shorter window, or float64), or the "
            "tangent-linear model is wrong"
        )
    if fit.rate < TL_RATE:
        return (
            f"the error does not fall about tenfold per decade (at least {TL_RATE:g}x): the "
            "tangent-linear model does not match the model's finite differences"
        )
    return (
        f"the minimum is {fit.minimum / fit.floor:.2g}x the predicted floor (allowed "
        f"{TL_FLOOR_FACTOR:g}x): the tangent-linear model is wrong by about {fit.minimum:.2g} "
        "relative"
    )


def _tangent_linear_verdict(
    fit: TangentLinearFit, alphas: np.ndarray, errors: np.ndarray, tolerance: float
) -> tuple[bool, str]:
    """Pass/fail of a fitted TL curve and the sentence that says why (see tangent_linear_check)."""
    if not np.isfinite(fit.minimum):
        return False, "no finite error: M' dx or the model is NaN or inf"
    if fit.cliff >= 0:
        return False, _tangent_linear_fault(fit, alphas, errors)
    if fit.minimum <= tolerance:
        return True, f"within the tolerance {tolerance:g}"
    explained = (
        np.isfinite(fit.floor)
        and fit.rate >= TL_RATE
        and fit.minimum <= TL_FLOOR_FACTOR * fit.floor
        and fit.peak <= TL_ROUNDOFF_SAFETY * fit.estimate
    )
    if explained:
        return True, (
            f"above the tolerance {tolerance:g} but within {TL_FLOOR_FACTOR:g}x the predicted "
            "floor, with first-order convergence: truncation and round-off of a correct "
            "tangent-linear model"
        )
    return False, _tangent_linear_fault(fit, alphas, errors)


def tangent_linear_check(
    function: Callable,
    x: Array,
    dx: Array,
    component: str,
    tolerance: float,
    alphas=ALPHAS,
    forward: bool = True,
) -> CheckResult:
    """TL test over a = 1 .. 1e-12, judged against the numerics of a correct model.

    The relative error e(a) = |M(x + a dx) - M(x) - a M'dx| / |M(x + a dx) - M(x)| of a correct
    tangent-linear model is truncation plus round-off, e(a) ~ C2 a + R / a (:class:`
    TangentLinearFit`). It passes when no abrupt drop (> TL_CLIFF in a decade: a rounding or
    kink) precedes the minimum, and either the minimum is within ``tolerance`` or it is
    explained by the numerics: the truncation branch falls at least TL_RATE-fold per decade,
    the minimum is within TL_FLOOR_FACTOR of the floor 2 sqrt(C2 R) (C2 fitted from the
    truncation branch, R measured below the minimum), and R is within TL_ROUNDOFF_SAFETY of the
    float-epsilon estimate eps (|x| / |dx| + |M(x)| / |M'dx|). A long chaotic window or a
    high-order solver (large C2) thus passes above the tolerance; a wrong rule (a plateau at its
    relative error), a rounding step or a lower-precision computation fails. Not a proof: a
    rule error below the floor is invisible to finite differences.
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
    errors, alphas = np.asarray(measured), np.asarray(alphas, float)
    if not bool(jnp.all(jnp.isfinite(direction))):
        errors = np.full_like(errors, np.nan)
    eps = float(jnp.finfo(x.dtype).eps)
    estimate = eps * (
        float(jnp.linalg.norm(x)) / float(jnp.linalg.norm(dx))
        + float(jnp.linalg.norm(base))
        / max(float(jnp.linalg.norm(direction)), np.finfo(float).tiny)
    )
    fit = fit_tangent_linear(errors, alphas, estimate, tolerance)
    passed, verdict = _tangent_linear_verdict(fit, alphas, errors, tolerance)
    detail = f"{_tangent_linear_numbers(fit, alphas)}; {verdict}"
    return CheckResult("tangent-linear", component, fit.minimum, tolerance, passed, detail)


def dot_product_check(
    function: Callable,
    x: Array,
    dx: Array,
    dy: Array,
    component: str,
    tolerances: Tolerances,
    forward: bool | None = None,
) -> CheckResult:
    """<M' dx, dy> against <dx, M'^T dy>.

    With forward mode both come from one linearisation (:func:`_linearised_pair`: the
    tangent-linear map and its transpose at the same point); without it (a custom_vjp) the
    adjoint is jax.vjp's and M' dx a central finite difference.
    """
    forward = has_forward_mode(function, x) if forward is None else forward
    if forward:
        tangent_linear, adjoint = _linearised_pair(function, x, dx, dy)
        left, right = _inner(tangent_linear, dy), _inner(dx, adjoint)
    else:
        # The best of the central differences over DIFFERENCE_SCALES (a wrong rule is off at
        # every step; a correct one agrees at the step that suits the window).
        right = _inner(dx, _vjp(function, x, dy))
        lefts = [_inner(tangent(function, x, dx, False, scale), dy) for scale in DIFFERENCE_SCALES]
        left = min(lefts, key=lambda value: relative_difference(value, right))
    error = relative_difference(left, right)
    tolerance = tolerances.dot_product if forward else tolerances.finite_difference_dot_product
    detail = f"<M'dx, dy> = {left:.16g}, <dx, M'^T dy> = {right:.16g}"
    if not forward:
        detail += (
            " (no forward mode: M'dx by central finite differences, the best of steps "
            f"{', '.join(f'{s:g}' for s in DIFFERENCE_SCALES)} x eps^(1/3) (1 + |x|) / |dx|)"
        )
    return CheckResult("dot-product", component, error, tolerance, bool(error <= tolerance), detail)


def adjoint_rule_check(
    function: Callable,
    rule_function: Callable,
    x: Array,
    dx: Array,
    dy: Array,
    component: str,
    tolerance: float,
) -> CheckResult:
    """A hand-written adjoint against autodiff's tangent-linear model: <M' dx, dy> with M' dx by
    :func:`jax.jvp` of ``function`` against <dx, M'^T dy> with M'^T dy by :func:`jax.vjp` of
    ``rule_function`` (the same map, differentiated in reverse mode by a ``jax.custom_vjp``
    rule). Errico's test of an adjoint model against its tangent-linear model (BAMS 78, 1997);
    a wrong term in the rule is off by far more than round-off. The two products come from two
    programs, whose trajectories round apart: ``tolerance`` allows for it."""
    left = _inner(_jvp(function, x, dx), dy)
    right = _inner(dx, _vjp(rule_function, x, dy))
    error = relative_difference(left, right)
    detail = (
        f"<M'dx, dy> = {left:.16g} (autodiff tangent-linear), <dx, M'^T dy> = {right:.16g} "
        "(the model's hand-written adjoint)"
    )
    return CheckResult("dot-product", component, error, tolerance, bool(error <= tolerance), detail)


def symmetry_check(
    operator: Callable, u: Array, w: Array, component: str, tolerance: float
) -> CheckResult:
    """<A u, w> against <u, A w> for an operator that should be symmetric (e.g. B)."""
    left, right = _inner(operator(u), w), _inner(u, operator(w))
    error = relative_difference(left, right)
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
    alphas=ALPHAS,
) -> CheckResult:
    """(J(x + a h) - J(x)) / (a <g, h>) -> 1; remainder slope ~2 per decade (second order).

    Passes when the best |ratio - 1| is within ``tolerance``, or when it is explained by the
    numerics as in :func:`tangent_linear_check` (|ratio - 1| ~ C2 a + R / a, R against the
    float-epsilon estimate eps (|x| / |h| + |J| / |<g, h>|)): a long chaotic window or a
    high-order solver has a large curvature C2 and a floor above the tolerance; an inconsistent
    gradient keeps |ratio - 1| at its own relative error.
    """
    j0 = float(cost(x))
    slope = _inner(gradient(x), h)
    ratio_list: list[float] = []
    remainder_list: list[float] = []
    for alpha in alphas:
        change = float(cost(x + alpha * h)) - j0
        ratio_list.append(change / (alpha * slope) if slope != 0 else np.nan)
        remainder_list.append(abs(change - alpha * slope))
    ratios, remainders = np.asarray(ratio_list), np.asarray(remainder_list)
    errors, alphas = np.abs(ratios - 1.0), np.asarray(alphas, float)
    best = float(np.nanmin(errors)) if np.isfinite(errors).any() else float("inf")
    # the remainder's order over the first decades of the linear regime (|ratio - 1| < 0.5)
    linear = np.flatnonzero(np.isfinite(errors) & (errors < TL_NONLINEAR) & (remainders > 0))[:4]
    head = remainders[linear]
    order = float(np.median(np.log10(head[:-1] / head[1:]))) if head.size > 1 else float("nan")
    eps = float(jnp.finfo(x.dtype).eps)
    scale = max(abs(slope), np.finfo(float).tiny)
    estimate = eps * (float(jnp.linalg.norm(x)) / float(jnp.linalg.norm(h)) + abs(j0) / scale)
    fit = fit_tangent_linear(errors, alphas, estimate, tolerance)
    detail = (
        f"min |ratio - 1| over a=1..1e-{len(alphas) - 1}; remainder order {order:.2f} "
        "(2 when correct)"
    )
    explained = (
        fit.cliff < 0
        and np.isfinite(fit.floor)
        and fit.rate >= TL_RATE
        and fit.minimum <= TL_FLOOR_FACTOR * fit.floor
        and fit.peak <= TL_ROUNDOFF_SAFETY * fit.estimate
    )
    passed = best <= tolerance or bool(explained)
    if best > tolerance and explained:
        detail += (
            f"; above the tolerance {tolerance:g} but within {TL_FLOOR_FACTOR:g}x the predicted "
            f"floor {fit.floor:.2g} (C2 = {fit.curvature:.2g}, R = {fit.roundoff:.2g}), with "
            "first-order convergence of |ratio - 1|: truncation and round-off of a correct "
            "gradient"
        )
    if not passed:
        detail += "; the gradient is inconsistent with the cost"
    return CheckResult("taylor", component, best, tolerance, passed, detail)


def agreement_check(value, reference, component: str, tolerance: float, what: str) -> CheckResult:
    """Relative difference of two gradients (e.g. under two adjoint strategies)."""
    error = float(jnp.linalg.norm(value - reference) / jnp.linalg.norm(reference))
    return CheckResult("agreement", component, error, tolerance, bool(error <= tolerance), what)
