"""What every variational method shares: the cost, its gradient, both solves, a window's analysis.

A method is a control vector v, the transform from v to the trajectory the observations are
compared with, and penalty terms on v. With the control-variable transform x0 = xb + B^{1/2} v0
(and, weak-constraint, model-error forcings eta_k = Q^{1/2} w_k) the cost is always

    J(v) = Jb + Jq + Jo
         = 1/2 |v0|^2 + 1/2 sum_k |w_k|^2 + 1/2 sum_p ((y_p - H_p(x(t_p))) / sigma_p)^2

(Lorenc 1988; Bannister 2008 for the transform). The final methods (:mod:`.strong4dvar`,
:mod:`.weak4dvar`, :mod:`.threedvar`) only say how v becomes the trajectory; the abstract
:class:`AbstractVariationalMethod` does the rest:

* the **nonlinear** formulation minimises J directly with an optimistix minimiser (or its
  least-squares form with Gauss-Newton / Levenberg-Marquardt);
* the **incremental** formulation (Courtier, Thepaut & Hollingsworth 1994) runs outer loops that
  re-run the nonlinear model and inner loops that minimise the quadratic cost with conjugate
  gradients (:mod:`.incremental`).

Two adjoint slots: ``forward_adjoint`` is the diffrax strategy for
gradients through the dynamics, ``minimiser_adjoint`` the optimistix one for gradients *through*
the minimisation (hyperparameter tuning). With ``ForwardMode`` the minimiser is told to build
gradients in forward mode, so that strategy is really the one used. Non-convergence does not
raise: the better of the final iterate and the background is kept and flagged.
"""

import abc
from collections.abc import Callable
from typing import cast

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Bool, Float, Int

from dacli.adjoints.stepping import KStepAdjoint
from dacli.methods.dense_jacobian import with_dense_jacobian
from dacli.methods.incremental import IncrementalSettings, OuterLoops, minimise_incrementally
from dacli.methods.signatures import LinearisedDepartures, State, Time, Trajectory, WindowArgs
from dacli.models.base import Dynamics
from dacli.models.integrate import integrate
from dacli.observations.operator import (
    WindowObservations,
    apply_observation_operator,
    whitened_departures,
)


class WindowAnalysis(eqx.Module):
    """Everything a method returns for one window; diagnostics are derived from it."""

    analysis_initial: jax.Array
    background_trajectory: jax.Array
    analysis_trajectory: jax.Array
    background_equivalents: jax.Array  # H(xb) per observation
    analysis_equivalents: jax.Array  # H(xa) per observation
    cost_initial: jax.Array  # (J, Jb, Jo, Jq) at the background
    cost_final: jax.Array  # (J, Jb, Jo, Jq) at the analysis
    gradient_norm: jax.Array  # |dJ/dv| at the analysis
    iterations: jax.Array  # minimiser iterations (incremental: inner iterations, all outer loops)
    converged: jax.Array
    outer: OuterLoops  # per outer loop (incremental formulation); zero loops otherwise
    background_spread: jax.Array  # estimated tr(H B H^T) over valid observations (NaN if not asked)


class AbstractMethod(eqx.Module):
    """An assimilation method: a window's analysis from a background and the window's observations.

    :class:`AbstractVariationalMethod` minimises a cost;
    :class:`dacli.methods.learned.FourDVarNetMethod` runs a trained network. Cycling
    (:func:`analyse_windows`) takes either.
    """

    @abc.abstractmethod
    def analyse(self, background: State, t_start: Time, obs: WindowObservations) -> WindowAnalysis:
        """Assimilate one window's observations starting from ``background`` at ``t_start``."""

    @abc.abstractmethod
    def zero_control(self, background: State) -> Array:
        """The control vector of the background (all zeros): its size is what forward-mode
        differentiation would cost (``dacli assimilate`` warns from it)."""


