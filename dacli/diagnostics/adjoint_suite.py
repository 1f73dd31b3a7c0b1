"""The full gradient-check suite for one 4DVar problem (what ``dacli check-adjoints`` runs).

Components checked, each with the tests of :mod:`dacli.diagnostics.adjoint_checks`:

* ``model step`` and ``model window`` — the dynamics over one step and the whole window
  (linearity, tangent-linear, dot-product);
* ``observation operator`` — H on the window trajectory (linearity, tangent-linear, dot-product);
* ``B^1/2`` (dot-product) and ``B`` (symmetry);
* ``cost J`` — Taylor test with the gradient from the configured ``forward_adjoint``;
* ``forward_adjoint`` — dJ/dv under every diffrax strategy against ``DirectAdjoint``;
* ``minimiser_adjoint`` — a hyperparameter gradient, d/d(log B-scale) of 1/2 |xa - x_ref|^2,
  under every minimiser adjoint against full unrolling of the minimiser, and as the configured
  settings compute it against finite differences
  (:mod:`dacli.diagnostics.analysis_gradient_checks`).

Levels: ``"quick"`` runs the dot-product, tangent-linear and Taylor tests only (the model, H,
B^1/2 and the cost: what a model's own CI needs on every commit); ``"full"`` adds linearity,
symmetry, the incremental linearisation and every strategy. With a :class:`Selection` (a
config run), a strategy the config does not select that gives a wrong gradient is *not
recommended* rather than failed; a strategy that cannot differentiate the model is *not
applicable* (see :data:`dacli.diagnostics.adjoint_checks.STATUSES`).

Derivatives of the model itself (first three components) are taken with ``DirectAdjoint``,
which supports forward and reverse mode. The minimiser-adjoint check also uses ``DirectAdjoint``
for the dynamics: ``ImplicitAdjoint`` needs Hessian-vector products (forward over reverse),
which JAX cannot take through the custom_vjp rules of BacksolveAdjoint or of
RecursiveCheckpointAdjoint on diffeqsolve's path (fewer checkpoints than steps); DirectAdjoint
has them on every path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from dacli.adjoints.stepping import KStepAdjoint
from dacli.diagnostics.adjoint_checks import (
    NOT_APPLICABLE,
    NOT_RECOMMENDED,
    CheckResult,
    Tolerances,
    adjoint_rule_check,
    agreement_check,
    cannot_differentiate,
    dot_product_check,
    first_line,
    has_forward_mode,
    linearity_check,
    symmetry_check,
    tangent_linear_check,
    taylor_check,
)
from dacli.diagnostics.analysis_gradient_checks import (
    check_configured_gradient,
    check_minimiser_strategies,
)
from dacli.methods.signatures import State, Time
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.models.base import adjoint_rule
from dacli.models.integrate import integrate
from dacli.observations.operator import WindowObservations, apply_observation_operator

FORWARD_ADJOINTS: dict[str, Callable[[], diffrax.AbstractAdjoint]] = {
    "RecursiveCheckpointAdjoint": diffrax.RecursiveCheckpointAdjoint,
    "BacksolveAdjoint": diffrax.BacksolveAdjoint,
    "ForwardMode": diffrax.ForwardMode,
}


@dataclass(frozen=True)
class SuiteTolerances:
    """Per-check tolerances; strategy tolerances where the physics makes a strategy approximate."""

    checks: Tolerances
    exact_strategy: float
    backsolve: float
    minimiser_strategy: float
    configured_gradient: float

    @classmethod
    def for_dtype(cls, dtype) -> SuiteTolerances:
        float64 = jnp.dtype(dtype) == jnp.float64
        return cls(
            checks=Tolerances.for_dtype(dtype),
            exact_strategy=1e-10 if float64 else 1e-4,
            # BacksolveAdjoint re-solves the dynamics backwards: approximate by design
            # (measured 1.4e-3 on a 20-step Lorenz-96 window).
            backsolve=1e-2 if float64 else 5e-2,
            # Full unrolling is limited by the minimiser's own convergence; implicit, one-step and
            # k-step are exact only at the optimum.
            minimiser_strategy=1e-4 if float64 else 1e-2,
            # Central differences of a loss through a solve that stops at rtol: the best of
            # three steps agrees to ~1e-4 on a converged solve (measured); a gradient of the
            # wrong solve is off by O(1).
            configured_gradient=1e-2 if float64 else 5e-2,
        )


def _guarded(component: str, tolerance: float, compute) -> CheckResult:
    """Run one agreement check; a strategy that cannot differentiate the model (no forward mode
    through a custom_vjp, ...) is *not applicable*, not a failure and not a crash."""
    try:
        return compute()
    except Exception as exc:
        if not cannot_differentiate(exc):
            raise
        return CheckResult.unjudged(
            "agreement",
            component,
            tolerance,
            NOT_APPLICABLE,
            f"this strategy cannot differentiate the model: {first_line(exc)}",
        )


@dataclass(frozen=True)
class Selection:
    """The strategies a configuration selects (registry names; ``explicit``: set in the file,
    not defaulted). A failing strategy it does not select is *not recommended*, not failed.
    None instead of a Selection (the built-in suite): every strategy counts."""

    forward_adjoint: str
    minimiser_adjoint: str
    explicit: frozenset[str] = frozenset()

    def judge(self, result: CheckResult, slot: str, label: str) -> CheckResult:
        """``result`` of strategy ``label`` in ``slot`` ("forward_adjoint" or
        "minimiser_adjoint"), re-judged for this selection."""
        selected = getattr(self, slot)
        if label.split("(")[0] == selected.split("(")[0] or not result.failed:
            return result
        return result.with_status(
            NOT_RECOMMENDED,
            f"not the configured {slot} ({selected}): do not select {label} for this model and "
            "window",
        )


def _directions(key, shape, dtype, count):
    keys = jax.random.split(key, count)
    return [jax.random.normal(k, shape, dtype) for k in keys]


def _window_end(method, dynamics, adjoint, t_start: Time, nsteps: int) -> Callable:
    """x0 -> the state after ``nsteps`` steps of ``dynamics``, differentiated through
    ``adjoint``: one compiled program, its trace shared by every check that calls it."""
    return eqx.filter_jit(
        lambda state: integrate(
            dynamics, state, t_start, nsteps, method.dt, method.ode_solver, adjoint
        )[-1]
    )


def check_model(
    method: StrongConstraint4DVar,
    x: State,
    t_start: Time,
    key: PRNGKeyArray,
    tol: Tolerances,
    name: str,
    quick: bool = False,
) -> list[CheckResult]:
    """Linearity (not ``quick``), TL and dot-product tests of one step and of the whole
    window."""
    results = []
    dx1, dx2, dy = _directions(key, x.shape, x.dtype, 3)
    windows = _model_windows(method, x, t_start, name)
    for component, _, model, forward in windows:
        if not quick:
            results.append(
                linearity_check(model, x, dx1, dx2, component, tol.linearity, forward=forward)
            )
        results.append(
            tangent_linear_check(model, x, dx1, component, tol.tangent_linear, forward=forward)
        )
        results.append(dot_product_check(model, x, dx1, dy, component, tol, forward=forward))
    return results + _rule_checks(method, windows, x, t_start, key, tol)


def _model_windows(method, x: State, t_start: Time, name: str) -> list[tuple]:
    """(component, steps, the model over them under DirectAdjoint, whether it has forward mode)
    for one step and the whole window: built and probed once for every check of the model."""
    windows = []
    for component, nsteps in ((f"{name}: model step", 1), (f"{name}: model window", method.nsteps)):
        model = _window_end(method, method.dynamics, diffrax.DirectAdjoint(), t_start, nsteps)
        windows.append((component, nsteps, model, has_forward_mode(model, x)))
    return windows


# The adjoint-rule check's tolerance over the dot-product test's: its two products come from two
# programs (the tangent-linear model's and the rule's), whose trajectories round apart.
RULE_TOLERANCE_FACTOR = 100.0


def check_adjoint_rule(
    method: StrongConstraint4DVar,
    x: State,
    t_start: Time,
    key: PRNGKeyArray,
    tol: Tolerances,
    name: str,
) -> list[CheckResult]:
    """The model's hand-written adjoint (:meth:`dacli.models.base.Dynamics.with_adjoint_rule`,
    what ``dacli assimilate`` runs where nothing linearises forward) against autodiff's
    tangent-linear model, over one step and the whole window, the rule's reverse pass under the
    configured ``forward_adjoint`` (RecursiveCheckpointAdjoint in place of BacksolveAdjoint).
    Nothing when the model has no rule (:func:`dacli.models.base.adjoint_rule`) or no
    tangent-linear model (the method's dynamics are the rule already, or have no forward
    mode)."""
    return _rule_checks(method, _model_windows(method, x, t_start, name), x, t_start, key, tol)


def _rule_checks(method, windows: list[tuple], x, t_start, key, tol) -> list[CheckResult]:
    """:func:`check_adjoint_rule` on the model windows of :func:`_model_windows`."""
    rule = adjoint_rule(method.dynamics)
    if rule is None or rule is method.dynamics:
        return []
    dx, dy = _directions(jax.random.fold_in(key, 7), x.shape, x.dtype, 2)
    # BacksolveAdjoint's gradient is approximate by design (judged by the strategy checks): the
    # rule is checked through the exact checkpointed path instead
    adjoint = method.forward_adjoint
    if isinstance(adjoint, diffrax.BacksolveAdjoint):
        adjoint = diffrax.RecursiveCheckpointAdjoint()
    results = []
    for component, nsteps, tangent_model, forward in windows:
        if not forward:  # no tangent-linear model to test against
            return []
        results.append(
            adjoint_rule_check(
                tangent_model,
                _window_end(method, rule, adjoint, t_start, nsteps),
                x,
                dx,
                dy,
                f"{component} (hand-written adjoint, {type(adjoint).__name__})",
                RULE_TOLERANCE_FACTOR * tol.dot_product,
            )
        )
    return results


def check_observation_operator(
    method,
    x: State,
    t_start: Time,
    obs: WindowObservations,
    key: PRNGKeyArray,
    tol: Tolerances,
    name: str,
    quick: bool = False,
) -> list[CheckResult]:
    """Linearity (not ``quick``), TL and dot-product tests of H on the window trajectory."""
    trajectory = integrate(
        method.dynamics,
        x,
        t_start,
        method.nsteps,
        method.dt,
        method.ode_solver,
        diffrax.DirectAdjoint(),
    )
    d1, d2 = _directions(key, trajectory.shape, x.dtype, 2)
    dy = jax.random.normal(jax.random.fold_in(key, 1), obs.values.shape, x.dtype)
    operator = lambda traj: apply_observation_operator(traj, obs)  # noqa: E731
    component = f"{name}: observation operator"
    return (
        [] if quick else [linearity_check(operator, trajectory, d1, d2, component, tol.linearity)]
    ) + [
        tangent_linear_check(operator, trajectory, d1, component, tol.tangent_linear),
        dot_product_check(operator, trajectory, d1, dy, component, tol, forward=True),
    ]


def check_covariance(
    method,
    key: PRNGKeyArray,
    tol: Tolerances,
    name: str,
    size: int,
    dtype,
    quick: bool = False,
) -> list[CheckResult]:
    """B^{1/2} (and, weak constraint, Q^{1/2}): dot-product test of the root, symmetry of the
    covariance (not ``quick``)."""
    u, w = _directions(key, (size,), dtype, 2)
    roots = [("B", method.background_sqrt.mv)]
    if getattr(method, "model_error_sqrt", None) is not None:
        roots.append(("Q", method.model_error_sqrt.mv))
    results = []
    for label, root in roots:

        def covariance(vector, root=root):
            _, pullback = jax.vjp(root, jnp.zeros_like(vector))
            return root(pullback(vector)[0])  # B u = B^{1/2} (B^{1/2})^T u

        results.append(dot_product_check(root, u, u, w, f"{name}: {label}^1/2", tol, forward=True))
        if not quick:
            results.append(symmetry_check(covariance, u, w, f"{name}: {label}", tol.dot_product))
    return results


def _control(method, background, key, scale=0.3):
    """A random control vector of the method's shape (weak constraint: (K + 1, n))."""
    zero = method.zero_control(background)
    return scale * jax.random.normal(key, zero.shape, zero.dtype)


