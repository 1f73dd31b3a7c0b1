"""``dacli plot``: PNG pictures of an analysis file. Returns the files written; prints nothing.

Every model gets time series at a grid point and the per-window diagnostics; 1-D models also a
Hovmöller diagram; 2-D models (dims ``(time, y, x)`` or ``(time, lat, lon)``) maps at one time.
The truth and the observations (coloured by O−B) join the pictures: those of the run that wrote
the file when they are still there (:func:`dacli.run.plot_inputs.run_files`), or those named by
``--truth`` and ``--observations``. Every input is checked, then every output, before anything
is drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dacli.errors import DataError, OutputError
from dacli.io.figure_diagnostics import window_diagnostics
from dacli.io.figure_hovmoller import hovmoller
from dacli.io.figure_maps import maps
from dacli.io.figure_observations import ObservedPoints
from dacli.io.figure_series import time_series
from dacli.io.figure_time import FigureTimes
from dacli.io.figures import save_figure
from dacli.io.netcdf import open_netcdf
from dacli.run.plot_inputs import (
    at_grid_point,
    figure_times,
    observed_points,
    requested_time,
    require_truth_at,
    run_files,
    truth_trajectories,
    window_containing,
)

SUFFIXES = ("maps", "hovmoller", "timeseries", "diagnostics")
KINDS = {
    0: ("timeseries", "diagnostics"),
    1: ("hovmoller", "timeseries", "diagnostics"),
    2: ("maps", "timeseries", "diagnostics"),
}

log = logging.getLogger("dacli")


@dataclass(frozen=True)
class PlotInputs:
    """Everything the pictures of one analysis file draw, read and checked before drawing."""

    dataset: xr.Dataset
    variables: list[str]
    grid: tuple[str, ...]
    point: dict[str, int]
    times: FigureTimes
    title: str
    truth: dict[str, np.ndarray] | None
    observed: dict[str, ObservedPoints] | None
    index: int | None  # the mapped time (2-D grids)


def plot(
    analysis: Path,
    output: Path | None = None,
    point: int | str | None = None,
    overwrite: bool = False,
    time: float | str | None = None,
    truth: Path | None = None,
    observations: Path | None = None,
) -> dict[str, str]:
    """Write ``<output>_<kind>.png`` for each kind the file's grid allows (``output``, a prefix,
    defaults to the analysis path without .nc); returns {kind: path}.

    ``time`` chooses the mapped time of a 2-D model (other files ignore it with a warning);
    ``truth`` and ``observations`` default to the run's own files (:func:`run_files`).
    """
    inputs = read_inputs(analysis, point, time, truth, observations)
    kinds = KINDS[len(inputs.grid)]
    paths = output_paths(analysis, output, kinds, overwrite)
    return {kind: str(save_figure(draw(kind, inputs), paths[kind], overwrite)) for kind in kinds}


def read_inputs(analysis, point, time, truth, observations) -> PlotInputs:
    """The analysis file, its grid, and the truth and observations to draw, all checked."""
    dataset = open_netcdf(analysis, "analysis")
    variables = analysis_variables(dataset, analysis)
    grid = grid_dims(dataset, variables[0], analysis)
    where = grid_point(point, dataset, grid, analysis)
    index = None
    if len(grid) == 2:
        index = time_index(time, dataset, analysis)
    elif time is not None:
        log.warning(
            "--time ignored: analysis file %s is not on a 2-D grid (it chooses the time of the "
            "maps)",
            analysis,
        )
    run_truth, run_feedback = run_files(dataset, analysis)
    truth_path = truth if truth is not None else run_truth
    feedback_path = observations if observations is not None else run_feedback
    truth_fields = (
        None
        if truth_path is None
        else truth_trajectories(truth_path, dataset, variables, grid, analysis)
    )
    if truth_fields is not None and index is not None:
        require_truth_at(truth_fields, dataset, index, truth_path)
    observed = (
        None if feedback_path is None else observed_points(feedback_path, dataset, variables, grid)
    )
    return PlotInputs(
        dataset=dataset,
        variables=variables,
        grid=grid,
        point=where,
        times=figure_times(dataset),
        title=str(dataset.attrs.get("title", analysis)),
        truth=truth_fields,
        observed=observed,
        index=index,
    )


def draw(kind: str, inputs: PlotInputs):
    """The figure of one kind (a key of :data:`SUFFIXES`)."""
    data, names, grid, times = inputs.dataset, inputs.variables, inputs.grid, inputs.times
    truth, observed = inputs.truth, inputs.observed
    if kind == "maps":  # a 2-D grid only (KINDS): the index is set and the grid is (y, x)
        index = inputs.index or 0
        window = window_containing(data, float(data["time"].values[index]))
        return maps(
            data,
            names,
            (grid[0], grid[1]),
            index,
            inputs.title,
            times,
            truth=None if truth is None else {name: truth[name][index] for name in truth},
            observed=None
            if observed is None
            else {name: p.where(p.window == window).once() for name, p in observed.items()},
            window=window,
        )
    if kind == "hovmoller":
        once = None if observed is None else {name: p.once() for name, p in observed.items()}
        return hovmoller(data, names, grid[0], inputs.title, times, truth, once)
    if kind == "timeseries":
        position: tuple[Any, ...] = (slice(None), *inputs.point.values())  # (time, *point)
        return time_series(
            data,
            names,
            inputs.point,
            inputs.title,
            times,
            truth=None
            if truth is None
            else {name: field[position] for name, field in truth.items()},
            observed=None
            if observed is None
            else {name: at_grid_point(p, data, inputs.point) for name, p in observed.items()},
        )
    return window_diagnostics(data, inputs.title, times)


def analysis_variables(dataset, analysis) -> list[str]:
    """Model variables with both ``<v>_analysis`` and ``<v>_background``; DataError if none or no
    windows."""
    variables = [
        name[: -len("_analysis")]
        for name in dataset.data_vars
        if name.endswith("_analysis")
        and f"{name[: -len('_analysis')]}_background" in dataset.data_vars
    ]
    if not variables or "window_start" not in dataset:
        raise DataError(
            f"analysis file {analysis}: not a dacli analysis file (no <variable>_analysis and "
            f"<variable>_background pair, or no window_start); data variables found: "
            f"{', '.join(map(str, dataset.data_vars)) or 'none'}"
        )
    return variables


def grid_dims(dataset, variable: str, analysis) -> tuple[str, ...]:
    """The spatial dimensions of ``<variable>_analysis`` (none, one, or two with the Y axis
    first)."""
    dims = tuple(str(dim) for dim in dataset[f"{variable}_analysis"].dims)
    if not dims or dims[0] != "time":
        raise DataError(
            f"analysis file {analysis}: {variable}_analysis has dimensions {dims}; expected time "
            "first"
        )
    grid = dims[1:]
    if len(grid) > 2:
        raise DataError(
            f"analysis file {analysis}: {variable}_analysis has dimensions {dims}, {len(grid)} "
            "spatial; dacli plot draws models on at most two grid dimensions ((time, y, x) or "
            "(time, lat, lon))"
        )
    if len(grid) == 2 and _axis(dataset, grid[0]) == "X" and _axis(dataset, grid[1]) == "Y":
        grid = (grid[1], grid[0])  # maps put the Y axis (first) vertically
    return grid


def _axis(dataset, dim: str) -> str | None:
    return dataset[dim].attrs.get("axis") if dim in dataset.coords else None


def grid_point(point: int | str | None, dataset, grid: tuple[str, ...], analysis) -> dict[str, int]:
    """The time series' grid point as ``{dim: index}``: an index for 1-D, ``"iy,ix"`` for 2-D, the
    middle by default."""
    shape = tuple(dataset.sizes[dim] for dim in grid)
    if point is None or (isinstance(point, str) and not point.strip()):
        return {dim: size // 2 for dim, size in zip(grid, shape, strict=True)}
    if not grid:
        raise DataError(
            f"--point {point}: analysis file {analysis} has no grid (variables over time only); "
            "leave --point out"
        )
    indices = _parse_indices(point, grid, analysis)
    if len(grid) == 1:
        if not 0 <= indices[0] < shape[0]:
            raise DataError(
                f"--point {point}: the grid {grid[0]!r} has {shape[0]} points (0 .. {shape[0] - 1})"
            )
    elif not all(0 <= i < n for i, n in zip(indices, shape, strict=True)):
        raise DataError(
            f"--point {point}: the grid ({', '.join(grid)}) of analysis file {analysis} has shape "
            f"{shape}; expected {grid[0]} index 0 .. {shape[0] - 1}, {grid[1]} index 0 .. "
            f"{shape[1] - 1}"
        )
    return dict(zip(grid, indices, strict=True))


def _parse_indices(point: int | str, grid: tuple[str, ...], analysis) -> list[int]:
    if isinstance(point, int):
        parts = [str(point)]
    else:
        parts = [part.strip() for part in str(point).split(",")]
    try:
        indices = [int(part) for part in parts]
    except ValueError:
        indices = []
    if len(indices) != len(grid):
        expected = (
            f"one grid index (an integer) for the 1-D grid {grid[0]!r}"
            if len(grid) == 1
            else f"'i{grid[0]},i{grid[1]}' (two grid indices, {grid[0]} first) "
            f"for the 2-D grid ({', '.join(grid)})"
        )
        raise DataError(f"--point {point}: expected {expected} of analysis file {analysis}")
    return indices


def time_index(requested: float | str | None, dataset, analysis) -> int:
    """Index of the file's time nearest ``requested`` (default: the last): model time, or a date
    in the file's calendar (:func:`requested_time`); DataError beyond half a step outside."""
    times = np.asarray(dataset["time"].values, float)
    if requested is None:
        return len(times) - 1
    time = requested_time(requested, dataset, analysis)
    step = float(np.median(np.abs(np.diff(times)))) if len(times) > 1 else 0.0
    slack = step / 2 + 1e-9 * max(1.0, abs(float(time)))
    if not np.isfinite(time) or not times.min() - slack <= time <= times.max() + slack:
        unit, calendar = time_unit(dataset), figure_times(dataset)
        dates = "" if calendar.calendar is None else f": {calendar.span(times.min(), times.max())}"
        raise DataError(
            f"--time {requested}: analysis file {analysis} holds times {times.min():g} .. "
            f"{times.max():g}{' ' + unit if unit else ''} (step {step:g}); expected a time in that "
            f"range (or within half a step of it){dates}"
        )
    return int(np.argmin(np.abs(times - time)))


def time_unit(dataset) -> str:
    """'days' for time units 'days since 2000-01-01 00:00:00'; '' for none or '1'."""
    units = str(dataset["time"].attrs.get("units", "")) if "time" in dataset.variables else ""
    unit = units.split(" since ")[0].strip()
    return "" if unit == "1" else unit


def output_paths(analysis, output, kinds: tuple[str, ...], overwrite: bool) -> dict[str, Path]:
    """``<prefix>_<kind>.png`` for each kind; OutputError if the folder is missing or one exists (no
    --overwrite)."""
    prefix = Path(output) if output is not None else Path(analysis).with_suffix("")
    if not prefix.parent.is_dir():
        raise OutputError(f"output folder {prefix.parent} does not exist")
    paths = {kind: prefix.parent / f"{prefix.name}_{kind}.png" for kind in kinds}
    for path in paths.values():  # refuse before drawing anything
        if path.exists() and not overwrite:
            raise OutputError(f"output file {path} exists; pass --overwrite to replace it")
    return paths
