"""Read observations from NetCDF (gridded, CF point or IODA v3) into an :class:`ObservationSet`.

Gridded and CF point files go through the one input reader (:mod:`dacli.io.inputs`: names,
dims, select, CF time decoding, grid alignment). Gridded: ``<var>(time, *grid dims)`` on the
model grid or a larger one (NaN or ``_FillValue`` = missing), optional ``<var>_error`` (std, same
dims or fewer). Scattered (CF discrete sampling geometry, ``featureType = "point"``): an ``obs``
dimension with ``time(obs)``, one location coordinate per grid dimension (``x(obs)``, or
``y(obs)``/``x(obs)``, ``lat(obs)``/``lon(obs)``) and ``<var>(obs)``, ``<var>_error(obs)``;
locations are interpolated linearly (1-D grids) or bilinearly (2-D grids), and those outside
the model domain are dropped and counted. IODA v3: see :mod:`dacli.io.ioda`. Values and errors
are converted to the model's units (:mod:`dacli.io.units`); times to model time
(:mod:`dacli.io.times`).

The reader takes plain parameters (:class:`ObservationFileOptions`); a config section with the same
keys (``[observations]``) is converted at the door by :meth:`ObservationFileOptions.of`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr

from dacli.errors import ConfigError, DataError
from dacli.io.duplicates import resolve_duplicates
from dacli.io.inputs import FileMapping, InputFile, open_input
from dacli.io.interpolation import coordinate_period, interpolation_weights
from dacli.io.ioda import read_ioda
from dacli.io.observation_set import POINTS, ObservationSet
from dacli.io.times import TimeAxis
from dacli.io.units import to_model_units
from dacli.layout import StateLayout

log = logging.getLogger("dacli")


@dataclass(frozen=True)
class ObservationFileOptions:
    """Which observation file to read, and how: the reader's plain parameters.

    ``file_layout`` is the file's organisation (``observations.layout``): values on the model grid
    ("gridded"), a CF point file ("scattered") or IODA v3 ("ioda"). ``variables`` are the model
    variables read (empty: every model variable); ``mapping`` the file's names, dimensions and
    selections; ``error_std`` the error where the file has none; ``accept_preqc`` the IODA PreQC
    values kept; ``duplicates`` the policy for repeats (:mod:`dacli.io.duplicates`).
    """

    path: str
    file_layout: Literal["gridded", "scattered", "ioda"] = "gridded"
    variables: tuple[str, ...] = ()
    mapping: FileMapping = field(default_factory=FileMapping)
    error_std: float | None = None
    accept_preqc: tuple[int, ...] = (0,)
    duplicates: Literal["first", "independent", "refuse"] = "first"

    @classmethod
    def of(cls, section) -> ObservationFileOptions:
        """``section`` itself when it is one, else the options of an ``[observations]`` section.

        The config record's keys are read here, not in the reader's functions.
        """
        if isinstance(section, cls):
            return section
        return cls(
            path=section.path,
            file_layout=section.layout,
            variables=tuple(section.variables or ()),
            mapping=FileMapping.of(section),
            error_std=section.error_std,
            accept_preqc=tuple(section.accept_preqc),
            duplicates=section.duplicates,
        )


def _variable(file: InputFile, variable: str, options: ObservationFileOptions) -> xr.DataArray:
    if variable not in file.dataset.variables:
        name = options.mapping.names.get(variable, variable)
        found = ", ".join(sorted(map(str, file.dataset.data_vars))) or "none"
        mapped = "" if name == variable else f" (mapped from model variable {variable!r})"
        raise DataError(
            f"{file.what} file {file.source}: no variable {name!r}{mapped}; data variables found: "
            f"{found}. "
            f'Map names with observations.names = {{ {variable} = "..." }}'
        )
    return file.dataset[variable]


def _require_dims(
    array: xr.DataArray, file: InputFile, allowed: set[str], required: set[str]
) -> None:
    dims = set(map(str, array.dims))
    if not required <= dims or not dims <= allowed:
        extra = sorted(dims - allowed)
        hint = (
            f"; select one value along {extra} with select = {{ {extra[0]} = ... }}"
            if extra
            else "; map file dimensions with dims = { ... }"
        )
        raise DataError(
            f"{file.what} file {file.source}: variable {array.name!r} has dimensions "
            f"{tuple(array.dims)}; expected {tuple(sorted(required))}{hint}"
        )


def _values_and_errors(
    file: InputFile,
    variable: str,
    array: xr.DataArray,
    options: ObservationFileOptions,
    layout: StateLayout,
):
    """(values, error std) in the model's units, errors broadcast like ``array``."""
    values, note = to_model_units(
        array.values, array.attrs.get("units"), layout.units, file.where(str(array.name))
    )
    notes = [note] if note else []
    error_name = f"{variable}_error"
    if error_name in file.dataset.variables:
        error = file.dataset[error_name]
        missing = set(map(str, error.dims)) - set(map(str, array.dims))
        if missing:
            raise DataError(
                f"{file.what} file {file.source}: {error_name!r} has dimensions "
                f"{tuple(error.dims)}, not found on {array.name!r} {tuple(array.dims)}"
            )
        broadcast = error.broadcast_like(array).transpose(*array.dims)
        errors, note = to_model_units(
            broadcast.values,
            error.attrs.get("units", array.attrs.get("units")),
            layout.units,
            file.where(error_name),
            difference=True,
        )
        notes += [note] if note else []
    elif options.error_std is None:
        raise DataError(
            f"{file.what} file {file.source}: no variable "
            f"{options.mapping.names.get(variable, variable) + '_error'!r} and "
            "observations.error_std is not set; give one of them"
        )
    else:
        errors = np.full(array.shape, float(options.error_std))
    for line in notes:
        log.info("%s", line)
    return values, errors


