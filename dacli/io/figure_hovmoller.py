"""The Hovmöller diagram of a 1-D model: fields over (grid, time), with the truth and observations.

One row per variable: [truth |] background | analysis | increment [| analysis − truth] [|
observations]. The states share a colour scale, the increment and the error have symmetric ones;
the observations panel shows every observation used, at its position and time, coloured by O−B
on a diverging scale centred at 0 (by its value when the feedback file has no O−B), with markers
sized for their density. Time runs upwards, as dates when the file's time is a calendar time.

Not for 2-D models (:mod:`dacli.io.figure_maps`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dacli.io.figure_fields import cell_edges, draw_row, field_panels
from dacli.io.figure_observations import ObservedPoints, departure_norm, departures_panel
from dacli.io.figure_time import FigureTimes
from dacli.io.figures import _figure, axis_label, units_text


def hovmoller(
    dataset: xr.Dataset,
    variables: list[str],
    grid: str,
    title: str,
    times: FigureTimes,
    truth: dict[str, np.ndarray] | None = None,
    observed: dict[str, ObservedPoints] | None = None,
):
    """Fields over (``grid``, time), one row per variable (see the module's docstring).

    ``truth``: per variable (time, grid) on the file's times (NaN where the truth file has no
    state); ``observed``: per variable the observations used (location column 0 on ``grid``).
    """
    plt = _figure()
    with_observations = observed is not None and any(len(p) for p in observed.values())
    columns = (5 if truth is not None else 3) + int(with_observations)
    figure, axes = plt.subplots(
        len(variables),
        columns,
        figsize=(3.3 * columns + 1.0, 3.8 * len(variables) + 0.4),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    time = np.asarray(dataset["time"].values, float)
    position = np.asarray(dataset[grid].values, float)
    extent = [*cell_edges(position), *cell_edges(time)]

    def draw(axes, values, **style):
        image = axes.imshow(
            values, aspect="auto", origin="lower", extent=extent, interpolation="nearest", **style
        )
        axes.set_xlabel(axis_label(dataset[grid], grid))
        return image

    for row, name in zip(axes, variables, strict=True):
        fields = {
            kind: dataset[f"{name}_{kind}"].transpose("time", grid).values
            for kind in ("background", "analysis", "increment")
        }
        panels = field_panels(
            fields["background"],
            fields["analysis"],
            fields["increment"],
            None if truth is None else truth[name],
        )
        draw_row(figure, row, panels, name, units_text(dataset[f"{name}_analysis"]), draw)
        points = None if observed is None else observed.get(name)
        if with_observations:
            _observations(figure, row[-1], dataset, grid, name, points, extent)
        row[0].set_ylabel(times.axis_label())
        times.format_axis(row[0].yaxis)
    figure.suptitle(f"{title}\n{times.span(time[0], time[-1])}")
    return figure


def _observations(figure, axes, dataset, grid, name, points, extent) -> None:
    """The observations panel at (position, time), coloured by O−B (or value): an image of the
    cells when every observation sits on a grid point at a stored time (gridded observations),
    else markers sized for their density."""
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    axes.set_xlabel(axis_label(dataset[grid], grid))
    if points is None or len(points) == 0:
        axes.set_title(f"{name}: not observed", fontsize="medium")
        return
    units = units_text(dataset[f"{name}_analysis"])
    cells = on_grid(points, np.asarray(dataset[grid].values, float), dataset["time"].values)
    if cells is None:
        collection, label = departures_panel(
            axes, points.location[:, 0], points.time, points, units, marker="s"
        )
    else:
        axes.set_facecolor("0.93")
        colours = points.departure if points.departure is not None else points.value
        image = np.full((dataset.sizes["time"], dataset.sizes[grid]), np.nan)
        image[cells] = colours
        norm = departure_norm(colours) if points.departure is not None else None
        collection = axes.imshow(
            image,
            aspect="auto",
            origin="lower",
            extent=extent,
            interpolation="nearest",
            cmap="RdBu_r" if points.departure is not None else "viridis",
            norm=norm,
        )
        label = f"{quantity(points)} {units}"
    what = quantity(points)
    axes.set_title(f"{name}: {what} (n={len(points)})", fontsize="medium")
    figure.colorbar(collection, ax=axes, label=label.strip(), shrink=0.9, extend="both")


def quantity(points: ObservedPoints) -> str:
    """What the observations' colours show: 'O−B', or 'observed value' without departures."""
    return "O\u2212B" if points.departure is not None else "observed value"


def on_grid(
    points: ObservedPoints, position: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(time index, grid index) of every observation when each lies on a grid point at a stored
    time (within 1e-6 of a spacing), one per cell; else None."""
    time = np.asarray(time, float)
    indices = []
    for values, axis in ((points.time, time), (points.location[:, 0], position)):
        if len(axis) < 2:
            return None
        nearest = np.abs(values[:, None] - axis[None, :]).argmin(axis=1)
        if np.any(np.abs(axis[nearest] - values) > 1e-6 * abs(float(axis[1] - axis[0]))):
            return None
        indices.append(nearest)
    if len(np.unique(indices[0] * len(position) + indices[1])) != len(points):
        return None
    return indices[0], indices[1]