def check_linearisation(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    key: PRNGKeyArray,
    tol: SuiteTolerances,
    name: str,
) -> list[CheckResult]:
    """Dot-product test of the tangent-linear / adjoint pair the incremental inner loops use.

    The tangent-linear model is jax.linearize's (forward mode); the adjoint is the configured
    ``forward_adjoint``'s reverse mode (or the transposed linearisation): two independent
    computations that must be adjoint to each other. BacksolveAdjoint's is approximate by design.
    """
    v = _control(method, background, key)
    dv = jax.random.normal(jax.random.fold_in(key, 1), v.shape, v.dtype)
    dd = jax.random.normal(jax.random.fold_in(key, 2), obs.values.shape, v.dtype) * obs.mask
    args = (background, t_start, obs)

    @eqx.filter_jit
    def products(method, v, dv, dd):
        _, tangent_linear, adjoint = method.linearised_departures(v, args)
        return jnp.vdot(tangent_linear(dv), dd), jnp.vdot(dv, adjoint(dd))

    adjoint_name = type(method.forward_adjoint).__name__
    backsolve = adjoint_name == "BacksolveAdjoint"
    tolerance = tol.backsolve if backsolve else tol.checks.dot_product
    component = f"{name}: departures, incremental tangent-linear vs {adjoint_name} adjoint"

    try:  # one compile; a model without forward mode fails here, while tracing
        left, right = (float(x) for x in products(method, v, dv, dd))
    except Exception as exc:
        if not cannot_differentiate(exc):
            raise
        if isinstance(exc, TypeError) and method.incremental is None:
            # no forward mode (e.g. a hand-written custom_vjp): it cannot run incrementally anyway
            return []
        reason = first_line(exc)
        return [
            CheckResult(
                "dot-product",
                component,
                float("nan"),
                tolerance,
                False,
                f"the incremental linearisation cannot be built: {reason}",
            )
        ]
    error = abs(left - right) / max(abs(left), abs(right), 1e-300)
    detail = f"<L dv, dd> = {left:.16g}, <dv, L^T dd> = {right:.16g}"
    if backsolve:
        detail += " (BacksolveAdjoint is approximate by design: judged against its own tolerance)"
    return [
        CheckResult("dot-product", component, error, tolerance, bool(error <= tolerance), detail)
    ]


