"""A fixed-step trajectory as a ``lax.scan`` of Runge-Kutta steps with diffrax's tableaux.

Every window dacli integrates has a constant step on the grid ``t_start + k dt``, with the
state saved at each step. :func:`diffrax.diffeqsolve` pays for machinery such a window does not
use (a bounded while loop, step-size control, dense-output interpolation at ``SaveAt(ts)``,
event handling). Here the window is one :func:`jax.lax.scan` over the steps, and each step
writes out the stages of the solver's own Butcher tableau (:func:`runge_kutta_step`: the same
tableau and the same stages as diffrax; sums in another order, so trajectories equal
diffeqsolve's to round-off, tests/test_forward_adjoints.py). Writing the stages out matters:
diffrax's ``solver.step`` runs its stages in a nested while loop, one per step, which XLA's CPU
backend executes op by op; inside the minimiser's loop that made Lorenz-96 (N = 40) windows
of 4 to 32 RK4 steps 1.05x to 1.50x slower than with the stages written out (measured side
by side: benchmarks/README.md, issue 19). Euler
(no stages) and explicit solvers without a single Butcher tableau step through diffrax's
``solver.step`` in the same scan (:func:`solver_steps`).

``forward_adjoint`` keeps its meaning:

* ``RecursiveCheckpointAdjoint`` with ``checkpoints`` unset or at least the number of steps:
  each step under :func:`jax.checkpoint`, so the reverse pass stores one state per step (and
  the carried slope of a first-same-as-last tableau, as diffrax's checkpoints do) and
  recomputes the stages — what diffrax's ``checkpoints = steps`` stores;
* ``DirectAdjoint`` and ``ForwardMode``: the plain scan, every stage stored.

With the stages written out every path is differentiable in forward and reverse mode and both
composed (Hessian-vector products). ``solver_steps`` under DirectAdjoint/ForwardMode bounds
diffrax's stage loop (:func:`with_plain_stages`) for the same reason.

Not used (diffeqsolve is, through :func:`dacli.models.integrate.integrate`) for
``BacksolveAdjoint`` (it solves the adjoint ODE backwards in time, a different computation),
for ``RecursiveCheckpointAdjoint`` with fewer checkpoints than steps (diffrax's treeverse
schedule trades recomputation for memory) and for solvers that are not explicit Runge-Kutta
or Euler (implicit solvers report failed root finds through diffeqsolve's result).
Reference: diffrax's ``ButcherTableau`` and ``AbstractSolver.step``,
https://docs.kidger.site/diffrax/; Hairer, Nørsett & Wanner, Solving ODEs I, sec. II.1.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from dacli.models.base import Dynamics

STEPPED_SOLVERS = (diffrax.AbstractERK, diffrax.Euler)


def steps_in_scan(
    ode_solver: diffrax.AbstractSolver, adjoint: diffrax.AbstractAdjoint, nsteps: int
) -> bool:
    """Whether :func:`fixed_step_trajectory` serves this solver and adjoint (see module notes)."""
    if not isinstance(ode_solver, STEPPED_SOLVERS):
        return False
    if isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint):
        return adjoint.checkpoints is None or adjoint.checkpoints >= nsteps
    return isinstance(adjoint, (diffrax.DirectAdjoint, diffrax.ForwardMode))


def with_plain_stages(ode_solver: diffrax.AbstractSolver) -> diffrax.AbstractSolver:
    """The solver with its Runge-Kutta stage loop bounded (``scan_kind="bounded"``, as diffrax's
    DirectAdjoint sets it): differentiable in forward and reverse mode and both composed.
    diffrax's default stage loop is checkpointed, a custom_vjp that forward mode
    (jax.linearize, Hessian-vector products) cannot go through; "lax" is a while loop that
    reverse mode cannot go through. Solvers without stages (Euler) are returned as they are."""
    if hasattr(ode_solver, "scan_kind"):  # a Runge-Kutta solver's field, not AbstractSolver's
        return dataclasses.replace(cast(Any, ode_solver), scan_kind="bounded")
    return ode_solver


def vector_field(t, y, args):
    """The model's vector field with the window's start as an offset (``args = (model, t0)``).
    Module-level, so compiled programs are reused across calls; everything traced travels in
    ``args`` (BacksolveAdjoint cannot see closed-over arrays)."""
    model, offset = args
    return model.vector_field(t + offset, y, None)


TERM = diffrax.ODETerm(vector_field)


def unrolls_stages(ode_solver: diffrax.AbstractSolver) -> bool:
    """Whether the solver's stages are written out step by step (:func:`runge_kutta_step`): an
    explicit Runge-Kutta method with one Butcher tableau (every registered one but Euler)."""
    tableau = getattr(ode_solver, "tableau", None)
    return (
        isinstance(ode_solver, diffrax.AbstractERK)
        and isinstance(tableau, diffrax.ButcherTableau)
        and not tableau.implicit
    )


def weighted_sum(weights: Any, values: list[Array]) -> Array:
    """sum_j weights[j] values[j] over the non-zero weights, elementwise (fused by XLA; a
    ``dot`` with the stacked stages is a separate kernel per stage)."""
    terms = [float(w) * v for w, v in zip(weights, values, strict=True) if w != 0]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros_like(values[0])


def runge_kutta_step(
    tableau: diffrax.ButcherTableau,
    field: Any,
    t0: Array,
    y0: Array,
    f0: Array,
    h: Array,
) -> tuple[Array, Array]:
    """One explicit Runge-Kutta step of the Butcher tableau, stages written out: (y1, f1).

    ``f0 = field(t0, y0)``; ``f1 = field(t0 + h, y1)`` when the tableau is first-same-as-last
    (the next step's ``f0``, as diffrax carries it), else the last stage's slope (unused).
    Stage i is ``field(t0 + c_i h, y0 + h sum_j a_ij f_j)``; the solution is
    ``y0 + h sum_j b_j f_j`` (the last stage's input when the tableau is
    solution-same-as-last). Reference: Hairer, Nørsett & Wanner, Solving ODEs I, sec. II.1.
    """
    slopes = [f0]
    stage = y0
    for c, row in zip(tableau.c, tableau.a_lower, strict=True):
        stage = y0 + h * weighted_sum(row, slopes)
        slopes.append(field(t0 + float(c) * h, stage))
    y1 = stage if tableau.ssal else y0 + h * weighted_sum(tableau.b_sol, slopes)
    return y1, slopes[-1]


def fixed_step_trajectory(
    dynamics: Dynamics,
    x0: Float[Array, " n"],
    t_start: Float[ArrayLike, ""],
    nsteps: int,
    dt: float,
    ode_solver: diffrax.AbstractSolver,
    adjoint: diffrax.AbstractAdjoint,
) -> Float[Array, "steps n"]:
    """States at ``t_start + k dt`` for k = 0..nsteps by ``nsteps`` solver steps in one scan.

    Only where :func:`steps_in_scan` holds; callers go through
    :func:`dacli.models.integrate.integrate`, which decides.
    """
    args = (dynamics, jnp.asarray(t_start, dtype=x0.dtype))
    step_size = jnp.asarray(dt, dtype=x0.dtype)
    if unrolls_stages(ode_solver):
        tableau = ode_solver.tableau  # type: ignore[attr-defined]
        advance, carry = stage_by_stage(tableau, args, step_size, x0)
    else:
        advance, carry = solver_steps(ode_solver, adjoint, args, step_size, x0)
    if isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint):
        advance = jax.checkpoint(advance)  # store one state per step, recompute the stages
    _, states = jax.lax.scan(advance, carry, jnp.arange(nsteps, dtype=x0.dtype))
    return jnp.concatenate([x0[None], states])


def stage_by_stage(
    tableau: diffrax.ButcherTableau, args: Any, step_size: Array, x0: Array
) -> tuple[Any, Any]:
    """The scan body of :func:`runge_kutta_step` and its initial carry: (y, f(t, y)) for a
    first-same-as-last tableau, whose last slope is the next step's first; y alone otherwise
    (f evaluated afresh each step, so a checkpoint stores one state per step)."""

    def field(t, y):
        return vector_field(t, y, args)

    if tableau.fsal:

        def carried(carry, k):
            y, slope = carry
            y, slope = runge_kutta_step(tableau, field, k * step_size, y, slope, step_size)
            return (y, slope), y

        return carried, (x0, field(jnp.zeros((), x0.dtype), x0))

    def fresh(y, k):
        t0 = k * step_size
        y, _ = runge_kutta_step(tableau, field, t0, y, field(t0, y), step_size)
        return y, y

    return fresh, x0


def solver_steps(
    ode_solver: diffrax.AbstractSolver,
    adjoint: diffrax.AbstractAdjoint,
    args: Any,
    step_size: Array,
    x0: Array,
) -> tuple[Any, Any]:
    """The scan body calling diffrax's ``solver.step`` (Euler, and explicit solvers whose stages
    :func:`unrolls_stages` does not write out), and its initial carry."""
    if not isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint):
        ode_solver = with_plain_stages(ode_solver)  # forward mode through the stages
    state = ode_solver.init(TERM, jnp.zeros((), x0.dtype), step_size, x0, args)

    def advance(carry, k):
        y, solver_state = carry
        y, _, _, solver_state, _ = ode_solver.step(
            TERM, k * step_size, (k + 1) * step_size, y, args, solver_state, False
        )
        return (y, solver_state), y

    return advance, (x0, state)
