"""The observation-space diagnostics ("feedback") file: one row per observation use.

What JEDI writes to its feedback files: per observation its value, error, H(background),
H(analysis), the O-B and O-A departures and a QC flag, so that a user can monitor the
observations and tune B and R (e.g. with the Desroziers diagnostics). A CF-1.11 point file:
dimension ``obs``; an observation assimilated in several (overlapping) windows has a row per
window; one that was not assimilated has one row with ``window = -1``, its reason in
``qc_flag`` and no model equivalents. The time and the positions are the coordinates of every
row (``coordinates = "time lat lon window window_start"``, so CF tools such as cf_xarray find
where each value is);
ACDD-1.3 discovery attributes as in every dacli file (:mod:`dacli.io.metadata`).

A CF point file needs no ``cf_role`` variable (CF 9.5 names none for points); the IOOS
compliance checker's domain-variable check crashes on such files (its own defect, reported as a
checker exception, not a finding).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr

from dacli import __version__
from dacli.io.metadata import Description, Discovery, describe, now_iso
from dacli.io.observation_set import QC_FLAGS


def location_variables(location: np.ndarray, layout) -> dict[str, xr.Variable]:
    """Observation positions: ``location(obs)`` on 0-D / 1-D models, one variable per grid axis on
    2-D ones."""
    if len(layout.axes) < 2:
        column = location[:, 0] if location.shape[1] else np.full(len(location), np.nan)
        units = layout.axes[0].units if layout.axes else "1"
        return {
            "location": xr.Variable(
                ("obs",),
                column.astype(float),
                {
                    "long_name": "observation position on the model grid (NaN: no grid)",
                    "units": units,
                },
            )
        }
    return {
        axis.name: xr.Variable(
            ("obs",),
            location[:, k].astype(float),
            {
                **{key: value for key, value in axis.attributes().items() if key != "axis"},
                "long_name": f"observation {axis.name}",
            },
        )
        for k, axis in enumerate(layout.axes)
    }


def feedback_dataset(
    observations,
    packed,
    schedule_starts,
    background_equivalents,
    analysis_equivalents,
    flags,
    layout,
    time_axis,
    discovery: Discovery,
    command: str,
    attrs: dict,
) -> xr.Dataset:
    """Rows for every (window, observation) use, then every observation not assimilated."""
    windows, slots = np.nonzero(packed.mask)
    source = packed.source[windows, slots]
    unused = np.flatnonzero(flags != 0)
    rows = np.concatenate([source, unused])
    nan = np.full(len(unused), np.nan)
    hofx_b = np.concatenate([background_equivalents[windows, slots], nan])
    hofx_a = np.concatenate([analysis_equivalents[windows, slots], nan])
    values = observations.values[rows]
    data_vars = {
        "window": xr.Variable(
            ("obs",),
            np.concatenate([windows, np.full(len(unused), -1)]).astype(np.int32),
            {
                "long_name": (
                    "index of the assimilation window that used the observation "
                    "(-1: not assimilated)"
                ),
                "units": "1",
            },
        ),
        "window_start": xr.Variable(
            ("obs",),
            np.concatenate([schedule_starts[windows], nan]),
            {"long_name": "start time of that window", **time_axis.attributes()},
        ),
        "variable": xr.Variable(
            ("obs",),
            observations.variable[rows].astype(str),
            {"long_name": "observed model variable"},
        ),
        "obs_value": xr.Variable(("obs",), values, {"long_name": "observed value (ObsValue)"}),
        "obs_error": xr.Variable(
            ("obs",),
            observations.std[rows],
            {"long_name": "observation error standard deviation (ObsError)"},
        ),
        "hofx_background": xr.Variable(
            ("obs",), hofx_b, {"long_name": "model equivalent of the background, H(xb)"}
        ),
        "hofx_analysis": xr.Variable(
            ("obs",), hofx_a, {"long_name": "model equivalent of the analysis, H(xa)"}
        ),
        "omb": xr.Variable(
            ("obs",), values - hofx_b, {"long_name": "observation minus background, y - H(xb)"}
        ),
        "oma": xr.Variable(
            ("obs",), values - hofx_a, {"long_name": "observation minus analysis, y - H(xa)"}
        ),
        "qc_flag": xr.Variable(
            ("obs",),
            flags[rows].astype(np.int8),
            {
                "long_name": "quality-control flag",
                "flag_values": np.array(list(QC_FLAGS), np.int8),
                "flag_meanings": " ".join(QC_FLAGS.values()),
            },
        ),
    }
    coords = {
        "time": xr.Variable(
            ("obs",),
            observations.times[rows].astype(float),
            {
                "standard_name": "time",
                "long_name": "observation time",
                **time_axis.attributes(),
                "axis": "T",
            },
        ),
        **location_variables(observations.location[rows], layout),
        # which window each row belongs to: coordinates of the row, like its time and place
        "window": data_vars.pop("window"),
        "window_start": data_vars.pop("window_start"),
    }
    dataset = xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "featureType": "point",
            "source": f"dacli {__version__}",
            "history": f"{now_iso()}: {command}",
            **{f"dacli_{k}": v for k, v in attrs.items()},
        },
    )
    for name in ("obs_value", "obs_error", "hofx_background", "hofx_analysis", "omb", "oma"):
        dataset[name].attrs["units"] = layout.units
        dataset[name].encoding["_FillValue"] = np.nan
    for coordinate, variable in dataset.coords.items():  # positions, window_start may be NaN
        missing = variable.dtype.kind == "f" and coordinate != "time"
        variable.encoding["_FillValue"] = np.nan if missing else None
    description = Description(
        f"Observation-space diagnostics of {attrs.get('method', 'a dacli run')} with dacli "
        f"{__version__}: for each use of an observation in an assimilation window "
        f"({len(source)} uses) and each observation not assimilated ({len(unused)}), its "
        "value, error, the model equivalents of the background and of the analysis, the "
        "departures O-B and O-A and a quality-control flag.",
        ("data assimilation", "observation departures", "quality control"),
        "observation-space diagnostics of a variational analysis",
        content=FEEDBACK_CONTENT,
        default_content="modelResult",
    )
    titled = replace(discovery, title=f"{discovery.title}: observation-space diagnostics")
    return describe(dataset, titled, description)


# ISO 19115-1 content of the variables (the model equivalents: model results)
FEEDBACK_CONTENT = {
    "obs_value": "physicalMeasurement",
    "obs_error": "qualityInformation",
    "omb": "qualityInformation",
    "oma": "qualityInformation",
}
