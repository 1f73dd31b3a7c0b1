"""A user model on a regional latitude-longitude box: what a reanalysis file is cropped to.

Near-surface temperature relaxed towards a latitude profile, diffused and advected eastwards
on a box of ``ny`` x ``nx`` one-degree cells (not periodic: zero-gradient edges). Its state is
in kelvin, so a reanalysis file in degrees Celsius is converted on reading.
"""

import jax.numpy as jnp
import numpy as np

from dacli.models import Dynamics, GridAxis, StateLayout, model_factory


class RegionalTemperature(Dynamics):
    ny: int
    nx: int
    south: float
    west: float
    speed: float
    diffusion: float
    relaxation: float

    def _padded(self, field):
        return jnp.pad(field, 1, mode="edge")

    def vector_field(self, t, x, args):
        field = x.reshape(self.ny, self.nx)
        padded = self._padded(field)
        laplacian = (padded[2:, 1:-1] + padded[:-2, 1:-1] + padded[1:-1, 2:] + padded[1:-1, :-2] - 4 * field)
        east_gradient = (padded[1:-1, 2:] - padded[1:-1, :-2]) / 2.0
        latitudes = jnp.asarray(self.layout().axes[0].values)[:, None]
        profile = 288.0 - 0.5 * (latitudes - 45.0)
        tendency = self.diffusion * laplacian - self.speed * east_gradient - self.relaxation * (field - profile)
        return tendency.reshape(-1)

    def layout(self) -> StateLayout:
        return StateLayout(variables=("t2m",), units="K", standard_names=("air_temperature",), axes=(
            GridAxis("lat", self.south + np.arange(self.ny, dtype=float), "degrees_north", False, "latitude", "Y"),
            GridAxis("lon", self.west + np.arange(self.nx, dtype=float), "degrees_east", False, "longitude", "X"),
        ))

    def default_state(self, key):
        import jax

        latitudes = jnp.asarray(self.layout().axes[0].values)[:, None]
        field = 288.0 - 0.5 * (latitudes - 45.0) + 3.0 * jax.random.normal(key, (self.ny, self.nx))
        return field.reshape(-1)


@model_factory
def make_regional(ny: int = 12, nx: int = 16, south: float = 35.0, west: float = -20.0, speed: float = 0.5,
                  diffusion: float = 0.2, relaxation: float = 0.05) -> RegionalTemperature:
    return RegionalTemperature(int(ny), int(nx), float(south), float(west), float(speed), float(diffusion),
                               float(relaxation))
