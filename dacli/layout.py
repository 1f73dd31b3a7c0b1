"""Where the numbers of a flat state vector live: named variables on a grid of regular axes.

Plain records (numpy only, no JAX): :class:`GridAxis` (one regular axis: coordinate values,
units, periodicity, CF attributes) and :class:`StateLayout` (the variables and the axes they live
on; :meth:`StateLayout.split` / :meth:`StateLayout.join` between the flat state and named
fields). A model returns its layout (:meth:`dacli.models.base.Dynamics.layout`); the file
readers and writers (:mod:`dacli.io`) and the observation geometry use it without importing the
engine, so they sit below it (the layers are checked by ``tests/test_layers.py``).

Not for anything that computes on states: that is the engine's (:mod:`dacli.models`).
Reference: CF Conventions 1.11, sections 4.1-4.2 (coordinate units, ``axis`` attribute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FULL_CIRCLE = 360.0  # degrees of longitude round the globe

# CF units of latitude and longitude (CF Conventions 1.11, sections 4.1 and 4.2), compared in lower
# case.
LATITUDE_UNITS = frozenset(
    {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
)
LONGITUDE_UNITS = frozenset(
    {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
)


@dataclass(frozen=True)
class GridAxis:
    """One regular axis of the model grid, written to files as a CF coordinate variable.

    ``periodic`` is a property of the *dynamics* and of the covariances on the grid (the field
    beyond the last point continues from the first: FFTs, circular padding); :attr:`wraps` is a
    property of *locations* (a position beyond the last point is the same place as one at the
    start), which is what the observation operator and simulated observations use.
    """

    name: str
    values: np.ndarray
    units: str = "1"
    periodic: bool = False
    standard_name: str | None = None
    cf_axis: str = "X"  # CF ``axis`` attribute: X, Y or Z

    @property
    def spacing(self) -> float:
        return float(self.values[1] - self.values[0]) if len(self.values) > 1 else 1.0

    @property
    def is_latitude(self) -> bool:
        """Latitude by its CF units (degrees_north and spellings) or standard name (latitude,
        grid_latitude)."""
        units = str(self.units).strip().lower()
        return units in LATITUDE_UNITS or self.standard_name in ("latitude", "grid_latitude")

    @property
    def is_longitude(self) -> bool:
        """Longitude by its CF units (degrees_east and spellings) or standard name (longitude,
        grid_longitude)."""
        units = str(self.units).strip().lower()
        return units in LONGITUDE_UNITS or self.standard_name in ("longitude", "grid_longitude")

    @property
    def wraps(self) -> bool:
        """Whether a *location* beyond the last grid point is the same place as one at the start.

        * a longitude axis wraps only when it is periodic and spans the whole circle
          (``len(values) * |spacing|`` = 360 degrees within 1e-6 relative): a global grid;
        * a latitude axis never wraps (a pole is no way round);
        * any other axis wraps exactly when it is ``periodic`` (the Lorenz-96 ring, a doubly
          periodic box in metres).

        So a regional lat-lon box whose dynamics are doubly periodic
        (:class:`dacli.models.qg.QuasiGeostrophic` with ``coordinates = "latlon"``) does not
        wrap: an observation beyond its bounds is elsewhere on the Earth, not at the opposite
        edge. Use ``periodic``, not this, for the dynamics and for FFT covariances. Reference: CF
        Conventions 1.11, sections 4.1-4.2 (latitude and longitude units).
        """
        if self.is_latitude:
            return False
        if self.is_longitude:
            span = len(self.values) * abs(self.spacing)
            return bool(self.periodic) and abs(span - FULL_CIRCLE) <= 1e-6 * FULL_CIRCLE
        return bool(self.periodic)

    def attributes(self) -> dict[str, str]:
        attrs = {"long_name": f"{self.name} coordinate", "units": self.units, "axis": self.cf_axis}
        if self.standard_name:
            attrs["standard_name"] = self.standard_name
        return attrs


@dataclass(frozen=True)
class StateLayout:
    """How a flat state vector maps to named variables on a grid of zero, one or more axes.

    A 1-D layout can be given the short way, ``StateLayout(("u",), "site", coordinates,
    periodic=True)``; grids of any dimension through ``axes``.
    """

    variables: tuple[str, ...]
    grid_name: str | None = None
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    periodic: bool = False
    units: str = "1"
    grid_units: str = "1"
    axes: tuple[GridAxis, ...] = ()
    standard_names: tuple[str | None, ...] = ()  # CF standard name per variable, where one exists

    def __post_init__(self):
        if self.grid_name and not self.axes:
            object.__setattr__(
                self,
                "axes",
                (
                    GridAxis(
                        self.grid_name, np.asarray(self.grid, float), self.grid_units, self.periodic
                    ),
                ),
            )
        elif self.axes and len(self.axes) == 1 and not self.grid_name:
            axis = self.axes[0]
            for name, value in (
                ("grid_name", axis.name),
                ("grid", axis.values),
                ("periodic", axis.periodic),
                ("grid_units", axis.units),
            ):
                object.__setattr__(self, name, value)

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the grid dimensions, slowest first (empty without a grid)."""
        return tuple(axis.name for axis in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(axis.values) for axis in self.axes)

    @property
    def grid_size(self) -> int:
        return max(1, int(np.prod(self.shape))) if self.axes else 1

    @property
    def size(self) -> int:
        return len(self.variables) * self.grid_size

    def standard_name(self, variable: str) -> str | None:
        index = self.variables.index(variable)
        return self.standard_names[index] if index < len(self.standard_names) else None

    def index(self, variable: str, grid_index: int = 0) -> int:
        """Flat index of ``variable`` at the flat (C-order) grid index."""
        return self.variables.index(variable) * self.grid_size + grid_index

    def split(self, states: np.ndarray) -> dict[str, np.ndarray]:
        """Flat states ``(..., size)`` -> {variable: array (..., *shape)} (no grid axes without a
        grid)."""
        states = np.asarray(states)
        lead = states.shape[:-1]
        return {
            name: states[..., k * self.grid_size : (k + 1) * self.grid_size].reshape(
                *lead, *self.shape
            )
            for k, name in enumerate(self.variables)
        }

    def join(self, fields: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`split`."""
        ndim = len(self.axes)
        parts = []
        for name in self.variables:
            part = np.asarray(fields[name])
            lead = part.shape[: part.ndim - ndim]
            parts.append(part.reshape(*lead, self.grid_size))
        return np.concatenate(parts, axis=-1)
