"""A row of model-field panels and their colour scales, shared by the maps and the Hovmöller
diagram.

The states (truth, background, analysis) share one colour scale and one colour bar, so their
colours compare; each signed field (the increment, the analysis error) has its own diverging
scale, symmetric about 0. The panel drawer (an image on the map's or the diagram's coordinates)
is the caller's.

Not for observations (:mod:`dacli.io.figure_observations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.colors import Normalize

STATE_COLOURS = "viridis"
SIGNED_COLOURS = "RdBu_r"


@dataclass(frozen=True)
class FieldPanel:
    """One panel: the field, what it is ('analysis'), and whether it is signed (a difference)."""

    values: np.ndarray
    what: str
    signed: bool = False


def field_panels(
    background: np.ndarray, analysis: np.ndarray, increment: np.ndarray, truth: np.ndarray | None
) -> list[FieldPanel]:
    """[truth |] background | analysis | increment [| analysis − truth]."""
    panels = [
        FieldPanel(background, "background"),
        FieldPanel(analysis, "analysis"),
        FieldPanel(increment, "increment", signed=True),
    ]
    if truth is None:
        return panels
    return [
        FieldPanel(truth, "truth"),
        *panels,
        FieldPanel(analysis - truth, "analysis \u2212 truth", signed=True),
    ]


def state_norm(panels: list[FieldPanel]) -> Normalize:
    """The states' shared colour limits (their finite minimum and maximum)."""
    return value_norm(
        np.concatenate([panel.values.ravel() for panel in panels if not panel.signed])
    )


def value_norm(values: np.ndarray) -> Normalize:
    """Limits: the finite minimum and maximum of ``values`` (0 to 1 when there is none)."""
    finite = values[np.isfinite(values)]
    return Normalize(*(float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))


def signed_norm(values: np.ndarray) -> Normalize:
    """Limits ± max |values| (± 1 for a field of zeros or NaN)."""
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    return Normalize(-(bound or 1.0), bound or 1.0)


def draw_row(
    figure,
    row,
    panels: list[FieldPanel],
    name: str,
    units: str,
    draw: Callable[..., Any],
) -> Normalize:
    """Draw ``panels`` on the axes of ``row`` with ``draw(axes, values, cmap=, norm=)``; titles
    '<name>: <what>'; colour bars labelled with ``units`` ('[m]' or ''). Returns the states'
    norm."""
    states = state_norm(panels)
    shared = []
    for axes, panel in zip(row, panels, strict=False):
        axes.set_title(f"{name}: {panel.what}", fontsize="medium")
        if not panel.signed:
            shared.append(draw(axes, panel.values, cmap=STATE_COLOURS, norm=states))
            continue
        image = draw(axes, panel.values, cmap=SIGNED_COLOURS, norm=signed_norm(panel.values))
        figure.colorbar(image, ax=axes, label=f"{panel.what} {units}".strip(), shrink=0.9)
    figure.colorbar(
        shared[0], ax=[image.axes for image in shared], label=f"{name} {units}".strip(), shrink=0.9
    )
    return states


def cell_edges(centres: np.ndarray) -> list[float]:
    """The outer edges of cells centred at ``centres`` (increasing; one cell: width 1), for an
    image's extent."""
    step = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    return [float(centres[0]) - step / 2, float(centres[-1]) + step / 2]
