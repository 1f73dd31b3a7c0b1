"""Lorenz-63 and Lorenz-96, the standard test beds of data assimilation.

References: Lorenz (1963), "Deterministic nonperiodic flow", J. Atmos. Sci. 20;
Lorenz (1996), "Predictability: a problem partly solved", ECMWF seminar.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from dacli.models.base import AbstractAdjointRule, Dynamics, StateLayout, size_parameter


class Lorenz63(Dynamics):
    """dx = s(y - x), dy = x(r - z) - y, dz = xy - b z; defaults s=10, r=28, b=8/3."""

    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0

    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " 3"], args: PyTree
    ) -> Float[Array, " 3"]:
        return _lorenz63_tendency(x, self.sigma, self.rho, self.beta)

    def layout(self) -> StateLayout:
        return StateLayout(variables=("x", "y", "z"))

    def default_state(self, key: PRNGKeyArray) -> Float[Array, " 3"]:
        return jnp.array([1.509, -1.531, 25.46]) + jax.random.normal(key, (3,))

    def with_adjoint_rule(self) -> Lorenz63AdjointRule:
        return Lorenz63AdjointRule(self)


class Lorenz63AdjointRule(AbstractAdjointRule):
    """Lorenz-63 whose tendency is differentiated in reverse mode by its hand-written adjoint
    (:meth:`Lorenz63.with_adjoint_rule`): the same forward values, bit for bit; gradients equal
    to autodiff's to round-off; no forward mode. JAX's transpose of ``x[0], x[1], x[2]`` and
    their ``stack`` is a pad and an add per component; the rule is one fused kernel. The shipped
    config's window (50 Tsit5 steps): value-and-gradient 67 against 150 µs
    (benchmarks/gradient_cost.py).
    """

    model: Lorenz63

    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " 3"], args: PyTree
    ) -> Float[Array, " 3"]:
        model = self.model
        return _lorenz63_with_adjoint_rule(x, model.sigma, model.rho, model.beta)


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
        return _tendency(x, self.forcing)

    def layout(self) -> StateLayout:
        return StateLayout(
            variables=("x",), grid_name="site", grid=np.arange(self.n, dtype=float), periodic=True
        )

    def default_state(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        return self.forcing + jax.random.normal(key, (self.n,))

    def with_adjoint_rule(self) -> Lorenz96AdjointRule:
        return Lorenz96AdjointRule(self)


class Lorenz96AdjointRule(AbstractAdjointRule):
    """Lorenz-96 whose tendency is differentiated in reverse mode by its hand-written adjoint
    (:meth:`Lorenz96.with_adjoint_rule`): the same forward values, bit for bit; gradients equal
    to autodiff's to round-off; no forward mode.

    The rule keeps the state and, in the reverse pass, forms each site's cotangent from the
    neighbours of the state and of the cotangent, one halo each, in one fused kernel. JAX's
    transpose of the tendency pads the three neighbour slices and adds them, and XLA's CPU
    backend runs each as a kernel: a checkpointed RK4 step's reverse loop runs 14 kernels with
    the rule against 25 (benchmarks/lorenz96_tendency.py, n = 40 to 4000).
    """

    model: Lorenz96

    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " n"], args: PyTree
    ) -> Float[Array, " n"]:
        return _tendency_with_adjoint_rule(x, self.model.forcing)


def _tendency(x: Float[Array, "... n"], forcing: float) -> Float[Array, "... n"]:
    """Lorenz-96's tendency: the halo on CPU, the rolls elsewhere."""
    return jax.lax.platform_dependent(
        x, forcing, cpu=_tendency_from_halo, default=_tendency_from_rolls
    )


def _tendency_from_rolls(x: Float[Array, "... n"], forcing: float) -> Float[Array, "... n"]:
    """Lorenz-96's tendency with its neighbours taken by jnp.roll (fused by a GPU)."""
    ahead, behind_two, behind = jnp.roll(x, -1, -1), jnp.roll(x, 2, -1), jnp.roll(x, 1, -1)
    return (ahead - behind_two) * behind - x + forcing


