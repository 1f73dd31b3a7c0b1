"""Hyperparameters of a variational method, differentiated through its converged minimiser.

The parameters are log factors theta on the configured values (0 = as configured):

* ``background_std`` scales B^{1/2} by exp(theta) (the method's ``log_background_scale``);
* ``observation_std`` scales every observation's error std sigma by exp(theta);
* ``model_error_std`` scales Q^{1/2} by exp(theta) (weak-constraint 4DVar);
* ``length_scale`` multiplies B's correlation length by exp(theta); B^{1/2} is rebuilt,
  differentiably, by the one correlated-B implementation
  (:class:`dacli.covariances.background.CorrelatedRoot`).

The loss is the mean squared error of the analysis trajectory against the truth over a batch of
windows. The analysis is the minimiser v*(theta) of the nonlinear 4DVar cost; its derivative comes
from the implicit function theorem at dJ/dv = 0 (optimistix ``ImplicitAdjoint``; Christianson
1994, Blondel et al. 2022), dv*/dtheta = -(d2J/dv2)^{-1} d2J/dv dtheta, so the minimiser's
iterations are never differentiated: this is exact at convergence only (the method's
``rtol``/``atol`` decide how close). The Hessian-vector products are forward-over-reverse, which
needs ``DirectAdjoint`` through the dynamics (see :mod:`dacli.diagnostics.adjoint_suite`).

Identifiability: J scaled by a constant has the same minimiser, so the analysis depends on B, Q
and R only through B/R and Q/R; the analysis error cannot fix all three scales, and at least one
must stay as configured (:func:`identifiability_problem`).
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Bool, Float

from dacli.covariances.background import CorrelatedRoot
from dacli.methods.signatures import State, Time, Trajectory
from dacli.observations.operator import WindowObservations
from dacli.tuning.twins import TwinWindows

PARAMETERS = ("background_std", "observation_std", "model_error_std", "length_scale")
SCALES = ("background_std", "observation_std", "model_error_std")


def identifiability_problem(names, weak: bool) -> str | None:
    """A message when every error scale of the cost is tuned (only their ratios are
    identifiable)."""
    present = [s for s in SCALES if weak or s != "model_error_std"]
    if all(s in names for s in present):
        return (
            f"{', '.join(present)} are all tuned, but the analysis depends on them only through "
            "their ratios (J times a constant has the same minimiser); keep one as configured, "
            "usually observation_std (instrument errors are the best known)"
        )
    return None


class Tunable(eqx.Module):
    """A variational method set up for differentiation and the parameters it exposes."""

    method: eqx.Module
    names: tuple[str, ...] = eqx.field(static=True)
    correlated: CorrelatedRoot | None = None

    @classmethod
    def prepare(cls, method, names, correlated: CorrelatedRoot | None = None) -> Tunable:
        """Nonlinear formulation, DirectAdjoint through the dynamics, ImplicitAdjoint through the
        minimiser."""
        changes = dict(
            forward_adjoint=diffrax.DirectAdjoint(),
            minimiser_adjoint=optx.ImplicitAdjoint(),
            incremental=None,
        )
        if "length_scale" in names:
            assert correlated is not None  # the caller builds it when length_scale is tuned
            changes["background_sqrt"] = correlated(0.0)
        method = dataclasses.replace(method, **changes)
        return cls(method, tuple(names), correlated)

    def initial(self, dtype) -> dict:
        return {name: jnp.zeros((), dtype) for name in self.names}

    def configured(self, theta: dict, obs: WindowObservations):
        """The method and observations with the hyperparameters ``theta`` (missing names: as
        configured)."""
        method = self.method
        if "background_std" in theta:
            method = eqx.tree_at(lambda m: m.log_background_scale, method, theta["background_std"])
        if "length_scale" in theta:
            assert self.correlated is not None  # see prepare
            correlated = self.correlated
            method = eqx.tree_at(
                lambda m: m.background_sqrt, method, correlated(theta["length_scale"])
            )
        if "model_error_std" in theta:
            scaled = lx.MulLinearOperator(
                # a weak-constraint method's field; self.method is typed eqx.Module
                method.model_error_sqrt,  # type: ignore[attr-defined]
                jnp.exp(theta["model_error_std"]),
            )
            method = eqx.tree_at(lambda m: m.model_error_sqrt, method, scaled)
        if "observation_std" in theta:
            obs = eqx.tree_at(lambda o: o.std, obs, obs.std * jnp.exp(theta["observation_std"]))
        return method, obs


def analysis(
    tunable: Tunable,
    theta: dict[str, Float[Array, ""]],
    background: State,
    t_start: Time,
    obs: WindowObservations,
) -> tuple[Trajectory, Bool[Array, ""]]:
    """(analysis trajectory (T+1, n), converged) of one window with hyperparameters ``theta``."""
    method, obs = tunable.configured(theta, obs)
    args = (background, t_start, obs)
    solution = method.solve_control(method.zero_control(background), args)
    return method.forecast(solution.value, args), solution.result == optx.RESULTS.successful


def loss(
    theta: dict[str, Float[Array, ""]], tunable: Tunable, windows: TwinWindows
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Mean squared analysis error over the windows' trajectories; aux: the fraction converged."""
    trajectories, converged = jax.vmap(lambda b, t, o: analysis(tunable, theta, b, t, o))(
        windows.backgrounds, windows.starts, windows.obs
    )
    return jnp.mean((trajectories - windows.truths) ** 2), jnp.mean(
        converged.astype(trajectories.dtype)
    )


@eqx.filter_jit
def loss_and_gradient(
    theta: dict[str, Float[Array, ""]], tunable: Tunable, windows: TwinWindows
) -> tuple[tuple[Float[Array, ""], Float[Array, ""]], dict[str, Float[Array, ""]]]:
    """((loss, fraction converged), d loss / d theta) — compiled once per tunable and batch
    shape."""
    return jax.value_and_grad(loss, has_aux=True)(theta, tunable, windows)


def analysis_rmse(
    theta: dict[str, Float[Array, ""]], tunable: Tunable, windows: TwinWindows
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """(RMSE of the analysis trajectories, fraction converged), through :func:`loss_and_gradient`:
    the gradient is not needed, but a batch shaped like the training batch reuses its
    compilation."""
    (value, converged), _ = loss_and_gradient(theta, tunable, windows)
    return jnp.sqrt(value), converged


@eqx.filter_jit
def _update(gradient, state, theta, *, optimiser):
    updates, state = optimiser.update(gradient, state, theta)
    return jax.tree_util.tree_map(lambda p, u: p + u, theta, updates), state


def tuning_step(
    theta: dict[str, Float[Array, ""]], state, tunable: Tunable, windows: TwinWindows, *, optimiser
):
    """One optax step on the log factors; returns (theta, state, loss before the step, fraction
    converged).
    Two compiled pieces (loss and gradient; the update) so the first is shared with
    :func:`analysis_rmse`."""
    (value, converged), gradient = loss_and_gradient(theta, tunable, windows)
    theta, state = _update(gradient, state, theta, optimiser=optimiser)
    return theta, state, value, converged
