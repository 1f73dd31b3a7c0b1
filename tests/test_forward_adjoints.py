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
