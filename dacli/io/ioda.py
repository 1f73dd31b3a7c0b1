"""Read and write observations as JCSDA IODA v3 files (the subset dacli understands).

IODA (Interface for Observation Data Access) is the observation-file format of JCSDA's JEDI
data-assimilation system. A v3 file, as JCSDA's ioda-converters write it, is NetCDF-4 with groups,
all along the root dimension ``Location`` (with, usually, a root variable ``Location`` and the root
attributes ``_ioda_layout = "ObsGroup"``, ``_ioda_layout_version = 3``):

- ``ObsValue/<var>``: the observed values (``units`` attribute);
- ``ObsError/<var>``: their error standard deviations (else ``observations.error_std``);
- ``PreQC/<var>`` (optional): the provider's quality flags, 0 = good;
- ``MetaData/dateTime``: int64 seconds since 1970-01-01T00:00:00Z (its ``units`` attribute,
  ``calendar`` if any; without units IODA's default is assumed only in a file that declares the
  IODA layout), ``MetaData/latitude``, ``MetaData/longitude`` and any other 1-D MetaData asked
  for as a coordinate;
- radiances: ``ObsValue/<var>`` along (``Location``, ``Channel``), the channel numbers in the root
  variable ``Channel``; one channel is read, chosen with ``select`` (``observations.select``,
  e.g. ``{ Channel = 7 }``). The same holds for any other second dimension with a root variable.

Missing values are the variable's ``_FillValue`` (or ``missing_value``), NaN, or IODA's
sentinels (float -3.3687953e+38, int64 -9223372036854775801, int32 -2147483643). Locations
without a time, or whose PreQC flag is not accepted, are dropped and counted; missing values
and errors stay NaN (dacli flags them later). Times are converted to model time with
:class:`dacli.io.times.TimeAxis` (the ``[time]`` section), values and errors to the model
variable's units with :mod:`dacli.io.units`; which window a time falls in is decided elsewhere.

:func:`ioda_tree` writes the same layout (``dacli simulate`` with ``observations.layout = "ioda"``).

Not for: old flat IODA v1/v2 files (``sst@ObsValue``) and v2 files (dimension ``nlocs``), which
are refused with a hint to upgrade them; ObsGroups other than the ones above (hofx, ombg, ... are
ignored when reading; :mod:`dacli.io.ioda_feedback` writes them); model calendars that are not
real-world ones (``noleap``, ``360_day``: IODA's dateTime is a real date); several channels at once.

Reference: JCSDA JEDI documentation, "IODA" (file format, v3 conventions and missing values),
https://jointcenterforsatellitedataassimilation-jedi-docs.readthedocs-hosted.com/ ; the
ioda-converters (https://github.com/JCSDA/ioda-converters) for the layout written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from dacli.errors import ConfigError, DataError
from dacli.io.inputs import matching_values
from dacli.io.netcdf import check_netcdf_file
from dacli.io.times import REAL_WORLD, TimeAxis
from dacli.io.units import to_model_units

log = logging.getLogger("dacli")

LOCATION = "Location"
FLOAT_MISSING = -3.3687953e38
INT64_MISSING = -9223372036854775801
INT32_MISSING = -2147483643
EPOCH_UNITS = "seconds since 1970-01-01T00:00:00Z"  # IODA's dateTime units (and its default)
LAYOUT_ATTRIBUTES = ("_ioda_layout", "ioda_layout")  # a root attribute that marks an IODA file
# Compared after conversion to float64: a float32 sentinel, a float64 one, and the integer ones
# (int64 -> float64 rounds the same way for the data and for the sentinel).
_SENTINELS = np.array(
    [
        FLOAT_MISSING,
        float(np.float32(FLOAT_MISSING)),
        float(np.int64(INT64_MISSING)),
        float(INT32_MISSING),
    ]
)
_V3 = "dacli reads IODA v3 (groups ObsValue, ObsError, MetaData along dimension 'Location')"
_UPGRADE_HINT = (
    f"{_V3}; convert the file with JEDI's ioda-upgrade tools (ioda-upgrade-v1-to-v2, then "
    "ioda-upgrade-v2-to-v3)"
)


@dataclass(frozen=True)
class IodaVariable:
    """One ObsValue variable's kept locations (P of them), in file order."""

    name: str  # the file's variable name (under ObsValue/)
    times: np.ndarray  # (P,) model times (TimeAxis)
    values: np.ndarray  # (P,) in the model's units when asked, NaN where missing
    errors: np.ndarray  # (P,) error std, same units, NaN where missing
    coordinates: dict[str, np.ndarray]  # name -> (P,) float, NaN where missing
    rejected_preqc: int  # dropped: PreQC not in accept_preqc (among locations with a time)
    rejected_time: int  # dropped: dateTime missing
    notes: tuple[
        str, ...
    ] = ()  # conversions made (times, units), for the caller to log; the time note is in each