class AbstractVariationalMethod(AbstractMethod):
    """A variational method: what v is, how it becomes the observed trajectory, its penalties.

    Final subclasses (:class:`~dacli.methods.strong4dvar.StrongConstraint4DVar`,
    :class:`~dacli.methods.weak4dvar.WeakConstraint4DVar`,
    :class:`~dacli.methods.threedvar.ThreeDVar`, :class:`~dacli.methods.threedvar.ThreeDFGAT`)
    implement the abstract methods; the cost, its gradient, both formulations' solves and the
    window's analysis are shared here and never overridden (equinox's abstract/final pattern).
    Not for 4DVarNet, whose analysis is a network's iterations
    (:class:`dacli.methods.learned.FourDVarNetMethod`).
    """

    dynamics: eqx.AbstractVar[Dynamics]
    ode_solver: eqx.AbstractVar[diffrax.AbstractSolver]
    forward_adjoint: eqx.AbstractVar[diffrax.AbstractAdjoint]
    background_sqrt: eqx.AbstractVar[lx.AbstractLinearOperator]
    minimiser: eqx.AbstractVar[optx.AbstractMinimiser | optx.AbstractLeastSquaresSolver | None]
    minimiser_adjoint: eqx.AbstractVar[optx.AbstractAdjoint | KStepAdjoint]
    nsteps: eqx.AbstractVar[int]
    dt: eqx.AbstractVar[float]
    max_steps: eqx.AbstractVar[int]
    log_background_scale: eqx.AbstractVar[jax.Array | float]  # B^{1/2} scaled by exp(.): tunable
    incremental: eqx.AbstractVar[IncrementalSettings | None]  # None: the nonlinear formulation
    spread_probes: eqx.AbstractVar[int]  # random probes for tr(H B H^T); 0 = skip

    # --- what a method defines -------------------------------------------------------------

    @abc.abstractmethod
    def background_control(self, v: Array) -> State:
        """The part of the control that B^{1/2} acts on (v0)."""

    @abc.abstractmethod
    def penalties(self, v: Array) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """(Jb, Jq) of the control vector."""

    @abc.abstractmethod
    def forecast(self, v: Array, args: WindowArgs) -> Trajectory:
        """The model trajectory of control ``v`` over the window, shape (nsteps + 1, n)."""

    @abc.abstractmethod
    def observed(self, forecast: Trajectory, v: Array, args: WindowArgs) -> Trajectory:
        """The trajectory the observations are compared with (the forecast, except in 3DVar)."""

    @abc.abstractmethod
    def departures(self, v: Array, args: WindowArgs) -> Float[Array, " p"]:
        """Whitened departures (y - H(x)) / sigma of control ``v`` (0 on padding)."""

    @abc.abstractmethod
    def linearised_departures(self, v: Array, args: WindowArgs) -> LinearisedDepartures:
        """(departures d(v), tangent-linear map dv -> dd, its adjoint dd -> dv) at ``v``:
        what the incremental formulation's inner loops use."""

    # --- shared machinery --------------------------------------------------------------------

    @property
    def least_squares(self) -> bool:
        return isinstance(self.minimiser, optx.AbstractLeastSquaresSolver) and not isinstance(
            self.minimiser, optx.AbstractMinimiser
        )

    @property
    def autodiff_mode(self) -> str:
        return "fwd" if isinstance(self.forward_adjoint, diffrax.ForwardMode) else "bwd"

    def trajectory(self, x0: State, t_start: Time) -> Trajectory:
        return integrate(
            self.dynamics, x0, t_start, self.nsteps, self.dt, self.ode_solver, self.forward_adjoint
        )

    def initial_state(self, v: Array, background: State) -> State:
        return background + jnp.exp(self.log_background_scale) * self.background_sqrt.mv(
            self.background_control(v)
        )

    def residuals(self, v: Array, args: WindowArgs) -> tuple[Array, Float[Array, " p"]]:
        """The least-squares form: J = 1/2 |r|^2 with r = (v, whitened departures)."""
        return v, self.departures(v, args)

    def cost(self, v: Array, args: WindowArgs) -> Float[Array, ""]:
        control, departures = self.residuals(v, args)
        return 0.5 * (jnp.sum(control**2) + jnp.sum(departures**2))

    def _cost_with_trajectory(
        self, v: Array, args: WindowArgs
    ) -> tuple[
        Float[Array, ""],
        tuple[Float[Array, " 4"], Trajectory, Trajectory],
    ]:
        """J and (the terms (J, Jb, Jo, Jq), forecast trajectory, observed trajectory)."""
        forecast = self.forecast(v, args)
        observed = self.observed(forecast, v, args)
        jb, jq = self.penalties(v)
        jo = 0.5 * jnp.sum(whitened_departures(observed, args[2]) ** 2)
        total = jb + jq + jo
        return total, (jnp.stack([total, jb, jo, jq]), forecast, observed)

    def evaluate(
        self, v: Array, args: WindowArgs
    ) -> tuple[Float[Array, " 4"], Array, Trajectory, Trajectory]:
        """(J, Jb, Jo, Jq), dJ/dv through the forward adjoint, and the trajectories: one pass."""
        if self.autodiff_mode == "fwd":
            gradient, aux = jax.jacfwd(self._cost_with_trajectory, has_aux=True)(v, args)
        else:
            (_, aux), gradient = jax.value_and_grad(self._cost_with_trajectory, has_aux=True)(
                v, args
            )
        terms, forecast, observed = aux
        return terms, gradient, forecast, observed

    def gradient(self, v: Array, args: WindowArgs) -> Array:
        """dJ/dv through the configured forward adjoint."""
        return self.evaluate(v, args)[1]

    def solve_control(self, v0: Array, args: WindowArgs) -> optx.Solution:
        """The minimising control vector, nonlinear formulation (differentiable through
        ``minimiser_adjoint``).

        Returns the optimistix solution; with a :class:`KStepAdjoint` its ``value`` is the
        converged control refined by k differentiable Newton steps.
        """
        if isinstance(self.minimiser_adjoint, KStepAdjoint):
            solution = self._minimise(
                v0, args, optx.ImplicitAdjoint()
            )  # its gradient is cut in refine()
            return eqx.tree_at(
                lambda s: s.value, solution, self.refined_control(solution.value, args)
            )
        return self._minimise(v0, args, self.minimiser_adjoint)

    def refined_control(self, v: Array, args: WindowArgs) -> Array:
        """A :class:`KStepAdjoint`'s k differentiable Newton steps from the converged control
        ``v`` (its gradient cut there): the part of :meth:`solve_control` that is
        differentiated. Only with a KStepAdjoint as ``minimiser_adjoint``."""
        assert isinstance(self.minimiser_adjoint, KStepAdjoint)
        return self.minimiser_adjoint.refine(self.gradient, v, args)

    @property
    def minimiser_options(self) -> dict[str, str]:
        """The autodiff-mode option of the optimistix solve (least squares: ``jac``)."""
        if self.least_squares:
            return {"jac": self.autodiff_mode}
        return {"autodiff_mode": self.autodiff_mode}

    def _minimise(
        self, v0: Array, args: WindowArgs, adjoint: optx.AbstractAdjoint
    ) -> optx.Solution:
        # A least-squares solver that is not a minimiser (Gauss-Newton, Levenberg-Marquardt) is
        # given the residuals through optimistix's least_squares, any other the cost.
        solve: Callable[..., optx.Solution] = (
            optx.least_squares if self.least_squares else optx.minimise
        )
        assert self.minimiser is not None  # the nonlinear formulation's
        return solve(
            self.objective,
            self.minimiser,
            v0,
            args,
            options=self.minimiser_options,
            max_steps=self.max_steps,
            adjoint=adjoint,
            throw=False,
        )

    def objective(self, v: Array, args: WindowArgs) -> Array | tuple[Array, Array]:
        """What the minimiser is given: the cost, or for a least-squares solver the residuals.

        With ``ForwardMode`` a least-squares solver's residuals are differentiated through their
        Jacobian, built once per linearisation by forward mode (:mod:`.dense_jacobian`: the
        same iterates; the Jacobian 2.5x cheaper than optimistix materialising its linearisation).
        """
        if not self.least_squares:
            return self.cost(v, args)
        if self.autodiff_mode != "fwd":
            return self.residuals(v, args)
        dynamic, static = eqx.partition(self, eqx.is_array)
        return with_dense_jacobian(
            lambda u, others: eqx.combine(others[0], static).residuals(u, others[1]),
            v,
            (dynamic, args),
        )

    def background_spread(self, v0: Array, args: WindowArgs) -> Float[Array, ""]:
        """tr(G P G^T) over the valid observations, G the linearised (unwhitened) observed model.

        P is the prior covariance of the whole control (B, and Q for weak constraint), so this is
        what Desroziers et al. (2005) compare with E[(H xa - H xb)(y - H xb)]. Hutchinson's
        estimator with ``spread_probes`` Rademacher probes; nothing dense is formed.
        """
        obs = args[2]
        _, tangent_linear, _ = self.linearised_departures(v0, args)
        keys = jax.random.split(jax.random.PRNGKey(0), self.spread_probes)
        probes = jax.vmap(lambda k: jax.random.rademacher(k, v0.shape, v0.dtype))(keys)
        responses = jax.vmap(tangent_linear)(probes) * obs.std
        return jnp.mean(jnp.sum(responses**2, axis=-1))

    def analyse(self, background: State, t_start: Time, obs: WindowObservations) -> WindowAnalysis:
        """Assimilate one window's observations starting from ``background`` at ``t_start``."""
        args = (background, t_start, obs)
        v0 = self.zero_control(background)
        if self.incremental is None:
            solution = self.solve_control(v0, args)
            candidate, iterations = solution.value, solution.stats["num_steps"]
            # equinox enumerations compare to a boolean array (mypy reads object.__eq__)
            converged = cast(Array, solution.result == optx.RESULTS.successful)
            outer = OuterLoops.none(background.dtype)
        else:
            candidate, outer = minimise_incrementally(self, v0, args, self.incremental)
            iterations = jnp.sum(outer.inner_iterations)
            converged = jnp.all(outer.inner_converged)
        return self.window_analysis(v0, candidate, iterations, converged, outer, args)

    def window_analysis(
        self,
        v0: Array,
        candidate: Array,
        iterations: Int[Array, ""],
        converged: Bool[Array, ""],
        outer: OuterLoops,
        args: WindowArgs,
    ) -> WindowAnalysis:
        """The window's analysis from the minimiser's ``candidate`` control (or the background's,
        if better)."""
        background, _, obs = args
        # Costs of background and final iterate forward-only (one vmapped pass), then the
        # gradient once, at the control kept.
        controls = jnp.stack([v0, candidate])
        terms, forecasts, observed = jax.vmap(lambda v: self._cost_with_trajectory(v, args)[1])(
            controls
        )
        better = jnp.isfinite(terms[1, 0]) & (terms[1, 0] <= terms[0, 0])
        kept = jnp.where(better, controls[1], controls[0])
        cost_final, gradient, analysis_trajectory, analysis_observed = self.evaluate(kept, args)
        spread = (
            self.background_spread(v0, args)
            if self.spread_probes
            else jnp.asarray(jnp.nan, background.dtype)
        )
        return WindowAnalysis(
            analysis_initial=self.initial_state(kept, background),
            background_trajectory=forecasts[0],
            analysis_trajectory=analysis_trajectory,
            background_equivalents=apply_observation_operator(observed[0], obs),
            analysis_equivalents=apply_observation_operator(analysis_observed, obs),
            cost_initial=terms[0],
            cost_final=cost_final,
            gradient_norm=jnp.linalg.norm(gradient),
            iterations=iterations,
            converged=converged,
            outer=outer,
            background_spread=spread,
        )


