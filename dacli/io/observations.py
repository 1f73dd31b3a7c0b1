"""Read observations from NetCDF (gridded, CF point or IODA v3) into an :class:`ObservationSet`.

Gridded: ``<var>(time, *grid dims)`` on the model grid (NaN or ``_FillValue`` = missing; grid
dimensions stored in reverse, e.g. descending latitudes, are flipped), optional ``<var>_error``
(std, same dims or fewer). Scattered (CF discrete sampling geometry, point): an ``obs``
dimension with ``time(obs)``, one location coordinate per grid dimension (``x(obs)``, or
``y(obs)``/``x(obs)``, ``lat(obs)``/``lon(obs)``) and ``<var>(obs)``, ``<var>_error(obs)``;
locations are interpolated linearly (1-D grids) or bilinearly (2-D grids). IODA v3: see
:mod:`dacli.io.ioda`; its ``dateTime`` is converted to model time through ``output.time_units``.
File names of variables and dimensions are mapped through ``observations.names`` /
``observations.dims``. Times of the NetCDF layouts are read undecoded: they are model times.
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


def _align_grid(dataset: xr.Dataset, path, config: ObservationsConfig, layout: StateLayout) -> xr.Dataset:
    """Flip grid dimensions the file stores in reverse order (e.g. descending latitudes).

    A file coordinate that is neither the model's nor its reverse is an error naming both.
    """
    for axis in layout.axes:
        dim = config.dims.get(axis.name, axis.name)
        if dim not in dataset.variables or dataset[dim].ndim != 1 or dataset.sizes.get(dim) != len(axis.values):
            continue
        found = np.asarray(dataset[dim].values, float)
        scale = max(1e-12, abs(axis.spacing))
        if np.allclose(found[::-1], axis.values, atol=1e-6 * scale, rtol=0) and len(found) > 1:
            dataset = dataset.isel({dim: slice(None, None, -1)})
        elif not np.allclose(found, axis.values, atol=1e-6 * scale, rtol=0):
            raise DataError(
                f"observations file {path}: coordinate {dim!r} runs {found[0]:g} .. {found[-1]:g}; "
                f"the model grid's {axis.name!r} runs {axis.values[0]:g} .. {axis.values[-1]:g} "
                "(gridded observations must be on the model grid; use the scattered layout otherwise)"
            )
    return dataset


def grid_coordinates(layout: StateLayout) -> np.ndarray:
    """Coordinates of every grid point, (grid_size, D), in the flat (C) order of the state."""
    if not layout.axes:
        return np.zeros((1, 0))
    mesh = np.meshgrid(*[np.asarray(axis.values, float) for axis in layout.axes], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def _read_gridded(dataset, path, config: ObservationsConfig, layout: StateLayout, variables) -> ObservationSet:
    time_dim = config.dims.get("time", "time")
    grid_dims = [config.dims.get(dim, dim) for dim in layout.dims]
    dataset = _align_grid(dataset, path, config, layout)
    parts = []
    for variable in variables:
        name = config.names.get(variable, variable)
        array = _variable(dataset, path, name, variable)
        wanted = {time_dim, *grid_dims}
        _require_dims(array, path, wanted, wanted)
        array = array.transpose(time_dim, *grid_dims)
        found = tuple(array.sizes[dim] for dim in grid_dims)
        if found != layout.shape:
            raise DataError(
                f"observations file {path}: dimensions {tuple(grid_dims)} have sizes {found}; "
                f"the model grid has {layout.shape}"
            )
        ntime, ngrid = array.shape[0], layout.grid_size
        values = np.asarray(array.values, dtype=float).reshape(ntime, ngrid)
        errors = _errors(dataset, path, name, array, config).reshape(ntime, ngrid)
        times = np.asarray(dataset[time_dim].values if time_dim in dataset.variables else np.arange(ntime), float)
        grid_index = np.tile(np.arange(ngrid), ntime)
        index = np.zeros((ntime * ngrid, POINTS), dtype=int)
        index[:, 0] = layout.index(variable, 0) + grid_index
        weight = np.zeros((ntime * ngrid, POINTS))
        weight[:, 0] = 1.0
        parts.append(ObservationSet(
            times=np.repeat(times, ngrid), values=values.ravel(), std=errors.ravel(), index=index,
            weight=weight, variable=np.full(ntime * ngrid, variable), location=grid_coordinates(layout)[grid_index],
        ))
    return _concatenate(parts)


def _located(variable: str, times, values, errors, positions, layout: StateLayout, rejected_preqc: int = 0) -> ObservationSet:
    """Observations at scattered positions (P, D): interpolation rows, outside-domain ones dropped."""
    if layout.axes:
        grid_index, weight, inside = interpolation_weights(positions, layout)
        index = grid_index + layout.index(variable, 0)
    else:
        index = np.full((len(values), POINTS), layout.index(variable))
        weight = np.tile([1.0] + [0.0] * (POINTS - 1), (len(values), 1))
        inside = np.ones(len(values), bool)
    return ObservationSet(
        times=times[inside], values=values[inside], std=errors[inside], index=index[inside],
        weight=weight[inside], variable=np.full(int(inside.sum()), variable), location=positions[inside],
        rejected_outside_domain=int((~inside).sum()), rejected_preqc=rejected_preqc,
    )


def _read_scattered(dataset, path, config: ObservationsConfig, layout: StateLayout, variables) -> ObservationSet:
    obs_dim = config.dims.get("obs", "obs")
    time_name = config.dims.get("time", "time")
    if time_name not in dataset.variables:
        raise DataError(f"observations file {path}: no time coordinate {time_name!r} along {obs_dim!r}")
    times = np.asarray(dataset[time_name].values, dtype=float)
    location_names = [config.dims.get(dim, dim) for dim in layout.dims]
    for location_name in location_names:
        if location_name not in dataset.variables:
            raise DataError(
                f"observations file {path}: no location coordinate {location_name!r} (grid position of each "
                f"observation along {obs_dim!r}); map it with observations.dims"
            )
    positions = np.stack([np.asarray(dataset[n].values, float) for n in location_names], axis=-1) \
        if location_names else np.zeros((len(times), 0))
    parts = []
    for variable in variables:
        name = config.names.get(variable, variable)
        array = _variable(dataset, path, name, variable)
        _require_dims(array, path, {obs_dim}, {obs_dim})
        values = np.asarray(array.values, dtype=float)
        parts.append(_located(variable, times, values, _errors(dataset, path, name, array, config), positions, layout))
    return _concatenate(parts)


# IODA's MetaData names for dacli's usual grid dimension names (override with observations.dims)
IODA_COORDINATES = {"lat": "latitude", "lon": "longitude", "latitude": "latitude", "longitude": "longitude"}


def ioda_coordinates(config: ObservationsConfig, layout: StateLayout) -> tuple[str, ...]:
    """The MetaData variable holding each grid coordinate (``observations.dims`` overrides)."""
    return tuple(config.dims.get(dim, IODA_COORDINATES.get(dim, dim)) for dim in layout.dims)


def _read_ioda(path, config: ObservationsConfig, layout: StateLayout, variables, time_units: str) -> ObservationSet:
    from dacli.io.ioda import read_ioda

    coordinates = ioda_coordinates(config, layout)
    names = [config.names.get(v, v) for v in variables]
    records = read_ioda(path, names, error_std=config.error_std, accept_preqc=tuple(config.accept_preqc),
                        time_units=time_units, coordinates=coordinates)
    parts = []
    for variable, record in zip(variables, records):
        positions = np.stack([record.coordinates[c] for c in coordinates], axis=-1) if coordinates \
            else np.zeros((len(record.times), 0))
        parts.append(_located(variable, record.times, record.values, record.errors, positions, layout,
                              record.rejected_preqc))
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
        rejected_preqc=sum(p.rejected_preqc for p in parts),
    )


def observations_in_dataset(dataset: xr.Dataset, source: str, config: ObservationsConfig,
                            layout: StateLayout) -> ObservationSet:
    """The observations of an open gridded or CF point dataset (``config.layout`` says which).

    The reader of :func:`read_observations` without the file: ``dacli train`` reads the twin
    experiment it simulates in memory with it; ``source`` names the data in error messages.
    """
    variables = config.variables or list(layout.variables)
    reader = _read_gridded if config.layout == "gridded" else _read_scattered
    return reader(dataset, source, config, layout, variables)


def read_observations(config: ObservationsConfig, layout: StateLayout,
                      time_units: str = "days since 2000-01-01 00:00:00") -> ObservationSet:
    """Read the configured observation file; raise :class:`DataError` naming what is wrong."""
    variables = config.variables or list(layout.variables)
    unknown = [v for v in variables if v not in layout.variables]
    if unknown:
        raise ConfigError([
            f"observations.variables: {unknown} are not model variables (the model has {list(layout.variables)})"
        ])
    if config.layout == "ioda":
        observations = _read_ioda(config.path, config, layout, variables, time_units)
    else:
        observations = observations_in_dataset(open_netcdf(config.path, "observations"), config.path, config, layout)
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
