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
        return (jnp.roll(x, -1) - jnp.roll(x, 2)) * jnp.roll(x, 1) - x + self.forcing

    def layout(self) -> StateLayout:
        return StateLayout(
            variables=("x",), grid_name="site", grid=np.arange(self.n, dtype=float), periodic=True
        )

    def default_state(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        return self.forcing + jax.random.normal(key, (self.n,))
