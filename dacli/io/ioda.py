"""Read observations from a JCSDA IODA v3 file (the subset dacli understands).

IODA (Interface for Observation Data Access) is the observation-file format of JCSDA's JEDI
data-assimilation system. A v3 file is NetCDF-4 with groups, all along the root dimension
``Location``:

- ``ObsValue/<var>``: the observed values;
- ``ObsError/<var>``: their error standard deviations (else ``observations.error_std``);
- ``PreQC/<var>`` (optional): the provider's quality flags, 0 = good;
- ``MetaData/dateTime``: int64 seconds since 1970-01-01T00:00:00Z (the ``units`` attribute;
  another ``<unit> since <date>`` epoch is honoured), ``MetaData/latitude``,
  ``MetaData/longitude`` and any other 1-D MetaData asked for as a coordinate.

Missing values are the variable's ``_FillValue`` (or ``missing_value``), NaN, or IODA's
sentinels (float -3.3687953e+38, int64 -9223372036854775801, int32 -2147483643). Locations
without a time, or whose PreQC flag is not accepted, are dropped and counted; missing values
and errors stay NaN (dacli flags them later). Times are converted to model time
(``output.time_units``); which window a time falls in (half-open windows) is decided elsewhere.
Old flat IODA v1/v2 files (``sst@ObsValue``) and v2 files (dimension ``nlocs``) are refused
with a hint to upgrade them.

:func:`ioda_tree` writes the same subset (``dacli simulate`` with ``observations.layout = "ioda"``).

Reference: JCSDA IODA documentation,
https://jointcenterforsatellitedataassimilation-jedi-docs.readthedocs-hosted.com/
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from dacli.errors import ConfigError, DataError
from dacli.io.netcdf import check_netcdf_file

LOCATION = "Location"
FLOAT_MISSING = -3.3687953e38
INT64_MISSING = -9223372036854775801
INT32_MISSING = -2147483643
# Compared after conversion to float64: a float32 sentinel, a float64 one, and the integer ones
# (int64 -> float64 rounds the same way for the data and for the sentinel).
_SENTINELS = np.array(
    [FLOAT_MISSING, float(np.float32(FLOAT_MISSING)), float(np.int64(INT64_MISSING)), float(INT32_MISSING)]
)
_UNIT_SECONDS = {
    **dict.fromkeys(("seconds", "second", "secs", "sec", "s"), 1.0),
    **dict.fromkeys(("minutes", "minute", "mins", "min"), 60.0),
    **dict.fromkeys(("hours", "hour", "hrs", "hr", "h"), 3600.0),
    **dict.fromkeys(("days", "day", "d"), 86400.0),
}
_V3 = "dacli reads IODA v3 (groups ObsValue, ObsError, MetaData along dimension 'Location')"
_UPGRADE_HINT = (
    f"{_V3}; convert the file with JEDI's ioda-upgrade tools (ioda-upgrade-v1-to-v2, then ioda-upgrade-v2-to-v3)"
)


@dataclass(frozen=True)
class IodaVariable:
    """One ObsValue variable's kept locations (P of them), in file order."""

    name: str  # the file's variable name (under ObsValue/)
    times: np.ndarray  # (P,) model times, see model_times
    values: np.ndarray  # (P,) NaN where missing
    errors: np.ndarray  # (P,) error std, NaN where missing
    coordinates: dict[str, np.ndarray]  # name -> (P,) float, NaN where missing
    rejected_preqc: int  # dropped: PreQC not in accept_preqc (among locations with a time)
    rejected_time: int  # dropped: dateTime missing


