"""One wrapper around :func:`diffrax.diffeqsolve` used by every method.

The window is integrated with a constant step on the grid ``t_start + k dt`` and the state is
saved at every step in one solve, so observations at any step are available without a Python
loop. Defaults are chosen against a measured trap (diffrax 0.7.2): ``ConstantStepSize`` with
``RecursiveCheckpointAdjoint()``'s default checkpoints gave gradients several percent wrong on
Lorenz-96; with ``checkpoints`` equal to the number of steps they match ``DirectAdjoint`` to
round-off. :func:`forward_adjoint_for` applies that default.
"""

from __future__ import annotations

import diffrax
import jax.numpy as jnp

from dacli.models.base import Dynamics


def forward_adjoint_for(adjoint: diffrax.AbstractAdjoint, nsteps: int) -> diffrax.AbstractAdjoint:
    """Fill in RecursiveCheckpointAdjoint's checkpoints (= steps) when left unset."""
    if isinstance(adjoint, diffrax.RecursiveCheckpointAdjoint) and adjoint.checkpoints is None:
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=nsteps)
    return adjoint


def _field(t, y, args):
    # Everything traced travels in ``args``: BacksolveAdjoint cannot see closed-over arrays. One
    # module-level function (not a closure per call): diffeqsolve's jit cache then recognises a
    # repeated eager call with the same model and step count instead of compiling it again.
    model, offset = args
    return model.vector_field(t + offset, y, None)


def integrate(
    dynamics: Dynamics,
    x0,
    t_start,
    nsteps: int,
    dt: float,
    solver: diffrax.AbstractSolver,
    adjoint: diffrax.AbstractAdjoint,
):
    """States at ``t_start + k dt`` for k = 0..nsteps, shape ``(nsteps + 1, n)``.

    ``t_start`` may be traced (one compiled program serves every window). Errors inside the
    solve do not raise: the caller checks finiteness (see ../shared/CONVENTIONS.md on
    EQX_ON_ERROR and the compilation cache).
    """
    if nsteps == 0:
        return x0[None]
    ts = dt * jnp.arange(nsteps + 1, dtype=x0.dtype)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(_field),
        solver,
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