def _missing(values: np.ndarray) -> np.ndarray:
    return np.isnan(values) | np.isin(values, _SENTINELS)


def _listing(values) -> str:
    """Coordinate values for messages: integer runs as ranges ('1-5, 7, 9-10'), at most 40 items."""
    values = list(values)
    numbers = np.asarray(values) if values else np.zeros(0)
    items: list[str] = []
    if numbers.dtype.kind in "iu" or (
        numbers.dtype.kind == "f"
        and np.all(np.isfinite(numbers))
        and np.all(numbers == np.round(numbers))
    ):
        runs: list[list[int]] = []  # [first, last] of each run of consecutive integers
        for value in (int(v) for v in numbers):
            if runs and value == runs[-1][1] + 1:
                runs[-1][1] = value
            else:
                runs.append([value, value])
        items = [str(first) if first == last else f"{first}-{last}" for first, last in runs]
    else:
        items = [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in values]
    text = ", ".join(items[:40]) + (f", ... ({len(values)} values)" if len(items) > 40 else "")
    return text or "none"


def _open_groups(path: Path) -> dict[str, xr.Dataset]:
    what = "observations"
    check_netcdf_file(path, what)
    try:
        groups = xr.open_groups(path, engine="netcdf4", decode_times=False, decode_timedelta=False)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataError(f"{what} file {path}: not a readable NetCDF file ({reason})") from None
    except Exception as exc:
        raise DataError(
            f"{what} file {path}: cannot be read as NetCDF ({type(exc).__name__}: {exc})"
        ) from None
    try:
        return {name.strip("/"): dataset.load() for name, dataset in groups.items()}
    finally:
        for dataset in groups.values():
            dataset.close()


