"""Observations of a whole run, before they are split into windows (host-side numpy).

Each observation is a time, a value, an error std and a sparse row of H over the flat state
(``index``/``weight``, K = 4 points: a grid point uses one, linear interpolation on a 1-D grid
two, bilinear interpolation on a 2-D grid four; unused points have weight 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dacli.models.base import FULL_CIRCLE, GridAxis, StateLayout

POINTS = 4  # interpolation points per observation (bilinear on 2-D grids)


@dataclass(frozen=True)
class ObservationSet:
    times: np.ndarray  # (P,)
    values: np.ndarray  # (P,)
    std: np.ndarray  # (P,)
    index: np.ndarray  # (P, K) int
    weight: np.ndarray  # (P, K)
    variable: np.ndarray  # (P,) str, the model variable observed
    location: np.ndarray  # (P, D) coordinates along the D grid axes (NaN: on a grid point read directly)
    rejected_outside_domain: int = 0
    rejected_preqc: int = 0  # dropped by the file's own quality control (IODA PreQC)
    rejected_duplicate: int = 0  # dropped as repeats of an earlier observation (observations.duplicates)

    @property
    def valid(self) -> np.ndarray:
        """Finite value, finite positive error: the only ones that reach the arithmetic."""
        return np.isfinite(self.values) & np.isfinite(self.std) & (self.std > 0)

    def __len__(self) -> int:
        return len(self.times)


def axis_interpolation(positions, coordinates, wraps: bool, period: float | None = None):
    """(left index, right index, fraction towards right, inside flag) along one regular axis.

    On an axis that wraps (:attr:`dacli.models.base.GridAxis.wraps`) every finite position is inside,
    taken modulo ``len(coordinates) * spacing``; otherwise positions beyond the first or last grid
    point are outside and flagged (the caller drops and counts them). ``period`` is the period of the
    coordinate itself, whatever the grid covers (360 for longitude, None otherwise): positions are
    first brought within half a period of the grid's middle, so a box spanning -72..-48 reads an
    observation at 300 as -60 and a global grid 0..357.5 reads -10 as 350. Never give a period for
    latitude. Positions exactly on a grid point get fraction 0.
    """
    coordinates = np.asarray(coordinates, dtype=float)
    n = len(coordinates)
    spacing = coordinates[1] - coordinates[0] if n > 1 else 1.0
    positions = np.asarray(positions, dtype=float)
    if period is not None:
        middle = 0.5 * (coordinates[0] + coordinates[-1])
        positions = positions - period * np.round((positions - middle) / period)
    scaled = (positions - coordinates[0]) / spacing
    inside = np.isfinite(scaled)
    if wraps:
        scaled = np.mod(np.where(inside, scaled, 0.0), n)
    else:
        inside &= (scaled >= -1e-9) & (scaled <= n - 1 + 1e-9)
        scaled = np.clip(np.where(inside, scaled, 0.0), 0.0, n - 1)
    left = np.floor(scaled).astype(int)
    fraction = scaled - left
    left = np.mod(left, n) if wraps else np.minimum(left, n - 1)
    right = np.mod(left + 1, n) if wraps else np.minimum(left + 1, n - 1)
    return left, right, fraction, inside


def coordinate_period(axis: GridAxis) -> float | None:
    """The period of ``axis``'s coordinate values: 360 degrees for longitude, None for any other axis."""
    return FULL_CIRCLE if axis.is_longitude else None


def interpolation_weights(
    positions: np.ndarray, layout: StateLayout
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat grid indices (P, POINTS), weights (P, POINTS), inside-domain flag (P,)) for locations.

    ``positions`` is (P, D) (or (P,) on a 1-D grid) in the grid's coordinates: linear
    interpolation on a 1-D grid, bilinear on a 2-D grid (:mod:`dacli.observations.bilinear`).
    Only axes that wrap (:attr:`dacli.models.base.GridAxis.wraps`: the Lorenz ring, a global
    longitude) take positions round; on any other axis, a regional lat-lon box with periodic
    dynamics included, a location beyond the first or last grid point is outside (flag False).
    Longitudes are compared modulo 360 (:func:`axis_interpolation`).
    """
    from dacli.observations.bilinear import bilinear_weights

    positions = np.asarray(positions, dtype=float)
    positions = positions[:, None] if positions.ndim == 1 else positions
    axes = layout.axes
    if positions.shape[1] != len(axes) or len(axes) not in (1, 2):
        raise ValueError(f"locations with {positions.shape[1]} coordinates on a grid of {len(axes)} dimensions")
    if len(axes) == 1:
        left, right, fraction, inside = axis_interpolation(positions[:, 0], axes[0].values, axes[0].wraps,
                                                           coordinate_period(axes[0]))
        index = np.stack([left, right], axis=-1)
        weight = np.stack([1.0 - fraction, fraction], axis=-1)
    else:
        index, weight, inside = bilinear_weights(positions[:, 0], positions[:, 1], axes[0].values, axes[1].values,
                                                 (axes[0].wraps, axes[1].wraps),
                                                 (coordinate_period(axes[0]), coordinate_period(axes[1])))
    pad = POINTS - index.shape[1]
    return np.pad(index, ((0, 0), (0, pad))), np.pad(weight, ((0, 0), (0, pad))), inside