def _tendency_from_halo(x: Float[Array, "... n"], forcing: float) -> Float[Array, "... n"]:
    """Lorenz-96's tendency with its neighbours sliced from one materialised halo (CPU)."""
    ring = jax.lax.optimization_barrier(jnp.concatenate([x[..., -2:], x, x[..., :1]], axis=-1))
    ahead, behind_two, behind = ring[..., 3:], ring[..., :-3], ring[..., 1:-2]
    return (ahead - behind_two) * behind - x + forcing


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _tendency_with_adjoint_rule(x: Float[Array, "... n"], forcing: float) -> Float[Array, "... n"]:
    """Lorenz-96's tendency with its hand-written adjoint as the reverse-mode rule."""
    return _tendency(x, forcing)


def _tendency_forward(x: Float[Array, "... n"], forcing: float):
    return _tendency(x, forcing), x


def _tendency_backward(forcing: float, x: Float[Array, "... n"], cotangent: Float[Array, "... n"]):
    return (
        jax.lax.platform_dependent(
            x, cotangent, cpu=_adjoint_from_halo, default=_adjoint_from_rolls
        ),
    )


_tendency_with_adjoint_rule.defvjp(_tendency_forward, _tendency_backward)


def _adjoint_from_rolls(
    x: Float[Array, "... n"], cotangent: Float[Array, "... n"]
) -> Float[Array, "... n"]:
    """The transposed Jacobian of the tendency at ``x`` applied to ``cotangent`` (fused by a GPU):
    g_j = c_{j-1} x_{j-2} - c_{j+2} x_{j+1} + c_{j+1} (x_{j+2} - x_{j-1}) - c_j, from
    df_i/dx_{i+1} = x_{i-1}, df_i/dx_{i-2} = -x_{i-1}, df_i/dx_{i-1} = x_{i+1} - x_{i-2},
    df_i/dx_i = -1."""

    def shifted(a, k):  # shifted(a, k)[j] = a[j + k]
        return jnp.roll(a, -k, -1)

    c = cotangent
    return (
        shifted(c, -1) * shifted(x, -2)
        - shifted(c, 2) * shifted(x, 1)
        + shifted(c, 1) * (shifted(x, 2) - shifted(x, -1))
        - c
    )


def _adjoint_from_halo(
    x: Float[Array, "... n"], cotangent: Float[Array, "... n"]
) -> Float[Array, "... n"]:
    """:func:`_adjoint_from_rolls` with the neighbours sliced from one materialised halo of the
    state and one of the cotangent (CPU, as :func:`_tendency_from_halo`)."""
    n = x.shape[-1]
    barrier = jax.lax.optimization_barrier
    # ring[k] = x[(k - 2) mod n], so x_{j+m} = ring[j + 2 + m]; halo[k] = c[(k - 1) mod n]
    ring = barrier(jnp.concatenate([x[..., -2:], x, x[..., :2]], axis=-1))
    halo = barrier(jnp.concatenate([cotangent[..., -1:], cotangent, cotangent[..., :2]], axis=-1))

    def state(m):
        return ring[..., 2 + m : 2 + m + n]

    def costate(m):
        return halo[..., 1 + m : 1 + m + n]

    return (
        costate(-1) * state(-2)
        - costate(2) * state(1)
        + costate(1) * (state(2) - state(-1))
        - cotangent
    )


def _lorenz63_tendency(
    x: Float[Array, " 3"], sigma: float, rho: float, beta: float
) -> Float[Array, " 3"]:
    u, v, w = x[0], x[1], x[2]
    return jnp.stack([sigma * (v - u), u * (rho - w) - v, u * v - beta * w])


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _lorenz63_with_adjoint_rule(
    x: Float[Array, " 3"], sigma: float, rho: float, beta: float
) -> Float[Array, " 3"]:
    """Lorenz-63's tendency with its hand-written adjoint as the reverse-mode rule."""
    return _lorenz63_tendency(x, sigma, rho, beta)


def _lorenz63_forward(x: Float[Array, " 3"], sigma: float, rho: float, beta: float):
    return _lorenz63_tendency(x, sigma, rho, beta), x


def _lorenz63_backward(
    sigma: float, rho: float, beta: float, x: Float[Array, " 3"], c: Float[Array, " 3"]
):
    """J^T c with J = [[-s, s, 0], [r - w, -1, -u], [v, u, -b]] at x = (u, v, w)."""
    u, v, w = x[0], x[1], x[2]
    return (
        jnp.stack(
            [
                -sigma * c[0] + (rho - w) * c[1] + v * c[2],
                sigma * c[0] - c[1] + u * c[2],
                -u * c[1] - beta * c[2],
            ]
        ),
    )


_lorenz63_with_adjoint_rule.defvjp(_lorenz63_forward, _lorenz63_backward)