class _File:
    """The loaded groups of one IODA file, with checked access to its variables along Location."""

    def __init__(self, path: Path, select: Mapping[str, float | int | str]):
        self.path = path
        self.groups = _open_groups(path)
        self.root = self.groups.get("", xr.Dataset())
        self.select = dict(select)
        self.used: set[str] = set()  # select keys some variable read needed
        if "ObsValue" not in self.groups and any("@" in str(name) for name in self.root.variables):
            raise DataError(
                f"observations file {path}: this is an IODA v1/v2 layout (flat variables such as "
                f"{next(str(n) for n in self.root.variables if '@' in str(n))!r}, no groups); "
                f"{_UPGRADE_HINT}"
            )
        for group in ("ObsValue", "MetaData"):
            self.group(group)

    @property
    def declares_ioda(self) -> bool:
        return any(name in self.root.attrs for name in LAYOUT_ATTRIBUTES)

    def group(self, group: str) -> xr.Dataset:
        if group not in self.groups:
            found = ", ".join(sorted(g for g in self.groups if g)) or "none"
            raise DataError(
                f"observations file {self.path}: no group {group!r}; groups found: {found}; {_V3}"
            )
        return self.groups[group]

    def has(self, group: str, name: str) -> bool:
        return group in self.groups and name in self.groups[group].data_vars

    def array(self, group: str, name: str) -> xr.DataArray:
        dataset = self.group(group)
        if name not in dataset.data_vars:
            found = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
            raise DataError(
                f"observations file {self.path}: no variable '{group}/{name}'; variables found: "
                f"{found}"
            )
        return dataset[name]

    def read(self, group: str, name: str) -> np.ndarray:
        """``group/name`` as float64 along Location (one index of each other dimension, by
        ``select``), NaN where
        missing."""
        array = self.array(group, name)
        where = f"observations file {self.path}: variable '{group}/{name}'"
        if not array.dims or array.dims[0] != LOCATION:
            hint = f". {_UPGRADE_HINT}" if "nlocs" in array.dims else ""
            raise DataError(
                f"{where} has dimensions {tuple(array.dims)}; expected ({LOCATION!r},) or "
                f"({LOCATION!r}, 'Channel'){hint}"
            )
        if array.dtype.kind not in "biuf":
            raise DataError(f"{where} holds {array.dtype} values; expected numbers")
        if len(array.dims) > 1:
            array = array.isel(
                {dim: self.index(str(dim), where, array.dims) for dim in array.dims[1:]}
            )
        values = np.asarray(array.values, dtype=float)
        values[_missing(values)] = np.nan
        return values

    def index(self, dim: str, where: str, dims: tuple) -> int:
        """The index along ``dim`` whose root coordinate equals ``select[dim]``; DataError naming
        the values present."""
        if dim not in self.root.variables:
            raise DataError(
                f"{where} has dimensions {tuple(dims)}; dacli reads one {dim} of it, chosen by the "
                f"root variable {dim!r} holding the {dim} values, which the file does not have"
            )
        coordinate = self.root[dim].values
        present = _listing(coordinate)
        if dim not in self.select:
            raise DataError(
                f"{where} has dimensions {tuple(dims)}: choose one {dim} with observations.select "
                f"= {{ {dim} = <value> }}; {dim} values present: {present}"
            )
        self.used.add(dim)
        wanted = self.select[dim]
        matches = np.flatnonzero(matching_values(coordinate, wanted))
        if matches.size == 0:
            raise DataError(
                f"{where}: observations.select asks for {dim} {wanted!r}, which the file does not "
                f"hold; {dim} values present: {present}"
            )
        return int(matches[0])

    def model_times(self, time_axis: TimeAxis) -> tuple[np.ndarray, str | None]:
        """MetaData/dateTime as model times (NaN where missing) and the conversion note."""
        metadata = self.group("MetaData")
        where = f"observations file {self.path}: variable 'MetaData/dateTime'"
        if "dateTime" not in metadata.data_vars:
            hint = f". {_UPGRADE_HINT}" if "datetime" in metadata.data_vars else ""
            raise DataError(
                f"observations file {self.path}: no 'MetaData/dateTime' (int64 {EPOCH_UNITS}); "
                "MetaData variables found: "
                f"{', '.join(sorted(map(str, metadata.data_vars))) or 'none'}{hint}"
            )
        values = self.read("MetaData", "dateTime")
        if not np.isfinite(values).any():
            if values.size:
                raise DataError(
                    f"{where}: all {values.size} values are missing (_FillValue or IODA's "
                    f"{INT64_MISSING}); expected int64 {EPOCH_UNITS}: there is nothing to "
                    "assimilate"
                )
            return values, None  # no locations at all: the caller reports an empty file
        attrs = metadata["dateTime"].attrs
        units, calendar = attrs.get("units"), attrs.get("calendar")
        if units is None:
            if not self.declares_ioda:
                raise DataError(
                    f"{where} has no 'units' attribute, and the file does not declare the IODA "
                    f"layout (no root attribute '_ioda_layout'), so IODA's default {EPOCH_UNITS!r} "
                    f"cannot be assumed; expected units such as {EPOCH_UNITS!r}: add them to the "
                    "file"
                )
            units = EPOCH_UNITS
        times, note = time_axis.from_file(values, str(units), calendar, where)
        return times, (f"'MetaData/dateTime' ({units!r}): {note}" if note else None)


