"""The shipped default RecursiveCheckpointAdjoint against DirectAdjoint for any window length (a
measured diffrax trap made its own default checkpoints several percent wrong).

The 4DVar gradient under every forward adjoint against DirectAdjoint (exact ones to round-off,
BacksolveAdjoint to its own tolerance) is asserted on Lorenz-96 through the check-adjoints suite
itself: tests/test_check_adjoints.py::test_forward_strategies_agree_on_a_short_lorenz96_window.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dacli.models.integrate import integrate
from dacli.models.lorenz import Lorenz96

DT = 0.05


@pytest.mark.parametrize("nsteps", [1, 7, 40])
def test_shipped_default_matches_direct_adjoint(nsteps):
    """dacli's default RecursiveCheckpointAdjoint (checkpoints = steps) is exact for any window length.

    diffrax 0.7.2's own default checkpoints with a constant step and max_steps = steps gave
    gradients 1.3-6 % wrong on Lorenz-96 (measured); every shipped default is checked here.
    """
    dynamics = Lorenz96(n=12, forcing=8.0)
    x0 = 8.0 + jax.random.normal(jax.random.PRNGKey(nsteps), (12,))

    def functional(x, adjoint):
        return jnp.sum(jnp.sin(integrate(dynamics, x, 0.3, nsteps, DT, diffrax.Tsit5(), adjoint)))

    grad = jax.jit(jax.grad(functional), static_argnums=1)
    reference = grad(x0, diffrax.DirectAdjoint())
    shipped = grad(x0, diffrax.RecursiveCheckpointAdjoint())
    assert np.linalg.norm(shipped - reference) / np.linalg.norm(reference) < 1e-12


def test_the_scan_of_solver_steps_equals_diffeqsolve_for_every_registered_solver():
    """integrate() steps explicit solvers in a lax.scan (dacli/models/fixed_steps.py), the stages
    of diffrax's tableau written out: the same stages as diffrax.diffeqsolve, so the window
    trajectory equals diffeqsolve's to round-off for every registered solver (measured on
    Lorenz-96, N = 40, 20 steps: up to 3.4e-14 relative for the Runge-Kutta solvers, 4.1e-13
    for Euler; first-same-as-last tableaux carry their last slope), and the default gradient equals diffeqsolve's DirectAdjoint gradient.
    BacksolveAdjoint and fewer checkpoints than steps stay on diffeqsolve."""
    from dacli.build.factories import ODE_SOLVER_FACTORIES
    from dacli.models.fixed_steps import steps_in_scan
    from dacli.models.integrate import solve_with_diffeqsolve

    dynamics = Lorenz96(n=12, forcing=8.0)
    x0 = 8.0 + jax.random.normal(jax.random.PRNGKey(0), (12,))
    rc = diffrax.RecursiveCheckpointAdjoint()
    for name, make in ODE_SOLVER_FACTORIES.items():
        solver = make()
        assert steps_in_scan(solver, diffrax.RecursiveCheckpointAdjoint(checkpoints=10), 10), name

        @jax.jit
        def both(x, solver=solver):
            return (
                integrate(dynamics, x, 0.7, 10, DT, solver, rc),
                solve_with_diffeqsolve(dynamics, x, 0.7, 10, DT, solver, rc),
            )

        scanned, solved = both(x0)
        assert np.all(np.isfinite(solved)), name
        assert np.max(np.abs(scanned - solved)) / np.max(np.abs(solved)) < 1e-12, name
    assert not steps_in_scan(make(), diffrax.BacksolveAdjoint(), 10)
    assert not steps_in_scan(make(), diffrax.RecursiveCheckpointAdjoint(checkpoints=3), 10)

    def functional(x, path, adjoint):
        return jnp.sum(jnp.sin(path(dynamics, x, 0.7, 10, DT, diffrax.Tsit5(), adjoint)))

    grad = jax.jit(jax.grad(functional), static_argnums=(1, 2))
    scanned = grad(x0, integrate, rc)
    reference = grad(x0, solve_with_diffeqsolve, diffrax.DirectAdjoint())
    assert np.linalg.norm(scanned - reference) / np.linalg.norm(reference) < 1e-12


def test_the_window_program_has_no_loop_inside_a_step():
    """Each step's stages are written out, not diffrax's per-step stage loop (a while loop per
    step, which XLA's CPU backend runs op by op: up to 1.5x the window time inside LBFGS,
    benchmarks/README.md). Checked on the trajectory, its gradient under the shipped
    RecursiveCheckpointAdjoint and a forward-over-reverse Hessian-vector product, which the
    written-out stages also allow."""
    from dacli.models.solvers import RK4

    dynamics = Lorenz96(n=12, forcing=8.0)
    x0 = 8.0 + jax.random.normal(jax.random.PRNGKey(1), (12,))
    adjoint = diffrax.RecursiveCheckpointAdjoint()

    def functional(x):
        return jnp.sum(jnp.sin(integrate(dynamics, x, 0.3, 8, DT, diffrax.Tsit5(), adjoint)))

    programs = {
        "trajectory": jax.make_jaxpr(lambda x: integrate(dynamics, x, 0.3, 8, DT, RK4(), adjoint)),
        "gradient": jax.make_jaxpr(jax.grad(functional)),
        "hvp": jax.make_jaxpr(lambda x: jax.jvp(jax.grad(functional), (x,), (x,))[1]),
    }
    for name, make in programs.items():
        text = str(make(x0))
        assert "while[" not in text and "custom_vjp" not in text, name
    hvp = jax.jit(lambda x, d: jax.jvp(jax.grad(functional), (x,), (d,))[1])
    direction = jnp.linspace(-1.0, 1.0, 12)
    step = 1e-5
    gradient = jax.jit(jax.grad(functional))
    centred = (gradient(x0 + step * direction) - gradient(x0 - step * direction)) / (2 * step)
    product = hvp(x0, direction)
    assert np.linalg.norm(product - centred) / np.linalg.norm(product) < 1e-6


def test_the_lorenz96_tendency_on_cpu_slices_a_halo_and_gives_the_rolls_numbers():
    """On CPU Lorenz-96's tendency slices one materialised halo instead of fusing three jnp.roll
    calls into every kernel (a forward-mode Jacobian 3-4x cheaper, benchmarks/README.md). Over a
    window its trajectory and forward-mode Jacobian equal the rolls' bit for bit, its gradient to
    round-off (the neighbours' cotangents are summed in another order), and the CPU program is
    really the halo one."""
    from dacli.models.base import Dynamics
    from dacli.models.lorenz import _tendency_from_rolls
    from dacli.models.solvers import RK4

    class RolledLorenz96(Dynamics):
        def vector_field(self, t, x, args):
            return _tendency_from_rolls(x, 8.0)

        def layout(self):
            return Lorenz96(n=40).layout()

    adjoint = diffrax.RecursiveCheckpointAdjoint()
    x0 = 8.0 + jax.random.normal(jax.random.PRNGKey(2), (40,))

    def window(dynamics):
        return lambda x: integrate(dynamics, x, 0.0, 16, DT, RK4(), adjoint)[-1]

    halo, rolled = window(Lorenz96(n=40, forcing=8.0)), window(RolledLorenz96())
    assert np.array_equal(jax.jit(halo)(x0), jax.jit(rolled)(x0))
    assert np.array_equal(jax.jit(jax.jacfwd(halo))(x0), jax.jit(jax.jacfwd(rolled))(x0))
    gradients = [jax.jit(jax.grad(lambda x, w=w: jnp.sum(w(x) ** 2)))(x0) for w in (halo, rolled)]
    scale = np.max(np.abs(gradients[1]))
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=0, atol=1e-13 * scale)
    programs = [jax.jit(jax.jacfwd(w)).lower(x0).compile().as_text() for w in (halo, rolled)]
    # The halo: the 40 tangents' rings, 43 sites each, as arrays of their own (XLA drops the
    # barrier itself once it has scheduled the program).
    assert "f64[40,43]" in programs[0] and "f64[40,43]" not in programs[1]
