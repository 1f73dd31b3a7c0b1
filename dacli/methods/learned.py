"""4DVarNet as a dacli method: a trained network reconstructs each window from its observations.

Each window's observations (any layout dacli reads) are put on the (model step, state) grid of
the window as in training (:func:`dacli.learned.data.grid_observations`: the mean of the
observations nearest each grid point at each model step). The network then reconstructs
steps 1..L of the window (its initial iterate: observed values, elsewhere the climatological
mean, or the background's forecast for a network trained with backgrounds, ``network.background``,
which also gets that forecast for its background term). The analysis trajectory is the
background state at the window start followed by that reconstruction; the background trajectory
is the model run from the background, so the output file, its diagnostics and the cycling (the
analysis at the end of the shift becomes the next background) are those of 4DVar. Cost terms:
J = U(x) = Jb + Jo with Jb the prior term w |x - Phi(x)|^2 / (2 sigma_o^2) (+ the background term
of a network using backgrounds) and Jo the observation term on the gridded observations;
"iterations" is K.

Not a minimisation: the analysis is K learned iterations, not a minimum of U, so a network is
only as good as its training (same model, layout and window length, checked when it is
loaded). Reference: Fablet et al. (2021), JAMES 13 (:mod:`dacli.learned.fourdvarnet`).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from dacli.learned.data import grid_observations
from dacli.learned.fourdvarnet import FourDVarNet
from dacli.methods.incremental import OuterLoops
from dacli.methods.signatures import State, Time, Trajectory
from dacli.methods.variational import AbstractMethod, WindowAnalysis
from dacli.models.base import Dynamics
from dacli.models.integrate import integrate
from dacli.observations.operator import WindowObservations, apply_observation_operator


class FourDVarNetMethod(AbstractMethod, strict=True):
    """The window analysis of a trained :class:`FourDVarNet` (see the module docstring)."""

    network: FourDVarNet
    dynamics: Dynamics
    ode_solver: diffrax.AbstractSolver
    nsteps: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    grid_shape: tuple[int, ...] = eqx.field(static=True)  # () for a model without a grid

    def to_network(self, window: Trajectory) -> Float[Array, " *layout"]:
        """(L, n) -> the network's layout: (n, L) without a grid, (L, *grid) with one."""
        return (
            window.T if not self.grid_shape else window.reshape(window.shape[0], *self.grid_shape)
        )

    def from_network(self, window: Float[Array, " *layout"]) -> Trajectory:
        return window.T if not self.grid_shape else window.reshape(window.shape[0], -1)

    def zero_control(self, background: State) -> Trajectory:
        return jnp.zeros((self.nsteps, background.size), background.dtype)

    def _costs(self, x, y, mask, background):
        """(J, Jb, Jo, Jq) as the output file names them: Jb is the prior (+ background) term,
        Jq is 0."""
        observation, prior = self.network.cost_terms(x, y, mask, background)
        return jnp.stack([observation + prior, prior, observation, jnp.zeros_like(prior)])

    def analyse(self, background: State, t_start: Time, obs: WindowObservations) -> WindowAnalysis:
        direct = diffrax.DirectAdjoint()
        background_trajectory = integrate(
            self.dynamics, background, t_start, self.nsteps, self.dt, self.ode_solver, direct
        )
        y, mask = grid_observations(obs, self.nsteps, background.size)
        y, mask = self.to_network(y), self.to_network(mask)
        window_background = self.to_network(background_trajectory[1:])
        first = self.network.initial_iterate(y, mask, window_background)[0]
        reconstruction = self.network(y, mask, window_background)
        analysis_trajectory = jnp.concatenate([background[None], self.from_network(reconstruction)])
        gradient = jax.grad(self.network.cost)(reconstruction, y, mask, window_background)
        return WindowAnalysis(
            analysis_initial=background,
            background_trajectory=background_trajectory,
            analysis_trajectory=analysis_trajectory,
            background_equivalents=apply_observation_operator(background_trajectory, obs),
            analysis_equivalents=apply_observation_operator(analysis_trajectory, obs),
            cost_initial=self._costs(first, y, mask, window_background),
            cost_final=self._costs(reconstruction, y, mask, window_background),
            gradient_norm=jnp.linalg.norm(gradient),
            iterations=jnp.asarray(self.network.iterations, jnp.int32),
            converged=jnp.asarray(True),
            outer=OuterLoops.none(background.dtype),
            background_spread=jnp.asarray(jnp.nan, background.dtype),
        )
