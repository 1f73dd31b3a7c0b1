"""Discovery metadata (ACDD-1.3) of every file dacli writes, filled from ``[output]`` and the data.

Each writer (analysis, observation-space, forecast, merged, simulate's files) hands its dataset
(or IODA tree) to :func:`describe` with a :class:`Discovery` (who made the file and what it is
about: ``[output]``, :meth:`dacli.config.schema.OutputConfig.discovery`) and a
:class:`Description` (what the writer knows: a summary generated from the run, keywords, the
processing level, the references, each variable's ISO 19115-1 ``coverage_content_type``).
:func:`describe` adds ``Conventions = "CF-1.11, ACDD-1.3"``, the ACDD attributes given, the
dates (``date_created`` = now, ISO 8601 UTC) and the coverage computed from the data itself:

- ``time_coverage_start/end/duration/resolution`` from every time variable (standard name
  ``time`` or ``axis = "T"``, or IODA's ``MetaData/dateTime``), decoded with cftime in their own
  units and calendar;
- ``geospatial_lat/lon_min/max/units/resolution``, ``geospatial_bounds`` (a WKT polygon, latitude
  first as EPSG:4326 orders its axes) and ``geospatial_bounds_crs`` from the latitude and
  longitude variables (standard name or CF units), where there are any: the Lorenz models have
  no geographic domain, and their files say none.

Attributes a user did not give (creator, institution, project, license ...) are left out, never
written as "unknown". A merged file (:mod:`dacli.io.merge`) is described again from its union.

Not for: CF structure (coordinates, fill values: the writers and
:func:`dacli.io.analysis.without_fill_on_coordinates`). Reference: ACDD 1.3
(https://wiki.esipfed.org/Attribute_Convention_for_Data_Discovery_1-3); ISO 19115-1
MD_CoverageContentTypeCode; CF Conventions 1.11, section 2.6.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import cftime
import numpy as np
import xarray as xr

from dacli import __version__

CONVENTIONS = "CF-1.11, ACDD-1.3"
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v93"
# ISO 19115-1 MD_CoverageContentTypeCode, the values ACDD's coverage_content_type takes
CONTENT_TYPES = (
    "image",
    "thematicClassification",
    "physicalMeasurement",
    "auxiliaryInformation",
    "qualityInformation",
    "referenceInformation",
    "modelResult",
    "coordinate",
)
LATITUDE_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
LONGITUDE_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
IODA_TIME = "/MetaData/dateTime"
DIMENSIONLESS = "dimensionless model time"  # how dacli.io.times.dimensionless_label begins


# the Discovery fields written as the global attributes of the same names
GIVEN = (
    "institution",
    "creator_name",
    "creator_email",
    "creator_url",
    "creator_type",
    "project",
    "license",
    "acknowledgement",
)


@dataclass(frozen=True)
class Discovery:
    """Who made a file and what it is about: the ``[output]`` keys (None: not said, left out)."""

    title: str
    summary: str | None = None  # None: the writer's summary, generated from the run
    keywords: tuple[str, ...] = ()  # added to the writer's keywords
    references: str | None = None  # added to the writer's references
    institution: str | None = None
    creator_name: str | None = None
    creator_email: str | None = None
    creator_url: str | None = None
    creator_type: str | None = None
    project: str | None = None
    license: str | None = None
    acknowledgement: str | None = None

    def given(self) -> dict[str, str]:
        """The attributes a user gave that are written as they are."""
        return {name: getattr(self, name) for name in GIVEN if getattr(self, name) is not None}


@dataclass(frozen=True)
class Description:
    """What a writer says about its file: a generated summary, keywords, level, references, and
    each variable's ``coverage_content_type`` (``content``, else ``default_content``)."""

    summary: str
    keywords: tuple[str, ...]
    processing_level: str
    references: str = ""
    content: Mapping[str, str] = field(default_factory=dict)
    default_content: str = "modelResult"
    comment: str = "The dacli_* attributes record how the file was made."


