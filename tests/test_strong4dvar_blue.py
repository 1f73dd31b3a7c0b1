"""Linear dynamics, linear H, Gaussian errors: 4DVar must equal the closed-form BLUE.

For a linear model the strong-constraint 4DVar minimum is the BLUE / fixed-interval Kalman
smoother estimate of x0, xa = xb + B G^T (G B G^T + R)^{-1} (y - G xb) with G = H M. The BLUE
is computed with dense linear algebra from the discrete model's Jacobian (an independent path);
4DVar reaches it iteratively through each minimiser and each forward adjoint.
"""

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
from helpers import blue_analysis, hessian_bound, linear_problem, make_method

from dacli.config.registry import FORWARD_ADJOINTS, INNER_SOLVER, MINIMISERS
from dacli.methods.strong4dvar import analyse_window

TOL = dict(rtol=1e-13, atol=1e-13)


# Every registered minimiser and forward adjoint is tested, so a new registry entry is too; the
# exceptions say why. A new entry this module cannot build fails loudly (getattr) until it can.
NOT_A_WHOLE_WINDOW_MINIMISER = {
    INNER_SOLVER: "lineax's CG solves the incremental formulation's inner (quadratic) loops, "
                  "not J itself: tests/test_linear_closed_forms.py::"
                  "test_incremental_4dvar_reaches_the_blue_in_one_outer_loop",
}
MINIMISER_NAMES = [name for name in MINIMISERS.names if name not in NOT_A_WHOLE_WINDOW_MINIMISER]
ADJOINT_NAMES = list(FORWARD_ADJOINTS.names)


def make_minimiser(name, learning_rate):
    """The optimistix minimiser ``name`` at this module's tolerances (and step, if it takes one)."""
    step = {"learning_rate": learning_rate} if name == "GradientDescent" else {}
    return getattr(optx, name)(**TOL, **step)


def make_forward_adjoint(name):
    return getattr(diffrax, name)()


@pytest.fixture(scope="module")
def problem():
    dynamics, sqrt_b, obs, background, nsteps, dt = linear_problem()
    reference_method = make_method(dynamics, sqrt_b, nsteps, dt)
    blue = blue_analysis(reference_method, background, obs)
    # For a stable gradient-descent step. The control-space Hessian of this linear problem in closed form,
    # from the same dense G as the BLUE (its jacfwd is compiled once): no forward-over-reverse compile.
    step = 1.0 / hessian_bound(reference_method, background, obs)
    return dynamics, sqrt_b, obs, background, nsteps, dt, blue, step


@eqx.filter_jit
def _solve(method, background, obs):
    """Only the minimisation (cheaper to compile than the full window analysis)."""
    args = (background, 0.0, obs)
    solution = method.solve_control(jnp.zeros_like(background), args)
    return method.initial_state(solution.value, background), solution.stats["num_steps"], solution.result


# NonlinearCG's Cauchy termination stops at a measured 1.8e-8 on this problem.
ACCURACY = {"NonlinearCG": 5e-8}


@pytest.mark.parametrize("adjoint", ADJOINT_NAMES)
@pytest.mark.parametrize("minimiser", MINIMISER_NAMES)
def test_4dvar_equals_blue(problem, minimiser, adjoint):
    dynamics, sqrt_b, obs, background, nsteps, dt, blue, step = problem
    method = make_method(dynamics, sqrt_b, nsteps, dt, make_minimiser(minimiser, step),
                         make_forward_adjoint(adjoint), max_steps=20000)
    analysis, iterations, result = _solve(method, background, obs)
    error = np.max(np.abs(np.asarray(analysis) - blue))
    assert error < ACCURACY.get(minimiser, 1e-8), (
        f"{minimiser}/{adjoint}: |xa - BLUE| = {error:.3g} after {int(iterations)} iterations")
    assert result == optx.RESULTS.successful


def test_window_analysis_reports_a_converged_minimum(problem):
    """The full window analysis: BLUE analysis, J decreased, gradient ~ 0, Jb + Jo = J."""
    dynamics, sqrt_b, obs, background, nsteps, dt, blue, _ = problem
    method = make_method(dynamics, sqrt_b, nsteps, dt)
    result = analyse_window(method, background, 0.0, obs)
    assert np.max(np.abs(np.asarray(result.analysis_initial) - blue)) < 1e-8
    assert np.allclose(np.asarray(result.analysis_trajectory[0]), blue, atol=1e-8)
    initial, final = np.asarray(result.cost_initial), np.asarray(result.cost_final)
    assert final[0] < initial[0] and initial[1] == 0.0
    assert np.isclose(final[0], final[1] + final[2]) and np.isclose(initial[0], initial[2])
    assert float(result.gradient_norm) < 1e-6
    assert bool(result.converged)
    # H(xa) matches the dense linear map applied to the BLUE.
    hxa = np.asarray(result.analysis_equivalents)[np.asarray(obs.mask)]
    traj = np.asarray(result.analysis_trajectory)
    slot, index, weight = (np.asarray(a)[np.asarray(obs.mask)] for a in (obs.slot, obs.index, obs.weight))
    assert np.allclose(hxa, np.sum(weight * traj[slot[:, None], index], axis=1))


def test_padding_is_ignored(problem):
    """Padded entries (mask False) must not change the analysis, whatever values they hold."""
    dynamics, sqrt_b, obs, background, nsteps, dt, blue, _ = problem
    poisoned = eqx.tree_at(lambda o: o.values, obs, jnp.where(obs.mask, obs.values, 1e6))
    poisoned = eqx.tree_at(lambda o: o.std, poisoned, jnp.where(obs.mask, obs.std, 1e-6))
    # The minimiser settings of the LBFGS / RecursiveCheckpointAdjoint case above: same compiled _solve.
    method = make_method(dynamics, sqrt_b, nsteps, dt, make_minimiser("LBFGS", None),
                         make_forward_adjoint("RecursiveCheckpointAdjoint"), max_steps=20000)
    analysis, _, _ = _solve(method, background, poisoned)
    assert np.max(np.abs(np.asarray(analysis) - blue)) < 1e-8