def _parse_units(units: str) -> tuple[float, float]:
    """``"<unit> since <date>"`` -> (seconds of one unit, the date in seconds since 1970 UTC)."""
    match = re.fullmatch(r"\s*(\w+)\s+since\s+(\S.*?)\s*", str(units))
    if not match:
        raise ValueError(f"{units!r} is not of the form '<unit> since <date>'")
    unit, date = match.group(1).lower(), match.group(2)
    if unit not in _UNIT_SECONDS:
        raise ValueError(f"{units!r}: unknown unit {unit!r}; use seconds, minutes, hours or days")
    try:
        epoch = -float(cftime.date2num(datetime(1970, 1, 1), f"seconds since {date}", calendar="standard"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{units!r}: cannot read the date {date!r} ({exc})") from None
    return _UNIT_SECONDS[unit], epoch


def model_times(seconds_since_1970: np.ndarray, time_units: str) -> np.ndarray:
    """Seconds since 1970-01-01T00:00:00Z -> float times in ``time_units`` (a CF "<unit> since <date>")."""
    try:
        unit, epoch = _parse_units(time_units)
    except ValueError as exc:
        raise ConfigError([f"output.time_units: {exc}"]) from None
    return (np.asarray(seconds_since_1970, dtype=float) - epoch) / unit


def _missing(values: np.ndarray) -> np.ndarray:
    return np.isnan(values) | np.isin(values, _SENTINELS)


def _open_groups(path: Path) -> dict[str, xr.Dataset]:
    what = "observations"
    check_netcdf_file(path, what)
    try:
        groups = xr.open_groups(path, engine="netcdf4", decode_times=False)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataError(f"{what} file {path}: not a readable NetCDF file ({reason})") from None
    except Exception as exc:
        raise DataError(f"{what} file {path}: cannot be read as NetCDF ({type(exc).__name__}: {exc})") from None
    try:
        return {name.strip("/"): dataset.load() for name, dataset in groups.items()}
    finally:
        for dataset in groups.values():
            dataset.close()


class _File:
    """The loaded groups of one IODA file, with checked access to its 1-D variables."""

    def __init__(self, path: Path):
        self.path = path
        self.groups = _open_groups(path)
        root = self.groups.get("", xr.Dataset())
        if "ObsValue" not in self.groups and any("@" in str(name) for name in root.variables):
            raise DataError(
                f"observations file {path}: this is an IODA v1/v2 layout (flat variables such as "
                f"{next(str(n) for n in root.variables if '@' in str(n))!r}, no groups); {_UPGRADE_HINT}"
            )
        for group in ("ObsValue", "MetaData"):
            self.group(group)

    def group(self, group: str) -> xr.Dataset:
        if group not in self.groups:
            found = ", ".join(sorted(g for g in self.groups if g)) or "none"
            raise DataError(f"observations file {self.path}: no group {group!r}; groups found: {found}; {_V3}")
        return self.groups[group]

    def has(self, group: str, name: str) -> bool:
        return group in self.groups and name in self.groups[group].data_vars

    def read(self, group: str, name: str) -> np.ndarray:
        """``group/name`` as float64 along Location, NaN where missing."""
        dataset = self.group(group)
        if name not in dataset.data_vars:
            found = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
            raise DataError(f"observations file {self.path}: no variable '{group}/{name}'; variables found: {found}")
        array = dataset[name]
        if array.dims != (LOCATION,):
            hint = f". {_UPGRADE_HINT}" if "nlocs" in array.dims else ""
            raise DataError(
                f"observations file {self.path}: variable '{group}/{name}' has dimensions {tuple(array.dims)}; "
                f"expected ({LOCATION!r},){hint}"
            )
        if array.dtype.kind not in "biuf":
            raise DataError(
                f"observations file {self.path}: variable '{group}/{name}' holds {array.dtype} values; expected numbers"
            )
        values = np.asarray(array.values, dtype=float)
        values[_missing(values)] = np.nan
        return values

    def seconds_since_1970(self) -> np.ndarray:
        metadata = self.group("MetaData")
        if "dateTime" not in metadata.data_vars:
            hint = f". {_UPGRADE_HINT}" if "datetime" in metadata.data_vars else ""
            raise DataError(
                f"observations file {self.path}: no 'MetaData/dateTime' (int64 seconds since "
                f"1970-01-01T00:00:00Z){hint}"
            )
        seconds = self.read("MetaData", "dateTime")
        units = metadata["dateTime"].attrs.get("units", "seconds since 1970-01-01T00:00:00Z")
        try:
            unit, epoch = _parse_units(units)
        except ValueError as exc:
            raise DataError(
                f"observations file {self.path}: 'MetaData/dateTime' has unusable units ({exc}); "
                "expected 'seconds since 1970-01-01T00:00:00Z'"
            ) from None
        return seconds * unit + epoch


def read_ioda(
    path: str | Path,
    variables: list[str],
    *,
    error_std: float | None,
    accept_preqc: tuple[int, ...] = (0,),
    time_units: str = "days since 2000-01-01 00:00:00",
    coordinates: tuple[str, ...] = ("latitude", "longitude"),
) -> list[IodaVariable]:
    """Read ``ObsValue/<var>`` for each of ``variables`` with errors, times and MetaData ``coordinates``.

    Locations with a missing dateTime are dropped first, then those whose PreQC flag (when the
    file has ``PreQC/<var>``) is not in ``accept_preqc``; a missing PreQC flag is not accepted.
    """
    model_times(np.empty(0), time_units)  # a bad output.time_units is reported before any file is read
    file = _File(Path(path))
    observed = {name: file.read("ObsValue", name) for name in variables}
    seconds = file.seconds_since_1970()
    times = model_times(seconds, time_units)
    coordinate_values = {name: file.read("MetaData", name) for name in coordinates}
    has_time = ~np.isnan(seconds)
    result = []
    for name in variables:
        values = observed[name]
        if file.has("ObsError", name):
            errors = file.read("ObsError", name)
        elif error_std is None:
            raise DataError(
                f"observations file {file.path}: no variable 'ObsError/{name}' and observations.error_std is not set; "
                f"add ObsError/{name} (error standard deviations) to the file or set observations.error_std"
            )
        else:
            errors = np.full(values.shape, float(error_std))
        accepted = np.ones(values.shape, dtype=bool)
        if file.has("PreQC", name):
            accepted = np.isin(file.read("PreQC", name), np.asarray(accept_preqc, dtype=float))
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
            )
        )
    return result


