"""Plug-in models with seeded gradient faults, and correct controls, for ``dacli check-adjoints``.

Each faulty model is the ring of ``ring_models`` (linear advection-diffusion, so its own
tangent-linear model is exact) with one classic way to break a gradient in its vector field;
the control is Lorenz-96 with a hand-written (correct) ``jax.custom_vjp`` rule. Used by
tests/test_check_adjoints_faults.py; not models to learn from.
"""

import jax
import jax.numpy as jnp
from ring_models import AdvectionDiffusionRing

from dacli.models import model_factory
from dacli.models.lorenz import Lorenz96


def _advection(x):
    """Centred advection -(x_{i+1} - x_{i-1}) / 2 on the ring."""
    return -(jnp.roll(x, -1) - jnp.roll(x, 1)) / 2.0


def _diffusion(x):
    return jnp.roll(x, -1) - 2.0 * x + jnp.roll(x, 1)


class StopGradientRing(AdvectionDiffusionRing):
    """The diffusion term behind ``jax.lax.stop_gradient``: both tangent-linear and adjoint
    models miss it, consistently (the dot-product test passes; the tangent-linear and Taylor
    tests do not)."""

    def vector_field(self, t, x, args):
        return self.speed * _advection(x) + self.diffusion * jax.lax.stop_gradient(_diffusion(x))


def _advection_with_jvp(tangent_scale: float):
    """Centred advection with a hand-written ``jax.custom_jvp`` rule; ``tangent_scale != 1``
    makes it wrong (reverse mode transposes the same wrong rule)."""

    @jax.custom_jvp
    def advect(x):
        return _advection(x)

    @advect.defjvp
    def advect_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return advect(x), tangent_scale * _advection(dx)

    return advect


class CustomJvpRing(AdvectionDiffusionRing):
    tangent_scale: float = 1.0

    def vector_field(self, t, x, args):
        advect = _advection_with_jvp(self.tangent_scale)
        return self.speed * advect(x) + self.diffusion * _diffusion(x)


class Float32Ring(AdvectionDiffusionRing):
    """The advection term computed in float32 inside a float64 state: round-off of 1e-7 in the
    model, its tangent-linear and its adjoint (each rounded differently)."""

    def vector_field(self, t, x, args):
        advection = _advection(x.astype(jnp.float32)).astype(x.dtype)
        return self.speed * advection + self.diffusion * _diffusion(x)


class SqrtTrapRing(AdvectionDiffusionRing):
    """A source ``where(x > 0, sqrt(x), 0)``: the forward model and its tangent-linear are finite,
    but the adjoint of the untaken branch is ``0 * (1 / (2 sqrt(x)))`` = NaN wherever x < 0 —
    and the ring's states have negative sites at every step."""

    def vector_field(self, t, x, args):
        source = jnp.where(x > 0.0, jnp.sqrt(x), 0.0)
        return super().vector_field(t, x, args) + 0.1 * source


def _lorenz96_tendency_with_rule(forcing: float):
    """Lorenz-96's tendency with a hand-written, correct ``jax.custom_vjp`` rule (no forward
    mode through it)."""

    @jax.custom_vjp
    def tendency(x):
        return (jnp.roll(x, -1) - jnp.roll(x, 2)) * jnp.roll(x, 1) - x + forcing

    def forward(x):
        return tendency(x), x

    def backward(x, cotangent):
        # f_i = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F, so (df^T c)_j = c_{j-1} x_{j-2}
        # - c_{j+2} x_{j+1} + c_{j+1} (x_{j+2} - x_{j-1}) - c_j.
        left = cotangent * jnp.roll(x, 1)  # c_i x_{i-1}
        spread = cotangent * (jnp.roll(x, -1) - jnp.roll(x, 2))  # c_i (x_{i+1} - x_{i-2})
        return (jnp.roll(left, 1) - jnp.roll(left, -2) + jnp.roll(spread, -1) - cotangent,)

    tendency.defvjp(forward, backward)
    return tendency


class CustomVjpLorenz96(Lorenz96):
    """Lorenz-96 whose tendency carries a correct custom_vjp: same layout and trajectories as
    the built-in ``lorenz96`` (so its data sets serve), reverse mode only."""

    def vector_field(self, t, x, args):
        return _lorenz96_tendency_with_rule(self.forcing)(x)


def _ring(cls, n, speed, diffusion, **extra):
    return cls(n=int(n), speed=float(speed), diffusion=float(diffusion), **extra)


@model_factory
def make_ring_stop_gradient(n: int = 16, speed: float = 1.0, diffusion: float = 0.1):
    return _ring(StopGradientRing, n, speed, diffusion)


@model_factory
def make_ring_custom_jvp(
    n: int = 16, speed: float = 1.0, diffusion: float = 0.1, tangent_scale: float = 1.0
):
    return _ring(CustomJvpRing, n, speed, diffusion, tangent_scale=float(tangent_scale))


@model_factory
def make_ring_float32(n: int = 16, speed: float = 1.0, diffusion: float = 0.1):
    return _ring(Float32Ring, n, speed, diffusion)


@model_factory
def make_ring_sqrt_trap(n: int = 16, speed: float = 1.0, diffusion: float = 0.1):
    return _ring(SqrtTrapRing, n, speed, diffusion)


@model_factory
def make_lorenz96_custom_vjp(n: int = 12, forcing: float = 8.0):
    return CustomVjpLorenz96(n=int(n), forcing=float(forcing))
