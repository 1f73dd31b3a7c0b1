"""The dynamics contract every model — built-in or user plug-in — satisfies.

A model is an :class:`equinox.Module` subclassing :class:`Dynamics`:

* ``vector_field(t, x, args)`` returns dx/dt for the flat state vector ``x`` (shape
  ``(layout.size,)``) at absolute model time ``t``; it must be written in ``jax.numpy`` so
  that it can be differentiated (tangent-linear and adjoint models come from autodiff).
* ``layout()`` returns a :class:`StateLayout`: the variable names, the grid axes they live on
  (none, one, or more, each a :class:`GridAxis` with coordinate values, units and periodicity)
  and the variables' units. The flat state is the variables concatenated, each flattened in C
  order over the grid (for a 2-D model: over (y, x), x fastest).

A configuration names a model by import path (``model.name = "package.module:attribute"``); that
attribute must be a :class:`Dynamics` subclass or a function marked with :func:`model_factory`,
so a config can call nothing that was not written for dacli (see
:func:`dacli.build.registry.resolve_model_factory`, the one place a config loads code).
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import equinox as eqx
import numpy as np


FULL_CIRCLE = 360.0  # degrees of longitude round the globe

# The largest state a model may have (elements of the flat state vector: 800 MB in float64). A
# model checks its size parameters against it in ``__init__``, before ``layout()`` allocates its
# grid, so a mistyped size (n = 1e12) is a configuration error, not an exhausted memory.
MAX_STATE_SIZE = 100_000_000

# CF units of latitude and longitude (CF Conventions 1.11, sections 4.1 and 4.2), compared in lower case.
LATITUDE_UNITS = frozenset({"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"})
LONGITUDE_UNITS = frozenset({"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"})


@dataclass(frozen=True)
class GridAxis:
    """One regular axis of the model grid, written to files as a CF coordinate variable.

    ``periodic`` is a property of the *dynamics* and of the covariances on the grid (the field
    beyond the last point continues from the first: FFTs, circular padding); :attr:`wraps` is a
    property of *locations* (a position beyond the last point is the same place as one at the start),
    which is what the observation operator and simulated observations use.
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
        """Latitude by its CF units (degrees_north and spellings) or standard name (latitude, grid_latitude)."""
        return (str(self.units).strip().lower() in LATITUDE_UNITS
                or self.standard_name in ("latitude", "grid_latitude"))

    @property
    def is_longitude(self) -> bool:
        """Longitude by its CF units (degrees_east and spellings) or standard name (longitude, grid_longitude)."""
        return (str(self.units).strip().lower() in LONGITUDE_UNITS
                or self.standard_name in ("longitude", "grid_longitude"))

    @property
    def wraps(self) -> bool:
        """Whether a *location* beyond the last grid point is the same place as one at the start.

        * a longitude axis wraps only when it is periodic and spans the whole circle
          (``len(values) * |spacing|`` = 360 degrees within 1e-6 relative): a global grid;
        * a latitude axis never wraps (a pole is no way round);
        * any other axis wraps exactly when it is ``periodic`` (the Lorenz-96 ring, a doubly
          periodic box in metres).

        So a regional lat-lon box whose dynamics are doubly periodic (:class:`dacli.models.qg.QuasiGeostrophic`
        with ``coordinates = "latlon"``) does not wrap: an observation beyond its bounds is elsewhere on
        the Earth, not at the opposite edge. Use ``periodic``, not this, for the dynamics and for FFT
        covariances. Reference: CF Conventions 1.11, sections 4.1-4.2 (latitude and longitude units).
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
            object.__setattr__(self, "axes", (GridAxis(self.grid_name, np.asarray(self.grid, float), self.grid_units,
                                                       self.periodic),))
        elif self.axes and len(self.axes) == 1 and not self.grid_name:
            axis = self.axes[0]
            for name, value in (("grid_name", axis.name), ("grid", axis.values), ("periodic", axis.periodic),
                                ("grid_units", axis.units)):
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
        """Flat states ``(..., size)`` -> {variable: array (..., *shape)} (no grid axes without a grid)."""
        states = np.asarray(states)
        lead = states.shape[:-1]
        return {name: states[..., k * self.grid_size:(k + 1) * self.grid_size].reshape(*lead, *self.shape)
                for k, name in enumerate(self.variables)}

    def join(self, fields: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`split`."""
        ndim = len(self.axes)
        parts = []
        for name in self.variables:
            part = np.asarray(fields[name])
            lead = part.shape[: part.ndim - ndim]
            parts.append(part.reshape(*lead, self.grid_size))
        return np.concatenate(parts, axis=-1)


