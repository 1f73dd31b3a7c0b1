"""Observations on dacli's pictures: coloured by O−B (or by value), sized for their density.

Markers are sized so that all of them together cover about a fixed fraction of the axes: a few
observations get large markers, thousands get small ones (never below a readable minimum), so a
dense network shows its colours instead of blacking out the field beneath. O−B is drawn on a
diverging scale centred at 0 (symmetric limits at the 99th percentile of |O−B|, the colour bar
extended beyond); observed values on the colour scale of the state they observe.

Not for model fields (:mod:`dacli.io.figure_fields`).
Reference: the O−B monitoring plots of operational centres (e.g. ECMWF's and JEDI's feedback
files), which colour departures on a diverging scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.colors import Normalize

from dacli.io.figure_fields import value_norm

# Marker area (points squared) bounds: the smallest stays visible, the largest stays a point.
SMALLEST_MARKER = 1.0
LARGEST_MARKER = 36.0
# Fraction of an axes covered by all markers together: over a field, and on a panel of their own.
OVER_A_FIELD = 0.06
ON_THEIR_OWN = 0.5


@dataclass(frozen=True)
class ObservedPoints:
    """Observations of one model variable used by the assimilation, one row each.

    ``location`` (n, d): grid coordinates in the grid's order (d = 0 without a grid); ``window``
    the position in the analysis file of the window that used it; ``departure`` O−B (None when
    the feedback file has none).
    """

    time: np.ndarray
    location: np.ndarray
    value: np.ndarray
    window: np.ndarray
    departure: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)

    def where(self, keep: np.ndarray) -> ObservedPoints:
        """The rows where ``keep`` (a boolean mask) is True."""
        return ObservedPoints(
            self.time[keep],
            self.location[keep],
            self.value[keep],
            self.window[keep],
            None if self.departure is None else self.departure[keep],
        )

    def once(self) -> ObservedPoints:
        """One row per observation (time and location): an observation used by overlapping windows
        keeps its first use."""
        key = np.column_stack([self.time, self.location])
        _, first = np.unique(key, axis=0, return_index=True)
        keep = np.zeros(len(self), bool)
        keep[first] = True
        return self.where(keep)


def axes_area(axes) -> float:
    """The area of ``axes`` in points squared (its place in the figure before layout)."""
    box = axes.get_position()
    width, height = axes.figure.get_size_inches()
    return float(box.width * width * 72.0 * box.height * height * 72.0)


def marker_size(count: int, area: float, coverage: float) -> float:
    """Marker area (points²) for ``count`` markers covering about ``coverage`` of ``area``
    (points²), within [SMALLEST_MARKER, LARGEST_MARKER]: it decreases as the observations get
    denser."""
    if count <= 0:
        return LARGEST_MARKER
    return float(np.clip(coverage * area / count, SMALLEST_MARKER, LARGEST_MARKER))


def departure_norm(departure: np.ndarray) -> Normalize:
    """Colour limits symmetric about 0: ± the 99th percentile of |O−B| (1 when there is none)."""
    finite = np.abs(departure[np.isfinite(departure)])
    bound = float(np.percentile(finite, 99)) if finite.size else 0.0
    return Normalize(-(bound or 1.0), bound or 1.0)


def scatter(axes, x: np.ndarray, y: np.ndarray, colours: np.ndarray, norm, cmap, coverage, **style):
    """Markers at (x, y) coloured by ``colours`` on ``norm``/``cmap``, sized by density, without
    changing the axes' limits; returns the PathCollection."""
    limits = axes.get_xlim(), axes.get_ylim()
    size = marker_size(len(x), axes_area(axes), coverage)
    style = {"linewidths": 0, **style}
    collection = axes.scatter(x, y, c=colours, s=size, norm=norm, cmap=cmap, **style)
    axes.set_xlim(*limits[0])
    axes.set_ylim(*limits[1])
    return collection


def over_field(axes, points: ObservedPoints, norm, cmap: str, label: str | None = None):
    """Observed values over a map panel (x = the second location column, y = the first), on the
    field's own colour scale, thinly edged in white: where they agree with the field they show
    as faint tracks, where they do not their colour stands out."""
    return scatter(
        axes,
        points.location[:, 1],
        points.location[:, 0],
        points.value,
        norm,
        cmap,
        OVER_A_FIELD,
        label=label,
        zorder=3,
        edgecolors="white",
        linewidths=0.3,
    )


def departures_panel(
    axes, x: np.ndarray, y: np.ndarray, points: ObservedPoints, units: str, **style
):
    """A panel of the observations alone at (x, y): O−B on a diverging scale centred at 0 when the
    feedback has it, else the observed values; returns (collection, colour-bar label)."""
    axes.set_facecolor("0.93")
    if points.departure is not None:
        norm = departure_norm(points.departure)
        collection = scatter(axes, x, y, points.departure, norm, "RdBu_r", ON_THEIR_OWN, **style)
        return collection, f"O\u2212B {units}".strip()
    norm = value_norm(points.value)
    collection = scatter(axes, x, y, points.value, norm, "viridis", ON_THEIR_OWN, **style)
    return collection, f"observed value {units}".strip()
