"""Satellite-like observation tracks over a 2-D model grid, for twin experiments.

A nadir altimeter observes along a narrow ground track and crosses a regional domain in a few
minutes, so each pass is taken as instantaneous: a straight line across the domain (in the grid
coordinates: metres, or degrees in a small lat-lon box, where great circles are nearly straight),
sampled every ``spacing``. Passes alternate ascending (angle ``a`` from the x axis) and descending
(``-a``); their crossing points are spread over the domain by a stride through the
``passes_per_cycle`` slots of a repeat cycle, so the ground tracks repeat after one cycle, as
those of an exact-repeat orbit do (e.g. 9.9 days for TOPEX/Jason; Fu & Cazenave 2001,
"Satellite Altimetry and Earth Sciences", ch. 1).
"""

from __future__ import annotations

import math

import numpy as np

from dacli.layout import GridAxis


def axis_extent(axis: GridAxis) -> tuple[float, float]:
    """(start, length) of the domain of locations along ``axis``.

    An axis that wraps (:attr:`dacli.layout.GridAxis.wraps`) includes the wrap-around cell; any
    other axis, a regional lat-lon box with periodic dynamics included, runs from its first to its
    last grid point, the domain :func:`dacli.io.interpolation.interpolation_weights` accepts.
    """
    values = np.asarray(axis.values, float)
    if axis.wraps:
        return float(values[0]), float(len(values) * axis.spacing)
    return float(values[0]), float(values[-1] - values[0])


def cycle_stride(passes_per_cycle: int) -> int:
    """A stride coprime with the cycle, near the golden fraction, so successive passes lie far
    apart."""
    target = max(1, round(0.381966 * passes_per_cycle))
    for distance in range(passes_per_cycle):
        for stride in (target + distance, target - distance):
            if 0 < stride < passes_per_cycle and math.gcd(stride, passes_per_cycle) == 1:
                return stride
    return 1


def track_positions(
    pass_number: int,
    axes: tuple[GridAxis, GridAxis],
    angle_degrees: float,
    passes_per_cycle: int,
    spacing: float,
) -> np.ndarray:
    """(P, 2) positions (y, x) of one pass over the domain of :func:`axis_extent` on each axis.

    Along x, a track that leaves an axis that wraps re-enters at the start; on an x axis that does
    not
    wrap (a regional lat-lon box) the passes' starts are spread so that they cross the whole box,
    some
    entering or leaving through its sides, and positions off the box are left out: every position is
    inside the domain the observation reader accepts.
    """
    (y0, height), (x0, width) = axis_extent(axes[0]), axis_extent(axes[1])
    angle = math.radians(angle_degrees)
    slot = (
        (pass_number * cycle_stride(passes_per_cycle)) % passes_per_cycle
        if passes_per_cycle > 1
        else 0
    )
    ascending = pass_number % 2 == 0
    length = height / math.sin(angle)
    along = (np.arange(max(1, int(length / spacing))) + 0.5) * spacing
    y = y0 + along * math.sin(angle) if ascending else y0 + height - along * math.sin(angle)
    if axes[1].wraps:
        x = x0 + np.mod(width * slot / passes_per_cycle + along * math.cos(angle), width)
    else:  # passes also enter and leave through the sides: spread their starts to cross the box
        drift = height / math.tan(
            angle
        )  # eastward displacement of a pass from one edge of y to the other
        start, span = x0 - max(drift, 0.0), width + abs(drift)
        x = start + span * (slot + 0.5) / passes_per_cycle + along * math.cos(angle)
    keep = (x >= x0) & (x <= x0 + width) & (y >= y0) & (y <= y0 + height)
    return np.stack([y[keep], x[keep]], axis=-1)
