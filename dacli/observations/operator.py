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
from jaxtyping import Array, Bool, Float, Int


class WindowObservations(eqx.Module):
    """Padded observations of one window (P = capacity, K = interpolation points)."""

    values: Float[Array, " P"]
    std: Float[Array, " P"]
    slot: Int[Array, " P"]
    index: Int[Array, "P K"]
    weight: Float[Array, "P K"]
    mask: Bool[Array, " P"]


def apply_observation_operator(trajectory: Float[Array, "T n"], obs: WindowObservations) -> Float[Array, " P"]:
    """H(trajectory) at every (padded) observation."""
    gathered = trajectory[obs.slot[:, None], obs.index]
    return jnp.sum(obs.weight * gathered, axis=-1)


def whitened_departures(trajectory, obs: WindowObservations):
    """(y - H(x)) / sigma on valid observations, 0 on padding."""
    departures = (obs.values - apply_observation_operator(trajectory, obs)) / obs.std
    return jnp.where(obs.mask, departures, 0.0)
