"""The dynamics contract every model — built-in or user plug-in — satisfies.

A model is an :class:`equinox.Module` subclassing :class:`Dynamics`:

* ``vector_field(t, x, args)`` returns dx/dt for the flat state vector ``x`` (shape
  ``(layout.size,)``) at absolute model time ``t``; it must be written in ``jax.numpy`` so
  that it can be differentiated (tangent-linear and adjoint models come from autodiff).
* ``layout()`` returns a :class:`StateLayout`: the variable names, the grid axes they live on
  (none, one, or more, each a :class:`GridAxis` with coordinate values, units and periodicity)
  and the variables' units. The flat state is the variables concatenated, each flattened in C
  order over the grid (for a 2-D model: over (y, x), x fastest).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import equinox as eqx
import numpy as np


@dataclass(frozen=True)
class GridAxis:
    """One regular axis of the model grid, written to files as a CF coordinate variable."""

    name: str
    values: np.ndarray
    units: str = "1"
    periodic: bool = False
    standard_name: str | None = None
    cf_axis: str = "X"  # CF ``axis`` attribute: X, Y or Z

    @property
    def spacing(self) -> float:
        return float(self.values[1] - self.values[0]) if len(self.values) > 1 else 1.0

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
