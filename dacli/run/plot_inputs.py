"""What ``dacli plot`` reads besides the analysis file: the truth, the observations, the times.

* The run's own files: an analysis file records its configuration (``dacli_config``), so the
  truth file of a twin experiment and the observation-space diagnostics (feedback) file it wrote
  are found without options; ``--truth`` / ``--observations`` name others.
* The truth on the analysis' grid and times (the nearest state within half a time step).
* The observations used (QC flag 0, assimilated in a window), per observed variable, with their
  O−B when the feedback file has it.
* The time context: calendar dates when the file's time is a CF calendar time, model time when
  the time's ``long_name`` says it is dimensionless (its units only label it, see
  :class:`dacli.config.schema.TimeConfig`); windows numbered as ``--windows`` numbers them.

Not for the analysis file's own checks (:mod:`dacli.run.plot`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cftime
import numpy as np

from dacli.config.schema import window_range
from dacli.errors import DataError
from dacli.io.figure_observations import ObservedPoints
from dacli.io.figure_time import FigureTimes
from dacli.io.metadata import DIMENSIONLESS
from dacli.io.netcdf import open_netcdf
from dacli.io.times import TimeAxis

log = logging.getLogger("dacli")


def run_config(dataset) -> dict:
    """The run's configuration recorded in the analysis file ({} when absent or unreadable)."""
    try:
        config = json.loads(str(dataset.attrs.get("dacli_config", "{}")))
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def run_files(dataset, analysis: Path) -> tuple[Path | None, Path | None]:
    """(truth file, feedback file) of the run that wrote ``analysis``, when they still exist.

    The truth path is recorded absolute. The feedback path is recorded as given, relative to the
    run's working directory like the analysis path: it is looked for where it lies relative to
    ``analysis``, then next to it.
    """
    config = run_config(dataset)
    truth = (config.get("truth") or {}).get("path")
    output = config.get("output") or {}
    feedback = output.get("observation_diagnostics")
    if feedback is not None:
        feedback = _next_to(Path(feedback), Path(str(output.get("path") or "")), Path(analysis))
    found = []
    for what, path in (("truth", truth), ("observation diagnostics", feedback)):
        if path is not None and not Path(path).is_file():
            log.info("the run's %s file %s is not there: plotting without it", what, path)
            path = None
        found.append(None if path is None else Path(path))
    return found[0], found[1]


def _next_to(feedback: Path, written: Path, analysis: Path) -> Path:
    """Where the run's feedback file is now, given where the run wrote it and its analysis."""
    if feedback.is_absolute():
        return feedback
    if not written.is_absolute():
        try:
            candidate = analysis.parent / feedback.relative_to(written.parent)
        except ValueError:
            candidate = None
        if candidate is not None and candidate.is_file():
            return candidate
    return analysis.parent / feedback.name


def figure_times(dataset) -> FigureTimes:
    """How the file's times read (dates or model time) and its windows' --windows numbers."""
    units = str(dataset["time"].attrs.get("units", "")).strip()
    calendar = str(dataset["time"].attrs.get("calendar", "standard"))
    long_name = str(dataset["time"].attrs.get("long_name", ""))
    axis, unit = None, "" if units in ("", "1") else units
    if long_name.startswith(DIMENSIONLESS):  # its units only label it (TimeConfig)
        unit = ""
    elif " since " in units:
        try:
            axis = TimeAxis(units, calendar)
        except ValueError:
            axis = None
    ends = dataset["window_end"].values if "window_end" in dataset else None
    return FigureTimes(
        calendar=axis,
        unit=unit.split(" since ")[0] if axis is None and " since " in unit else unit,
        window_numbers=window_numbers(dataset),
        window_starts=np.asarray(dataset["window_start"].values, float),
        window_ends=None if ends is None else np.asarray(ends, float),
    )


DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)


def requested_time(requested: float | str, dataset, analysis) -> float:
    """``--time`` as model time: a number of the file's time units, or a date ('2020-01-11',
    '2020-01-11 06:00') in the file's own calendar when its time is a calendar time."""
    try:
        return float(requested)
    except ValueError:
        pass
    calendar = figure_times(dataset).calendar
    if calendar is None:
        raise DataError(
            f"--time {requested}: analysis file {analysis} has a dimensionless model time; "
            "expected a number of model time units"
        )
    for layout in DATE_FORMATS:
        try:
            date = cftime.datetime.strptime(str(requested).strip(), layout, calendar.calendar)
        except ValueError:
            continue
        return float(cftime.date2num(date, calendar.units, calendar.calendar))
    raise DataError(
        f"--time {requested}: expected a number of {calendar.unit} or a date in the "
        f"{calendar.calendar} calendar of analysis file {analysis}, such as "
        f"{calendar.dates([0.0])[0].strftime('%Y-%m-%d %H:%M')}"
    )


def window_numbers(dataset) -> np.ndarray:
    """The windows' numbers as ``dacli assimilate --windows`` counts them (from 0): the file's
    integer ``window`` coordinate, else the first selected window (window.select) onwards."""
    count = dataset.sizes.get("window", 0)
    if "window" in dataset.variables and dataset["window"].dtype.kind in "iu":
        return np.asarray(dataset["window"].values, int)
    select = (run_config(dataset).get("window") or {}).get("select")
    try:
        first = window_range(str(select))[0] if select else 0
    except ValueError:
        first = 0
    return first + np.arange(count)


