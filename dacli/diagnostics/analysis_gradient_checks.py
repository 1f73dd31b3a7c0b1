"""Checks of the gradient *through the analysis*: what ``dacli train`` and ``dacli tune`` use.

The quantity is a hyperparameter gradient, d/d(log B-scale) of L = 1/2 |xa - x_ref|^2, where
the analysis xa comes out of the 4DVar minimisation and ``minimiser_adjoint`` says how that
minimisation is differentiated. Two checks:

* **minimiser_adjoint agreement** (:func:`check_minimiser_strategies`): each minimiser adjoint
  (implicit function theorem, one-step, k-step) on a tightly converged BFGS solve against full
  unrolling of Gauss-Newton (the reference). They are exact only at a minimum, so the comparison
  is made only where both solves converged to the same minimum; otherwise it is *inconclusive*,
  with the reason (Blondel et al. 2022, "Efficient and modular implicit differentiation";
  Bolte et al. 2023, "One-step differentiation of iterative algorithms").
* **configured gradient** (:func:`check_configured_gradient`): the gradient as the user's
  settings compute it (the configured minimiser, ``max_steps``, ``rtol``, ``atol`` and
  ``minimiser_adjoint``) against central finite differences of the same loss through the same
  solve. An implicit adjoint on a solve that stops short of the minimum fails here, naming the
  settings to change.

Not for 4DVarNet (its iterations are a network's: dacli's tests check those adjoints).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from dacli.adjoints.stepping import KStepAdjoint
from dacli.diagnostics.adjoint_checks import (
    INCONCLUSIVE,
    NOT_APPLICABLE,
    CheckResult,
    cannot_differentiate,
    first_line,
    relative_difference,
)
from dacli.methods.signatures import State, Time
from dacli.observations.operator import WindowObservations

MINIMISER_ADJOINTS: dict[str, Callable[[], optx.AbstractAdjoint | KStepAdjoint]] = {
    "ImplicitAdjoint": optx.ImplicitAdjoint,
    "OneStepAdjoint": lambda: KStepAdjoint(k=1),
    "KStepAdjoint(3)": lambda: KStepAdjoint(k=3),
}

# Step sizes of the central differences in log(B scale); the best agreement counts. Large
# steps average over the solve's stopping noise (~rtol), small ones cut truncation.
FINITE_DIFFERENCE_STEPS = (1e-2, 1e-3, 1e-4)


@dataclasses.dataclass(frozen=True)
class AnalysisGradient:
    """dL/d(log B-scale) and how the solve went."""

    gradient: float
    loss: float
    converged: bool
    steps: int
    control: np.ndarray


def _distance(scaled, control, background, reference_state):
    """L = 1/2 |xa - x_ref|^2 of the analysis that ``control`` gives."""
    return 0.5 * jnp.sum((scaled.initial_state(control, background) - reference_state) ** 2)


def _loss_and_solve(method, background, t_start, obs, reference_state, log_scale):
    scaled = eqx.tree_at(lambda m: m.log_background_scale, method, log_scale)
    solution = scaled.solve_control(scaled.zero_control(background), (background, t_start, obs))
    converged = solution.result == optx.RESULTS.successful
    aux = (converged, solution.stats["num_steps"], solution.value)
    return _distance(scaled, solution.value, background, reference_state), aux


@eqx.filter_jit
def _value_and_gradient(method, background, t_start, obs, reference_state, log_scale):
    return jax.value_and_grad(
        lambda s: _loss_and_solve(method, background, t_start, obs, reference_state, s),
        has_aux=True,
    )(log_scale)


@eqx.filter_jit
def _refined_value_and_gradient(method, control, background, t_start, obs, reference_state, s):
    """L and dL/ds of a KStepAdjoint from the converged ``control`` (the solve's result, its
    gradient cut as in :meth:`solve_control`): only the k Newton steps are compiled here, the
    solve is shared with the other strategies."""

    def loss(log_scale):
        scaled = eqx.tree_at(lambda m: m.log_background_scale, method, log_scale)
        refined = scaled.refined_control(control, (background, t_start, obs))
        return _distance(scaled, refined, background, reference_state)

    return jax.value_and_grad(loss)(s)


def analysis_gradient(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    reference_state: State,
    minimiser_adjoint=None,
    log_scale: float = 0.0,
) -> AnalysisGradient:
    """dL/d(log B-scale) through the minimisation under ``minimiser_adjoint`` (default: the
    method's), at ``log_scale``, with the solve's convergence. One compiled program per method
    structure: every log-scale reuses it."""
    if minimiser_adjoint is not None:
        method = eqx.tree_at(lambda m: m.minimiser_adjoint, method, minimiser_adjoint)
    scale = jnp.asarray(log_scale, background.dtype)
    (loss, (converged, steps, control)), gradient = _value_and_gradient(
        method, background, t_start, obs, reference_state, scale
    )
    return AnalysisGradient(
        float(gradient), float(loss), bool(converged), int(steps), np.asarray(control)
    )


def check_minimiser_strategies(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    reference_state: State,
    tolerance: float,
    name: str,
    adjoints: dict | None = None,
) -> list[CheckResult]:
    """The hyperparameter gradient under each minimiser adjoint (``adjoints``: label ->
    factory, default :data:`MINIMISER_ADJOINTS`) against full unrolling.

    The reference unrolls Gauss-Newton (optimistix RecursiveCheckpointAdjoint): differentiating
    through BFGS's or NonlinearCG's line searches gave NaN on Lorenz-96 (measured), while the
    unrolled Gauss-Newton iteration is smooth. The strategies under test run on BFGS. Both
    solves are tight (rtol = atol = 1e-12, 500 steps) and through DirectAdjoint dynamics (the
    implicit adjoints need Hessian-vector products, forward over reverse). A strategy that
    cannot differentiate the model is *not applicable*; a comparison where either solve did not
    converge, or the two converged to different minima, is *inconclusive*.
    """
    tight = dataclasses.replace(
        method,
        forward_adjoint=diffrax.DirectAdjoint(),
        minimiser=optx.BFGS(rtol=1e-12, atol=1e-12),
        max_steps=500,
    )
    unrolled = dataclasses.replace(tight, minimiser=optx.GaussNewton(rtol=1e-12, atol=1e-12))
    what = "d|xa - x_ref|^2/d log(B scale), against unrolled Gauss-Newton"
    chosen = MINIMISER_ADJOINTS if adjoints is None else adjoints
    components = [f"{name}: minimiser_adjoint {label}" for label in chosen]
    try:
        reference = analysis_gradient(
            unrolled, background, t_start, obs, reference_state, optx.RecursiveCheckpointAdjoint()
        )
    except Exception as exc:
        if not cannot_differentiate(exc):
            raise
        reason = f"the unrolled reference cannot differentiate the model: {first_line(exc)}"
        return [_unjudged(c, tolerance, NOT_APPLICABLE, reason) for c in components]
    if not reference.converged:
        reason = (
            f"the unrolled Gauss-Newton reference did not converge in {reference.steps} steps "
            "(a long or strongly nonlinear window: compare on a shorter one)"
        )
        return [_unjudged(c, tolerance, INCONCLUSIVE, reason) for c in components]
    results = []
    shared: AnalysisGradient | None = None  # the tight solve under ImplicitAdjoint, made once
    for component, make in zip(components, chosen.values(), strict=True):
        adjoint = make()
        try:
            if isinstance(adjoint, (KStepAdjoint, optx.ImplicitAdjoint)) and shared is None:
                shared = analysis_gradient(
                    tight, background, t_start, obs, reference_state, optx.ImplicitAdjoint()
                )
            if isinstance(adjoint, KStepAdjoint):
                assert shared is not None
                tested = _refined(tight, adjoint, shared, background, t_start, obs, reference_state)
            elif isinstance(adjoint, optx.ImplicitAdjoint):
                assert shared is not None
                tested = shared
            else:
                tested = analysis_gradient(
                    tight, background, t_start, obs, reference_state, adjoint
                )
        except Exception as exc:
            if not cannot_differentiate(exc):
                raise
            reason = f"this strategy cannot differentiate the model: {first_line(exc)}"
            results.append(_unjudged(component, tolerance, NOT_APPLICABLE, reason))
            continue
        problem = _comparison_problem(tested, reference)
        if problem is not None:
            results.append(_unjudged(component, tolerance, INCONCLUSIVE, problem))
            continue
        error = relative_difference(tested.gradient, reference.gradient)
        detail = f"{what}: {tested.gradient:.10g} vs {reference.gradient:.10g}"
        results.append(
            CheckResult("agreement", component, error, tolerance, bool(error <= tolerance), detail)
        )
    return results


def _refined(method, adjoint, solved, background, t_start, obs, reference_state):
    """The KStepAdjoint's gradient from the shared solve's control (see
    :func:`_refined_value_and_gradient`)."""
    method = eqx.tree_at(lambda m: m.minimiser_adjoint, method, adjoint)
    zero = jnp.asarray(0.0, background.dtype)
    loss, gradient = _refined_value_and_gradient(
        method, jnp.asarray(solved.control), background, t_start, obs, reference_state, zero
    )
    return dataclasses.replace(solved, gradient=float(gradient), loss=float(loss))


def _comparison_problem(tested: AnalysisGradient, reference: AnalysisGradient) -> str | None:
    """Why comparing the two gradients means nothing here, or None."""
    if not tested.converged:
        return (
            f"the BFGS solve did not converge in {tested.steps} steps: its implicit gradient "
            "holds only at a minimum"
        )
    gap = np.linalg.norm(tested.control - reference.control)
    scale = max(float(np.linalg.norm(reference.control)), 1.0)
    if gap > 1e-4 * scale:
        return (
            f"BFGS and Gauss-Newton converged to different minima (controls {gap:.3g} apart): "
            "several minima on this window, so their gradients need not agree"
        )
    return None


def _unjudged(component: str, tolerance: float, status: str, reason: str) -> CheckResult:
    return CheckResult.unjudged("agreement", component, tolerance, status, reason)


def check_configured_gradient(
    method,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    reference_state: State,
    tolerance: float,
    name: str,
    label: str,
) -> CheckResult:
    """The hyperparameter gradient as the method's own settings compute it against central
    finite differences of the same loss through the same solve (``label``: the configured
    minimiser_adjoint's name, for the report). The dynamics are differentiated with
    DirectAdjoint where the minimiser adjoint needs Hessian-vector products (implicit, one-step,
    k-step), as dacli tune does.

    Passes when the best relative agreement over :data:`FINITE_DIFFERENCE_STEPS` is within
    ``tolerance``. An implicit, one-step or k-step adjoint on a solve that stops short of the
    minimum (``max_steps`` too small, ``rtol``/``atol`` too loose) fails: it differentiates a
    minimum the configured solve does not reach.
    """
    component = f"{name}: minimiser_adjoint {label} as configured"
    settings = (
        f"{type(method.minimiser).__name__}(rtol={getattr(method.minimiser, 'rtol', '?')}, "
        f"atol={getattr(method.minimiser, 'atol', '?')}), max_steps={method.max_steps}"
    )
    if label != "RecursiveCheckpointAdjoint":
        # Hessian-vector products are forward over reverse: DirectAdjoint through the dynamics,
        # as dacli tune differentiates the analysis (dacli.tuning.hyperparameters).
        method = eqx.tree_at(lambda m: m.forward_adjoint, method, diffrax.DirectAdjoint())
    try:
        tested = analysis_gradient(method, background, t_start, obs, reference_state)
    except Exception as exc:
        if not cannot_differentiate(exc):
            raise
        reason = f"{label} cannot differentiate the model: {first_line(exc)}"
        return CheckResult.unjudged(
            "configured-gradient", component, tolerance, NOT_APPLICABLE, reason
        )
    steps = np.asarray(FINITE_DIFFERENCE_STEPS)
    pairs = [  # the gradient's compiled program at each step (its loss): no new compilation
        [
            analysis_gradient(method, background, t_start, obs, reference_state, None, s)
            for s in (h, -h)
        ]
        for h in steps
    ]
    differences = [
        (up.loss - down.loss) / (2 * h) for (up, down), h in zip(pairs, steps, strict=True)
    ]
    usable = [
        i for i in range(len(steps)) if not tested.converged or _same_minimum(tested, pairs, i)
    ]
    solve = (
        f"converged in {tested.steps} steps"
        if tested.converged
        else f"stopped unconverged after {tested.steps} steps"
    )
    if not usable:
        gap = max(np.linalg.norm(p.control - tested.control) for pair in pairs for p in pair)
        return CheckResult.unjudged(
            "configured-gradient",
            component,
            tolerance,
            INCONCLUSIVE,
            f"{settings}: the solve {solve}, but the solves at log B-scale +-h (h = "
            f"{', '.join(f'{h:g}' for h in steps)}) land on other minima or stop unconverged "
            f"(controls up to {gap:.3g} apart): the analysis jumps between minima as B's scale "
            "changes, so finite differences mean nothing on this window (check a shorter one)",
        )
    errors = {i: relative_difference(tested.gradient, float(differences[i])) for i in usable}
    finite = {i: e for i, e in errors.items() if np.isfinite(e)}
    best = min(finite, key=finite.__getitem__) if finite else usable[0]
    error = float(finite.get(best, float("inf")))
    passed = error <= tolerance
    detail = (
        f"{settings}: gradient {tested.gradient:.10g} vs central difference "
        f"{differences[best]:.10g} (step {steps[best]:g}); the solve {solve}"
    )
    if not passed:
        detail += f"; {label} does not give the gradient of the configured solve: " + _advice(
            tested, label
        )
    return CheckResult("configured-gradient", component, error, tolerance, passed, detail)


def _same_minimum(central: AnalysisGradient, pairs: list[list[AnalysisGradient]], i: int) -> bool:
    """Whether the solves at log-scale +-h = ``FINITE_DIFFERENCE_STEPS[i]`` stayed on the central
    solve's minimum: both converged, within 100 h |v| of the central control (a smooth minimiser
    moves by about h |dv/ds|), and moving less at every smaller step whose pair converged. A pair
    that moves as far at a smaller step sits on another minimum: on a chaotic Lorenz-96 window of
    3 time units every pair moved 1.65 away at h = 1e-2 and 1e-3 alike, inside the 100 h |v| =
    3.96 allowed at 1e-2, and its difference had read as a failure."""
    steps = FINITE_DIFFERENCE_STEPS
    size = max(float(np.linalg.norm(central.control)), 1.0)

    def converged(pair: list[AnalysisGradient]) -> bool:
        return all(p.converged for p in pair)

    def move(pair: list[AnalysisGradient]) -> float:
        return max(float(np.linalg.norm(p.control - central.control)) for p in pair)

    if not converged(pairs[i]) or move(pairs[i]) > 100 * steps[i] * size:
        return False
    smaller = [
        pair for pair, h in zip(pairs, steps, strict=True) if h < steps[i] and converged(pair)
    ]
    return all(move(pair) <= 0.5 * move(pairs[i]) for pair in smaller)


def _advice(tested: AnalysisGradient, label: str) -> str:
    """What to change when the configured gradient disagrees with finite differences."""
    if not tested.converged:
        return (
            "its gradient holds at a minimum the solve does not reach: raise method.max_steps "
            "(or loosen method.rtol/atol) so it converges, or set minimiser_adjoint = "
            '"RecursiveCheckpointAdjoint" (differentiate the iterations themselves)'
        )
    if label == "RecursiveCheckpointAdjoint":
        return (
            "differentiating the iterations themselves fails here (line searches): use "
            'minimiser_adjoint = "ImplicitAdjoint" on a converged solve'
        )
    return (
        "its gradient holds at the exact minimum and the solve stops at its tolerance: tighten "
        "method.rtol/atol"
    )