def grid_coordinates(layout: StateLayout) -> np.ndarray:
    """Coordinates of every grid point, (grid_size, D), in the flat (C) order of the state."""
    if not layout.axes:
        return np.zeros((1, 0))
    mesh = np.meshgrid(*[np.asarray(axis.values, float) for axis in layout.axes], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def _times(file: InputFile) -> np.ndarray:
    """The file's model times (the readers open their files with the time axis)."""
    assert file.times is not None
    return file.times


def _read_gridded(
    file: InputFile, options: ObservationFileOptions, layout: StateLayout, variables
) -> ObservationSet:
    grid_dims = list(layout.dims)
    parts = []
    for variable in variables:
        array = _variable(file, variable, options)
        wanted = {"time", *grid_dims}
        _require_dims(array, file, wanted, wanted)
        array = array.transpose("time", *grid_dims)
        found = tuple(array.sizes[dim] for dim in grid_dims)
        if found != layout.shape:
            raise DataError(
                f"{file.what} file {file.source}: dimensions {tuple(grid_dims)} have sizes "
                f"{found}; the model grid has {layout.shape}"
            )
        ntime, ngrid = array.shape[0], layout.grid_size
        values, errors = _values_and_errors(file, variable, array, options, layout)
        values, errors = values.reshape(ntime, ngrid), errors.reshape(ntime, ngrid)
        grid_index = np.tile(np.arange(ngrid), ntime)
        index = np.zeros((ntime * ngrid, POINTS), dtype=int)
        index[:, 0] = layout.index(variable, 0) + grid_index
        weight = np.zeros((ntime * ngrid, POINTS))
        weight[:, 0] = 1.0
        parts.append(
            ObservationSet(
                times=np.repeat(_times(file), ngrid),
                values=values.ravel(),
                std=errors.ravel(),
                index=index,
                weight=weight,
                variable=np.full(ntime * ngrid, variable),
                location=grid_coordinates(layout)[grid_index],
            )
        )
    return _concatenate(parts)


def _located(
    variable: str, times, values, errors, positions, layout: StateLayout, rejected_preqc: int = 0
) -> ObservationSet:
    """Observations at scattered positions (P, D): interpolation rows, outside-domain ones
    dropped."""
    if layout.axes:
        grid_index, weight, inside = interpolation_weights(positions, layout)
        index = grid_index + layout.index(variable, 0)
        positions = np.array(positions, dtype=float)
        for column, axis in enumerate(
            layout.axes
        ):  # longitudes stored in the model's convention (300 -> -60)
            period = coordinate_period(axis)
            if period is not None:
                middle = 0.5 * (axis.values[0] + axis.values[-1])
                moved = (
                    middle
                    + np.mod(positions[:, column] - middle + 0.5 * period, period)
                    - 0.5 * period
                )
                turned = (
                    np.abs(moved - positions[:, column]) > 0.5 * period
                )  # only whole turns, no round-off
                positions[turned, column] = moved[turned]
    else:
        index = np.full((len(values), POINTS), layout.index(variable))
        weight = np.tile([1.0] + [0.0] * (POINTS - 1), (len(values), 1))
        inside = np.ones(len(values), bool)
    return ObservationSet(
        times=times[inside],
        values=values[inside],
        std=errors[inside],
        index=index[inside],
        weight=weight[inside],
        variable=np.full(int(inside.sum()), variable),
        location=positions[inside],
        rejected_outside_domain=int((~inside).sum()),
        rejected_preqc=rejected_preqc,
    )


def _read_scattered(
    file: InputFile, options: ObservationFileOptions, layout: StateLayout, variables
) -> ObservationSet:
    dataset = file.dataset
    times = file.times
    assert times is not None  # the readers open their files with the time axis
    for name in layout.dims:
        if name not in dataset.variables:
            raise DataError(
                f"{file.what} file {file.source}: no location coordinate "
                f"{options.mapping.dims.get(name, name)!r} (grid position of each observation "
                f"along 'obs'); map it with observations.dims = {{ {name} = \"...\" }}"
            )
    positions = (
        np.stack([np.asarray(dataset[n].values, float) for n in layout.dims], axis=-1)
        if layout.dims
        else np.zeros((len(times), 0))
    )
    parts = []
    for variable in variables:
        array = _variable(file, variable, options)
        _require_dims(array, file, {"obs"}, {"obs"})
        values, errors = _values_and_errors(file, variable, array, options, layout)
        parts.append(_located(variable, times, values, errors, positions, layout))
    return _concatenate(parts)


# IODA's MetaData names for dacli's usual grid dimension names (override with observations.dims)
IODA_COORDINATES = {
    "lat": "latitude",
    "lon": "longitude",
    "latitude": "latitude",
    "longitude": "longitude",
}


def ioda_coordinates(options, layout: StateLayout) -> tuple[str, ...]:
    """The MetaData variable holding each grid coordinate (``observations.dims`` overrides).

    ``options``: :class:`ObservationFileOptions` (or an ``[observations]`` config section).
    """
    options = ObservationFileOptions.of(options)
    dims = options.mapping.dims
    return tuple(dims.get(dim, IODA_COORDINATES.get(dim, dim)) for dim in layout.dims)


def _read_ioda(
    options: ObservationFileOptions, layout: StateLayout, variables, time_axis: TimeAxis
) -> ObservationSet:
    coordinates = ioda_coordinates(options, layout)
    names = [options.mapping.names.get(v, v) for v in variables]
    records = read_ioda(
        options.path,
        names,
        error_std=options.error_std,
        accept_preqc=options.accept_preqc,
        time_axis=time_axis,
        units=layout.units,
        coordinates=coordinates,
        select=dict(options.mapping.select),
    )
    parts = []
    for variable, record in zip(variables, records, strict=True):
        for note in record.notes:
            log.info("observations file %s: %s", options.path, note)
        positions = (
            np.stack([record.coordinates[c] for c in coordinates], axis=-1)
            if coordinates
            else np.zeros((len(record.times), 0))
        )
        parts.append(
            _located(
                variable,
                record.times,
                record.values,
                record.errors,
                positions,
                layout,
                record.rejected_preqc,
            )
        )
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


def observations_in_dataset(
    dataset: xr.Dataset | str, source: str, options, layout: StateLayout, time_axis: TimeAxis
) -> ObservationSet:
    """The observations of a gridded or CF point file or open dataset (``options.file_layout``).

    ``dacli train`` reads the twin experiment it simulates in memory with it; ``source`` names
    the data in error messages. ``options``: :class:`ObservationFileOptions` (or an
    ``[observations]`` config section); its path is not used. Duplicates are not resolved here
    (see :func:`read_observations`).
    """
    options = ObservationFileOptions.of(options)
    variables = list(options.variables) or list(layout.variables)
    gridded = options.file_layout == "gridded"
    file = open_input(
        dataset,
        "observations",
        options.mapping,
        time_axis,
        layout=layout,
        grid=gridded,
        name=source,
    )
    assert file.times is not None  # asked for: open_input was given the time axis
    if not np.all(np.isfinite(file.times)):
        missing = int(np.sum(~np.isfinite(file.times)))
        time_name = options.mapping.dims.get("time", "time")
        raise DataError(
            f"observations file {source}: time coordinate {time_name!r} has {missing} "
            "missing value(s) (_FillValue or NaN); every observation needs a time"
        )
    if not gridded and "obs" not in file.dataset.dims:
        found = ", ".join(f"{d} ({n})" for d, n in file.dataset.sizes.items()) or "none"
        raise DataError(
            f"observations file {source}: no dimension 'obs' (one entry per observation in a CF "
            "point "
            f'file); its dimensions are: {found}. Map it with observations.dims = {{ obs = "..." }}'
        )
    return (_read_gridded if gridded else _read_scattered)(file, options, layout, variables)


def read_observations(options, layout: StateLayout, time_axis: TimeAxis) -> ObservationSet:
    """Read the observation file ``options`` names; raise :class:`DataError` naming what is wrong.

    ``options``: :class:`ObservationFileOptions` (or an ``[observations]`` config section).
    Observations repeated at the same time, place and variable are resolved as
    ``options.duplicates`` says (:mod:`dacli.io.duplicates`).
    """
    options = ObservationFileOptions.of(options)
    variables = list(options.variables) or list(layout.variables)
    unknown = [v for v in variables if v not in layout.variables]
    if unknown:
        raise ConfigError(
            [
                f"observations.variables: {unknown} are not model variables (the model has "
                f"{list(layout.variables)})"
            ]
        )
    if options.file_layout == "ioda":
        observations = _read_ioda(options, layout, variables, time_axis)
    else:
        observations = observations_in_dataset(
            options.path, options.path, options, layout, time_axis
        )
    names = ", ".join(repr(options.mapping.names.get(v, v)) for v in variables)
    if len(observations) == 0 and observations.rejected_outside_domain:
        raise DataError(
            f"observations file {options.path}: all {observations.rejected_outside_domain} "
            f"observations of {names} lie outside the model domain"
        )
    if len(observations) == 0:
        raise DataError(
            f"observations file {options.path}: holds no observations of {names} "
            "(zero-length dimensions)"
        )
    if not observations.valid.any():
        raise DataError(
            f"observations file {options.path}: all {len(observations)} observations of {names} "
            "are missing (NaN, Inf or _FillValue) or have a non-positive error; "
            "there is nothing to assimilate"
        )
    if observations.rejected_outside_domain:
        log.warning(
            "observations file %s: %d observation(s) outside the model domain dropped",
            options.path,
            observations.rejected_outside_domain,
        )
    return resolve_duplicates(observations, options.duplicates, options.path)