def _check_select(file: _File, variables: list[str], select: Mapping) -> None:
    unused = [key for key in select if key not in file.used]
    if unused:
        dims = {name: tuple(file.array("ObsValue", name).dims) for name in variables}
        raise DataError(
            f"observations file {file.path}: observations.select names "
            f"{', '.join(map(repr, unused))}, which is not a dimension of the variables read ("
            + ", ".join(f"'ObsValue/{name}' {d}" for name, d in dims.items())
            + "); remove it from observations.select"
        )


def read_ioda(
    path: str | Path,
    variables: list[str],
    *,
    error_std: float | None,
    accept_preqc: tuple[int, ...] = (0,),
    time_axis: TimeAxis = TimeAxis(),
    units: str | None = None,
    coordinates: tuple[str, ...] = ("latitude", "longitude"),
    select: dict[str, float | int | str] | None = None,
) -> list[IodaVariable]:
    """Read ``ObsValue/<var>`` for each of ``variables`` with errors, model times and MetaData
    ``coordinates``.

    Locations with a missing dateTime are dropped first, then those whose PreQC flag (when the
    file has ``PreQC/<var>``) is not in ``accept_preqc``; a missing PreQC flag is not accepted.
    ``units`` (the model variable's units) converts ObsValue and ObsError (as a spread) from their
    ``units`` attributes; None leaves them as they are. ``select`` picks one value of a second
    dimension (``{"Channel": 7}``). A variable whose every location with a time fails PreQC, or a
    file whose every dateTime is missing, is a :class:`DataError`.
    """
    file = _File(Path(path), select or {})
    prefix = f"observations file {file.path}: "
    observed = {name: file.read("ObsValue", name) for name in variables}
    times, time_note = file.model_times(time_axis)
    coordinate_values = {name: file.read("MetaData", name) for name in coordinates}
    _check_select(file, variables, select or {})
    has_time = ~np.isnan(times)
    result = []
    for name in variables:
        label = f"'ObsValue/{name}'" + "".join(
            f" ({dim} {file.select[str(dim)]!r})" for dim in file.array("ObsValue", name).dims[1:]
        )
        values = observed[name]
        notes = [time_note] if time_note else []
        if units is not None:
            values, note = to_model_units(
                values,
                file.array("ObsValue", name).attrs.get("units"),
                units,
                f"{prefix}variable 'ObsValue/{name}'",
            )
            notes += [note.removeprefix(prefix)] if note else []
        if file.has("ObsError", name):
            errors = file.read("ObsError", name)
            if units is not None:
                errors, note = to_model_units(
                    errors,
                    file.array("ObsError", name).attrs.get("units"),
                    units,
                    f"{prefix}variable 'ObsError/{name}'",
                    difference=True,
                )
                notes += [note.removeprefix(prefix)] if note else []
        elif error_std is None:
            raise DataError(
                f"observations file {file.path}: no variable 'ObsError/{name}' and "
                f"observations.error_std is not set; add ObsError/{name} (error standard "
                "deviations) to the file or set observations.error_std"
            )
        else:
            errors = np.full(values.shape, float(error_std))
        accepted = np.ones(values.shape, dtype=bool)
        if file.has("PreQC", name):
            flags = file.read("PreQC", name)
            accepted = np.isin(flags, np.asarray(accept_preqc, dtype=float))
            if has_time.any() and not (has_time & accepted).any():
                raise DataError(_all_rejected(prefix, name, label, flags[has_time], accept_preqc))
        keep = has_time & accepted
        result.append(
            IodaVariable(
                name=name,
                times=times[keep],
                values=values[keep],
                errors=errors[keep],
                coordinates={key: value[keep] for key, value in coordinate_values.items()},
                rejected_preqc=int(np.count_nonzero(has_time & ~accepted)),
                rejected_time=int(np.count_nonzero(~has_time)),
                notes=tuple(notes),
            )
        )
    return result


