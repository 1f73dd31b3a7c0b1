"""``dacli plot``: PNG pictures of an analysis file. Returns the files written; prints nothing.

Models without a grid get time series and per-window diagnostics; 1-D models also a Hovmoller
diagram; 2-D models (dims ``(time, y, x)`` or ``(time, lat, lon)``) maps at one time instead,
optionally with the truth, the analysis error and the observations used around that time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dacli.errors import DataError, OutputError

SUFFIXES = ("maps", "hovmoller", "timeseries", "diagnostics")
KINDS = {
    0: ("timeseries", "diagnostics"),
    1: ("hovmoller", "timeseries", "diagnostics"),
    2: ("maps", "timeseries", "diagnostics"),
}

log = logging.getLogger("dacli")


def plot(
    analysis: Path,
    out: Path | None = None,
    point: int | str | None = None,
    overwrite: bool = False,
    time: float | None = None,
    truth: Path | None = None,
    observations: Path | None = None,
) -> dict[str, str]:
    """Write ``<out>_<kind>.png`` for each kind the file's grid allows (out defaults to the path
    without .nc).

    ``time``, ``truth`` and ``observations`` concern the maps of a 2-D model; other files ignore
    them with a warning. Every input is checked, then every output, before anything is drawn.
    """
    from dacli.io import figures
    from dacli.io.netcdf import open_netcdf

    dataset = open_netcdf(analysis, "analysis")
    variables = analysis_variables(dataset, analysis)
    grid = grid_dims(dataset, variables[0], analysis)
    where = grid_point(point, dataset, grid, analysis)
    kinds = KINDS[len(grid)]
    index, truth_fields, observed = None, None, None
    if len(grid) == 2:
        index = time_index(time, dataset, analysis)
        truth_fields = (
            truth_maps(truth, dataset, variables, grid, index, analysis)
            if truth is not None
            else None
        )
        observed = (
            observed_locations(observations, dataset, grid, index)
            if observations is not None
            else None
        )
    else:
        _warn_map_options(analysis, time=time, truth=truth, observations=observations)
    paths = output_paths(analysis, out, kinds, overwrite)
    title = str(dataset.attrs.get("title", analysis))
    drawings = {
        # maps: a 2-D grid only (KINDS), so index is set and grid is (y, x)
        "maps": lambda: figures.maps(
            dataset, variables, (grid[0], grid[1]), index or 0, title, truth_fields, observed
        ),
        "hovmoller": lambda: figures.hovmoller(dataset, variables, grid[0], title),
        "timeseries": lambda: figures.time_series(dataset, variables, where, title),
        "diagnostics": lambda: figures.window_diagnostics(dataset, title),
    }
    return {
        kind: str(figures.save_figure(drawings[kind](), paths[kind], overwrite)) for kind in kinds
    }


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


def time_index(time: float | None, dataset, analysis) -> int:
    """Index of the file's time nearest ``time`` (default: the last); DataError beyond half a step
    outside."""
    times = np.asarray(dataset["time"].values, float)
    if time is None:
        return len(times) - 1
    step = float(np.median(np.abs(np.diff(times)))) if len(times) > 1 else 0.0
    slack = step / 2 + 1e-9 * max(1.0, abs(float(time)))
    if not np.isfinite(time) or not times.min() - slack <= time <= times.max() + slack:
        from dacli.io.figures import time_unit

        unit = time_unit(dataset)
        raise DataError(
            f"--time {time:g}: analysis file {analysis} holds times {times.min():g} .. "
            f"{times.max():g}{' ' + unit if unit else ''} (step {step:g}); expected a time in that "
            "range (or within half a step of it)"
        )
    return int(np.argmin(np.abs(times - time)))


def truth_maps(
    path: Path, dataset, variables: list[str], grid: tuple[str, ...], index: int, analysis
) -> dict[str, np.ndarray]:
    """Each variable of the truth (state) file on the analysis grid at the mapped time, (ny, nx)."""
    from dacli.io.netcdf import open_netcdf

    truth = open_netcdf(path, "truth")
    _check_same_grid(truth, dataset, grid, path, analysis)
    when = _truth_time(truth, dataset, index, path)
    fields = {}
    for name in variables:
        if name not in truth.data_vars:
            found = ", ".join(sorted(map(str, truth.data_vars))) or "none"
            raise DataError(
                f"--truth {path}: no variable {name!r} (analysis file {analysis} has "
                f"{', '.join(variables)}); data variables found: {found}"
            )
        array = truth[name]
        expected = ("time", *grid) if "time" in array.dims else grid
        if set(array.dims) != set(expected):
            raise DataError(
                f"--truth {path}: variable {name!r} has dimensions {tuple(array.dims)}; expected "
                f"{('time', *grid)} like analysis file {analysis}"
            )
        array = array.transpose(*expected)
        fields[name] = np.asarray(
            (array.isel(time=when) if "time" in array.dims else array).values, float
        )
    return fields


def _check_same_grid(truth, dataset, grid: tuple[str, ...], path, analysis) -> None:
    for dim in grid:
        if dim not in truth.dims:
            raise DataError(
                f"--truth {path}: no {dim!r} dimension; expected the grid ({', '.join(grid)}) of "
                f"analysis file {analysis}; dimensions found: "
                f"{', '.join(map(str, truth.dims)) or 'none'}"
            )
        expected, found = dataset[dim].values, truth[dim].values
        if found.shape != expected.shape or not np.allclose(found, expected, rtol=1e-6, atol=0.0):
            raise DataError(
                f"--truth {path}: its {dim} coordinate ({_span(found)}) differs from that of "
                f"analysis file {analysis} ({_span(expected)}); expected the same grid"
            )


def _span(values: np.ndarray) -> str:
    return f"{len(values)} points, {values[0]:g} .. {values[-1]:g}" if len(values) else "0 points"


def _truth_time(truth, dataset, index: int, path) -> int:
    """Index of the truth state at the analysis time ``index`` (within half the analysis step)."""
    if "time" not in truth.dims:
        return 0
    wanted_units, found_units = dataset["time"].attrs.get("units"), truth["time"].attrs.get("units")
    if wanted_units and found_units and wanted_units != found_units:
        raise DataError(
            f"--truth {path}: time units {found_units!r}; expected {wanted_units!r} like the "
            "analysis file"
        )
    times, truth_times = (
        np.asarray(dataset["time"].values, float),
        np.asarray(truth["time"].values, float),
    )
    step = float(np.median(np.abs(np.diff(times)))) if len(times) > 1 else 0.0
    wanted = times[index]
    nearest = int(np.argmin(np.abs(truth_times - wanted)))
    if abs(truth_times[nearest] - wanted) > step / 2 + 1e-9 * max(1.0, abs(wanted)):
        raise DataError(
            f"--truth {path}: no state at time {wanted:g} (the file holds times "
            f"{truth_times.min():g} .. {truth_times.max():g}); expected one within {step / 2:g}"
        )
    return nearest


def observed_locations(
    path: Path, dataset, grid: tuple[str, ...], index: int
) -> dict[str | None, np.ndarray]:
    """Locations ``(n, 2)`` as (grid[0], grid[1]) of the observations used around the mapped time.

    Keyed by observed variable when the feedback file has a ``variable`` column, else by None.
    """
    from dacli.io.netcdf import open_netcdf

    feedback = open_netcdf(path, "observations")
    required = ("window", "qc_flag", "time", *grid)
    missing = [name for name in required if name not in feedback.variables]
    if missing:
        found = ", ".join(map(str, feedback.variables)) or "none"
        raise DataError(
            f"--observations {path}: not an observation-space diagnostics (feedback) file for the "
            f"grid ({', '.join(grid)}): no {', '.join(missing)}; variables found: {found}"
        )
    keep = (feedback["qc_flag"].values == 0) & _near_window(
        feedback, dataset, float(dataset["time"].values[index])
    )
    columns = np.column_stack(
        [feedback["time"].values, *(feedback[dim].values for dim in grid)]
    ).astype(float)[keep]
    names = (
        feedback["variable"].values[keep].astype(str)
        if "variable" in feedback.variables
        else np.full(len(columns), None)
    )
    located = {}
    for name in dict.fromkeys(names.tolist()):
        rows = np.unique(
            columns[names == name], axis=0
        )  # an observation used in overlapping windows once
        located[name] = rows[:, 1:]
    return located


def _near_window(feedback, dataset, time: float) -> np.ndarray:
    """Rows of the window containing ``time`` (the one centred nearest), else within half a window
    length."""
    starts = np.asarray(dataset["window_start"].values, float)
    ends = np.asarray(dataset["window_end"].values, float) if "window_end" in dataset else None
    if ends is not None:
        containing = np.flatnonzero((starts <= time) & (time <= ends))
        if containing.size:
            window = containing[np.argmin(np.abs((starts + ends)[containing] / 2 - time))]
            return feedback["window"].values == window
        length = float(np.median(ends - starts))
    else:
        length = float(np.median(np.diff(starts))) if len(starts) > 1 else np.inf
    return np.abs(np.asarray(feedback["time"].values, float) - time) <= length / 2


def _warn_map_options(analysis, **options) -> None:
    given = [f"--{name}" for name, value in options.items() if value is not None]
    if given:
        log.warning(
            "%s ignored: analysis file %s is not on a 2-D grid (they choose and decorate the maps)",
            ", ".join(given),
            analysis,
        )


def output_paths(analysis, out, kinds: tuple[str, ...], overwrite: bool) -> dict[str, Path]:
    """``<prefix>_<kind>.png`` for each kind; OutputError if the folder is missing or one exists (no
    --overwrite)."""
    prefix = Path(out) if out is not None else Path(analysis).with_suffix("")
    if not prefix.parent.is_dir():
        raise OutputError(f"output folder {prefix.parent} does not exist")
    paths = {kind: prefix.parent / f"{prefix.name}_{kind}.png" for kind in kinds}
    for path in paths.values():  # refuse before drawing anything
        if path.exists() and not overwrite:
            raise OutputError(f"output file {path} exists; pass --overwrite to replace it")
    return paths
