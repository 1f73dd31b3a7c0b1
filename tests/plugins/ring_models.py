"""A user model living outside dacli — the README's worked example ("Bring your own model").

Linear advection-diffusion on a periodic ring, du/dt = -c du/ds + nu d2u/ds2 (centred
differences), plus a deliberately broken factory for the error path.
"""

import jax.numpy as jnp
import numpy as np

from dacli.models import Dynamics, StateLayout


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


def make_ring(n: int = 32, speed: float = 1.0, diffusion: float = 0.1) -> AdvectionDiffusionRing:
    return AdvectionDiffusionRing(n=int(n), speed=float(speed), diffusion=float(diffusion))


def not_a_model(**parameters):
    return {"parameters": parameters}
