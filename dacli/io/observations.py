"""Read observations from NetCDF (gridded or CF point layout) into an :class:`ObservationSet`.

Gridded: ``<var>(time, <grid>)`` on the model grid (NaN or ``_FillValue`` = missing), optional
``<var>_error`` (std, same dims or fewer). Scattered (CF discrete sampling geometry, point):
an ``obs`` dimension with ``time(obs)``, the grid coordinate ``<grid>(obs)`` and ``<var>(obs)``,
``<var>_error(obs)``; off-grid locations are linearly interpolated. File names of variables and
dimensions are mapped through ``observations.names`` / ``observations.dims``. Times are read
undecoded: they are model times.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dacli.config.schema import ObservationsConfig
from dacli.errors import ConfigError, DataError
from dacli.io.netcdf import open_netcdf
from dacli.models.base import StateLayout
from dacli.observations.sets import POINTS, ObservationSet, interpolation_weights


def _variable(dataset: xr.Dataset, path, name: str, model_variable: str) -> xr.DataArray:
    if name not in dataset.variables:
        found = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
        mapped = "" if name == model_variable else f" (mapped from model variable {model_variable!r})"
        raise DataError(
            f"observations file {path}: no variable {name!r}{mapped}; data variables found: {found}. "
            f"Map names with observations.names = {{ {model_variable} = \"...\" }}"
        )
    return dataset[name]


def _require_dims(array: xr.DataArray, path, allowed: set[str], required: set[str]) -> None:
    dims = set(map(str, array.dims))
    if not required <= dims or not dims <= allowed:
        raise DataError(
            f"observations file {path}: variable {array.name!r} has dimensions {tuple(array.dims)}; "
            f"expected {tuple(sorted(required))}. Map file dimensions with observations.dims"
        )


def _errors(dataset, path, name: str, like: xr.DataArray, config: ObservationsConfig) -> np.ndarray:
    error_name = f"{name}_error"
    if error_name in dataset.variables:
        return np.asarray(dataset[error_name].broadcast_like(like).transpose(*like.dims), dtype=float)
    if config.error_std is None:
        raise DataError(
            f"observations file {path}: no variable {error_name!r} and observations.error_std is not set; "
            "give one of them"
        )
    return np.full(like.shape, float(config.error_std))


def _read_gridded(dataset, path, config: ObservationsConfig, layout: StateLayout, variables) -> ObservationSet:
    time_dim = config.dims.get("time", "time")
    grid_dim = config.dims.get(layout.grid_name, layout.grid_name) if layout.grid_name else None
    parts = []
    for variable in variables:
        name = config.names.get(variable, variable)
        array = _variable(dataset, path, name, variable)
        wanted = {time_dim} | ({grid_dim} if grid_dim else set())
        _require_dims(array, path, wanted, wanted)
        array = array.transpose(*([time_dim] + ([grid_dim] if grid_dim else [])))
        if grid_dim and array.sizes[grid_dim] != layout.grid_size:
            raise DataError(
                f"observations file {path}: dimension {grid_dim!r} has size {array.sizes[grid_dim]}; "
                f"the model grid has {layout.grid_size} points"
            )
        values = np.asarray(array.values, dtype=float)
        errors = _errors(dataset, path, name, array, config)
        times = np.asarray(dataset[time_dim].values if time_dim in dataset.variables else np.arange(values.shape[0]), float)
        if values.ndim == 1:
            values, errors = values[:, None], errors[:, None]
        ntime, ngrid = values.shape
        grid_index = np.tile(np.arange(ngrid), ntime)
        flat_index = np.array([layout.index(variable, g) for g in range(ngrid)])[grid_index % ngrid]
        index = np.zeros((ntime * ngrid, POINTS), dtype=int)
        index[:, 0] = flat_index
        index[:, 1] = flat_index
        weight = np.zeros((ntime * ngrid, POINTS))
        weight[:, 0] = 1.0
        location = np.asarray(layout.grid, float)[grid_index] if layout.grid_name else np.full(ntime * ngrid, np.nan)
        parts.append(ObservationSet(
            times=np.repeat(times, ngrid), values=values.ravel(), std=errors.ravel(), index=index,
            weight=weight, variable=np.full(ntime * ngrid, variable), location=location,
        ))
    return _concatenate(parts)


def _read_scattered(dataset, path, config: ObservationsConfig, layout: StateLayout, variables) -> ObservationSet:
    obs_dim = config.dims.get("obs", "obs")
    time_name = config.dims.get("time", "time")
    if time_name not in dataset.variables:
        raise DataError(f"observations file {path}: no time coordinate {time_name!r} along {obs_dim!r}")
    times = np.asarray(dataset[time_name].values, dtype=float)
    location_name = config.dims.get(layout.grid_name, layout.grid_name) if layout.grid_name else None
    if location_name and location_name not in dataset.variables:
        raise DataError(
            f"observations file {path}: no location coordinate {location_name!r} (grid position of each "
            f"observation along {obs_dim!r}); map it with observations.dims"
        )
    parts = []
    for variable in variables:
        name = config.names.get(variable, variable)
        array = _variable(dataset, path, name, variable)
        _require_dims(array, path, {obs_dim}, {obs_dim})
        values = np.asarray(array.values, dtype=float)
        errors = _errors(dataset, path, name, array, config)
        if location_name:
            location = np.asarray(dataset[location_name].values, dtype=float)
            grid_index, weight, inside = interpolation_weights(location, layout)
            offset = layout.index(variable, 0)
            index = grid_index + offset
        else:
            location = np.full(len(values), np.nan)
            index = np.full((len(values), POINTS), layout.index(variable))
            weight = np.tile([1.0, 0.0], (len(values), 1))
            inside = np.ones(len(values), bool)
        part = ObservationSet(
            times=times[inside], values=values[inside], std=errors[inside], index=index[inside],
            weight=weight[inside], variable=np.full(int(inside.sum()), variable), location=location[inside],
            rejected_outside_domain=int((~inside).sum()),
        )
        parts.append(part)
    return _concatenate(parts)


def _concatenate(parts: list[ObservationSet]) -> ObservationSet:
    return ObservationSet(
        times=np.concatenate([p.times for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        std=np.concatenate([p.std for p in parts]),
        index=np.concatenate([p.index for p in parts]),
        weight=np.concatenate([p.weight for p in parts]),
        variable=np.concatenate([p.variable for p in parts]),
        location=np.concatenate([p.location for p in parts]),
        rejected_outside_domain=sum(p.rejected_outside_domain for p in parts),
    )


def read_observations(config: ObservationsConfig, layout: StateLayout) -> ObservationSet:
    """Read the configured observation file; raise :class:`DataError` naming what is wrong."""
    variables = config.variables or list(layout.variables)
    unknown = [v for v in variables if v not in layout.variables]
    if unknown:
        raise ConfigError([
            f"observations.variables: {unknown} are not model variables (the model has {list(layout.variables)})"
        ])
    dataset = open_netcdf(config.path, "observations")
    reader = _read_gridded if config.layout == "gridded" else _read_scattered
    observations = reader(dataset, config.path, config, layout, variables)
    names = ", ".join(repr(config.names.get(v, v)) for v in variables)
    if len(observations) == 0 and observations.rejected_outside_domain:
        raise DataError(
            f"observations file {config.path}: all {observations.rejected_outside_domain} observations of {names} "
            "lie outside the model domain"
        )
    if len(observations) == 0:
        raise DataError(f"observations file {config.path}: holds no observations of {names} (zero-length dimensions)")
    if not observations.valid.any():
        raise DataError(
            f"observations file {config.path}: all {len(observations)} observations of {names} are missing "
            "(NaN, Inf or _FillValue) or have a non-positive error; there is nothing to assimilate"
        )
    return observations
