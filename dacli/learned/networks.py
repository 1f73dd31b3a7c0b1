"""The learned parts of 4DVarNet: a bilinear convolutional prior and a ConvLSTM gradient modulator.

Both act on a state laid out as (channels, *spatial) — for Lorenz-63 the variables are channels
and time the spatial axis; for Lorenz-96 and 2-D fields the window's time steps are channels
over the spatial grid (Fablet et al. 2021, "Learning variational data assimilation models and
solvers", JAMES 13). Convolutions pad circularly on periodic grids, with zeros otherwise.

* :class:`BilinearPrior` — Phi(x): an encoder convolution, then linear and bilinear
  (product of two convolutions) terms, decoded back: the "BiLin" residual unit of 4DVarNet,
  which can represent the quadratic nonlinearities of Lorenz-type and QG dynamics.
* :class:`ConvLSTMModulator` — a convolutional LSTM cell (Shi et al. 2015, NeurIPS) fed with the
  normalised gradient of the variational cost; its output is the update step.
* :class:`GradientStep` — plain gradient descent with a learned step size: the solver that
  converges to a fixed point (the minimum of the cost), for ``ImplicitAdjoint``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp


def _conv(spatial_dims: int, channels_in: int, channels_out: int, kernel: int, periodic: bool, key, dtype):
    return eqx.nn.Conv(spatial_dims, channels_in, channels_out, kernel, padding=kernel // 2,
                       padding_mode="CIRCULAR" if periodic else "ZEROS", dtype=dtype, key=key)


class BilinearPrior(eqx.Module):
    """Phi(x) = x + D([L(E x), B1(E x) * B2(E x)]): a residual bilinear convolutional auto-encoder."""

    encode: eqx.nn.Conv
    linear: eqx.nn.Conv
    left: eqx.nn.Conv
    right: eqx.nn.Conv
    decode: eqx.nn.Conv

    def __init__(self, channels: int, hidden: int, spatial_dims: int, kernel: int, periodic: bool, *, key,
                 dtype=jnp.float32):
        keys = jax.random.split(key, 5)
        self.encode = _conv(spatial_dims, channels, hidden, kernel, periodic, keys[0], dtype)
        self.linear = _conv(spatial_dims, hidden, hidden, kernel, periodic, keys[1], dtype)
        self.left = _conv(spatial_dims, hidden, hidden, kernel, periodic, keys[2], dtype)
        self.right = _conv(spatial_dims, hidden, hidden, kernel, periodic, keys[3], dtype)
        decode = _conv(spatial_dims, 2 * hidden, channels, 1, periodic, keys[4], dtype)
        # Start as the identity map (a zero residual): training adds structure, not noise.
        self.decode = eqx.tree_at(lambda c: c.weight, decode, jnp.zeros_like(decode.weight))

    def __call__(self, x):
        z = self.encode(x)
        return x + self.decode(jnp.concatenate([self.linear(z), self.left(z) * self.right(z)]))


class ConvLSTMModulator(eqx.Module):
    """One ConvLSTM cell: (gradient, (h, c)) -> (update, (h, c)); the update has the state's shape."""

    gates: eqx.nn.Conv
    output: eqx.nn.Conv
    hidden: int = eqx.field(static=True)

    def __init__(self, channels: int, hidden: int, spatial_dims: int, kernel: int, periodic: bool, *, key,
                 dtype=jnp.float32):
        keys = jax.random.split(key, 2)
        self.gates = _conv(spatial_dims, channels + hidden, 4 * hidden, kernel, periodic, keys[0], dtype)
        self.output = _conv(spatial_dims, hidden, channels, 1, periodic, keys[1], dtype)
        self.hidden = hidden

    def initial_state(self, x):
        zeros = jnp.zeros((self.hidden, *x.shape[1:]), x.dtype)
        return zeros, zeros

    def __call__(self, gradient, state):
        h, c = state
        scale = jnp.sqrt(jnp.mean(gradient**2) + jnp.finfo(gradient.dtype).tiny)
        gates = self.gates(jnp.concatenate([gradient / scale, h]))
        i, f, o, u = jnp.split(gates, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(u)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return self.output(h), (h, c)


class GradientStep(eqx.Module):
    """update = exp(log_step) * gradient: a fixed-point solver (no recurrent state)."""

    log_step: jax.Array

    def __init__(self, step: float = 0.5, dtype=jnp.float32):
        self.log_step = jnp.log(jnp.asarray(step, dtype))

    def initial_state(self, x):
        empty = jnp.zeros((0,), x.dtype)
        return empty, empty

    def __call__(self, gradient, state):
        return jnp.exp(self.log_step) * gradient, state