class AbstractVariationalFields(AbstractVariationalMethod):
    """The fields of a variational method that owns its model, B^{1/2} and minimiser.

    Strong- and weak-constraint 4DVar and 3DVar hold these (weak constraint adds its forcing
    fields); the abstract variables of :class:`AbstractVariationalMethod` become these fields.
    Not for a method that wraps another one (:class:`~dacli.methods.threedvar.ThreeDFGAT`
    forwards them to the 4DVar it wraps).
    """

    dynamics: Dynamics
    ode_solver: diffrax.AbstractSolver
    forward_adjoint: diffrax.AbstractAdjoint
    background_sqrt: lx.AbstractLinearOperator
    minimiser: optx.AbstractMinimiser | optx.AbstractLeastSquaresSolver | None
    minimiser_adjoint: optx.AbstractAdjoint | KStepAdjoint
    nsteps: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    log_background_scale: jax.Array | float = 0.0
    incremental: IncrementalSettings | None = None
    spread_probes: int = eqx.field(static=True, default=0)


class AbstractInitialStateControl(AbstractVariationalMethod):
    """The control is the initial-state increment alone, v = v0 (Jq = 0), and the forecast is
    the model run from x0 = xb + B^{1/2} v0: strong-constraint 4DVar and 3DVar.

    Not for weak constraint, whose control adds the model-error forcings.
    """

    def zero_control(self, background: State) -> Array:
        return jnp.zeros_like(background)

    def background_control(self, v: Array) -> State:
        return v

    def penalties(self, v: Array) -> tuple[Float[Array, ""], Float[Array, ""]]:
        return 0.5 * jnp.sum(v**2), jnp.zeros((), v.dtype)

    def forecast(self, v: Array, args: WindowArgs) -> Trajectory:
        background, t_start, _ = args
        return self.trajectory(self.initial_state(v, background), t_start)


