"""State files: model states over time as CF NetCDF (truth runs, backgrounds, forecasts).

Layout: one variable per model variable, dims ``(time, *grid dims)`` (``(time,)`` without a
grid; ``(time, y, x)`` or ``(time, lat, lon)`` for 2-D models), a CF ``time`` coordinate (the
model's units and calendar when dacli writes it) and one CF coordinate variable per grid axis.
``dacli simulate`` writes them. Background and truth files from any tool are read through the
one input reader (:mod:`dacli.io.inputs`: names, dims, select, CF times, flipped or cropped
grids) and converted to the model's units; a state is taken at a time only where the file holds
one (within a tolerance), or interpolated in time where the user asks for it.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from dacli.errors import DataError
from dacli.io.inputs import FileMapping, open_input
from dacli.io.times import TimeAxis
from dacli.io.units import to_model_units
from dacli.layout import StateLayout

log = logging.getLogger("dacli")

# A stored time this fraction of the tolerance (half a model step) away from the time asked is that
# time (round-off of CF conversions, float32 files); farther, the nearest state is another time:
# said.
SAME_TIME = 1e-3


def coordinates(
    layout: StateLayout, times: np.ndarray, time_axis: TimeAxis
) -> dict[str, xr.Variable]:
    """CF coordinate variables for ``times`` (model times) and the model grid."""
    coords = {
        "time": xr.Variable(
            ("time",),
            np.asarray(times, float),
            {
                "standard_name": "time",
                "long_name": time_axis.long_name,
                **time_axis.attributes(),
                "axis": "T",
            },
        ),
    }
    for axis in layout.axes:
        coords[axis.name] = xr.Variable(
            (axis.name,), np.asarray(axis.values, float), axis.attributes()
        )
    return coords


def variable_attributes(layout: StateLayout, name: str, long_name: str) -> dict[str, str]:
    """``long_name``, ``units`` and the CF ``standard_name`` where the model declares one."""
    attrs = {"long_name": long_name, "units": layout.units}
    standard_name = layout.standard_name(name)
    if standard_name:
        attrs["standard_name"] = standard_name
    return attrs


def state_dataset(
    layout: StateLayout,
    times: np.ndarray,
    states: np.ndarray,
    time_axis: TimeAxis,
    attrs: dict | None = None,
    suffix: str = "",
    long_name: str = "state",
) -> xr.Dataset:
    """Flat states (T, n) -> Dataset of one variable per model variable."""
    dims = ("time", *layout.dims)
    data_vars = {
        f"{name}{suffix}": xr.Variable(
            dims, values, variable_attributes(layout, name, f"{long_name} of {name}")
        )
        for name, values in layout.split(states).items()
    }
    return xr.Dataset(data_vars, coords=coordinates(layout, times, time_axis), attrs=attrs or {})


def read_states(
    path, layout: StateLayout, what: str, time_axis: TimeAxis, mapping: FileMapping = FileMapping()
) -> tuple[np.ndarray, np.ndarray]:
    """(model times (T,), flat states (T, n) in the model's units) from a state file of any CF tool.

    An analysis file (``<name>_analysis`` variables, no ``<name>``) serves as a background file:
    the previous job-array task's analysis, propagated to the next range's first window start.
    A single state may carry its time as a scalar ``time`` coordinate.
    """
    file = open_input(path, what, mapping, time_axis, layout=layout)
    dataset = file.dataset
    analysis = all(
        name not in dataset.variables and f"{name}_analysis" in dataset.variables
        for name in layout.variables
    )
    suffix = "_analysis" if analysis else ""
    if dataset["time"].ndim == 0:
        dataset = dataset.expand_dims("time")
    elif dataset["time"].dims != ("time",):
        raise DataError(
            f"{what} file {file.source}: time coordinate has dimensions {dataset['time'].dims}; "
            "expected ('time',)"
        )
    assert file.times is not None  # asked for: open_input was given the time axis
    times = np.atleast_1d(file.times).astype(float)
    if not np.all(np.isfinite(times)):
        raise DataError(f"{what} file {file.source}: time coordinate has missing values")
    if len(np.unique(times)) != len(times):
        raise DataError(
            f"{what} file {file.source}: time coordinate repeats a time; each state needs its own "
            "time"
        )
    fields = _fields(dataset, file.source, layout, what, suffix, "time")
    for name in layout.variables:
        stored = f"{name}{suffix}"
        fields[name], note = to_model_units(
            fields[name], dataset[stored].attrs.get("units"), layout.units, file.where(stored)
        )
        if note:
            log.info("%s", note)
    states = layout.join(fields)
    if not np.all(np.isfinite(states)):
        raise DataError(f"{what} file {file.source}: contains NaN or Inf values")
    return times, states


def _fields(
    dataset: xr.Dataset, path, layout: StateLayout, what: str, suffix: str, time_dim: str
) -> dict:
    """{variable: array (T, *grid)} of the variables ``<name><suffix>(time_dim, *grid)``, shapes
    checked."""
    fields = {}
    for name in layout.variables:
        stored = f"{name}{suffix}"
        if stored not in dataset.variables:
            names = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
            raise DataError(
                f"{what} file {path}: no variable {stored!r}; data variables found: {names}. Map "
                "names "
                f'with names = {{ {name} = "..." }}'
            )
        array = dataset[stored]
        expected = (time_dim, *layout.dims)
        if time_dim not in array.dims:
            array = array.expand_dims(time_dim)
        if set(array.dims) != set(expected):
            extra = sorted(set(map(str, array.dims)) - set(expected))
            hint = (
                f"; select one value along {extra} with select = {{ {extra[0]} = ... }}"
                if extra
                else ""
            )
            raise DataError(
                f"{what} file {path}: variable {stored!r} has dims {tuple(array.dims)}; "
                f"expected {expected}{hint}"
            )
        array = array.transpose(*expected)
        found = tuple(array.sizes[dim] for dim in layout.dims)
        if found != layout.shape:
            raise DataError(
                f"{what} file {path}: {stored!r} has a grid of shape {found} over {layout.dims}; "
                f"the model's is {layout.shape}"
            )
        fields[name] = np.asarray(array.values, float)
    return fields


def states_in_dataset(
    dataset: xr.Dataset,
    path,
    layout: StateLayout,
    what: str,
    suffix: str = "",
    time_dim: str = "time",
    time_variable: str = "time",
) -> tuple[np.ndarray, np.ndarray]:
    """(times, flat states) of the variables ``<name><suffix>(time_dim, *grid)`` of an open file.

    ``suffix`` and the time names read other files' states: an analysis file's ``x_analysis(time,
    site)``
    or its ``x_analysis_window_end(window, site)`` at ``window_end(window)``.
    """
    fields = _fields(dataset, path, layout, what, suffix, time_dim)
    times = (
        np.asarray(dataset[time_variable].values, float)
        if time_variable in dataset.variables
        else np.zeros(1)
    )
    states = layout.join(fields)
    if not np.all(np.isfinite(states)):
        raise DataError(f"{what} file {path}: contains NaN or Inf values")
    return times, states


def state_at(
    times: np.ndarray,
    states: np.ndarray,
    time: float,
    path,
    what: str,
    tolerance: float,
    *,
    interpolate: bool = False,
    time_axis: TimeAxis | None = None,
) -> np.ndarray:
    """The state at ``time``: the file's state within ``tolerance``, else (``interpolate``) the
    linear
    interpolation between the two states around it, else a :class:`DataError` naming the time
    asked and the times present (as dates where ``time_axis`` is given). A state that is not at
    ``time`` itself (farther than round-off) is logged as a warning, naming both times."""
    times = np.asarray(times, float)
    distance = np.abs(times - time)
    show = time_axis.describe if time_axis is not None else (lambda t: f"{t:g}")
    nearest = int(np.argmin(distance))
    if distance[nearest] <= tolerance:
        if distance[nearest] > SAME_TIME * tolerance:
            log.warning(
                "%s file %s: holds no state at exactly model time %s; its state at %s is used, "
                "%.6g away (within %g)",
                what,
                path,
                show(time),
                show(times[nearest]),
                distance[nearest],
                tolerance,
            )
        return states[nearest]
    if interpolate and times.min() < time < times.max():
        order = np.argsort(times)
        right = int(np.searchsorted(times[order], time))
        before, after = order[right - 1], order[right]
        fraction = (time - times[before]) / (times[after] - times[before])
        log.info(
            "%s file %s: state at %s interpolated in time between %s and %s (weight %.3g on the "
            "later)",
            what,
            path,
            show(time),
            show(times[before]),
            show(times[after]),
            fraction,
        )
        return (1.0 - fraction) * states[before] + fraction * states[after]
    present = ", ".join(show(t) for t in times[:5]) + (
        f", ... ({len(times)} times)" if len(times) > 5 else ""
    )
    hint = (
        "; set background.interpolate_time = true to interpolate between its states"
        if interpolate is False and what == "background" and times.min() < time < times.max()
        else ""
    )
    raise DataError(
        f"{what} file {path}: holds no state at model time {show(time)} (within {tolerance:g}); "
        f"its times are: {present}{hint}"
    )


def states_at(
    times: np.ndarray,
    states: np.ndarray,
    wanted: np.ndarray,
    path,
    what: str,
    tolerance: float,
    missing: str = "raise",
) -> np.ndarray:
    """States at each of ``wanted`` times (nearest stored time within ``tolerance``), (T, n).

    ``missing="nan"`` fills times the file does not hold with NaN instead of raising.
    """
    wanted = np.asarray(wanted, float)
    order = np.argsort(times)
    sorted_times = times[order]
    right = (
        np.clip(np.searchsorted(sorted_times, wanted), 1, len(times) - 1)
        if len(times) > 1
        else np.zeros(len(wanted), int)
    )
    left = np.maximum(right - 1, 0)
    nearest = np.where(
        np.abs(sorted_times[left] - wanted) <= np.abs(sorted_times[right] - wanted), left, right
    )
    absent = np.abs(sorted_times[nearest] - wanted) > tolerance
    if absent.any() and missing == "raise":
        raise DataError(
            f"{what} file {path}: no state at time {wanted[absent][0]:g} "
            f"(times span [{times.min():g}, {times.max():g}])"
        )
    found = states[order][nearest].astype(float)
    found[absent] = np.nan
    return found
