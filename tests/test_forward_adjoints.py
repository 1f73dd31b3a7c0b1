"""The 4DVar gradient on nonlinear Lorenz-96 is the same under every forward adjoint.

Reference: DirectAdjoint (plain reverse mode through the solver loop). Exact strategies
(RecursiveCheckpointAdjoint with dacli's default checkpoints, ForwardMode) must agree to
round-off; BacksolveAdjoint solves the adjoint ODE backwards in time and is approximate — it is
held to its own stated tolerance (measured 1.4e-3 relative here: 20 RK steps of dt = 0.05).
Also checks the shipped default RecursiveCheckpointAdjoint against DirectAdjoint (a measured
diffrax trap made its own default checkpoints several percent wrong).
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
from helpers import make_method  # noqa: F401  (sets x64)

from dacli.covariances.background import background_sqrt_operator
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.models.integrate import integrate
from dacli.models.lorenz import Lorenz96
from dacli.observations.operator import WindowObservations


NSTEPS, DT = 20, 0.05
TOLERANCE = {"RecursiveCheckpointAdjoint": 1e-11, "ForwardMode": 1e-11, "DirectAdjoint": 0.0, "BacksolveAdjoint": 1e-2}


@pytest.fixture(scope="module")
def lorenz96_problem():
    dynamics = Lorenz96(n=40, forcing=8.0)
    layout = dynamics.layout()
    key_truth, key_obs, key_v = jax.random.split(jax.random.PRNGKey(3), 3)
    truth0 = 8.0 + jax.random.normal(key_truth, (40,))
    truth = integrate(dynamics, truth0, 0.0, NSTEPS, DT, diffrax.Tsit5(), diffrax.DirectAdjoint())
    slots = np.repeat(np.arange(1, NSTEPS + 1), 40)
    sites = np.tile(np.arange(40), NSTEPS)
    values = np.asarray(truth)[slots, sites] + np.asarray(jax.random.normal(key_obs, (slots.size,)))
    obs = WindowObservations(
        values=jnp.asarray(values), std=jnp.ones(slots.size), slot=jnp.asarray(slots, jnp.int32),
        index=jnp.asarray(np.stack([sites, sites], 1), jnp.int32),
        weight=jnp.asarray(np.tile([1.0, 0.0], (slots.size, 1))), mask=jnp.ones(slots.size, bool),
    )
    method = StrongConstraint4DVar(
        dynamics=dynamics, solver=diffrax.Tsit5(), forward_adjoint=diffrax.DirectAdjoint(),
        background_sqrt=background_sqrt_operator("gaussian", 1.0, layout, 2.0, jnp.float64),
        minimiser=optx.LBFGS(rtol=1e-6, atol=1e-6), minimiser_adjoint=optx.ImplicitAdjoint(),
        nsteps=NSTEPS, dt=DT, max_steps=100,
    )
    background = truth0 + 0.5 * jax.random.normal(key_v, (40,))
    v = 0.3 * jax.random.normal(jax.random.PRNGKey(9), (40,))
    args = (background, 0.0, obs)
    reference = np.asarray(eqx.filter_jit(lambda m, v, a: m.gradient(v, a))(method, v, args))
    return method, v, args, reference


def _relative_error(method, adjoint, v, args, reference):
    swapped = eqx.tree_at(lambda m: m.forward_adjoint, method, adjoint)
    gradient = np.asarray(eqx.filter_jit(lambda m, v, a: m.gradient(v, a))(swapped, v, args))
    return np.linalg.norm(gradient - reference) / np.linalg.norm(reference)


@pytest.mark.parametrize("name", ["RecursiveCheckpointAdjoint", "ForwardMode", "BacksolveAdjoint"])
def test_forward_adjoints_agree(lorenz96_problem, name):
    method, v, args, reference = lorenz96_problem
    adjoint = getattr(diffrax, name)()
    error = _relative_error(method, adjoint, v, args, reference)
    assert error <= TOLERANCE[name], f"{name}: gradient differs from DirectAdjoint by {error:.3g} (relative)"
    if name == "BacksolveAdjoint":
        assert error > 1e-12, "BacksolveAdjoint is approximate; an exact match means it was not really used"


@pytest.mark.parametrize("nsteps", [1, 7, 40])
def test_shipped_default_matches_direct_adjoint(nsteps):
    """dacli's default RecursiveCheckpointAdjoint (checkpoints = steps) is exact for any window length.

    diffrax 0.7.2's own default checkpoints with a constant step and max_steps = steps gave
    gradients 1.3-6 % wrong on Lorenz-96 (measured); every shipped default is checked here.
    """
    dynamics = Lorenz96(n=12, forcing=8.0)
    x0 = 8.0 + jax.random.normal(jax.random.PRNGKey(nsteps), (12,))

    def functional(x, adjoint):
        return jnp.sum(jnp.sin(integrate(dynamics, x, 0.3, nsteps, DT, diffrax.Tsit5(), adjoint)))

    grad = jax.jit(jax.grad(functional), static_argnums=1)
    reference = grad(x0, diffrax.DirectAdjoint())
    shipped = grad(x0, diffrax.RecursiveCheckpointAdjoint())
    assert np.linalg.norm(shipped - reference) / np.linalg.norm(reference) < 1e-12
