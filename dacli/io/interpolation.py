"""Where an observation falls on the model grid: the sparse row of H that reads it (numpy).

An observation at a location between grid points reads the points around it: two with weights
(1-a, a) on a 1-D grid (linear interpolation), four with weights (1-a)(1-b), a(1-b), (1-a)b, ab on
a 2-D grid (bilinear; a, b the fractional positions along x and y) — exact for fields
a0 + a1 x + a2 y + a3 x y, linear, and its adjoint is the same sparse scatter (autodiff of the
gather in :func:`dacli.observations.operator.apply_observation_operator`). Axes that wrap
(:attr:`dacli.layout.GridAxis.wraps`) take locations round; on any other axis (a regional lat-lon
box, even with periodic dynamics) a location beyond the first or last grid point is outside the
domain. The flat state is C order over (y, x), as in :class:`dacli.models.qg.QuasiGeostrophic`.

Host-side numpy on plain layout records, so the file readers use it without the engine. Not for
non-linear observation operators (there are none: every dacli operator is such a weighted gather).
"""

from __future__ import annotations

import numpy as np

from dacli.io.observation_set import POINTS
from dacli.layout import FULL_CIRCLE, GridAxis, StateLayout


def axis_interpolation(positions, coordinates, wraps: bool, period: float | None = None):
    """(left index, right index, fraction towards right, inside flag) along one regular axis.

    On an axis that wraps (:attr:`dacli.layout.GridAxis.wraps`) every finite position is inside,
    taken modulo ``len(coordinates) * spacing``; otherwise positions beyond the first or last grid
    point are outside and flagged (the caller drops and counts them). ``period`` is the period of
    the coordinate itself, whatever the grid covers (360 for longitude, None otherwise): positions
    are first brought within half a period of the grid's middle, so a box spanning -72..-48 reads
    an observation at 300 as -60 and a global grid 0..357.5 reads -10 as 350. Never give a period
    for latitude. Positions exactly on a grid point get fraction 0.
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
    """The period of ``axis``'s coordinate values: 360 degrees for longitude, else None."""
    return FULL_CIRCLE if axis.is_longitude else None


def bilinear_weights(
    y,
    x,
    y_coordinates,
    x_coordinates,
    wraps: tuple[bool, bool] = (True, True),
    periods: tuple[float | None, float | None] = (None, None),
):
    """(index (P, 4) into the flat (y, x) state, weight (P, 4), inside (P,)) for locations (y, x).

    ``wraps`` says, per axis, whether locations wrap round (:attr:`dacli.layout.GridAxis.wraps`,
    not ``periodic``); ``periods`` the coordinate's own period (360 for longitude, None otherwise;
    see :func:`axis_interpolation`). Prefer :func:`interpolation_weights`, which takes both from
    the model layout.
    """
    y0, y1, fy, inside_y = axis_interpolation(y, y_coordinates, wraps[0], periods[0])
    x0, x1, fx, inside_x = axis_interpolation(x, x_coordinates, wraps[1], periods[1])
    nx = len(x_coordinates)
    index = np.stack([y0 * nx + x0, y0 * nx + x1, y1 * nx + x0, y1 * nx + x1], axis=-1)
    weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=-1)
    return index, weight, inside_y & inside_x


def interpolation_weights(
    positions: np.ndarray, layout: StateLayout
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat grid indices (P, POINTS), weights (P, POINTS), inside-domain flag (P,)) for locations.

    ``positions`` is (P, D) (or (P,) on a 1-D grid) in the grid's coordinates: linear
    interpolation on a 1-D grid, bilinear on a 2-D grid (:func:`bilinear_weights`).
    Only axes that wrap (:attr:`dacli.layout.GridAxis.wraps`: the Lorenz ring, a global
    longitude) take positions round; on any other axis, a regional lat-lon box with periodic
    dynamics included, a location beyond the first or last grid point is outside (flag False).
    Longitudes are compared modulo 360 (:func:`axis_interpolation`).
    """
    positions = np.asarray(positions, dtype=float)
    positions = positions[:, None] if positions.ndim == 1 else positions
    axes = layout.axes
    if positions.shape[1] != len(axes) or len(axes) not in (1, 2):
        raise ValueError(
            f"locations with {positions.shape[1]} coordinates on a grid of {len(axes)} dimensions"
        )
    if len(axes) == 1:
        left, right, fraction, inside = axis_interpolation(
            positions[:, 0], axes[0].values, axes[0].wraps, coordinate_period(axes[0])
        )
        index = np.stack([left, right], axis=-1)
        weight = np.stack([1.0 - fraction, fraction], axis=-1)
    else:
        index, weight, inside = bilinear_weights(
            positions[:, 0],
            positions[:, 1],
            axes[0].values,
            axes[1].values,
            (axes[0].wraps, axes[1].wraps),
            (coordinate_period(axes[0]), coordinate_period(axes[1])),
        )
    pad = POINTS - index.shape[1]
    return np.pad(index, ((0, 0), (0, pad))), np.pad(weight, ((0, 0), (0, pad))), inside
