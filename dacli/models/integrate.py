"""The one window integrator every method uses: a scan of solver steps, or diffeqsolve.

The window is integrated with a constant step on the grid ``t_start + k dt`` and the state is
saved at every step in one program, so observations at any step are available without a Python
loop. For explicit solvers under RecursiveCheckpointAdjoint (checkpoints >= steps),
DirectAdjoint or ForwardMode that program is a :func:`jax.lax.scan` of the solver's own steps
(:mod:`dacli.models.fixed_steps`: the same arithmetic, cheaper to compile and to differentiate);
otherwise (BacksolveAdjoint, fewer checkpoints than steps, implicit solvers) it is
:func:`diffrax.diffeqsolve`.

Defaults are chosen against a measured trap (diffrax 0.7.2): ``ConstantStepSize`` with
``RecursiveCheckpointAdjoint()``'s default checkpoints gave gradients several percent wrong on
Lorenz-96; with ``checkpoints`` equal to the number of steps they match ``DirectAdjoint`` to
round-off. :func:`forward_adjoint_for` applies that default.

Not for adaptive step sizes or output between the grid's steps: the window's states sit on the
fixed grid (``ConstantStepSize``) that observations are mapped to. Reference: diffrax's
documentation (``diffeqsolve``, ``SaveAt``, adjoints), https://docs.kidger.site/diffrax/.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from dacli.models.base import Dynamics
from dacli.models.fixed_steps import TERM, fixed_step_trajectory, steps_in_scan


def forward_adjoint_for(adjoint: diffrax.AbstractAdjoint, nsteps: int) -> diffrax.AbstractAdjoint:
    """Fill in RecursiveCheckpointAdjoint's checkpoints (= steps) when left unset."""
    if isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint) and adjoint.checkpoints is None:
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=nsteps)
    return adjoint


def integrate(
    dynamics: Dynamics,
    x0: Float[Array, " n"],
    t_start: Float[ArrayLike, ""],
    nsteps: int,
    dt: float,
    ode_solver: diffrax.AbstractSolver,
    adjoint: diffrax.AbstractAdjoint,
) -> Float[Array, "steps n"]:
    """States at ``t_start + k dt`` for k = 0..nsteps, shape ``(nsteps + 1, n)``.

    ``t_start`` may be traced (one compiled program serves every window). Errors inside the
    solve do not raise (``throw=False``; ``EQX_ON_ERROR=nan``, set by :mod:`dacli.__main__`): the
    caller checks finiteness.
    """
    if nsteps == 0:
        return x0[None]
    adjoint = forward_adjoint_for(adjoint, nsteps + 1)
    if steps_in_scan(ode_solver, adjoint, nsteps):
        return fixed_step_trajectory(dynamics, x0, t_start, nsteps, dt, ode_solver, adjoint)
    return solve_with_diffeqsolve(dynamics, x0, t_start, nsteps, dt, ode_solver, adjoint)


def solve_with_diffeqsolve(
    dynamics: Dynamics,
    x0: Float[Array, " n"],
    t_start: Float[ArrayLike, ""],
    nsteps: int,
    dt: float,
    ode_solver: diffrax.AbstractSolver,
    adjoint: diffrax.AbstractAdjoint,
) -> Float[Array, "steps n"]:
    """:func:`integrate` through :func:`diffrax.diffeqsolve`, whatever the solver and adjoint:
    the general path, and the independent reference the scan path is checked against."""
    ts = dt * jnp.arange(nsteps + 1, dtype=x0.dtype)
    solution = diffrax.diffeqsolve(
        TERM,
        ode_solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=jnp.asarray(dt, dtype=x0.dtype),
        y0=x0,
        args=(dynamics, jnp.asarray(t_start, dtype=x0.dtype)),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.ConstantStepSize(),
        adjoint=forward_adjoint_for(adjoint, nsteps + 1),
        max_steps=nsteps + 1,
        throw=False,
    )
    return solution.ys


def integrate_every(
    dynamics: Dynamics,
    x0: Float[Array, " n"],
    t_start: Float[ArrayLike, ""],
    outputs: int,
    stride: int,
    dt: float,
    ode_solver: diffrax.AbstractSolver,
) -> Float[Array, "outputs n"]:
    """States at ``t_start + j stride dt`` for j = 0..outputs, shape ``(outputs + 1, n)``.

    A forecast: one :func:`integrate` of ``stride`` steps per output, chained in a
    :func:`jax.lax.scan` (one compiled solve, no Python loop), so memory grows with the outputs,
    not with the steps. Forward only (no adjoint is stored for). The states equal one long
    :func:`integrate` sampled every ``stride`` steps, to round-off (tested).
    """
    adjoint = diffrax.RecursiveCheckpointAdjoint()
    dtype = x0.dtype

    def advance(x, j):
        x = integrate(
            dynamics,
            x,
            t_start + (j * stride) * jnp.asarray(dt, dtype),
            stride,
            dt,
            ode_solver,
            adjoint,
        )[-1]
        return x, x

    _, states = jax.lax.scan(advance, x0, jnp.arange(outputs, dtype=dtype))
    return jnp.concatenate([x0[None], states])


class Forecaster(eqx.Module):
    """``(x0, t0) -> integrate_every(...)``: one forecast, the item a batched forecast maps over.

    A module (model and solver as fields, step counts static) so that every forecast with the
    same model, solver, steps and batch shape reuses one compiled program.
    """

    dynamics: Dynamics
    ode_solver: diffrax.AbstractSolver
    outputs: int = eqx.field(static=True)
    stride: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def __call__(
        self, x0: Float[Array, " n"], t0: Float[ArrayLike, ""]
    ) -> Float[Array, "outputs n"]:
        return integrate_every(
            self.dynamics, x0, t0, self.outputs, self.stride, self.dt, self.ode_solver
        )