def now_iso() -> str:
    """The current UTC time, ISO 8601 (``2026-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(data, discovery: Discovery, description: Description):
    """``data`` (a Dataset, or an IODA DataTree: its root) with the ACDD-1.3 attributes added
    (see the module docstring); data values are not touched."""
    dataset = data if isinstance(data, xr.Dataset) else data.to_dataset()
    for name, variable in dataset.data_vars.items():
        content = description.content.get(str(name), description.default_content)
        if content not in CONTENT_TYPES:
            raise ValueError(f"coverage_content_type {content!r} of {name} is not ISO 19115-1")
        if variable.dtype.kind in "biuf" and "flag_meanings" not in variable.attrs:
            variable.attrs.setdefault("coverage_content_type", content)
    keywords = dict.fromkeys((*description.keywords, *discovery.keywords))
    references = "; ".join(text for text in (description.references, discovery.references) if text)
    created = now_iso()
    attrs = {
        "Conventions": CONVENTIONS,
        "title": discovery.title,
        "summary": discovery.summary or description.summary,
        "keywords": ", ".join(keywords),
        **{k: v for k, v in dataset.attrs.items() if k not in ("Conventions", "title")},
        **discovery.given(),
        "processing_level": description.processing_level,
        "date_created": created,
        "date_modified": created,
        "date_metadata_modified": created,
        "standard_name_vocabulary": STANDARD_NAME_VOCABULARY,
        **({"references": references} if references else {}),
        **coverage(data),
    }
    comment = " ".join(text for text in (description.comment, _time_note(data)) if text)
    if comment:
        attrs["comment"] = comment
    attrs.setdefault("source", f"dacli {__version__}")
    if "history" not in attrs:
        attrs["history"] = f"{created}: written by {attrs.get('source', 'dacli')}"
    dataset.attrs = attrs
    if isinstance(data, xr.Dataset):
        return dataset
    data.attrs = attrs
    return data


def redescribed(dataset: xr.Dataset, summary: str | None = None) -> xr.Dataset:
    """``dataset`` (a new file made from others: ``dacli merge``) with its dates, its time and
    geospatial coverage computed again, and ``summary`` when given."""
    created = now_iso()
    stale = [key for key in dataset.attrs if key.startswith(("time_coverage_", "geospatial_"))]
    attrs = {key: value for key, value in dataset.attrs.items() if key not in stale}
    attrs.update(date_created=created, date_modified=created, date_metadata_modified=created)
    if summary is not None:
        attrs["summary"] = summary
    dataset.attrs = {**attrs, **coverage(dataset)}
    return dataset


def _time_note(data) -> str:
    """What a dimensionless model time written as CF time means (:mod:`dacli.io.times`)."""
    for variable in _all_variables(data).values():
        if str(variable.attrs.get("long_name", "")).startswith(DIMENSIONLESS):
            return (
                f"Model time is dimensionless; it is written in CF time units "
                f"({variable.attrs.get('units')}) so that CF tools read it: its dates, and the "
                "time coverage, have no physical meaning."
            )
    return ""


def coverage(data) -> dict[str, str | float]:
    """``time_coverage_*`` and ``geospatial_*`` attributes from the data (empty where none)."""
    variables = _all_variables(data)
    return {**_time_coverage(variables), **_geospatial_coverage(variables)}


def _all_variables(data) -> dict[str, xr.Variable]:
    if isinstance(data, xr.Dataset):
        return {str(name): variable for name, variable in data.variables.items()}
    return {
        f"{node.path.rstrip('/')}/{name}": variable
        for node in data.subtree
        for name, variable in node.to_dataset(inherit=False).variables.items()
    }


def _finite(variable: xr.Variable) -> np.ndarray:
    if variable.dtype.kind not in "iuf":
        return np.zeros(0)
    values = np.asarray(variable.values, dtype=float).ravel()
    fill = variable.encoding.get("_FillValue", variable.attrs.get("_FillValue"))
    if fill is not None:
        values = values[values != float(fill)]
    return values[np.isfinite(values)]


def _is_time(name: str, variable: xr.Variable) -> bool:
    units = str(variable.attrs.get("units", ""))
    marked = variable.attrs.get("standard_name") == "time" or variable.attrs.get("axis") == "T"
    return " since " in units and (marked or name == IODA_TIME)


def _time_coverage(variables: Mapping[str, xr.Variable]) -> dict[str, str]:
    ranges = []
    for name, variable in variables.items():
        values = _finite(variable) if _is_time(name, variable) else np.zeros(0)
        if values.size:
            units = variable.attrs["units"]
            calendar = variable.attrs.get("calendar", "standard")
            ranges.append((values.min(), values.max(), units, calendar))
    if not ranges:
        return {}
    first = min(cftime.num2date(r[0], r[2], r[3], only_use_cftime_datetimes=True) for r in ranges)
    last = max(cftime.num2date(r[1], r[2], r[3], only_use_cftime_datetimes=True) for r in ranges)
    attrs = {
        "time_coverage_start": _iso(first),
        "time_coverage_end": _iso(last),
        "time_coverage_duration": iso_duration((last - first).total_seconds()),
    }
    times = [v for n, v in variables.items() if _is_time(n, v)]
    axis = next((v for v in times if v.attrs.get("axis") == "T"), times[0])
    unique = np.unique(_finite(axis))
    steps = np.diff(unique)
    if steps.size and np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        dates = cftime.num2date(
            unique[:2],
            axis.attrs["units"],
            axis.attrs.get("calendar", "standard"),
            only_use_cftime_datetimes=True,
        )
        attrs["time_coverage_resolution"] = iso_duration((dates[1] - dates[0]).total_seconds())
    return attrs


def _iso(date) -> str:
    return (
        f"{date.year:04d}-{date.month:02d}-{date.day:02d}T"
        f"{date.hour:02d}:{date.minute:02d}:{date.second:02d}Z"
    )


def iso_duration(seconds: float) -> str:
    """An ISO 8601 duration: ``P1DT2H30M``, ``PT1H12M``, ``PT0S``; fractions on the seconds."""
    whole = int(round(seconds * 1000))
    days, rest = divmod(whole, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, millis = divmod(rest, 60_000)
    clock = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M")) if value) + (
        f"{millis / 1000:g}S" if millis else ""
    )
    text = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return text if text != "P" else "PT0S"


def _axis_kind(variable: xr.Variable) -> str | None:
    standard_name = variable.attrs.get("standard_name")
    units = str(variable.attrs.get("units", "")).strip().lower()
    if standard_name == "latitude" or units in LATITUDE_UNITS:
        return "lat"
    if standard_name == "longitude" or units in LONGITUDE_UNITS:
        return "lon"
    return None


def _geospatial_coverage(variables: Mapping[str, xr.Variable]) -> dict[str, str | float]:
    found: dict[str, list[xr.Variable]] = {"lat": [], "lon": []}
    for variable in variables.values():
        kind = _axis_kind(variable)
        if kind and _finite(variable).size:
            found[kind].append(variable)
    if not found["lat"] or not found["lon"]:
        return {}
    attrs: dict[str, str | float] = {}
    extent = {}
    for kind, units in (("lat", "degrees_north"), ("lon", "degrees_east")):
        values = np.concatenate([_finite(v) for v in found[kind]])
        extent[kind] = (float(values.min()), float(values.max()))
        attrs[f"geospatial_{kind}_min"], attrs[f"geospatial_{kind}_max"] = extent[kind]
        attrs[f"geospatial_{kind}_units"] = units
        axis = next((v for v in found[kind] if v.ndim == 1 and v.size > 1), None)
        if axis is not None and len(found[kind]) == 1:
            steps = np.abs(np.diff(np.asarray(axis.values, float)))
            if np.allclose(steps, steps[0], rtol=1e-6, atol=0):
                attrs[f"geospatial_{kind}_resolution"] = f"{steps[0]:g} {units}"
    (south, north), (west, east) = extent["lat"], extent["lon"]
    corners = [(south, west), (south, east), (north, east), (north, west), (south, west)]
    attrs["geospatial_bounds"] = (
        "POLYGON ((" + ", ".join(f"{lat:g} {lon:g}" for lat, lon in corners) + "))"
    )
    attrs["geospatial_bounds_crs"] = "EPSG:4326"
    return attrs