def check_cost(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    key: PRNGKeyArray,
    tol: Tolerances,
    name: str,
) -> list[CheckResult]:
    v = _control(method, background, key)
    h = jax.random.normal(jax.random.fold_in(key, 2), v.shape, v.dtype)
    args = (background, t_start, obs)
    # Module-level jitted functions of (method, v, args): the gradient program is the one the
    # forward-strategy check compiles for the configured adjoint, so it is compiled once for both.
    cost = lambda v: _cost(method, v, args)  # noqa: E731
    gradient = lambda v: _gradient(method, v, args)  # noqa: E731
    adjoint = type(method.forward_adjoint).__name__
    return [taylor_check(cost, gradient, v, h, f"{name}: cost J ({adjoint})", tol.taylor)]


@eqx.filter_jit
def _cost(method, v, args):
    return method.cost(v, args)


@eqx.filter_jit
def _gradient(method, v, args):
    return method.gradient(v, args)


def check_forward_strategies(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    key: PRNGKeyArray,
    tol: SuiteTolerances,
    name: str,
    selection: Selection | None = None,
) -> list[CheckResult]:
    """dJ/dv under every forward adjoint against DirectAdjoint."""
    v = _control(method, background, key)
    args = (background, t_start, obs)
    swap = lambda adjoint: eqx.tree_at(lambda m: m.forward_adjoint, method, adjoint)  # noqa: E731
    reference = _gradient(swap(diffrax.DirectAdjoint()), v, args)
    results = []
    for label, adjoint in FORWARD_ADJOINTS.items():
        tolerance = tol.backsolve if label == "BacksolveAdjoint" else tol.exact_strategy
        what = "relative difference of dJ/dv from DirectAdjoint"
        if label == "BacksolveAdjoint":
            what += " (approximate by design: judged against its own tolerance)"
        component = f"{name}: forward_adjoint {label}"
        # The check runs inside _guarded, within this iteration; the defaults bind its values.
        result = _guarded(
            component,
            tolerance,
            lambda adjoint=adjoint, component=component, tolerance=tolerance, what=what: (
                agreement_check(
                    _gradient(swap(adjoint()), v, args), reference, component, tolerance, what
                )
            ),
        )
        if selection is not None:
            result = selection.judge(result, "forward_adjoint", label)
        results.append(result)
    return results


