"""The dynamics contract every model — built-in or user plug-in — satisfies.

A model is an :class:`equinox.Module` subclassing :class:`Dynamics`:

* ``vector_field(t, x, args)`` returns dx/dt for the flat state vector ``x`` (shape
  ``(layout.size,)``) at absolute model time ``t``; it must be written in ``jax.numpy`` so
  that it can be differentiated (tangent-linear and adjoint models come from autodiff).
* ``layout()`` returns a :class:`StateLayout`: the variable names, the spatial grid they live
  on (name and coordinate values, possibly empty) and whether that grid is periodic. The flat
  state is the variables concatenated, each flattened over the grid.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import equinox as eqx
import numpy as np


@dataclass(frozen=True)
class StateLayout:
    """How a flat state vector maps to named variables on a (possibly empty) 1-D grid."""

    variables: tuple[str, ...]
    grid_name: str | None = None
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    periodic: bool = False
    units: str = "1"
    grid_units: str = "1"

    @property
    def grid_size(self) -> int:
        return max(1, len(self.grid)) if self.grid_name else 1

    @property
    def size(self) -> int:
        return len(self.variables) * self.grid_size

    def index(self, variable: str, grid_index: int = 0) -> int:
        return self.variables.index(variable) * self.grid_size + grid_index

    def split(self, states: np.ndarray) -> dict[str, np.ndarray]:
        """Flat states ``(..., size)`` -> {variable: array (..., grid)} (grid axis dropped if none)."""
        states = np.asarray(states)
        out = {}
        for k, name in enumerate(self.variables):
            part = states[..., k * self.grid_size:(k + 1) * self.grid_size]
            out[name] = part if self.grid_name else part[..., 0]
        return out

    def join(self, fields: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`split`."""
        parts = [np.asarray(fields[name]) for name in self.variables]
        if not self.grid_name:
            parts = [p[..., None] for p in parts]
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
