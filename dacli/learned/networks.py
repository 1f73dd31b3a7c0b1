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
* :class:`ModelPrior` — Phi(x)_t = M(x_{t-1}): the known dynamics as the prior, no weights
  (Fablet et al. 2021's 4DVarNet "with the true ODE"); w |x - Phi(x)|^2 is then weak-constraint
  4DVar's model-error term with Q = sigma_o^2 / w per step, every step evaluated at once.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Float, PRNGKeyArray

from dacli.models.base import Dynamics
from dacli.models.fixed_steps import TERM, with_plain_stages


class Conv(eqx.Module):
    """A stride-1 "same" convolution of a (channels, *spatial) array, as one matrix product.

    Same parameters and initialisation as ``equinox.nn.Conv`` (weight (out, in, *kernel), uniform
    in +-1/sqrt(fan-in)) and the same result (tested), but computed without a convolution
    primitive: the padded input's shifted copies, one per kernel point, are stacked and
    contracted with the weights in one ``einsum`` (im2col). Inside a loop (the solver's scan)
    XLA's CPU backend runs channels-first convolutions through a slow generic path
    (benchmarks/FOURDVARNET.md); outside loops ``equinox.nn.Conv`` is as fast. Padding is
    circular on periodic grids, zeros otherwise.
    """

    weight: jax.Array
    bias: jax.Array
    periodic: bool = eqx.field(static=True)

    def __init__(
        self,
        spatial_dims: int,
        channels_in: int,
        channels_out: int,
        kernel: int,
        periodic: bool,
        *,
        key,
        dtype=jnp.float32,
    ):
        weight_key, bias_key = jax.random.split(key)
        limit = 1.0 / (channels_in * kernel**spatial_dims) ** 0.5
        self.weight = jax.random.uniform(
            weight_key, (channels_out, channels_in, *(kernel,) * spatial_dims), dtype, -limit, limit
        )
        self.bias = jax.random.uniform(bias_key, (channels_out,), dtype, -limit, limit)
        self.periodic = periodic

    def __call__(self, x: Float[Array, " channels *grid"]) -> Float[Array, " out *grid"]:
        pad = [(0, 0), *((k // 2, k // 2) for k in self.weight.shape[2:])]
        z = jnp.pad(x, pad, mode="wrap" if self.periodic else "constant")
        shape = x.shape[1:]
        patches = [
            z[(slice(None), *(slice(o, o + n) for o, n in zip(offset, shape, strict=True)))]
            for offset in itertools.product(*(range(k) for k in self.weight.shape[2:]))
        ]
        # (in, kernel points, *spatial) x (out, in, kernel points) -> (out, *spatial): one matrix
        # product
        kernel = self.weight.reshape(*self.weight.shape[:2], -1)
        return jnp.einsum(
            "ik...,oik->o...", jnp.stack(patches, axis=1), kernel
        ) + self.bias.reshape(-1, *(1,) * len(shape))


@dataclasses.dataclass(frozen=True)
class ConvGrid:
    """What every convolution of a network shares: the grid's dimensions, the kernel width, the
    padding (circular on periodic grids) and the weights' dtype.

    Not a layer: :meth:`conv` makes the :class:`Conv` layers of :class:`BilinearPrior` and
    :class:`ConvLSTMModulator` from it.
    """

    spatial_dims: int
    kernel: int
    periodic: bool
    dtype: DTypeLike = jnp.float32

    def conv(
        self, channels_in: int, channels_out: int, key: PRNGKeyArray, kernel: int | None = None
    ) -> Conv:
        """A :class:`Conv` from ``channels_in`` to ``channels_out`` channels (``kernel``: another
        width than the grid's, e.g. 1 for a pointwise decoder)."""
        width = self.kernel if kernel is None else kernel
        return Conv(
            self.spatial_dims,
            channels_in,
            channels_out,
            width,
            self.periodic,
            key=key,
            dtype=self.dtype,
        )


class AbstractPrior(eqx.Module):
    """Phi, the prior of 4DVarNet's cost: learned (:class:`BilinearPrior`) or the model's
    (:class:`ModelPrior`)."""

    @abc.abstractmethod
    def project(self, x: Array, offset: float, scale: float) -> Array:
        """Phi(x) in physical units, for a state of climatological mean ``offset``, std
        ``scale``."""


class AbstractModulator(eqx.Module):
    """The solver's update rule: (cost gradient, recurrent state) -> (update, recurrent state)."""

    @abc.abstractmethod
    def initial_state(self, x: Array) -> tuple[Array, Array]:
        """The recurrent state before the first iteration from the first iterate ``x``."""

    @abc.abstractmethod
    def __call__(
        self, gradient: Array, state: tuple[Array, Array]
    ) -> tuple[Array, tuple[Array, Array]]:
        """The update (subtracted from the iterate, in units of the state's std), the next state."""


class BilinearPrior(AbstractPrior, strict=True):
    """Phi(x) = x + D([L(E x), B1(E x) * B2(E x)]): a residual bilinear convolutional auto-encoder.

    Works on the normalised state (x - offset) / scale. When the dynamics are known and trusted,
    :class:`ModelPrior` needs no training.
    """

    encode: Conv
    linear: Conv
    left: Conv
    right: Conv
    decode: Conv

    def __init__(self, grid: ConvGrid, channels: int, hidden: int, *, key: PRNGKeyArray):
        keys = jax.random.split(key, 5)
        self.encode = grid.conv(channels, hidden, keys[0])
        self.linear = grid.conv(hidden, hidden, keys[1])
        self.left = grid.conv(hidden, hidden, keys[2])
        self.right = grid.conv(hidden, hidden, keys[3])
        decode = grid.conv(2 * hidden, channels, keys[4], kernel=1)
        # Start as the identity map (a zero residual): training adds structure, not noise.
        self.decode = eqx.tree_at(lambda c: c.weight, decode, jnp.zeros_like(decode.weight))

    def __call__(self, x: Float[Array, " *layout"]) -> Float[Array, " *layout"]:
        z = self.encode(x)
        return x + self.decode(jnp.concatenate([self.linear(z), self.left(z) * self.right(z)]))

    def project(
        self, x: Float[Array, " *layout"], offset: float, scale: float
    ) -> Float[Array, " *layout"]:
        return offset + scale * self((x - offset) / scale)


class ConvLSTMModulator(AbstractModulator, strict=True):
    """One ConvLSTM cell: (gradient, (h, c)) -> (update, (h, c)); the update has the state's shape.

    Its normalised updates never settle to a fixed point: not for the ``ImplicitAdjoint`` solver
    adjoint (use :class:`GradientStep`).
    """

    gates: Conv
    output: Conv
    hidden: int = eqx.field(static=True)

    def __init__(self, grid: ConvGrid, channels: int, hidden: int, *, key: PRNGKeyArray):
        keys = jax.random.split(key, 2)
        self.gates = grid.conv(channels + hidden, 4 * hidden, keys[0])
        self.output = grid.conv(hidden, channels, keys[1], kernel=1)
        self.hidden = hidden

    def initial_state(self, x: Float[Array, " *layout"]) -> tuple[Array, Array]:
        zeros = jnp.zeros((self.hidden, *x.shape[1:]), x.dtype)
        return zeros, zeros

    def __call__(
        self, gradient: Float[Array, " *layout"], state: tuple[Array, Array]
    ) -> tuple[Float[Array, " *layout"], tuple[Array, Array]]:
        h, c = state
        scale = jnp.sqrt(jnp.mean(gradient**2) + jnp.finfo(gradient.dtype).tiny)
        gates = self.gates(jnp.concatenate([gradient / scale, h]))
        i, f, o, u = jnp.split(gates, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(u)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return self.output(h), (h, c)


class GradientStep(AbstractModulator, strict=True):
    """update = exp(log_step) * gradient: a fixed-point solver (no recurrent state)."""

    log_step: jax.Array

    def __init__(self, step: float = 0.5, dtype=jnp.float32):
        self.log_step = jnp.log(jnp.asarray(step, dtype))

    def initial_state(self, x: Float[Array, " *layout"]) -> tuple[Array, Array]:
        empty = jnp.zeros((0,), x.dtype)
        return empty, empty

    def __call__(
        self, gradient: Float[Array, " *layout"], state: tuple[Array, Array]
    ) -> tuple[Float[Array, " *layout"], tuple[Array, Array]]:
        return jnp.exp(self.log_step) * gradient, state


class ModelPrior(AbstractPrior, strict=True):
    """Phi(x)_t = M(x_{t-1}) for t >= 2, Phi(x)_1 = x_1: one model step from each state, all at
    once.

    Fablet et al. (2021) use the known ODE as 4DVarNet's prior: with it, w |x - Phi(x)|^2 is the
    weak-constraint model-error term (Q = sigma_o^2 / w per step) and the learned solver minimises
    weak-constraint 4DVar's cost. The window's steps 1..T are the states x_1..x_T; the first has no
    predecessor in the window, so it is left free (the background term of a network using
    backgrounds constrains it, as weak 4DVar's Jb). The states are vmapped, not integrated one
    after the other. No trainable weights: the model's own parameters are held out of the
    gradient. Models are taken as autonomous (the built-in ones are).
    """

    dynamics: Dynamics
    ode_solver: diffrax.AbstractSolver
    dt: float = eqx.field(static=True)
    grid_shape: tuple[int, ...] = eqx.field(static=True)  # () -> layout (n, T); else (T, *grid)

    def flat(self, x: Float[Array, " *layout"]) -> Float[Array, "steps n"]:
        """Network layout -> (T, n) states."""
        return x.T if not self.grid_shape else x.reshape(x.shape[0], -1)

    def unflat(self, states: Float[Array, "steps n"]) -> Float[Array, " *layout"]:
        return (
            states.T if not self.grid_shape else states.reshape(states.shape[0], *self.grid_shape)
        )

    def step(self, states: Float[Array, "m n"]) -> Float[Array, "m n"]:
        """One step of the model's solver from each row of ``states`` (m, n): the step dacli's
        integration takes (``dacli.models.integrate``), without its time loop."""
        dynamics = jax.tree_util.tree_map(jax.lax.stop_gradient, self.dynamics)
        term, args = TERM, (dynamics, jnp.zeros((), states.dtype))
        # a bounded loop over the stages: training differentiates through grad U (2nd order)
        solver = with_plain_stages(self.ode_solver)

        def one(state):
            solver_state = solver.init(term, 0.0, self.dt, state, args)
            return solver.step(term, 0.0, self.dt, state, args, solver_state, made_jump=False)[0]

        return jax.vmap(one)(states)

    def __call__(self, x: Float[Array, " *layout"]) -> Float[Array, " *layout"]:
        states = self.flat(x)
        return self.unflat(jnp.concatenate([states[:1], self.step(states[:-1])]))

    def project(
        self, x: Float[Array, " *layout"], offset: float, scale: float
    ) -> Float[Array, " *layout"]:
        return self(x)  # the model works in physical units
