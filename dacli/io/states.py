"""State files: model states over time as CF NetCDF (truth runs, backgrounds, forecasts).

Layout: one variable per model variable, dims ``(time, *grid dims)`` (``(time,)`` without a
grid; ``(time, y, x)`` or ``(time, lat, lon)`` for 2-D models), a ``time`` coordinate in model
time and one CF coordinate variable per grid axis. ``dacli simulate`` writes
them; the background and truth readers read them back.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dacli.errors import DataError
from dacli.io.netcdf import open_netcdf
from dacli.models.base import StateLayout


def coordinates(layout: StateLayout, times: np.ndarray, time_units: str) -> dict[str, xr.Variable]:
    """CF coordinate variables for ``times`` and the model grid."""
    coords = {
        "time": xr.Variable(("time",), np.asarray(times, float), {
            "standard_name": "time", "long_name": "model time", "units": time_units, "axis": "T",
            "calendar": "standard", "units_metadata": "leap_seconds: none"}),
    }
    for axis in layout.axes:
        coords[axis.name] = xr.Variable((axis.name,), np.asarray(axis.values, float), axis.attributes())
    return coords


def variable_attributes(layout: StateLayout, name: str, long_name: str) -> dict[str, str]:
    """``long_name``, ``units`` and the CF ``standard_name`` where the model declares one."""
    attrs = {"long_name": long_name, "units": layout.units}
    if layout.standard_name(name):
        attrs["standard_name"] = layout.standard_name(name)
    return attrs


def state_dataset(layout: StateLayout, times: np.ndarray, states: np.ndarray, time_units: str,
                  attrs: dict | None = None, suffix: str = "", long_name: str = "state") -> xr.Dataset:
    """Flat states (T, n) -> Dataset of one variable per model variable."""
    dims = ("time", *layout.dims)
    data_vars = {
        f"{name}{suffix}": xr.Variable(dims, values, variable_attributes(layout, name, f"{long_name} of {name}"))
        for name, values in layout.split(states).items()
    }
    return xr.Dataset(data_vars, coords=coordinates(layout, times, time_units), attrs=attrs or {})


def read_states(path, layout: StateLayout, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(times (T,), flat states (T, n)) from a state file, or the analysis trajectory of an analysis file.

    An analysis file (``<name>_analysis`` variables, no ``<name>``) serves as a background file:
    the previous job-array task's analysis, propagated to the next range's first window start.
    """
    dataset = open_netcdf(path, what)
    analysis = all(name not in dataset.variables and f"{name}_analysis" in dataset.variables
                   for name in layout.variables)
    return states_in_dataset(dataset, path, layout, what, suffix="_analysis" if analysis else "")


def states_in_dataset(dataset: xr.Dataset, path, layout: StateLayout, what: str, suffix: str = "",
                      time_dim: str = "time", time_variable: str = "time") -> tuple[np.ndarray, np.ndarray]:
    """(times, flat states) of the variables ``<name><suffix>(time_dim, *grid)`` of an open file.

    ``suffix`` and the time names read other files' states: an analysis file's ``x_analysis(time, site)``
    or its ``x_analysis_window_end(window, site)`` at ``window_end(window)``.
    """
    fields = {}
    for name in layout.variables:
        stored = f"{name}{suffix}"
        if stored not in dataset.variables:
            found = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
            raise DataError(f"{what} file {path}: no variable {stored!r}; data variables found: {found}")
        array = dataset[stored]
        expected = (time_dim, *layout.dims)
        if time_dim not in array.dims:
            array = array.expand_dims(time_dim)
        if set(array.dims) != set(expected):
            raise DataError(f"{what} file {path}: variable {stored!r} has dims {tuple(array.dims)}; expected {expected}")
        array = array.transpose(*expected)
        found = tuple(array.sizes[dim] for dim in layout.dims)
        if found != layout.shape:
            raise DataError(
                f"{what} file {path}: {stored!r} has a grid of shape {found} over {layout.dims}; "
                f"the model's is {layout.shape}"
            )
        fields[name] = np.asarray(array.values, float)
    times = np.asarray(dataset[time_variable].values, float) if time_variable in dataset.variables else np.zeros(1)
    states = layout.join(fields)
    if not np.all(np.isfinite(states)):
        raise DataError(f"{what} file {path}: contains NaN or Inf values")
    return times, states


def state_at(times: np.ndarray, states: np.ndarray, time: float, path, what: str, tolerance: float) -> np.ndarray:
    """The state at ``time`` (within ``tolerance``); a single-time file is taken as it is."""
    if len(times) == 1:
        return states[0]
    return states_at(times, states, np.array([time]), path, what, tolerance)[0]


def states_at(times: np.ndarray, states: np.ndarray, wanted: np.ndarray, path, what: str,
              tolerance: float, missing: str = "raise") -> np.ndarray:
    """States at each of ``wanted`` times (nearest stored time within ``tolerance``), (T, n).

    ``missing="nan"`` fills times the file does not hold with NaN instead of raising.
    """
    wanted = np.asarray(wanted, float)
    order = np.argsort(times)
    sorted_times = times[order]
    right = np.clip(np.searchsorted(sorted_times, wanted), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(wanted), int)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(sorted_times[left] - wanted) <= np.abs(sorted_times[right] - wanted), left, right)
    absent = np.abs(sorted_times[nearest] - wanted) > tolerance
    if absent.any() and missing == "raise":
        raise DataError(f"{what} file {path}: no state at time {wanted[absent][0]:g} "
                        f"(times span [{times.min():g}, {times.max():g}])")
    found = states[order][nearest].astype(float)
    found[absent] = np.nan
    return found