class Dynamics(eqx.Module):
    """Abstract model: a vector field on a flat state plus its layout (see module docstring)."""

    @abc.abstractmethod
    def vector_field(self, t, x, args):
        """dx/dt at time ``t`` for state ``x``; ``args`` is unused by built-in models."""

    @abc.abstractmethod
    def layout(self) -> StateLayout:
        """Variable names, grid and periodicity of the state."""

    def default_state(self, key) -> "np.ndarray":
        """A generic initial state for spin-up in twin experiments (override for realism)."""
        import jax

        return jax.random.normal(key, (self.layout().size,))


def size_parameter(name: str, value: Any, minimum: int, maximum: int = MAX_STATE_SIZE) -> int:
    """``value`` as an int in [``minimum``, ``maximum``]: for a model's grid-size parameters.

    Raises a ValueError naming the parameter (reported as ``model.parameters``) for a non-integer
    or a value out of range; the default maximum is :data:`MAX_STATE_SIZE`.
    """
    whole = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise ValueError(f"{name} must be an integer from {minimum:,} to {maximum:,}, found {value!r}")
    if not minimum <= value <= maximum:
        limit = " (dacli.models.MAX_STATE_SIZE)" if maximum == MAX_STATE_SIZE else ""
        raise ValueError(f"{name} must be an integer from {minimum:,} to {maximum:,}{limit}, found {int(value)}")
    return int(value)


# --- plug-in factories ---------------------------------------------------------------------------

_FACTORY_MARK = object()  # identity-checked: only model_factory sets it
_FACTORY_ATTRIBUTE = "__dacli_model_factory__"

Factory = TypeVar("Factory", bound=Callable[..., Any])


def model_factory(function: Factory) -> Factory:
    """Mark ``function`` as a dacli model factory: a config may name it as ``model.name = "module:function"``.

    dacli calls a plug-in named by import path only when it is a :class:`Dynamics` subclass or a
    function marked with this decorator, so a configuration (data) can never call an arbitrary
    function such as ``subprocess.run``. The factory gets ``model.parameters`` as keyword
    arguments and returns a :class:`Dynamics`. A :class:`Dynamics` subclass needs no mark, and
    neither does a factory registered in the ``dacli.models`` entry-point group::

        @model_factory
        def make_ring(n=32, speed=1.0, diffusion=0.1):
            return AdvectionDiffusionRing(n=int(n), speed=float(speed), diffusion=float(diffusion))
    """
    if not inspect.isfunction(function):
        raise TypeError(f"@model_factory marks a function, not {type(function).__name__}; a Dynamics subclass "
                        "needs no mark")
    setattr(function, _FACTORY_ATTRIBUTE, _FACTORY_MARK)
    return function


def is_model_factory(candidate: Any) -> bool:
    """Whether ``candidate`` is a function marked with :func:`model_factory` (read without calling anything)."""
    return inspect.isfunction(candidate) and candidate.__dict__.get(_FACTORY_ATTRIBUTE) is _FACTORY_MARK


def is_dynamics_class(candidate: Any) -> bool:
    """Whether ``candidate`` is a concrete :class:`Dynamics` subclass (one a config may instantiate)."""
    return (isinstance(candidate, type) and issubclass(candidate, Dynamics) and candidate is not Dynamics
            and not inspect.isabstract(candidate))