def ioda_tree(variables: dict[str, tuple[np.ndarray, np.ndarray]], model_time: np.ndarray, time_units: str,
              coordinates: dict[str, np.ndarray], attrs: dict | None = None) -> xr.DataTree:
    """An IODA v3 file as groups: ObsValue/ObsError per variable, MetaData/dateTime and coordinates.

    ``variables`` maps a name to (values, error std) along the P locations; ``model_time`` (in
    ``time_units``) becomes int64 ``dateTime`` seconds since 1970; NaN values become IODA's
    float sentinel, also declared as ``_FillValue``.
    """
    unit, epoch = _parse_units(time_units)
    seconds = np.rint(np.asarray(model_time, float) * unit + epoch).astype(np.int64)
    fill = {"_FillValue": np.float32(FLOAT_MISSING)}

    def floats(values) -> np.ndarray:
        return np.where(np.isfinite(values), values, FLOAT_MISSING).astype(np.float32)

    groups = {
        "/": xr.Dataset(attrs={"ioda_layout": "ObsGroup", "ioda_layout_version": np.int32(0), **(attrs or {})}),
        "/ObsValue": xr.Dataset({name: (LOCATION, floats(v)) for name, (v, _) in variables.items()}),
        "/ObsError": xr.Dataset({name: (LOCATION, floats(e)) for name, (_, e) in variables.items()}),
        "/MetaData": xr.Dataset({
            "dateTime": (LOCATION, seconds, {"units": "seconds since 1970-01-01T00:00:00Z"}),
            **{name: (LOCATION, floats(values)) for name, values in coordinates.items()},
        }),
    }
    tree = xr.DataTree.from_dict(groups)
    for group in ("ObsValue", "ObsError", "MetaData"):
        for name in tree[group].data_vars:
            if tree[group][name].dtype == np.float32:
                tree[group][name].encoding.update(fill)
    return tree
