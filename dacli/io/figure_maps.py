"""Maps of a 2-D model at one time: truth, background, analysis, increment, error, observations.

One row per variable: [truth |] background | analysis | increment [| analysis − truth] [| the
observations' O−B]. The states share a colour scale; the increment and the error have symmetric
ones; the observations of the window holding the mapped time are drawn over the states coloured
by their value (on the states' scale, sized for their density) and, when the feedback file has
O−B, alone on a last panel on a diverging scale centred at 0. Latitude-longitude grids get
degree ticks, the 1/cos(latitude) aspect and coastlines (when cartopy is installed); metric grids
an equal aspect. The title says the time as a date (or t = ... for model time) and the window.

Not for 1-D models (:mod:`dacli.io.figure_hovmoller`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dacli.io.figure_fields import cell_edges, draw_row, field_panels
from dacli.io.figure_geography import add_coastlines, degree_ticks
from dacli.io.figure_observations import ObservedPoints, departures_panel, over_field
from dacli.io.figure_time import FigureTimes
from dacli.io.figures import _figure, axis_label, units_text


def maps(
    dataset: xr.Dataset,
    variables: list[str],
    grid: tuple[str, str],
    index: int,
    title: str,
    times: FigureTimes,
    truth: dict[str, np.ndarray] | None = None,
    observed: dict[str, ObservedPoints] | None = None,
    window: int | None = None,
):
    """Maps at time ``index``, one row per variable (see the module's docstring).

    ``truth``: per variable (ny, nx) at that time; ``observed``: per variable the observations
    to draw (locations in ``grid`` order); ``window``: the position of the window they belong to,
    named in the title.
    """
    plt = _figure()
    with_departures = observed is not None and any(
        points.departure is not None for points in observed.values()
    )
    columns = (5 if truth is not None else 3) + int(with_departures)
    figure, axes = plt.subplots(
        len(variables),
        columns,
        figsize=(3.5 * columns + 1.2, 3.4 * len(variables) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    geographic = is_latitude_longitude(dataset, grid)
    for row, name in zip(axes, variables, strict=True):
        points = None if observed is None else observed.get(name)
        _map_row(figure, row, dataset, grid, name, index, truth, points)
        if not with_departures:
            continue
        if points is None or len(points) == 0:
            row[-1].set_visible(False)
            continue
        _departure_map(figure, row[-1], dataset, grid, name, points)
    panels = [axis for axis in axes.ravel() if axis.get_visible()]
    if geographic:
        add_coastlines(panels)
    when = times.text(float(dataset["time"].values[index]))
    figure.suptitle(
        f"{title}\n{when}" + ("" if window is None else f", {times.window_text(window)}")
    )
    return figure


def is_latitude_longitude(dataset: xr.Dataset, grid: tuple[str, str]) -> bool:
    """Both grid coordinates in degrees (CF latitude and longitude units)."""
    return all(
        dim in dataset.variables and str(dataset[dim].attrs.get("units", "")).startswith("degree")
        for dim in grid
    )


def _map_row(figure, row, dataset, grid, name, index, truth, points) -> None:
    """One variable's field panels, colour bars and (when given) its observations over the
    states."""

    def at_time(kind: str) -> np.ndarray:
        return dataset[f"{name}_{kind}"].transpose("time", *grid).isel(time=index).values

    background, analysis = at_time("background"), at_time("analysis")
    increment = at_time("increment") if f"{name}_increment" in dataset else analysis - background
    panels = field_panels(background, analysis, increment, None if truth is None else truth[name])
    units = units_text(dataset[f"{name}_analysis"])

    def draw(axes, values, **style):
        return draw_field(axes, dataset, grid, values, **style)

    states = draw_row(figure, row, panels, name, units, draw)
    if points is None:
        return
    for number, (axes, panel) in enumerate(zip(row, panels, strict=False)):
        if panel.signed:
            continue
        over_field(axes, points, states, "viridis", label=f"observations (n={len(points)})")
        if number == 0:
            axes.legend(loc="upper right", fontsize="x-small", framealpha=0.7)


def _departure_map(figure, axes, dataset, grid, name, points: ObservedPoints) -> None:
    """The observations alone on the map's extent, coloured by O−B (or value)."""
    _map_axes(axes, dataset, grid)
    extent = _extent(dataset, grid)
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    collection, label = departures_panel(
        axes,
        points.location[:, 1],
        points.location[:, 0],
        points,
        units_text(dataset[f"{name}_analysis"]),
    )
    what = "O\u2212B" if points.departure is not None else "observed value"
    axes.set_title(f"{name}: {what} (n={len(points)})", fontsize="medium")
    figure.colorbar(collection, ax=axes, label=label, shrink=0.9, extend="both")


def _coordinates(dataset: xr.Dataset, grid: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = (
        np.asarray(dataset[dim].values, float)
        if dim in dataset.variables
        else np.arange(dataset.sizes[dim], dtype=float)
        for dim in grid
    )
    return ys, xs


def _extent(dataset: xr.Dataset, grid: tuple[str, str]) -> list[float]:
    """[x0, x1, y0, y1] of the grid cells' outer edges (increasing)."""
    ys, xs = (np.sort(values) for values in _coordinates(dataset, grid))
    return [*cell_edges(xs), *cell_edges(ys)]


def draw_field(axes, dataset: xr.Dataset, grid: tuple[str, str], values: np.ndarray, **style):
    """``values`` (ny, nx) on the grid's coordinates: an image on a regular grid, else a mesh;
    labelled axes (y increasing upwards whatever the file's order)."""
    ys, xs = _coordinates(dataset, grid)
    if len(ys) > 1 and ys[0] > ys[-1]:
        ys, values = ys[::-1], values[::-1, :]
    if len(xs) > 1 and xs[0] > xs[-1]:
        xs, values = xs[::-1], values[:, ::-1]
    if _regular(xs) and _regular(ys):
        image = axes.imshow(
            values,
            origin="lower",
            extent=_extent(dataset, grid),
            interpolation="nearest",
            aspect="auto",
            **style,
        )
    else:
        image = axes.pcolormesh(xs, ys, values, shading="nearest", **style)
    _map_axes(axes, dataset, grid)
    return image


def _regular(values: np.ndarray) -> bool:
    steps = np.diff(values)
    return len(steps) < 2 or bool(np.allclose(steps, steps[0], rtol=1e-6, atol=0.0))


def _map_axes(axes, dataset: xr.Dataset, grid: tuple[str, str]) -> None:
    """Axis labels; on a latitude-longitude grid degree ticks and the 1/cos(latitude) aspect, on a
    grid with both axes in one unit an equal aspect."""
    ydim, xdim = grid
    if is_latitude_longitude(dataset, grid):
        axes.set_xlabel("longitude")
        axes.set_ylabel("latitude")
        degree_ticks(axes)
        middle = float(np.clip(np.mean(dataset[ydim].values), -80.0, 80.0))
        axes.set_aspect(1.0 / np.cos(np.radians(middle)))
        return
    axes.set_xlabel(axis_label(dataset[xdim], xdim) if xdim in dataset.variables else xdim)
    axes.set_ylabel(axis_label(dataset[ydim], ydim) if ydim in dataset.variables else ydim)
    yunits = str(dataset[ydim].attrs.get("units", "")) if ydim in dataset.variables else ""
    xunits = str(dataset[xdim].attrs.get("units", "")) if xdim in dataset.variables else ""
    if yunits == xunits:
        axes.set_aspect("equal")
