"""Linear model, linear H, Gaussian errors: every method against its closed-form answer.

The closed forms are dense linear algebra built from the discrete model's propagator (integrated
unit vectors, an independent path): incremental 4DVar must reach the BLUE in one outer loop,
weak-constraint 4DVar the BLUE of the augmented state (x0, eta_1..eta_K), 3DVar and 3D-FGAT the
BLUE with their own (persistence) observation operators; and weak constraint with Q -> 0 tends
to strong constraint.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from helpers import blue_analysis, linear_problem, make_method

from dacli.config.registry import METHODS
from dacli.covariances.background import background_sqrt_operator, covariance_matrix
from dacli.methods.incremental import IncrementalSettings
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.methods.threedvar import ThreeDFGAT, ThreeDVar
from dacli.methods.variational import analyse_window
from dacli.methods.weak4dvar import WeakConstraint4DVar

SUBWINDOWS = 4

# Every registered method kind -> the tests here that hold it to its closed form (a new kind fails
# test_every_registered_method_kind_has_a_closed_form until it has one). Strong constraint's
# nonlinear formulation, every minimiser x forward adjoint: tests/test_strong4dvar_blue.py.
CLOSED_FORM_TESTS = {
    "strong4dvar": ("test_incremental_4dvar_reaches_the_blue_in_one_outer_loop",
                    "test_weak_constraint_tends_to_strong_as_q_vanishes"),
    "weak4dvar": ("test_weak_constraint_equals_the_augmented_blue",
                  "test_weak_constraint_tends_to_strong_as_q_vanishes"),
    "3dvar": ("test_threedvar_and_fgat_equal_their_closed_forms",),
    "3dfgat": ("test_threedvar_and_fgat_equal_their_closed_forms",),
}


@pytest.fixture(scope="module")
def problem():
    dynamics, sqrt_b, obs, background, nsteps, dt = linear_problem()
    method = make_method(dynamics, sqrt_b, nsteps, dt)
    return method, obs, background


def fields(method, **changes):
    return {**{name: getattr(method, name) for name in method.__dataclass_fields__}, **changes}


def propagators(method, background):
    """M_s for every step s = 0..nsteps: the discrete model's matrices, shape (nsteps + 1, n, n)."""
    direct = eqx.tree_at(lambda m: m.forward_adjoint, method, diffrax.DirectAdjoint())
    n = background.size
    columns = jax.vmap(lambda e: direct.trajectory(e, 0.0))(jnp.eye(n))  # (n, T, n)
    return np.transpose(np.asarray(columns), (1, 2, 0))


def observation_rows(obs, n):
    """Dense rows of H per valid observation, with its step and value, error variance."""
    mask = np.asarray(obs.mask)
    rows = np.zeros((mask.sum(), n))
    for r, p in enumerate(np.flatnonzero(mask)):
        for i, w in zip(np.asarray(obs.index)[p], np.asarray(obs.weight)[p]):
            rows[r, i] += w
    return rows, np.asarray(obs.slot)[mask], np.asarray(obs.values)[mask], np.asarray(obs.std)[mask] ** 2


def blue(prior_mean, prior_covariance, operator, y, r_variance):
    gain = prior_covariance @ operator.T @ np.linalg.inv(operator @ prior_covariance @ operator.T + np.diag(r_variance))
    return prior_mean + gain @ (y - operator @ prior_mean)


def test_incremental_4dvar_reaches_the_blue_in_one_outer_loop(problem):
    method, obs, background = problem
    incremental = type(method)(**fields(method, incremental=IncrementalSettings(1, 100, 1e-12)))
    result = analyse_window(incremental, background, 0.0, obs)
    expected = blue_analysis(method, background, obs)
    np.testing.assert_allclose(result.analysis_initial, expected, rtol=0, atol=1e-9)
    # One outer loop: the quadratic cost is the nonlinear one, so its minimum is J at the analysis.
    np.testing.assert_allclose(result.outer.quadratic_final[0], result.cost_final[0], rtol=1e-10)
    assert result.outer.gradient_reduction[0] < 1e-12
    assert bool(result.converged)