# The minimiser-adjoint reference unrolls Gauss-Newton, whose dense Jacobian costs one
# tangent-linear
# model run per control element, all held for the reverse pass: measured on the 64 x 64 QG model
# (4096 controls, 8 steps) it asked for 31.6 GB. Above this size the check is skipped, and said so.
MINIMISER_CHECK_MAX_CONTROL = 1024


def minimiser_adjoint_label(adjoint) -> str:
    """The registry-style name of a minimiser adjoint ("KStepAdjoint(3)", "OneStepAdjoint")."""
    if isinstance(adjoint, KStepAdjoint):
        return "OneStepAdjoint" if adjoint.k == 1 else f"KStepAdjoint({adjoint.k})"
    return type(adjoint).__name__


def run_suite(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    *,
    name: str,
    key: PRNGKeyArray | None = None,
    tolerances: SuiteTolerances | None = None,
    strategies: bool = True,
    model_checks: bool = True,
    reference_state: State | None = None,
    level: str = "full",
    selection: Selection | None = None,
    configured: bool = True,
) -> list[CheckResult]:
    """Every check above for one method and window at ``level`` ("quick" or "full"; see the
    module notes); ``strategies=False`` leaves out the agreement of the strategies (the
    configured gradient through the analysis is still checked, unless ``configured=False``).
    Returns all results (nothing raises)."""
    key = jax.random.PRNGKey(0) if key is None else key
    tolerances = tolerances or SuiteTolerances.for_dtype(background.dtype)
    quick = level == "quick"
    keys = jax.random.split(key, 6)
    results = []
    if model_checks:
        results += check_model(
            method, background, t_start, keys[0], tolerances.checks, name, quick=quick
        )
    results += check_observation_operator(
        method, background, t_start, obs, keys[1], tolerances.checks, name, quick=quick
    )
    results += check_covariance(
        method, keys[2], tolerances.checks, name, background.size, background.dtype, quick=quick
    )
    results += check_cost(method, background, t_start, obs, keys[3], tolerances.checks, name)
    if quick:
        return results
    results += check_linearisation(method, background, t_start, obs, keys[5], tolerances, name)
    if strategies:
        results += check_forward_strategies(
            method, background, t_start, obs, keys[4], tolerances, name, selection
        )
    reference_state = background + 0.5 if reference_state is None else reference_state
    if strategies or configured:
        results += _minimiser_checks(
            method,
            background,
            t_start,
            obs,
            reference_state,
            tolerances,
            name,
            selection,
            strategies,
            configured,
        )
    return results


