"""4DVarNet: a variational cost with a learned prior, minimised by a learned solver.

Fablet, Chapron, Drumetz, Mémin, Pannekoucke & Rousseau (2021), "Learning variational data
assimilation models and solvers", JAMES 13; the CIA-Oceanix 4dvarnet-starter (PyTorch) is the
reference implementation. For observations y with mask m (1 observed, 0 not):

    U(x) = 1/(2 sigma_o^2) [ sum m (x - y)^2  +  w sum (x - Phi(x))^2 ]

with sigma_o the observation error std and w (``prior_weight``) from the configuration (no
hard-coded weights): w weighs the prior against the observations whatever the state's units.
Starting from x_0 = m y, K iterations of

    g_k = dU/dx (x_k),   (u_k, h_k, c_k) = LSTM(g_k, h_{k-1}, c_{k-1}),   x_{k+1} = x_k - u_k

give the reconstruction x_K (``update = "gradient"`` replaces the LSTM by a learned step size,
u_k = alpha g_k: plain gradient descent, which converges to the minimum of U — the fixed point
``ImplicitAdjoint`` differentiates; the LSTM's normalised updates never settle). The iteration
is a fixed map z -> F(z; theta, y, m) of z = (x, h, c), so every iteration adjoint of
:mod:`dacli.adjoints.unroll` applies to it: training differentiates a loss on x_K through the K
iterations in the way the configured ``iteration_adjoint`` says, and the forward value never
depends on that choice.

Two options bring 4DVar's information into 4DVarNet (``network.prior`` and ``network.background``):

* ``prior = "model"``: Phi(x)_t = M(x_{t-1}), the known dynamics (:class:`ModelPrior`; Fablet et
  al. 2021's "4DVarNet with the true ODE"): U is then weak-constraint 4DVar's cost with
  Q = sigma_o^2 / w per step, minimised by the learned solver, all steps evaluated at once.
* ``background = true``: the window's background x^b, the forecast over steps 1..T from the state
  cycled from the previous analysis, enters. The first iterate is x^b where nothing is observed
  (instead of the climatological mean), and U gains the background term
  w_b |x_1 - x^b_1|^2 / (2 sigma_o^2) on the window's first step when ``background_weight`` w_b > 0:
  4DVar's Jb with B = sigma_o^2 / w_b (one model step after the window start). With the model
  prior, U is then weak-constraint 4DVar's cost. Training feeds backgrounds like those of
  assimilation: forecasts from perturbed true initial states (:mod:`dacli.learned.data`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from dacli.adjoints.unroll import AbstractIterationAdjoint, Checkpointed
from dacli.learned.networks import (
    AbstractModulator,
    AbstractPrior,
    BilinearPrior,
    ConvGrid,
    ConvLSTMModulator,
    GradientStep,
    ModelPrior,
)


class FourDVarNet(eqx.Module):
    """Learned (or model) prior + ConvLSTM solver for states laid out as (channels, *spatial).

    See the module docstring (Fablet et al. 2021). Not a variational method: the analysis is the
    trained iterations' output, not a minimum; for 4DVar's cost and guarantees use
    :mod:`dacli.methods.strong4dvar` (the assimilation wrapper is
    :class:`dacli.methods.learned.FourDVarNetMethod`).
    """

    prior: AbstractPrior
    modulator: AbstractModulator
    # A Python int and a strategy, not arrays: static under eqx.filter_jit, yet replaceable with
    # eqx.tree_at (another K, another adjoint).
    iterations: int
    iteration_adjoint: AbstractIterationAdjoint
    observation_weight: float = eqx.field(static=True)
    prior_weight: float = eqx.field(static=True)  # w / sigma_o^2
    # The climatological mean and std of the state: the networks see (x - offset) / scale, O(1)
    # whatever the units.
    offset: float = eqx.field(static=True)
    scale: float = eqx.field(static=True)
    uses_background: bool = eqx.field(static=True, default=False)
    background_weight: float = eqx.field(static=True, default=0.0)  # w_b / sigma_o^2
    # The window's axis in the layout: 1 for (n, T), 0 for (T, *grid).
    time_axis: int = eqx.field(static=True, default=1)

    def __init__(
        self,
        channels: int,
        spatial_dims: int,
        *,
        periodic: bool,
        hidden: int = 16,
        modulator_hidden: int = 16,
        kernel: int = 3,
        iterations: int = 10,
        observation_error_std: float = 1.0,
        prior_weight: float = 1.0,
        iteration_adjoint: AbstractIterationAdjoint | None = None,
        update: str = "convlstm",
        offset: float = 0.0,
        scale: float = 1.0,
        model_prior: ModelPrior | None = None,
        background: bool = False,
        background_weight: float = 0.0,
        time_axis: int = 1,
        key,
        dtype=jnp.float32,
    ):
        """``model_prior``: Phi instead of a learned bilinear prior; ``background``,
        ``background_weight``: see the module docstring; ``time_axis``: the window's axis in the
        layout (1 for (n, T), 0 for (T, *grid)); ``iteration_adjoint``: how training
        differentiates the iterations (default :class:`~dacli.adjoints.unroll.Checkpointed`)."""
        prior_key, modulator_key = jax.random.split(key)
        grid = ConvGrid(spatial_dims, kernel, periodic, dtype)
        self.prior = (
            model_prior
            if model_prior is not None
            else BilinearPrior(grid, channels, hidden, key=prior_key)
        )
        if update == "convlstm":
            self.modulator = ConvLSTMModulator(grid, channels, modulator_hidden, key=modulator_key)
        elif update == "gradient":
            self.modulator = GradientStep(dtype=dtype)
        else:
            raise ValueError(f"unknown update {update!r} (choose from: convlstm, gradient)")
        self.iterations = int(iterations)
        self.observation_weight = 1.0 / float(observation_error_std) ** 2
        self.prior_weight = float(prior_weight) * self.observation_weight
        self.offset, self.scale = float(offset), float(scale)
        self.uses_background = bool(background)
        self.background_weight = float(background_weight) * self.observation_weight
        self.time_axis = int(time_axis)
        self.iteration_adjoint = Checkpointed() if iteration_adjoint is None else iteration_adjoint

    def project(self, x: Float[Array, " *layout"]) -> Float[Array, " *layout"]:
        """Phi(x) in physical units (the learned prior works on the normalised state)."""
        return self.prior.project(x, self.offset, self.scale)

    def _background(self, background):
        """The background the network uses: none unless built (and trained) with backgrounds."""
        if not self.uses_background:
            return None
        if background is None:
            raise ValueError(
                "this 4DVarNet was trained with backgrounds (network.background = true): "
                "pass the window's background forecast"
            )
        return background

    def cost_terms(
        self,
        x: Float[Array, " *layout"],
        y: Float[Array, " *layout"],
        mask: Bool[Array, " *layout"],
        background: jax.Array | None = None,
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """(observation term on observed points only, prior term (+ background term)) of U(x)."""
        background = self._background(background)
        misfit = jnp.where(
            mask, x - jnp.where(mask, y, 0.0), 0.0
        )  # NaN in y never reaches arithmetic
        prior = 0.5 * self.prior_weight * jnp.sum((x - self.project(x)) ** 2)
        if background is not None and self.background_weight > 0:
            first = jnp.take(x - background, 0, axis=self.time_axis)
            prior = prior + 0.5 * self.background_weight * jnp.sum(first**2)
        return 0.5 * self.observation_weight * jnp.sum(misfit**2), prior

    def cost(
        self,
        x: Float[Array, " *layout"],
        y: Float[Array, " *layout"],
        mask: Bool[Array, " *layout"],
        background: jax.Array | None = None,
    ) -> Float[Array, ""]:
        """U(x) = observation term + prior term (+ background term)."""
        observation, prior = self.cost_terms(x, y, mask, background)
        return observation + prior

    def initial_iterate(
        self,
        y: Float[Array, " *layout"],
        mask: Bool[Array, " *layout"],
        background: jax.Array | None = None,
    ) -> tuple[Float[Array, " *layout"], Array, Array]:
        """Observed values where there are observations; elsewhere the background's forecast
        when the network uses backgrounds, else the climatological mean."""
        background = self._background(background)
        x = jnp.where(mask, y, self.offset if background is None else background)
        return (x, *self.modulator.initial_state(x))

    def __call__(
        self,
        y: Float[Array, " *layout"],
        mask: Bool[Array, " *layout"],
        background: jax.Array | None = None,
    ) -> Float[Array, " *layout"]:
        """The reconstruction x_K for one window (y, mask shaped (channels, *spatial));
        ``background`` (the forecast over the window, same shape) is required by a network
        trained with backgrounds, ignored by one trained without."""
        background = self._background(background)
        return self.iteration_adjoint.iterate(
            _solver_step,
            self.initial_iterate(y, mask, background),
            (self, y, mask, background),
            self.iterations,
        )[0]


def _solver_step(z, args):
    """One 4DVarNet iteration z = (x, h, c) -> F(z) for args (network, y, mask, background)."""
    network, y, mask, background = args
    x, h, c = z
    gradient = jax.grad(network.cost)(x, y, mask, background)
    update, (h, c) = network.modulator(gradient, (h, c))
    return x - network.scale * update, h, c
