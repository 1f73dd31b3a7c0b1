"""4DVarNet: a variational cost with a learned prior, minimised by a learned solver.

Fablet, Chapron, Drumetz, Mémin, Pannekoucke & Rousseau (2021), "Learning variational data
assimilation models and solvers", JAMES 13; the CIA-Oceanix 4dvarnet-starter (PyTorch) is the
reference implementation. For observations y with mask m (1 observed, 0 not):

    U(x) = 1/(2 sigma_o^2) [ sum m (x - y)^2  +  w sum (x - Phi(x))^2 ]

with sigma_o the observation error std and w (``prior_weight``) from the configuration (no
hard-coded weights): w weighs the prior against the observations whatever the state's units. Starting from
x_0 = m y, K iterations of

    g_k = dU/dx (x_k),   (u_k, h_k, c_k) = LSTM(g_k, h_{k-1}, c_{k-1}),   x_{k+1} = x_k - u_k

give the reconstruction x_K (``solver = "gradient"`` replaces the LSTM by a learned step size,
u_k = alpha g_k: plain gradient descent, which converges to the minimum of U — the fixed point
``ImplicitAdjoint`` differentiates; the LSTM's normalised updates never settle). The iteration is a fixed map z -> F(z; theta, y, m) of
z = (x, h, c), so every solver adjoint of :mod:`dacli.adjoints.unroll` applies to it: training
differentiates a loss on x_K through the K iterations in the way the configured
``solver_adjoint`` says, and the forward value never depends on that choice.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from dacli.adjoints.unroll import iterate
from dacli.learned.networks import BilinearPrior, ConvLSTMModulator, GradientStep


class FourDVarNet(eqx.Module):
    """Learned prior + ConvLSTM solver for states laid out as (channels, *spatial)."""

    prior: BilinearPrior
    modulator: ConvLSTMModulator | GradientStep
    iterations: int  # Python int and adjoint spec: not arrays, so static under eqx.filter_jit,
    solver_adjoint: Any  # yet replaceable with eqx.tree_at (another K or adjoint, same weights)
    observation_weight: float = eqx.field(static=True)
    prior_weight: float = eqx.field(static=True)  # w / sigma_o^2
    offset: float = eqx.field(static=True)  # climatological mean and std of the state: the networks
    scale: float = eqx.field(static=True)  # see (x - offset) / scale, O(1) whatever the units

    def __init__(self, channels: int, spatial_dims: int, *, periodic: bool, hidden: int = 16,
                 modulator_hidden: int = 16, kernel: int = 3, iterations: int = 10,
                 observation_error_std: float = 1.0, prior_weight: float = 1.0, solver_adjoint=None,
                 solver: str = "convlstm", offset: float = 0.0, scale: float = 1.0, key, dtype=jnp.float32):
        import optimistix as optx

        prior_key, modulator_key = jax.random.split(key)
        self.prior = BilinearPrior(channels, hidden, spatial_dims, kernel, periodic, key=prior_key, dtype=dtype)
        if solver == "convlstm":
            self.modulator = ConvLSTMModulator(channels, modulator_hidden, spatial_dims, kernel, periodic,
                                               key=modulator_key, dtype=dtype)
        elif solver == "gradient":
            self.modulator = GradientStep(dtype=dtype)
        else:
            raise ValueError(f"unknown solver {solver!r} (choose from: convlstm, gradient)")
        self.iterations = int(iterations)
        self.observation_weight = 1.0 / float(observation_error_std) ** 2
        self.prior_weight = float(prior_weight) * self.observation_weight
        self.offset, self.scale = float(offset), float(scale)
        self.solver_adjoint = optx.RecursiveCheckpointAdjoint() if solver_adjoint is None else solver_adjoint

    def project(self, x):
        """Phi(x) in physical units: the prior network works on the normalised state."""
        return self.offset + self.scale * self.prior((x - self.offset) / self.scale)

    def cost_terms(self, x, y, mask):
        """(observation term on observed points only, prior term) of U(x)."""
        misfit = jnp.where(mask, x - jnp.where(mask, y, 0.0), 0.0)  # NaN in y never reaches arithmetic
        prior = x - self.project(x)
        return 0.5 * self.observation_weight * jnp.sum(misfit**2), 0.5 * self.prior_weight * jnp.sum(prior**2)

    def cost(self, x, y, mask):
        """U(x) = observation term + prior term."""
        observation, prior = self.cost_terms(x, y, mask)
        return observation + prior

    def initial_iterate(self, y, mask):
        """Observed values where there are observations, the climatological mean elsewhere."""
        x = jnp.where(mask, y, self.offset)
        return (x, *self.modulator.initial_state(x))

    def __call__(self, y, mask):
        """The reconstruction x_K for one window (y, mask shaped (channels, *spatial))."""
        return iterate(_solver_step, self.initial_iterate(y, mask), (self, y, mask), self.iterations,
                       self.solver_adjoint)[0]


def _solver_step(z, args):
    """One 4DVarNet iteration z = (x, h, c) -> F(z) for args (network, y, mask)."""
    network, y, mask = args
    x, h, c = z
    gradient = jax.grad(network.cost)(x, y, mask)
    update, (h, c) = network.modulator(gradient, (h, c))
    return x - network.scale * update, h, c