def _minimiser_checks(
    method,
    background,
    t_start,
    obs,
    reference_state,
    tolerances,
    name,
    selection,
    strategies,
    configured,
) -> list[CheckResult]:
    """The minimiser adjoints against unrolling (``strategies``; controls up to
    :data:`MINIMISER_CHECK_MAX_CONTROL`) and the configured one against finite differences
    (``configured``: the settings a run uses)."""
    log = logging.getLogger("dacli")
    results = []
    control_size = method.zero_control(background).size
    if strategies and control_size <= MINIMISER_CHECK_MAX_CONTROL:
        for result in check_minimiser_strategies(
            method, background, t_start, obs, reference_state, tolerances.minimiser_strategy, name
        ):
            label = result.component.split("minimiser_adjoint ")[1]
            if selection is not None:
                result = selection.judge(result, "minimiser_adjoint", label)
            results.append(result)
    elif strategies:
        log.warning(
            "%s: minimiser_adjoint agreement skipped: the control has %d elements and their "
            "reference (unrolled Gauss-Newton with a dense Jacobian) needs one tangent-linear "
            "run per element, held in memory; they run up to %d (check a smaller grid of the "
            "same model)",
            name,
            control_size,
            MINIMISER_CHECK_MAX_CONTROL,
        )
    if not configured:
        return results
    if method.minimiser is None:
        log.warning(
            "%s: the configured gradient through the analysis is not checked: the incremental "
            "formulation's analysis is not differentiated (dacli train and tune use the "
            "nonlinear one)",
            name,
        )
        return results
    results.append(
        check_configured_gradient(
            method,
            background,
            t_start,
            obs,
            reference_state,
            tolerances.configured_gradient,
            name,
            minimiser_adjoint_label(method.minimiser_adjoint),
        )
    )
    return results
