"""Observations of one window and the linear observation operator H.

Every supported operator — identity on observed points, a subset of variables, linear
interpolation to an off-grid location — is a sparse weighted gather: observation p reads
``sum_k weight[p, k] * x[slot[p], index[p, k]]`` from the trajectory saved at every model step.
Arrays are padded to a fixed capacity and masked, so one compiled program serves every window;
padded and rejected entries hold finite dummies (value 0, std 1), never NaN, so gradients stay
finite (a masked NaN would still poison them).

A nonlinear operator (radiances, a retrieval) does not fit this form: it would be another
operator, not new weights. Reference: Ide, Courtier, Ghil & Lorenc (1997), J. Meteor. Soc.
Japan 75, for the notation y = H(x) + error.
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
    """Padded observations of one window (p = capacity, points = interpolation points per
    observation); stacked (PackedObservations.stacked), a leading axis of windows."""

    values: Float[_Arrays, "*windows p"]
    std: Float[_Arrays, "*windows p"]
    slot: Int[_Arrays, "*windows p"]
    index: Int[_Arrays, "*windows p points"]
    weight: Float[_Arrays, "*windows p points"]
    mask: Bool[_Arrays, "*windows p"]


def apply_observation_operator(
    trajectory: Float[Array, "steps n"], obs: WindowObservations
) -> Float[Array, " p"]:
    """H(trajectory) at every (padded) observation."""
    gathered = trajectory[obs.slot[:, None], obs.index]
    return jnp.sum(obs.weight * gathered, axis=-1)


def whitened_departures(
    trajectory: Float[Array, "steps n"], obs: WindowObservations
) -> Float[Array, " p"]:
    """(y - H(x)) / sigma on valid observations, 0 on padding."""
    departures = (obs.values - apply_observation_operator(trajectory, obs)) / obs.std
    return jnp.where(obs.mask, departures, 0.0)