def _all_rejected(prefix: str, name: str, label: str, flags: np.ndarray, accept_preqc) -> str:
    found, counts = np.unique(flags[~np.isnan(flags)], return_counts=True)
    parts = [
        f"{int(flag) if flag == int(flag) else flag} ({count} location{'s' if count != 1 else ''})"
        for flag, count in zip(found, counts, strict=True)
    ]
    missing = int(np.count_nonzero(np.isnan(flags)))
    if missing:
        parts.append(f"missing ({missing} location{'s' if missing != 1 else ''})")
    suggestion = sorted({*map(int, accept_preqc), *(int(f) for f in found if f == int(f))})
    return (
        f"{prefix}all {flags.size} locations of {label} with a time are rejected by their PreQC "
        f"flag: PreQC/{name} flags found: {', '.join(parts)}; accepted "
        f"(observations.accept_preqc): {list(map(int, accept_preqc))}. To assimilate them, add "
        f"their flags to observations.accept_preqc (e.g. accept_preqc = {suggestion}), if the "
        "provider's flags say they are usable"
    )


def ioda_datetimes(model_time: np.ndarray, time_axis: TimeAxis) -> np.ndarray:
    """Model times -> IODA dateTime: int64 seconds since 1970-01-01T00:00:00Z (NaN -> IODA's int64
    sentinel).

    Through cftime dates; a model calendar that is not a real-world one is a :class:`ConfigError`.
    Times are rounded to whole seconds (IODA's resolution); a rounding over 1 ms is logged.
    """
    if time_axis.calendar not in REAL_WORLD:
        raise ConfigError(
            [
                f"time.calendar = {time_axis.calendar!r}: IODA's MetaData/dateTime is a real date "
                f"({EPOCH_UNITS}, standard calendar), which a {time_axis.calendar} model time has "
                f"not; use a real-world calendar ({', '.join(sorted(REAL_WORLD))}) or "
                "observations.layout = 'scattered' (CF points)"
            ]
        )
    model_time = np.asarray(model_time, dtype=float)
    seconds = np.full(model_time.shape, INT64_MISSING, dtype=np.int64)
    finite = np.isfinite(model_time)
    if finite.any():
        unique, inverse = np.unique(model_time[finite], return_inverse=True)
        dates = [
            d if time_axis.calendar == "standard" else d.change_calendar("standard")
            for d in time_axis.dates(unique).ravel()
        ]
        exact = np.asarray(cftime.date2num(dates, EPOCH_UNITS, "standard"), dtype=float)
        rounded = np.rint(exact)
        if np.max(np.abs(rounded - exact)) > 1e-3:
            log.warning(
                "IODA dateTime: model times rounded to whole seconds (by up to %.3g s)",
                float(np.max(np.abs(rounded - exact))),
            )
        seconds[finite] = rounded.astype(np.int64)[inverse.ravel()]
    return seconds


def float_variable(values, units: str | None = None) -> xr.Variable:
    """float32 along Location, NaN written as IODA's float sentinel (also its ``_FillValue``)."""
    data = np.asarray(values, dtype=float)
    data = np.where(np.isfinite(data), data, FLOAT_MISSING).astype(np.float32)
    return xr.Variable(
        (LOCATION,),
        data,
        {"units": units} if units else {},
        {"_FillValue": np.float32(FLOAT_MISSING)},
    )


