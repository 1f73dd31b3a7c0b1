"""A user model living outside dacli — the README's worked example ("Bring your own model").

Linear advection-diffusion on a periodic ring, du/dt = -c du/ds + nu d2u/ds2 (centred
differences), plus a deliberately broken factory for the error path. A config may name a
factory only when it is marked with ``@model_factory`` (or name a Dynamics subclass directly).
"""

import jax.numpy as jnp
import numpy as np

from dacli.models import Dynamics, StateLayout, model_factory


class AdvectionDiffusionRing(Dynamics):
    n: int
    speed: float
    diffusion: float

    def vector_field(self, t, x, args):
        right, left = jnp.roll(x, -1), jnp.roll(x, 1)
        return -self.speed * (right - left) / 2.0 + self.diffusion * (right - 2.0 * x + left)

    def layout(self) -> StateLayout:
        return StateLayout(variables=("u",), grid_name="s", grid=np.arange(self.n, dtype=float), periodic=True)

    def default_state(self, key):
        s = jnp.arange(self.n)
        return jnp.sin(2 * jnp.pi * s / self.n) + 0.5 * jnp.cos(6 * jnp.pi * s / self.n)


@model_factory
def make_ring(n: int = 32, speed: float = 1.0, diffusion: float = 0.1) -> AdvectionDiffusionRing:
    return AdvectionDiffusionRing(n=int(n), speed=float(speed), diffusion=float(diffusion))


@model_factory
def not_a_model(**parameters):
    return {"parameters": parameters}


def _advection_with_rule(adjoint_scale: float):
    """Centred advection with a hand-written custom_vjp; ``adjoint_scale != 1`` makes it wrong."""
    import jax

    @jax.custom_vjp
    def advect(x):
        return -(jnp.roll(x, -1) - jnp.roll(x, 1)) / 2.0

    def forward(x):
        return advect(x), None

    def backward(_, cotangent):
        # The exact adjoint of -(roll(x,-1) - roll(x,1))/2 is (roll(c,-1) - roll(c,1))/2.
        return (adjoint_scale * (jnp.roll(cotangent, -1) - jnp.roll(cotangent, 1)) / 2.0,)

    advect.defvjp(forward, backward)
    return advect


class CustomRuleRing(AdvectionDiffusionRing):
    adjoint_scale: float = 1.0

    def vector_field(self, t, x, args):
        advect = _advection_with_rule(self.adjoint_scale)
        right, left = jnp.roll(x, -1), jnp.roll(x, 1)
        return self.speed * advect(x) + self.diffusion * (right - 2.0 * x + left)


class RoundedRing(AdvectionDiffusionRing):
    def vector_field(self, t, x, args):
        # A non-differentiable step: the derivative of round() is zero almost everywhere.
        return super().vector_field(t, jnp.round(x * 100.0) / 100.0, args)


@model_factory
def make_ring_custom_rule(n: int = 32, speed: float = 1.0, diffusion: float = 0.1, adjoint_scale: float = 1.0):
    return CustomRuleRing(n=int(n), speed=float(speed), diffusion=float(diffusion), adjoint_scale=float(adjoint_scale))


@model_factory
def make_ring_rounded(n: int = 32, speed: float = 1.0, diffusion: float = 0.1):
    return RoundedRing(n=int(n), speed=float(speed), diffusion=float(diffusion))


def unmarked_factory(n: int = 32, speed: float = 1.0, diffusion: float = 0.1) -> AdvectionDiffusionRing:
    """A factory without ``@model_factory``: refused by import path, accepted through an entry point."""
    return AdvectionDiffusionRing(n=int(n), speed=float(speed), diffusion=float(diffusion))
