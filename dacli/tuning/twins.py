"""Twin-experiment windows for tuning: truth, observations and backgrounds with known error
statistics.

A twin (a truth run and its synthetic observations, e.g. what ``dacli simulate`` makes) is cut
into ``count`` back-to-back windows of ``nsteps`` steps from ``start``. Its observations are
packed per window as ``dacli assimilate`` and ``dacli train`` see them (padded, masked
:class:`WindowObservations`), but with the *assumed* error std ``assumed_std`` (what the
configuration says R is) in place of the true one. Window k's truth holds its ``nsteps + 1``
states (consecutive windows share their end and start states). Its background is the true
initial state plus a draw from the *true* background-error covariance,
``background_error_sqrt @ z``, so the statistics the tuning should recover are known.

Not for real observations: the backgrounds are drawn from a known B, which only a twin has.
Reference: the identical-twin setting of DAPPER (Raanes et al.,
https://github.com/nansencenter/DAPPER).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from dacli.io.observation_set import ObservationSet
from dacli.observations.operator import WindowObservations
from dacli.observations.windows import make_schedule, pack_observations


class TwinWindows(eqx.Module):
    """``W`` windows: backgrounds (W, n), start times (W,), observations (leading W), truths (W,
    T+1, n)."""

    backgrounds: Float[Array, "windows n"]
    starts: Float[Array, " windows"]
    obs: WindowObservations
    truths: Float[Array, "windows steps n"]

    def __getitem__(self, part: slice) -> TwinWindows:
        return jax.tree_util.tree_map(lambda a: a[part], self)


def twin_windows(
    observations: ObservationSet,
    truth: Float[np.ndarray, "times n"],
    *,
    start: float,
    dt: float,
    count: int,
    nsteps: int,
    assumed_std: float,
    background_error_sqrt: Float[np.ndarray, "n n"],
    seed: int,
    dtype=jnp.float64,
) -> TwinWindows:
    """See the module docstring. ``truth`` (at least count * nsteps + 1, n) starts at ``start``;
    ``background_error_sqrt`` is a dense (n, n) square root of the true B; ``seed`` the twin's
    (the backgrounds draw from a stream of their own, spawned from it)."""
    length = nsteps * dt
    schedule = make_schedule(start, length, length, dt, "newest", count, None)
    floats = np.dtype(dtype)
    obs = pack_observations(observations, schedule, None, floats).stacked()
    obs = WindowObservations(
        obs.values, np.full_like(obs.std, assumed_std), obs.slot, obs.index, obs.weight, obs.mask
    )
    truths = np.stack([truth[k * nsteps : (k + 1) * nsteps + 1] for k in range(count)])
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    backgrounds = (
        truths[:, 0]
        + rng.standard_normal(truths[:, 0].shape) @ np.asarray(background_error_sqrt, float).T
    )
    return TwinWindows(
        backgrounds=jnp.asarray(backgrounds, floats),
        starts=jnp.asarray(schedule.starts, floats),
        obs=jax.tree_util.tree_map(jnp.asarray, obs),
        truths=jnp.asarray(truths, floats),
    )
