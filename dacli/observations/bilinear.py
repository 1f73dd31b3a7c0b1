"""Bilinear interpolation from a regular 2-D grid to scattered locations, as a sparse row of H.

Each observation reads the four grid points around it with weights (1-a)(1-b), a(1-b), (1-a)b, ab
(a, b the fractional positions along x and y): exact for fields a0 + a1 x + a2 y + a3 x y, linear,
and its adjoint is the same sparse scatter (autodiff of the gather in
:func:`dacli.observations.operator.apply_observation_operator`). Axes that wrap
(:attr:`dacli.models.base.GridAxis.wraps`) take locations round; on any other axis (a regional
lat-lon box, even with periodic dynamics) a location beyond the first or last grid point is outside
the domain.
The flat state is C order over (y, x), as in :class:`dacli.models.qg.QuasiGeostrophic`.
"""

from __future__ import annotations

import numpy as np

from dacli.observations.sets import axis_interpolation


def bilinear_weights(y, x, y_coordinates, x_coordinates, wraps: tuple[bool, bool] = (True, True),
                     periods: tuple[float | None, float | None] = (None, None)):
    """(index (P, 4) into the flat (y, x) state, weight (P, 4), inside (P,)) for locations (y, x).

    ``wraps`` says, per axis, whether locations wrap round (:attr:`dacli.models.base.GridAxis.wraps`,
    not ``periodic``); ``periods`` the coordinate's own period (360 for longitude, None otherwise;
    see :func:`dacli.observations.sets.axis_interpolation`). Prefer
    :func:`dacli.observations.sets.interpolation_weights`, which takes both from the model layout.
    """
    y0, y1, fy, inside_y = axis_interpolation(y, y_coordinates, wraps[0], periods[0])
    x0, x1, fx, inside_x = axis_interpolation(x, x_coordinates, wraps[1], periods[1])
    nx = len(x_coordinates)
    index = np.stack([y0 * nx + x0, y0 * nx + x1, y1 * nx + x0, y1 * nx + x1], axis=-1)
    weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=-1)
    return index, weight, inside_y & inside_x
