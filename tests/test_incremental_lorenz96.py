"""Incremental 4DVar on the nonlinear Lorenz-96 model.

Incremental 4DVar is Gauss-Newton (Lawless et al. 2005): with enough outer loops it must reach
the minimum that the nonlinear solve finds, its nonlinear cost must not increase from one outer
loop to the next on a mildly nonlinear window, and the B^{1/2} preconditioning must make the
inner conjugate gradients need far fewer iterations than the control dimension.
"""

import diffrax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from dacli.covariances.background import background_sqrt_operator
from dacli.methods.incremental import IncrementalSettings
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.methods.variational import analyse_window
from dacli.models.integrate import integrate
from dacli.models.lorenz import Lorenz96
from dacli.models.solvers import RK4
from dacli.observations.operator import WindowObservations

N, STEPS, DT = 40, 8, 0.05


def window(observed_sites, observed_steps, seed=1):
    """Truth, background and noisy observations of the chosen sites and steps (obs error 1)."""
    rng = np.random.default_rng(seed)
    dynamics = Lorenz96(n=N)
    spun_up = integrate(dynamics, jnp.asarray(8.0 + rng.normal(size=N)), 0.0, 200, DT, RK4(), diffrax.DirectAdjoint())[-1]
    truth = np.asarray(integrate(dynamics, spun_up, 0.0, STEPS, DT, RK4(), diffrax.DirectAdjoint()))
    slot = np.repeat(observed_steps, len(observed_sites))
    site = np.tile(observed_sites, len(observed_steps))
    obs = WindowObservations(
        values=jnp.asarray(truth[slot, site] + rng.normal(size=slot.size)),
        std=jnp.ones(slot.size), slot=jnp.asarray(slot, jnp.int32),
        index=jnp.asarray(np.stack([site, site], axis=1), jnp.int32),
        weight=jnp.asarray(np.tile([1.0, 0.0], (slot.size, 1))), mask=jnp.ones(slot.size, bool))
    background = jnp.asarray(truth[0] + rng.normal(size=N))
    return dynamics, obs, background


def method(dynamics, incremental=None, minimiser=None):
    return StrongConstraint4DVar(
        dynamics=dynamics, ode_solver=RK4(), forward_adjoint=diffrax.RecursiveCheckpointAdjoint(),
        background_sqrt=background_sqrt_operator("gaussian", 1.0, dynamics.layout(), 2.0, jnp.float64),
        minimiser=minimiser, minimiser_adjoint=optx.ImplicitAdjoint(), nsteps=STEPS, dt=DT, max_steps=200,
        incremental=incremental)


def test_enough_outer_loops_reach_the_nonlinear_minimum_and_j_decreases():
    dynamics, obs, background = window(np.arange(N), np.arange(1, STEPS + 1))
    nonlinear = analyse_window(method(dynamics, minimiser=optx.GaussNewton(rtol=1e-12, atol=1e-12)), background, 0.0, obs)
    incremental = analyse_window(method(dynamics, IncrementalSettings(16, 200, 1e-10)), background, 0.0, obs)
    outer_costs = np.append(np.asarray(incremental.outer.cost[:, 0]), float(incremental.cost_final[0]))
    # The nonlinear J falls at every outer loop (monotone), and the first loop does most of it.
    assert np.all(np.diff(outer_costs) <= 1e-9 * outer_costs[0]), outer_costs
    assert outer_costs[1] - outer_costs[-1] < 0.2 * (outer_costs[0] - outer_costs[1])
    # Same minimum as the nonlinear solve: J and the analysis agree.
    np.testing.assert_allclose(incremental.cost_final[0], nonlinear.cost_final[0], rtol=1e-9)
    np.testing.assert_allclose(incremental.analysis_initial, nonlinear.analysis_initial, rtol=0, atol=1e-6)
    # Each outer loop's quadratic starts at the nonlinear J of its linearisation state.
    np.testing.assert_allclose(incremental.outer.quadratic_initial, incremental.outer.cost[:, 0], rtol=1e-12)
    quadratic = np.asarray(incremental.outer.quadratic_final)
    assert np.all(quadratic <= np.asarray(incremental.outer.quadratic_initial) * (1 + 1e-12))
    assert quadratic[0] < 0.6 * float(incremental.outer.quadratic_initial[0])
    assert bool(jnp.all(incremental.outer.inner_converged))


def test_preconditioned_inner_loops_need_far_fewer_iterations_than_the_control_dimension():
    """Ten sites observed at the window end: I + L^T R^-1 L is identity plus rank 10."""
    sites = np.arange(0, N, 4)
    dynamics, obs, background = window(sites, np.array([STEPS]))
    result = analyse_window(method(dynamics, IncrementalSettings(2, 200, 1e-10)), background, 0.0, obs)
    iterations = np.asarray(result.outer.inner_iterations)
    # CG's bound in exact arithmetic is the number of distinct eigenvalues (11); lineax also asks
    # the last step to be small, which can take one or two more.
    assert np.all(iterations <= len(sites) + 3), iterations
    assert np.all(iterations < N / 3), iterations
    assert np.all(np.asarray(result.outer.gradient_reduction) < 1e-10)
    assert float(result.cost_final[0]) < float(result.cost_initial[0])
