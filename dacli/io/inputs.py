"""The one reader every input NetCDF file goes through (observations, background, truth, training
files).

:func:`open_input` opens a file (or takes an open dataset) and applies, in this order and the
same way for every kind of input:

1. **names and dims** (``names = { ssh = "zos" }``, ``dims = { lat = "latitude", time = "valid_time"
}``):
   the file's variables, dimensions and coordinates are renamed to the model's names (a
   variable's ``<name>_error`` follows it); a mapped name the file lacks is refused;
2. **select** (``select = { level = 500 }``): one value along an extra dimension, by coordinate
   value; a value matches when it is within 1e-6 of its magnitude (absolute for values below
   1); otherwise the values present are listed;
3. **time**: the ``time`` coordinate is decoded with its own CF ``units`` and ``calendar`` and
   converted to model time (:mod:`dacli.io.times`); without units it is refused unless the
   file is declared ``model_time = true``; a file without a time coordinate is refused when
   one is needed. A ``time`` of standard name ``forecast_reference_time`` (a forecast file:
   the forecasts' start times) is replaced by the valid time over the same dimensions (after
   selecting one lead time), which is said in a note; without one the file is refused;
4. **grid** (gridded files): each model grid axis is looked up in the file's coordinate by
   value — within 1e-3 of the grid spacing, longitudes modulo 360 — so that descending axes
   (reanalysis latitudes 90 .. -90) are flipped and a larger (e.g. global) grid is cropped to
   the model's domain; both are reported. A grid point the file does not hold is refused,
   naming both coordinate ranges.

Packed data (int16 with ``scale_factor``/``add_offset``) and ``_FillValue`` are unpacked and
masked by xarray's CF decoding; variables' physical units are compared by the readers through
:mod:`dacli.io.units`. Each step's conversion is kept in ``notes`` and logged.

Not for dacli's own outputs read back for merging or plotting (those are dacli's layout).
Reference: CF Conventions 1.11 (sections 4, 8.1 packed data); cdo/nco habits for selection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from dacli.errors import DataError
from dacli.io.netcdf import open_netcdf
from dacli.io.times import TimeAxis

log = logging.getLogger("dacli")

SELECT_TOLERANCE = (
    1e-6  # relative (absolute below 1) distance of a select value from the coordinate value
)
FORECAST_REFERENCE_TIME = "forecast_reference_time"  # CF standard name of a forecast's start time
GRID_TOLERANCE = (
    1e-3  # fraction of the grid spacing within which a file coordinate is a model grid point
)


@dataclass(frozen=True)
class FileMapping:
    """How one input file's names map to dacli's: the config keys every input section shares."""

    names: dict = field(default_factory=dict)  # model variable -> file variable
    dims: dict = field(default_factory=dict)  # dacli dimension/coordinate -> file name
    select: dict = field(default_factory=dict)  # file (or dacli) dimension -> coordinate value kept
    model_time: bool = False  # the file's time numbers are model times (no units needed)

    @classmethod
    def of(cls, section) -> FileMapping:
        """The mapping of a config section with ``names``/``dims``/``select``/``model_time`` keys
        (or defaults)."""
        return cls(
            names=getattr(section, "names", {}),
            dims=getattr(section, "dims", {}),
            select=getattr(section, "select", {}),
            model_time=getattr(section, "model_time", False),
        )


@dataclass
class InputFile:
    """An input file after mapping, selection, time decoding and grid alignment."""

    dataset: xr.Dataset
    source: str  # the file's path (or a name for in-memory data) for messages
    what: str  # 'observations', 'background', 'truth', ...
    times: np.ndarray | None  # model times of the time coordinate (None when not asked for)
    notes: list[str]

    mapping: FileMapping = field(default_factory=FileMapping)

    def where(self, name: str) -> str:
        """'<what> file <path>, variable <the file's name>' (and the model's name when mapped)."""
        renamed = {ours: theirs for ours, theirs in self.mapping.names.items()}
        renamed.update(
            {f"{ours}_error": f"{theirs}_error" for ours, theirs in self.mapping.names.items()}
        )
        original = renamed.get(name, name)
        mapped = f" (model variable {name!r})" if original != name else ""
        return f"{self.what} file {self.source}, variable {original!r}{mapped}"


def open_input(
    source,
    what: str,
    mapping: FileMapping,
    time_axis: TimeAxis,
    *,
    layout=None,
    time: bool = True,
    grid: bool = True,
    name: str | None = None,
) -> InputFile:
    """Open ``source`` (a path or an open Dataset named ``name``) and apply the steps of the module
    docstring.

    ``time=False`` skips the time coordinate (a covariance file); ``grid=False`` skips the grid
    alignment (scattered observations, whose locations are interpolated instead).
    """
    if isinstance(source, xr.Dataset):
        dataset, label = source, name or "in-memory data"
    else:
        dataset, label = open_netcdf(source, what), str(source)
    notes: list[str] = []
    dataset = _rename(dataset, label, what, mapping)
    dataset = _select(dataset, label, what, mapping.select, notes)
    times = _decode_time(dataset, label, what, mapping, time_axis, notes) if time else None
    if grid and layout is not None:
        dataset = _align_grid(dataset, label, what, layout, notes, mapping.dims)
    for note in notes:
        log.info("%s file %s: %s", what, label, note)
    return InputFile(dataset, label, what, times, notes, mapping)


def _rename(dataset: xr.Dataset, label: str, what: str, mapping: FileMapping) -> xr.Dataset:
    present = set(map(str, dataset.variables)) | set(map(str, dataset.dims))
    renames: dict[str, str] = {}
    for kind, pairs in (("dims", mapping.dims), ("names", mapping.names)):
        for ours, theirs in pairs.items():
            if theirs == ours:
                continue
            if theirs not in present:
                found = ", ".join(sorted(present)) or "none"
                raise DataError(
                    f"{what} file {label}: {kind} maps {ours!r} to {theirs!r}, which the file does "
                    f"not have; its variables and dimensions are: {found}"
                )
            renames[theirs] = ours
            if kind == "names" and f"{theirs}_error" in present:
                renames[f"{theirs}_error"] = f"{ours}_error"
    if not renames:
        return dataset
    # a mapped name replaces whatever the file had under the model's name (e.g. names = { ssh =
    # "zos" } in a
    # file that also has an unrelated 'ssh')
    clashes = [new for old, new in renames.items() if new in present and new not in renames]
    dataset = dataset.drop_vars([c for c in clashes if c in dataset.variables])
    return dataset.rename(renames)


def matching_values(values: np.ndarray, wanted) -> np.ndarray:
    """(N,) True where a coordinate value is ``wanted``: numbers within SELECT_TOLERANCE, strings
    equal (``select``)."""
    values = np.asarray(values)
    if (
        values.dtype.kind in "biuf"
        and isinstance(wanted, (int, float))
        and not isinstance(wanted, bool)
    ):
        return np.abs(values.astype(float) - float(wanted)) <= SELECT_TOLERANCE * max(
            1.0, abs(float(wanted))
        )
    return values.astype(str) == str(wanted)


def _select(
    dataset: xr.Dataset, label: str, what: str, select: dict, notes: list[str]
) -> xr.Dataset:
    for dim, wanted in select.items():
        if dim not in dataset.dims:
            found = ", ".join(f"{d} ({n})" for d, n in dataset.sizes.items()) or "none"
            raise DataError(
                f"{what} file {label}: select names dimension {dim!r}, which the file does not "
                f"have; its dimensions are: {found}"
            )
        if dim not in dataset.variables:
            raise DataError(
                f"{what} file {label}: select = {{ {dim} = {wanted!r} }} selects by coordinate "
                f"value, but dimension {dim!r} has no coordinate variable"
            )
        values = np.asarray(dataset[dim].values)
        hits = np.flatnonzero(matching_values(values, wanted))
        if hits.size == 0:
            shown = ", ".join(map(str, values[:20])) + (", ..." if values.size > 20 else "")
            raise DataError(
                f"{what} file {label}: select = {{ {dim} = {wanted!r} }}: no {dim!r} value within "
                f"{SELECT_TOLERANCE:g} of {wanted!r}; the file has: {shown}"
            )
        if hits.size > 1:
            raise DataError(
                f"{what} file {label}: select = {{ {dim} = {wanted!r} }} matches {hits.size} "
                f"{dim!r} values"
            )
        units = dataset[dim].attrs.get("units")
        notes.append(f"selected {dim} = {values[hits[0]]}{' ' + units if units else ''}")
        dataset = dataset.isel({dim: int(hits[0])}, drop=True)
    return dataset


def _decode_time(
    dataset: xr.Dataset,
    label: str,
    what: str,
    mapping: FileMapping,
    time_axis: TimeAxis,
    notes: list[str],
) -> np.ndarray:
    if "time" not in dataset.variables:
        found = ", ".join(sorted(map(str, dataset.variables))) or "none"
        raise DataError(
            f"{what} file {label}: no time coordinate 'time'; the file has: {found}. Map the "
            "file's time "
            'with dims = { time = "valid_time" } (its name in the file)'
        )
    name = "time"
    if dataset["time"].attrs.get("standard_name") == FORECAST_REFERENCE_TIME:
        name = _valid_time(dataset, label, what, mapping)
        notes.append(
            f"time coordinate {mapping.dims.get('time', 'time')!r} holds the forecasts' reference "
            f"(start) times; each field is dated by its valid time {name!r} instead"
        )
    variable = dataset[name]
    if variable.dtype.kind not in "biuf":
        raise DataError(
            f"{what} file {label}: time coordinate {name!r} holds {variable.dtype} values; "
            "expected numbers with CF units ('<unit> since <date>')"
        )
    values = np.asarray(variable.values, dtype=float)
    units, calendar = variable.attrs.get("units"), variable.attrs.get("calendar")
    if mapping.model_time:
        if units is not None and units != time_axis.units:
            log.warning(
                "%s file %s: time units %r ignored: model_time = true takes the numbers as model "
                "time (%s)",
                what,
                label,
                units,
                time_axis.units,
            )
        notes.append("time numbers taken as model time (model_time = true)")
        return values
    times, note = time_axis.from_file(
        values, units, calendar, f"{what} file {label}, time coordinate {name!r}"
    )
    if note:
        notes.append(note)
    return times


def _valid_time(dataset: xr.Dataset, label: str, what: str, mapping: FileMapping) -> str:
    """The name of the valid time of a file whose ``time`` is a forecast reference time, or a
    DataError.

    A forecast file (dacli forecast's, or any CF tool's) stores ``time`` = the forecasts' start
    times
    and the valid time (start + lead) as another coordinate of standard name ``time``; once one lead
    time is selected (``select = { lead_time = ... }``) that valid time runs along ``time`` too.
    Taking
    the start times instead would date every field a lead time too early.
    """
    shape = dataset["time"].dims
    candidates = [
        str(name)
        for name, variable in dataset.variables.items()
        if name != "time" and variable.attrs.get("standard_name") == "time"
    ]
    usable = [name for name in candidates if dataset[name].dims == shape]
    if usable:
        return "valid_time" if "valid_time" in usable else usable[0]
    leads = sorted(
        {str(dim) for name in candidates for dim in dataset[name].dims if dim not in shape}
        | {
            str(name)
            for name, variable in dataset.variables.items()
            if variable.attrs.get("standard_name") == "forecast_period" and variable.ndim == 1
        }
    )
    reference = mapping.dims.get("time", "time")
    if leads:
        hint = (
            f"select one lead time with select = {{ {leads[0]} = ... }}: the valid time "
            f"({', '.join(candidates) or 'reference time + lead time'}) then dates each field"
        )
    else:
        hint = (
            "the file has no valid time (a coordinate of standard name 'time' over the same "
            "dimensions) to take "
            'instead; add one, or map the valid time with dims = { time = "..." }'
        )
    raise DataError(
        f"{what} file {label}: time coordinate {reference!r} holds forecast reference times "
        f"(standard name {FORECAST_REFERENCE_TIME!r}): the forecasts' start times, not the times "
        f"their fields are valid at; {hint}"
    )


def _align_grid(
    dataset: xr.Dataset, label: str, what: str, layout, notes: list[str], dims: dict
) -> xr.Dataset:
    """Pick the model's grid points along each axis by coordinate value (flip, crop), or refuse."""
    for axis in layout.axes:
        if (
            axis.name not in dataset.dims
            or axis.name not in dataset.variables
            or dataset[axis.name].ndim != 1
        ):
            continue
        found = np.asarray(dataset[axis.name].values, dtype=float)
        model = np.asarray(axis.values, dtype=float)
        distance = found[:, None] - model[None, :]
        comparable = found
        if axis.is_longitude:
            distance = (distance + 180.0) % 360.0 - 180.0
            comparable = np.mod(found, 360.0)
        if len(np.unique(comparable)) != len(comparable):
            raise DataError(
                f"{what} file {label}: coordinate {dims.get(axis.name, axis.name)!r} repeats values"
                f"{' (modulo 360)' if axis.is_longitude else ''}; each grid point must appear once"
            )
        tolerance = GRID_TOLERANCE * abs(axis.spacing)
        nearest = np.argmin(np.abs(distance), axis=0)
        matched = np.abs(distance[nearest, np.arange(len(model))]) <= tolerance
        if not matched.all():
            first_missing = model[~matched][0]
            theirs = dims.get(axis.name, axis.name)
            named = (
                f"{theirs!r} (model axis {axis.name!r})" if theirs != axis.name else repr(axis.name)
            )
            raise DataError(
                f"{what} file {label}: coordinate {named} runs {found[0]:g} .. {found[-1]:g} "
                f"({len(found)} values); the model grid's {axis.name!r} runs {model[0]:g} .. "
                f"{model[-1]:g} ({len(model)} values, spacing {axis.spacing:g}) and "
                f"{int((~matched).sum())} of its points (e.g. {first_missing:g}) are not in the "
                f"file within {GRID_TOLERANCE:g} of the spacing. Gridded files must hold the "
                "model's grid points (a larger grid is cropped); use the scattered layout for "
                "other locations"
            )
        if np.array_equal(nearest, np.arange(len(found))):
            continue
        if np.array_equal(nearest, np.arange(len(found))[::-1]):
            notes.append(
                f"{axis.name!r} runs {found[0]:g} .. {found[-1]:g} in the file: flipped to the "
                "model's order"
            )
        else:
            notes.append(
                f"{axis.name!r} cropped to the model domain: {len(found)} values {found[0]:g} .. "
                f"{found[-1]:g} in the file, {len(model)} kept ({model[0]:g} .. {model[-1]:g})"
            )
        dataset = dataset.isel({axis.name: nearest})
    return dataset