def test_weak_constraint_equals_the_augmented_blue(problem):
    """x_s = M_s x0 + sum_{k: b_k <= s} M_{s - b_k} eta_k; prior x0 ~ N(xb, B), eta_k ~ N(0, Q)."""
    method, obs, background = problem
    n = background.size
    layout = method.dynamics.layout()
    sqrt_q = background_sqrt_operator("gaussian", 0.3, layout, 1.0, jnp.float64)
    weak = WeakConstraint4DVar(**fields(method), model_error_sqrt=sqrt_q, subwindows=SUBWINDOWS)
    result = analyse_window(weak, background, 0.0, obs)

    steps = propagators(method, background)
    rows, slots, y, r_variance = observation_rows(obs, n)
    boundaries = [(k + 1) * method.nsteps // SUBWINDOWS for k in range(SUBWINDOWS)]
    operator = np.concatenate(
        [np.stack([row @ steps[s] for row, s in zip(rows, slots)])]
        + [np.stack([row @ steps[s - b] if s >= b else np.zeros(n) for row, s in zip(rows, slots)]) for b in boundaries],
        axis=1)
    b_matrix, q_matrix = covariance_matrix(method.background_sqrt), covariance_matrix(sqrt_q)
    prior = np.zeros(((SUBWINDOWS + 1) * n,) * 2)
    prior[:n, :n] = b_matrix
    for k in range(1, SUBWINDOWS + 1):
        prior[k * n:(k + 1) * n, k * n:(k + 1) * n] = q_matrix
    prior_mean = np.concatenate([np.asarray(background), np.zeros(SUBWINDOWS * n)])
    expected = blue(prior_mean, prior, operator, y, r_variance)

    np.testing.assert_allclose(result.analysis_initial, expected[:n], rtol=0, atol=1e-7)
    # The analysis trajectory carries the forcings: compare the end state too.
    end = steps[-1] @ expected[:n] + sum(steps[-1 - b] @ expected[(k + 1) * n:(k + 2) * n]
                                         for k, b in enumerate(boundaries))
    np.testing.assert_allclose(result.analysis_trajectory[-1], end, rtol=0, atol=1e-7)
    # Jq is reported and the cost splits into its three terms.
    j, jb, jo, jq = np.asarray(result.cost_final)
    assert jq > 1e-3 and np.isclose(j, jb + jo + jq)
    # Weak constraint fits the observations better than strong (more freedom, same data).
    strong = analyse_window(method, background, 0.0, obs)
    assert jo < float(strong.cost_final[2])


def test_weak_constraint_tends_to_strong_as_q_vanishes(problem):
    method, obs, background = problem
    strong = analyse_window(method, background, 0.0, obs)
    differences = []
    for q_std in (1e-1, 1e-3):
        sqrt_q = lx.DiagonalLinearOperator(jnp.full(background.size, q_std))
        weak = WeakConstraint4DVar(**fields(method), model_error_sqrt=sqrt_q, subwindows=2)
        result = analyse_window(weak, background, 0.0, obs)
        differences.append(float(jnp.max(jnp.abs(result.analysis_initial - strong.analysis_initial))))
    assert differences[1] < 1e-5
    assert differences[1] < 1e-3 * differences[0]  # ~ Q: four decades of Q, about four of difference


def test_threedvar_and_fgat_equal_their_closed_forms(problem):
    """3DVar: every observation reads x0. 3D-FGAT: departures from M(xb), increment constant in time."""
    method, obs, background = problem
    n = background.size
    rows, slots, y, r_variance = observation_rows(obs, n)
    b_matrix = covariance_matrix(method.background_sqrt)
    xb = np.asarray(background)

    threedvar = analyse_window(ThreeDVar(**fields(method)), background, 0.0, obs)
    np.testing.assert_allclose(threedvar.analysis_initial, blue(xb, b_matrix, rows, y, r_variance), rtol=0, atol=1e-7)

    steps = propagators(method, background)
    innovations = y - np.array([row @ steps[s] @ xb for row, s in zip(rows, slots)])
    increment = b_matrix @ rows.T @ np.linalg.solve(rows @ b_matrix @ rows.T + np.diag(r_variance), innovations)
    strong = StrongConstraint4DVar(**fields(method, incremental=IncrementalSettings(1, 100, 1e-12)))
    fgat = analyse_window(ThreeDFGAT(strong), background, 0.0, obs)
    np.testing.assert_allclose(fgat.analysis_initial, xb + increment, rtol=0, atol=1e-9)
    # FGAT's departures use the model: its O-B differs from 3DVar's whenever the model moves.
    assert not np.allclose(fgat.background_equivalents, threedvar.background_equivalents)


def test_every_registered_method_kind_has_a_closed_form():
    assert set(CLOSED_FORM_TESTS) == set(METHODS.names)
    named = [test for tests in CLOSED_FORM_TESTS.values() for test in tests]
    assert all(callable(globals().get(test)) for test in named), named