class AbstractModelObserved(AbstractVariationalMethod):
    """The observations see the model trajectory (the forecast), and its linearisation is the
    tangent-linear model: strong- and weak-constraint 4DVar (Le Dimet & Talagrand 1986).

    Not for 3DVar, which compares the observations with the persisted initial state.
    """

    def observed(self, forecast: Trajectory, v: Array, args: WindowArgs) -> Trajectory:
        return forecast

    def departures(self, v: Array, args: WindowArgs) -> Float[Array, " p"]:
        return model_departures(self, v, args)

    def linearised_departures(self, v: Array, args: WindowArgs) -> LinearisedDepartures:
        return linearise_departures(self, v, args)


def model_departures(
    method: AbstractVariationalMethod, v: Array, args: WindowArgs
) -> Float[Array, " p"]:
    """Whitened departures of ``method``'s observed model trajectory (the model is run)."""
    return whitened_departures(method.observed(method.forecast(v, args), v, args), args[2])


def linearise_departures(
    method: AbstractVariationalMethod, v: Array, args: WindowArgs
) -> LinearisedDepartures:
    """(departures d(v), tangent-linear map, adjoint map) of ``method.departures`` at ``v``.

    The tangent-linear model comes from :func:`jax.linearize` (forward mode, so the dynamics
    are linearised with ``DirectAdjoint``). The adjoint follows ``forward_adjoint``:
    ``DirectAdjoint`` / ``ForwardMode`` transpose the stored linearisation
    (:func:`jax.linear_transpose`), ``RecursiveCheckpointAdjoint`` / ``BacksolveAdjoint`` run
    reverse mode through the dynamics with that strategy. Matrix-free: nothing dense is formed.
    """
    linearisable = eqx.tree_at(lambda m: m.forward_adjoint, method, diffrax.DirectAdjoint())
    value, tangent_linear = jax.linearize(lambda u: linearisable.departures(u, args), v)
    if isinstance(method.forward_adjoint, (diffrax.DirectAdjoint, diffrax.ForwardMode)):
        transpose = jax.linear_transpose(tangent_linear, v)
        return value, tangent_linear, lambda dd: transpose(dd)[0]
    _, pullback = jax.vjp(lambda u: method.departures(u, args), v)
    return value, tangent_linear, lambda dd: pullback(dd)[0]


@eqx.filter_jit
def analyse_window(
    method: AbstractMethod, background: State, t_start: Time, obs: WindowObservations
) -> WindowAnalysis:
    """Jitted entry point: compiled once per method and observation capacity, reused per window."""
    return method.analyse(background, t_start, obs)


@eqx.filter_jit
def analyse_windows(
    method: AbstractMethod,
    background: State,
    starts: Float[Array, " windows"],
    obs: WindowObservations,
    active: Bool[Array, " windows"],
    steps_per_shift: int,
) -> tuple[State, WindowAnalysis]:
    """Cycle a chunk of windows in one compiled scan (no Python between windows).

    ``starts`` (C,), ``obs`` (leading axis C) and ``active`` (C,) describe the chunk; inactive
    windows (padding of the last chunk) are computed but leave the background unchanged. Each
    window's analysis propagated by ``steps_per_shift`` steps is the next window's background.
    Returns the background after the chunk and the stacked :class:`WindowAnalysis`.
    """

    def cycle(state, window):
        start, window_obs, is_active = window
        result = method.analyse(state, start, window_obs)
        return jnp.where(is_active, result.analysis_trajectory[steps_per_shift], state), result

    return jax.lax.scan(cycle, background, (starts, obs, active))
