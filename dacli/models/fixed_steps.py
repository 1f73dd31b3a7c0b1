"""A fixed-step trajectory as a ``lax.scan`` of diffrax's own solver steps.

Every window dacli integrates has a constant step on the grid ``t_start + k dt``, with the
state saved at each step. :func:`diffrax.diffeqsolve` pays for machinery such a window does not
use (a bounded while loop, step-size control, dense-output interpolation at ``SaveAt(ts)``,
event handling): measured on Lorenz-96 (N = 40, 4 RK4 steps, 2-core CPU), its value and
gradient take 209 us per call against the scan's 66 us, and 4.1 s against 1.3 s to compile.
Here the same solver object steps the state in a :func:`jax.lax.scan` — same tableau, same
stages, the same floating-point operations — so the trajectory equals diffeqsolve's to
round-off (tests/test_forward_adjoints.py), and ``forward_adjoint`` keeps its meaning:

* ``RecursiveCheckpointAdjoint`` with ``checkpoints`` unset or at least the number of steps:
  each step under :func:`jax.checkpoint`, so the reverse pass stores one state per step and
  recomputes the stages — what diffrax's ``checkpoints = steps`` stores. Reverse mode only, as
  diffrax's: the stages keep diffrax's checkpointed stage loop (a custom_vjp), whose gradient
  is 3-4x cheaper than the bounded loop's (measured on Lorenz-96 N = 40, Lag 4: 127-135 us
  against 376-606 us per value and gradient; benchmarks/results/handwritten_4dvar_profile.md);
* ``DirectAdjoint`` and ``ForwardMode``: the plain scan with a bounded stage loop,
  differentiable in forward and reverse mode and both composed (Hessian-vector products:
  dacli switches to DirectAdjoint where it needs forward mode, as for ``jax.linearize``);

Not used (diffeqsolve is, through :func:`dacli.models.integrate.integrate`) for
``BacksolveAdjoint`` (it solves the adjoint ODE backwards in time, a different computation),
for ``RecursiveCheckpointAdjoint`` with fewer checkpoints than steps (diffrax's treeverse
schedule trades recomputation for memory) and for solvers that are not explicit Runge-Kutta
or Euler (implicit solvers report failed root finds through diffeqsolve's result).
Reference: diffrax's ``AbstractSolver.init``/``step`` API, https://docs.kidger.site/diffrax/.
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
    if not isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint):
        ode_solver = with_plain_stages(ode_solver)  # forward mode through the stages
    step_size = jnp.asarray(dt, dtype=x0.dtype)
    state = ode_solver.init(TERM, jnp.zeros((), x0.dtype), step_size, x0, args)

    def advance(carry, k):
        y, solver_state = carry
        y, _, _, solver_state, _ = ode_solver.step(
            TERM, k * step_size, (k + 1) * step_size, y, args, solver_state, False
        )
        return (y, solver_state), y

    if isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint):
        advance = jax.checkpoint(advance)  # store one state per step, recompute the stages
    _, states = jax.lax.scan(advance, (x0, state), jnp.arange(nsteps, dtype=x0.dtype))
    return jnp.concatenate([x0[None], states])
