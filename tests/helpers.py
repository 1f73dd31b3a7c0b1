"""Shared test fixtures: a small linear-Gaussian problem with a closed-form answer (float64: x64 is
switched on in conftest.py)."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from dacli.covariances.background import background_sqrt_operator, covariance_matrix
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.models.base import Dynamics, StateLayout
from dacli.observations.operator import WindowObservations


class LinearDynamics(Dynamics):
    """dx/dt = A x on a small periodic grid: a damped advection-like linear system."""

    matrix: jax.Array

    def vector_field(self, t, x, args):
        return self.matrix @ x

    def layout(self) -> StateLayout:
        n = self.matrix.shape[0]
        return StateLayout(variables=("u",), grid_name="site", grid=np.arange(n, dtype=float), periodic=True)


def linear_problem(n: int = 6, nsteps: int = 8, dt: float = 0.1, seed: int = 0):
    """A linear model, background, correlated B and sparse observations at several steps."""
    rng = np.random.default_rng(seed)
    a = -0.3 * np.eye(n) + 0.5 * (np.roll(np.eye(n), 1, axis=1) - np.roll(np.eye(n), -1, axis=1))
    dynamics = LinearDynamics(jnp.asarray(a))
    layout = dynamics.layout()
    sqrt_b = background_sqrt_operator("gaussian", 0.8, layout, 1.5, jnp.float64)
    slots, index = [], []
    for slot in (2, 5, 8):
        for site in range(0, n, 2):
            slots.append(slot)
            index.append([site, (site + 1) % n])
    p = len(slots)
    weight = np.tile([0.7, 0.3], (p, 1))
    capacity = p + 3  # padding that must be ignored
    pad = capacity - p
    obs = WindowObservations(
        values=jnp.asarray(np.concatenate([rng.normal(size=p), np.zeros(pad)])),
        std=jnp.asarray(np.concatenate([rng.uniform(0.3, 0.6, size=p), np.ones(pad)])),
        slot=jnp.asarray(np.concatenate([slots, np.zeros(pad, int)]), dtype=jnp.int32),
        index=jnp.asarray(np.concatenate([index, np.zeros((pad, 2), int)]), dtype=jnp.int32),
        weight=jnp.asarray(np.concatenate([weight, np.zeros((pad, 2))])),
        mask=jnp.asarray(np.arange(capacity) < p),
    )
    background = jnp.asarray(rng.normal(size=n))
    return dynamics, sqrt_b, obs, background, nsteps, dt


def make_method(dynamics, sqrt_b, nsteps, dt, minimiser=None, forward_adjoint=None, max_steps=500):
    return StrongConstraint4DVar(
        dynamics=dynamics,
        ode_solver=diffrax.Tsit5(),
        forward_adjoint=forward_adjoint or diffrax.RecursiveCheckpointAdjoint(),
        background_sqrt=sqrt_b,
        minimiser=minimiser or optx.LBFGS(rtol=1e-12, atol=1e-12),
        minimiser_adjoint=optx.ImplicitAdjoint(),
        nsteps=nsteps,
        dt=dt,
        max_steps=max_steps,
    )


def blue_analysis(method, background, obs):
    """Closed-form x0 analysis: xb + B G^T (G B G^T + R)^{-1} (y - G xb), G = H M (dense)."""
    g, variances = observation_jacobian(method, background, obs)
    y = np.asarray(obs.values)[np.asarray(obs.mask)]
    r = np.diag(variances)
    b = covariance_matrix(method.background_sqrt)
    xb = np.asarray(background)
    gain = b @ g.T @ np.linalg.inv(g @ b @ g.T + r)
    return xb + gain @ (y - g @ xb)


def observation_jacobian(method, background, obs):
    """G = H M (dense, valid observations only) and their error variances, as blue_analysis builds them."""
    direct = eqx.tree_at(lambda m: m.forward_adjoint, method, diffrax.DirectAdjoint())

    def observe(x0):
        traj = direct.trajectory(x0, 0.0)
        gathered = traj[obs.slot[:, None], obs.index]
        return jnp.sum(obs.weight * gathered, axis=-1)

    mask = np.asarray(obs.mask)
    g = np.asarray(jax.jacfwd(observe)(jnp.zeros_like(background)))[mask]
    return g, np.asarray(obs.std)[mask] ** 2


def hessian_bound(method, background, obs):
    """Largest eigenvalue of the control-space Hessian of a linear problem, in closed form.

    J(v) = 1/2 |v|^2 + 1/2 |R^{-1/2} (y - G (xb + B^{1/2} v))|^2 has the constant Hessian
    I + B^{T/2} G^T R^{-1} G B^{1/2}, whose largest eigenvalue is 1 + lambda_max(R^{-1/2} G B G^T R^{-1/2}).
    """
    g, variance = observation_jacobian(method, background, obs)
    b = covariance_matrix(method.background_sqrt) * np.exp(2.0 * float(method.log_background_scale))
    whitened = g / np.sqrt(variance)[:, None]
    return 1.0 + float(np.linalg.eigvalsh(whitened @ b @ whitened.T).max())
