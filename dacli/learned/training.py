"""Training 4DVarNet end to end: the loss, the optimiser and one compiled training step.

The loss on a batch of windows (observations y, mask m, truth x_t) is

    L = [mean (x_K - x_t)^2  +  w_Phi mean (x_t - Phi(x_t))^2] / scale^2

(Fablet et al. 2021: the reconstruction error plus the prior's consistency on true states, which
makes Phi a projector onto plausible trajectories; w_Phi comes from the configuration; dividing
by the network's state scale makes the loss dimensionless, so learning rates carry over). Gradients
reach the network through the K solver iterations as the network's ``iteration_adjoint`` says.
Optimiser: optax Adam on a warm-up + cosine-decay schedule, gradients clipped by global norm,
updates with a non-finite gradient skipped (``optax.apply_if_finite``).
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float


def batch_loss(
    network,
    y: Float[Array | np.ndarray, " batch *layout"],
    mask: Bool[Array | np.ndarray, " batch *layout"],
    truth: Float[Array | np.ndarray, " batch *layout"],
    prior_loss_weight: float,
    background=None,
) -> Float[Array, ""]:
    """Mean reconstruction error of the batch plus the prior-consistency term (see module
    docstring);
    ``background`` is the batch's :class:`~dacli.learned.fourdvarnet.Background` (for a network
    using them)."""
    reconstruction = jax.vmap(network)(y, mask, background)
    prior = jax.vmap(network.project)(truth)
    error = jnp.mean((reconstruction - truth) ** 2) + prior_loss_weight * jnp.mean(
        (truth - prior) ** 2
    )
    return error / network.scale**2


@functools.lru_cache(
    maxsize=8
)  # one object per setting: train_step's compiled program is reused (resume, tests)
def make_optimiser(
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    clip_norm: float = 1.0,
    max_skipped: int = 10,
) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup_steps else learning_rate,
        peak_value=learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(total_steps, warmup_steps + 1),
        end_value=0.05 * learning_rate,
    )
    return optax.apply_if_finite(
        optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(schedule)),
        max_consecutive_errors=max_skipped,
    )


@eqx.filter_jit
def train_step(
    network,
    optimiser_state,
    y: Float[Array | np.ndarray, " batch *layout"],
    mask: Bool[Array | np.ndarray, " batch *layout"],
    truth: Float[Array | np.ndarray, " batch *layout"],
    background=None,
    *,
    optimiser,
    prior_loss_weight: float,
):
    """One optimiser step on one batch; returns (network, optimiser state, loss before the step)."""
    loss, grads = eqx.filter_value_and_grad(batch_loss)(
        network, y, mask, truth, prior_loss_weight, background
    )
    updates, optimiser_state = optimiser.update(
        grads, optimiser_state, eqx.filter(network, eqx.is_inexact_array)
    )
    return eqx.apply_updates(network, updates), optimiser_state, loss


@eqx.filter_jit
def evaluate(
    network,
    y: Float[Array | np.ndarray, " batch *layout"],
    mask: Bool[Array | np.ndarray, " batch *layout"],
    truth: Float[Array | np.ndarray, " batch *layout"],
    background=None,
) -> Float[Array, ""]:
    """RMSE of the reconstructions of a batch against the truth."""
    return jnp.sqrt(jnp.mean((jax.vmap(network)(y, mask, background) - truth) ** 2))


def unstable_training(history: list[dict], rise: float = 1.5, epochs: int = 2) -> str | None:
    """A warning when the epoch-mean training loss has stayed above ``rise`` x its lowest value for
    the last ``epochs`` epochs: the optimiser is diverging, not overfitting (which lowers the
    training loss while the validation RMSE climbs). Seen with batch 8 at learning rate 1e-2 on
    3840 Lorenz-96 windows: loss 0.26, 0.35, 0.70, 1.09 over the first four epochs."""
    losses = [h["loss"] for h in history]
    if len(losses) <= epochs:
        return None
    lowest = min(range(len(losses) - epochs), key=losses.__getitem__)
    if not all(loss > rise * losses[lowest] for loss in losses[-epochs:]):
        return None
    return (
        f"the training loss rose from {losses[lowest]:.3g} (epoch {history[lowest]['epoch']}) to "
        f"{losses[-1]:.3g} (epoch {history[-1]['epoch']}): the optimisation is unstable; lower "
        "train.learning_rate or raise train.batch_size (the best network so far is kept)"
    )