def int_variable(values, missing=None) -> xr.Variable:
    """int32 along Location (``missing``: where True, IODA's int32 sentinel, its ``_FillValue``)."""
    data = np.asarray(values).astype(np.int32)
    if missing is not None:
        data = np.where(missing, np.int32(INT32_MISSING), data)
    return xr.Variable((LOCATION,), data, {}, {"_FillValue": np.int32(INT32_MISSING)})


def root_and_metadata(
    model_time: np.ndarray,
    time_axis: TimeAxis,
    coordinates: dict[str, np.ndarray],
    attrs: dict | None = None,
    coordinate_units: dict[str, str] | None = None,
) -> dict[str, xr.Dataset]:
    """The root group (Location, layout attributes, ``attrs``) and MetaData (dateTime, coordinates)
    of a file."""
    seconds = ioda_datetimes(model_time, time_axis)
    coordinate_units = {
        "latitude": "degrees_north",
        "longitude": "degrees_east",
        **(coordinate_units or {}),
    }
    for name, values in coordinates.items():
        if np.shape(values) != seconds.shape:
            raise ValueError(
                f"IODA MetaData/{name}: shape {np.shape(values)} does not match the "
                f"{seconds.size} times"
            )
    date_time = xr.Variable(
        (LOCATION,), seconds, {"units": EPOCH_UNITS}, {"_FillValue": np.int64(INT64_MISSING)}
    )
    return {
        "/": xr.Dataset(
            coords={
                LOCATION: xr.Variable(
                    (LOCATION,),
                    np.arange(seconds.size, dtype=np.int32),
                    {"long_name": "location index"},  # CF 3.3 (JEDI reads only the values)
                )
            },
            attrs={
                "_ioda_layout": "ObsGroup",
                "_ioda_layout_version": np.int32(3),
                **(attrs or {}),
            },
        ),
        "/MetaData": xr.Dataset(
            {
                "dateTime": date_time,
                **{
                    name: float_variable(values, coordinate_units.get(name))
                    for name, values in coordinates.items()
                },
            }
        ),
    }


def ioda_tree(
    variables: dict[str, tuple[np.ndarray, np.ndarray]],
    model_time: np.ndarray,
    time_axis: TimeAxis,
    coordinates: dict[str, np.ndarray],
    units: str,
    attrs: dict | None = None,
    coordinate_units: dict[str, str] | None = None,
) -> xr.DataTree:
    """An IODA v3 file as JCSDA's converters lay it out, as groups to write with ``to_netcdf``.

    ``variables`` maps a name to (values, error std) along the P locations, in ``units``;
    ``model_time`` (on ``time_axis``) becomes int64 ``MetaData/dateTime`` seconds since 1970;
    ``coordinates`` become float32 MetaData (units: ``coordinate_units``, else degrees_north /
    degrees_east for latitude / longitude). PreQC is 0 everywhere. NaN becomes IODA's float
    sentinel, declared as ``_FillValue``. Root: dimension and int32 variable ``Location``,
    ``_ioda_layout = "ObsGroup"``, ``_ioda_layout_version = 3``, then ``attrs``.
    """
    size = np.size(model_time)
    for name, (values, errors) in variables.items():
        if np.shape(values) != (size,) or np.shape(errors) != (size,):
            raise ValueError(
                f"ioda_tree: {name}: values {np.shape(values)} and errors {np.shape(errors)} "
                f"do not match the {size} times"
            )
    groups = root_and_metadata(model_time, time_axis, coordinates, attrs, coordinate_units)
    groups["/ObsValue"] = xr.Dataset(
        {name: float_variable(v, units) for name, (v, _) in variables.items()}
    )
    groups["/ObsError"] = xr.Dataset(
        {name: float_variable(e, units) for name, (_, e) in variables.items()}
    )
    groups["/PreQC"] = xr.Dataset({name: int_variable(np.zeros(size)) for name in variables})
    return xr.DataTree.from_dict(
        {key: groups[key] for key in ("/", "/ObsValue", "/ObsError", "/PreQC", "/MetaData")}
    )
