"""Observations of one window and the linear observation operator H.

Every supported operator — identity on observed points, a subset of variables, linear
interpolation to an off-grid location — is a sparse weighted gather: observation p reads
``sum_k weight[p, k] * x[slot[p], index[p, k]]`` from the trajectory saved at every model step.
Arrays are padded to a fixed capacity and masked, so one compiled program serves every window;
padded and rejected entries hold finite dummies (value 0, std 1), never NaN, so gradients stay
finite (a masked NaN would still poison them).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

# Device arrays inside compiled programs, host (numpy) arrays where the windows are packed and
# stacked (PackedObservations.stacked) before a compiled program takes them.
_Arrays = Array | np.ndarray


class WindowObservations(eqx.Module):
    """Padded observations of one window (P = capacity, POINTS = interpolation points per
    observation); stacked (PackedObservations.stacked), a leading window axis K."""

    values: Float[_Arrays, "*K P"]
    std: Float[_Arrays, "*K P"]
    slot: Int[_Arrays, "*K P"]
    index: Int[_Arrays, "*K P POINTS"]
    weight: Float[_Arrays, "*K P POINTS"]
    mask: Bool[_Arrays, "*K P"]


def apply_observation_operator(
    trajectory: Float[Array, "T n"], obs: WindowObservations
) -> Float[Array, " P"]:
    """H(trajectory) at every (padded) observation."""
    gathered = trajectory[obs.slot[:, None], obs.index]
    return jnp.sum(obs.weight * gathered, axis=-1)


def whitened_departures(trajectory, obs: WindowObservations):
    """(y - H(x)) / sigma on valid observations, 0 on padding."""
    departures = (obs.values - apply_observation_operator(trajectory, obs)) / obs.std
    return jnp.where(obs.mask, departures, 0.0)
