"""Twin-experiment windows for tuning: truth, observations and backgrounds with known error statistics.

One truth run of the model (after ``spinup_steps``) is cut into ``count`` back-to-back windows of
``nsteps`` steps; window k's trajectory holds its ``nsteps + 1`` states, so consecutive windows
share their end and start states. Each window is observed at steps ``obs_every, 2 obs_every, ...,
nsteps`` (a random ``observed_fraction`` of the state, Gaussian noise of std ``obs_error_std``),
as ``dacli simulate``'s windows are. Its background is the true initial state plus a draw from the
*true* background-error covariance, ``background_error_sqrt @ z``, so the statistics the tuning
should recover are known. Observations use the padded, masked :class:`WindowObservations` layout
of every method, with the *assumed* error std ``assumed_std`` (what the configuration says R is).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from dacli.models.integrate import integrate
from dacli.observations.operator import WindowObservations


class TwinWindows(eqx.Module):
    """``W`` windows: backgrounds (W, n), start times (W,), observations (leading W), truths (W, T+1, n)."""

    backgrounds: jax.Array
    starts: jax.Array
    obs: WindowObservations
    truths: jax.Array

    def __getitem__(self, part: slice) -> "TwinWindows":
        return jax.tree_util.tree_map(lambda a: a[part], self)


def twin_windows(dynamics, solver, dt: float, count: int, nsteps: int, obs_every: int, obs_error_std: float,
                 assumed_std: float, background_error_sqrt: np.ndarray, seed: int, spinup_steps: int,
                 observed_fraction: float = 1.0, dtype=jnp.float64) -> TwinWindows:
    """See the module docstring; ``background_error_sqrt`` is a dense (n, n) square root of the true B."""
    key = jax.random.PRNGKey(seed)
    x0 = jnp.asarray(dynamics.default_state(key), dtype)
    # one solve through spin-up and windows: one compilation (the windows' clock starts after the spin-up)
    run = np.asarray(integrate(dynamics, x0, -spinup_steps * dt, spinup_steps + count * nsteps, dt, solver,
                               diffrax.DirectAdjoint()), float)[spinup_steps:]
    n = run.shape[-1]
    truths = np.stack([run[k * nsteps:(k + 1) * nsteps + 1] for k in range(count)])
    rng = np.random.default_rng(seed)
    backgrounds = truths[:, 0] + rng.standard_normal((count, n)) @ np.asarray(background_error_sqrt, float).T
    slots = np.arange(obs_every, nsteps + 1, obs_every)
    slot = np.repeat(slots, n)  # every (time, site) pair; the unobserved ones masked
    index = np.tile(np.arange(n), len(slots))[:, None]
    mask = rng.random((count, slot.size)) < observed_fraction
    values = truths[:, slot, index[:, 0]] + rng.normal(0.0, obs_error_std, (count, slot.size))
    floats = np.dtype(dtype)
    obs = WindowObservations(
        values=jnp.asarray(np.where(mask, values, 0.0), floats), std=jnp.full(mask.shape, assumed_std, floats),
        slot=jnp.broadcast_to(jnp.asarray(slot), mask.shape), index=jnp.broadcast_to(jnp.asarray(index), (count, *index.shape)),
        weight=jnp.ones((count, slot.size, 1), floats), mask=jnp.asarray(mask))
    return TwinWindows(backgrounds=jnp.asarray(backgrounds, floats), starts=jnp.asarray(np.arange(count) * nsteps * dt, floats),
                       obs=obs, truths=jnp.asarray(truths, floats))
