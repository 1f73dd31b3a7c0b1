"""Lorenz-63 and Lorenz-96, the standard test beds of data assimilation.

References: Lorenz (1963), "Deterministic nonperiodic flow", J. Atmos. Sci. 20;
Lorenz (1996), "Predictability: a problem partly solved", ECMWF seminar.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from dacli.models.base import Dynamics, StateLayout, size_parameter


class Lorenz63(Dynamics):
    """dx = s(y - x), dy = x(r - z) - y, dz = xy - b z; defaults s=10, r=28, b=8/3."""

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0

    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " 3"], args: PyTree
    ) -> Float[Array, " 3"]:
        u, v, w = x[0], x[1], x[2]
        return jnp.stack([self.sigma * (v - u), u * (self.rho - w) - v, u * v - self.beta * w])

    def layout(self) -> StateLayout:
        return StateLayout(variables=("x", "y", "z"))

    def default_state(self, key: PRNGKeyArray) -> Float[Array, " 3"]:
        return jnp.array([1.509, -1.531, 25.46]) + jax.random.normal(key, (3,))


class Lorenz96(Dynamics):
    """dx_i = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F on a periodic ring of ``n`` sites."""

    n: int = 40
    forcing: float = 8.0

    def __init__(self, n: int = 40, forcing: float = 8.0):
        self.n = size_parameter("n", n, minimum=4)  # at most MAX_STATE_SIZE sites
        self.forcing = float(forcing)

    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " n"], args: PyTree
    ) -> Float[Array, " n"]:
        # On CPU, the ring with its halo, ring[j] = x[(j - 2) mod n], is made once and kept as one
        # array (the barrier stops XLA from fusing it into its users). With three jnp.roll calls,
        # XLA's CPU backend fuses each roll into every elementwise kernel as a per-element
        # select, and a Jacobian by forward mode (a batch of tangents) costs 3.4-3.5x as much:
        # 0.74-0.77 against 0.21-0.23 ms for 16 RK4 steps at n = 40 (two runs of
        # benchmarks/lorenz96_tendency.py; the forward 1.5-4.9x, a reverse-mode gradient 1.2-1.4x
        # at n = 40, 0.85-1.07x at n = 4000). Same operations on the same values: equal bit for
        # bit (gradients to round-off, the cotangents summed in another order). Other platforms
        # keep the rolls (a GPU fuses them).
        return jax.lax.platform_dependent(
            x, self.forcing, cpu=_tendency_from_halo, default=_tendency_from_rolls
        )

    def layout(self) -> StateLayout:
        return StateLayout(
            variables=("x",), grid_name="site", grid=np.arange(self.n, dtype=float), periodic=True
        )

    def default_state(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        return self.forcing + jax.random.normal(key, (self.n,))


def _tendency_from_rolls(x: Float[Array, "... n"], forcing: float) -> Float[Array, "... n"]:
    """Lorenz-96's tendency with its neighbours taken by jnp.roll (fused by a GPU)."""
    ahead, behind_two, behind = jnp.roll(x, -1, -1), jnp.roll(x, 2, -1), jnp.roll(x, 1, -1)
    return (ahead - behind_two) * behind - x + forcing


def _tendency_from_halo(x: Float[Array, "... n"], forcing: float) -> Float[Array, "... n"]:
    """Lorenz-96's tendency with its neighbours sliced from one materialised halo (CPU)."""
    ring = jax.lax.optimization_barrier(jnp.concatenate([x[..., -2:], x, x[..., :1]], axis=-1))
    ahead, behind_two, behind = ring[..., 3:], ring[..., :-3], ring[..., 1:-2]
    return (ahead - behind_two) * behind - x + forcing