def truth_trajectories(
    path: Path, dataset, variables: list[str], grid: tuple[str, ...], analysis
) -> dict[str, np.ndarray]:
    """Each variable of the truth file on the analysis grid and times, (time, *grid); NaN at the
    analysis times the truth file has no state for (within half a time step)."""
    truth = open_netcdf(path, "truth")
    _check_same_grid(truth, dataset, grid, path, analysis)
    rows = _truth_rows(truth, dataset, path)
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
        values = np.asarray(array.transpose(*expected).values, float)
        if "time" not in array.dims:
            values = values[None]
        found_rows = rows >= 0
        field = np.full((len(rows), *values.shape[1:]), np.nan)
        field[found_rows] = values[rows[found_rows]]
        fields[name] = field
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


def _truth_rows(truth, dataset, path) -> np.ndarray:
    """Per analysis time, the index of the truth state at that time (-1: none within half a
    step)."""
    times = np.asarray(dataset["time"].values, float)
    if "time" not in truth.dims:
        return np.zeros(len(times), int)
    wanted_units, found_units = dataset["time"].attrs.get("units"), truth["time"].attrs.get("units")
    if wanted_units and found_units and wanted_units != found_units:
        raise DataError(
            f"--truth {path}: time units {found_units!r}; expected {wanted_units!r} like the "
            "analysis file"
        )
    truth_times = np.asarray(truth["time"].values, float)
    step = float(np.median(np.abs(np.diff(times)))) if len(times) > 1 else 0.0
    nearest = np.abs(truth_times[None, :] - times[:, None]).argmin(axis=1)
    slack = step / 2 + 1e-9 * np.maximum(1.0, np.abs(times))
    return np.where(np.abs(truth_times[nearest] - times) <= slack, nearest, -1)


def require_truth_at(truth: dict[str, np.ndarray], dataset, index: int, path) -> None:
    """DataError when the truth has no state at the mapped time ``index``."""
    if all(np.isfinite(field[index]).any() for field in truth.values()):
        return
    times = np.asarray(dataset["time"].values, float)
    raise DataError(
        f"--truth {path}: no state at time {times[index]:g}; expected one within half the "
        "analysis file's time step"
    )


def observed_points(
    path: Path, dataset, variables: list[str], grid: tuple[str, ...]
) -> dict[str, ObservedPoints]:
    """The observations used (QC flag 0, in a window), per model variable: by the feedback file's
    ``variable`` column, or every observation for every variable without one."""
    feedback = open_netcdf(path, "observations")
    columns = _location_columns(feedback, grid)
    required = ("window", "qc_flag", "time", "obs_value", *columns)
    missing = [name for name in required if name not in feedback.variables]
    if missing:
        found = ", ".join(map(str, feedback.variables)) or "none"
        where = f"the grid ({', '.join(grid)})" if grid else "a model without a grid"
        raise DataError(
            f"--observations {path}: not an observation-space diagnostics (feedback) file for "
            f"{where}: no {', '.join(missing)}; variables found: {found}"
        )
    window = np.asarray(feedback["window"].values, int)
    used = (np.asarray(feedback["qc_flag"].values) == 0) & (window >= 0)
    location = np.zeros((len(window), len(columns)))
    for column, name in enumerate(columns):
        location[:, column] = np.asarray(feedback[name].values, float)
    points = ObservedPoints(
        time=np.asarray(feedback["time"].values, float),
        location=location,
        value=np.asarray(feedback["obs_value"].values, float),
        window=window,
        departure=np.asarray(feedback["omb"].values, float) if "omb" in feedback else None,
    ).where(used)
    if "variable" not in feedback.variables:
        return dict.fromkeys(variables, points)
    names = np.asarray(feedback["variable"].values).astype(str)[used]
    return {name: points.where(names == name) for name in variables if (names == name).any()}


def _location_columns(feedback, grid: tuple[str, ...]) -> tuple[str, ...]:
    """The feedback file's position columns in ``grid`` order: the grid's dimension names, or
    ``location`` for a 1-D model whose file has that column."""
    if len(grid) == 1 and grid[0] not in feedback.variables and "location" in feedback.variables:
        return ("location",)
    return grid


def window_containing(dataset, time: float) -> int:
    """The position of the window holding ``time``: among those containing it the one centred
    nearest; else (no window_end, or a time outside every window) the last that starts before."""
    starts = np.asarray(dataset["window_start"].values, float)
    if "window_end" in dataset:
        ends = np.asarray(dataset["window_end"].values, float)
        containing = np.flatnonzero((starts <= time) & (time <= ends))
        if containing.size:
            return int(containing[np.argmin(np.abs((starts + ends)[containing] / 2 - time))])
    before = np.flatnonzero(starts <= time)
    return int(before[-1]) if before.size else 0


def at_grid_point(points: ObservedPoints, dataset, point: dict[str, int]) -> ObservedPoints:
    """The observations whose position's nearest grid point is ``point`` ({dim: index})."""
    keep = np.ones(len(points), bool)
    for column, (dim, index) in enumerate(point.items()):
        coordinate = np.asarray(dataset[dim].values, float)
        nearest = np.abs(points.location[:, column][:, None] - coordinate[None, :]).argmin(axis=1)
        keep &= nearest == index
    return points.where(keep).once()
