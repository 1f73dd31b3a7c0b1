"""One window's nonlinear minimisation in bounded compiled chunks, so a stop is honoured within
seconds.

``optx.minimise`` (and ``optx.least_squares``) run the whole minimisation in one compiled
``while_loop``: a signal that arrives during a long window waits for the window to end. Here the
same iteration — optimistix's own ``solver.init`` / ``solver.step`` / ``solver.terminate`` /
``solver.postprocess``, in the order and with the stopping rule of ``optimistix._iterate`` — is
split into three compiled programs: :func:`begin` (the initial solver state), :func:`advance` (at
most ``steps`` iterations) and :func:`finish` (the result code, the window's analysis). Between
two ``advance`` calls control is back in Python, where ``dacli assimilate`` checks for a stop.
The iterates are those of the one-program solve (tested: the same analysis to round-off); the
compiled programs serve every window. Forward only: gradients through the minimisation (tuning)
use :meth:`AbstractVariationalMethod.solve_control`.

Not for a run with no stop to honour (the one-program solve of
:func:`dacli.methods.variational.analyse_windows` cycles a whole chunk of windows without
returning to Python), nor for the incremental formulation, whose inner loops have no stepper.
Reference: optimistix's solver interface (``init`` / ``step`` / ``terminate`` /
``postprocess``), https://docs.kidger.site/optimistix/.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Bool, PyTree

from dacli.methods.incremental import OuterLoops
from dacli.methods.signatures import State, Time
from dacli.methods.variational import AbstractVariationalMethod, WindowAnalysis
from dacli.observations.operator import WindowObservations


class MinimiserCarry(eqx.Module):
    """The iteration's state between chunks: the iterate, the solver's state, and the stopping
    flags."""

    y: jax.Array
    num_steps: jax.Array
    state: PyTree  # the minimiser's own state (optimistix)
    terminate: jax.Array
    result: optx.RESULTS


class _Objective(eqx.Module):
    """``fn(y, args) -> (value, aux)`` as optimistix solvers call it: the cost, or the residuals."""

    method: AbstractVariationalMethod

    def __call__(self, y, args):
        return self.method.objective(y, args), None


def _setting(method: AbstractVariationalMethod):
    return _Objective(method), method.minimiser_options, frozenset()


def _minimiser(method: AbstractVariationalMethod):
    """The optimistix solver the chunks step: the nonlinear formulation's (check_stepwise refuses
    the others, which have none to step)."""
    assert method.minimiser is not None
    return method.minimiser


def _terminate(method, fn, y, args, options, state, tags):
    done, result = _minimiser(method).terminate(fn, y, args, options, state, tags)
    return done, optx.RESULTS.where(jnp.all(jnp.isfinite(y)), result, optx.RESULTS.nonfinite)


@eqx.filter_jit
def begin(
    method: AbstractVariationalMethod, background: State, t_start: Time, obs: WindowObservations
) -> MinimiserCarry:
    """The solver's initial state for one window (control 0 = the background)."""
    fn, options, tags = _setting(method)
    args = (background, t_start, obs)
    y0 = method.zero_control(background)
    f_struct = jax.eval_shape(lambda: fn(y0, args)[0])
    state = _minimiser(method).init(fn, y0, args, options, f_struct, None, tags)
    done, result = _terminate(method, fn, y0, args, options, state, tags)
    return MinimiserCarry(y0, jnp.array(0), state, done, result)


def running(method: AbstractVariationalMethod, carry: MinimiserCarry) -> Bool[Array, ""]:
    """True while the minimisation goes on: not terminated, no failure, steps left."""
    return (
        (~carry.terminate)
        & (carry.result == optx.RESULTS.successful)
        & (carry.num_steps < method.max_steps)
    )


@eqx.filter_jit
def advance(
    method: AbstractVariationalMethod,
    carry: MinimiserCarry,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    steps: int,
) -> MinimiserCarry:
    """At most ``steps`` more iterations (fewer when the minimisation ends)."""
    fn, options, tags = _setting(method)
    args = (background, t_start, obs)
    dynamic, static = eqx.partition(carry.state, eqx.is_array)

    def keep_going(loop):
        taken, y, num_steps, dynamic, done, result = loop
        state = MinimiserCarry(y, num_steps, eqx.combine(dynamic, static), done, result)
        return (taken < steps) & running(method, state)

    def step(loop):
        taken, y, num_steps, dynamic, _, _ = loop
        state = eqx.combine(dynamic, static)
        new_y, new_state, _ = _minimiser(method).step(fn, y, args, options, state, tags)
        # optimistix tests the old y
        done, result = _terminate(method, fn, y, args, options, new_state, tags)
        return (
            taken + 1,
            new_y,
            num_steps + 1,
            eqx.partition(new_state, eqx.is_array)[0],
            done,
            result,
        )

    start = (jnp.array(0), carry.y, carry.num_steps, dynamic, carry.terminate, carry.result)
    _, y, num_steps, dynamic, done, result = jax.lax.while_loop(keep_going, step, start)
    return MinimiserCarry(y, num_steps, eqx.combine(dynamic, static), done, result)


@eqx.filter_jit
def finish(
    method: AbstractVariationalMethod,
    carry: MinimiserCarry,
    background: State,
    t_start: Time,
    obs: WindowObservations,
) -> WindowAnalysis:
    """The window's analysis from the final iterate (what
    :meth:`AbstractVariationalMethod.analyse` returns)."""
    fn, options, tags = _setting(method)
    args = (background, t_start, obs)
    result = optx.RESULTS.where(
        (carry.result == optx.RESULTS.successful) & ~carry.terminate,
        optx.RESULTS.nonlinear_max_steps_reached,
        carry.result,
    )
    y, _, _ = _minimiser(method).postprocess(
        fn, carry.y, None, args, options, carry.state, tags, result
    )
    return method.window_analysis(
        method.zero_control(background),
        y,
        carry.num_steps,
        result == optx.RESULTS.successful,
        OuterLoops.none(background.dtype),
        args,
    )


def analyse_in_chunks(
    method: AbstractVariationalMethod,
    background: State,
    t_start: Time,
    obs: WindowObservations,
    steps: int,
    between=None,
) -> WindowAnalysis:
    """One window's analysis, ``steps`` minimiser iterations per compiled call; ``between()`` runs
    after each call and may raise to abandon the window (nothing of it is kept)."""
    carry = begin(method, background, t_start, obs)
    while bool(running(method, carry)):
        carry = advance(method, carry, background, t_start, obs, steps)
        if between is not None:
            between()
    return finish(method, carry, background, t_start, obs)
