"""Forecast files: where a forecast starts (analysis or state files) and the CF file it writes.

Reading: ``dacli forecast --from FILE`` takes an analysis file written by ``dacli assimilate``
(``<var>_analysis(time, *grid)`` and the per-window ``<var>_analysis_window_end(window, *grid)``
at ``window_end``) or a state file (``<var>(time, *grid)``: a truth run, a background).

Writing: a CF-1.11 / ACDD-1.3 file over ``forecast_reference_time`` (the forecasts' initial
times, of that standard name: the layout of ECMWF's CDS NetCDF files), ``lead_time``
(``forecast_period``, in the time units' unit) and the model grid, with the valid time
``valid_time(forecast_reference_time, lead_time)`` (standard name ``time``) as an auxiliary
coordinate; an ensemble adds a ``member`` dimension (``realization``). Only ``<var>_forecast``
carries the variable's standard name (``ds.cf[...]`` finds it alone). Global attributes as in
analysis files (:mod:`dacli.io.metadata`, ``dacli_*`` provenance).

To read such a file back as a background or truth, map its reference time as dacli's ``time``
(``dims = { time = "forecast_reference_time" }``) and select one lead time: the reader then dates
each field by its valid time (:mod:`dacli.io.inputs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dacli import __version__
from dacli.errors import DataError
from dacli.io.analysis import global_attributes, state_attributes, without_fill_on_coordinates
from dacli.io.metadata import Description, Discovery, describe
from dacli.io.netcdf import open_netcdf
from dacli.io.states import coordinates, read_states, states_in_dataset
from dacli.io.times import TimeAxis
from dacli.layout import StateLayout

REFERENCES = (
    "Jolliffe & Stephenson (2012) Forecast Verification, 2nd ed., Wiley (RMSE, anomaly "
    "correlation); Fortin et al. (2014) MWR 142 (ensemble spread and skill); Kidger (2021) On "
    "Neural Differential Equations (diffrax)"
)

# name -> (long name, units: None = the state's units)
SCORES = {
    "rmse": ("RMSE of the forecast against the truth, over start times and grid points", None),
    "anomaly_correlation": (
        "anomaly correlation of the forecast with the truth (uncentred, about the truth's "
        "time mean per grid point)",
        "1",
    ),
    "rmse_ensemble_mean": (
        "RMSE of the ensemble mean against the truth, over start times and grid points",
        None,
    ),
    "anomaly_correlation_ensemble_mean": (
        "anomaly correlation of the ensemble mean with the truth (uncentred, "
        "about the truth's time mean per grid point)",
        "1",
    ),
    "spread": (
        "ensemble spread: square root of the members' variance (N - 1) averaged over start times "
        "and grid points",
        None,
    ),
    "verified_starts": ("number of start times whose valid time the truth file covers", "1"),
}


@dataclass(frozen=True)
class StartingStates:
    """The states a forecast can start from, as read from ``--from``."""

    path: str
    kind: str  # "analysis" (dacli assimilate) or "state" (a truth or background file)
    times: np.ndarray  # (T,) the stored trajectory's times
    states: np.ndarray  # (T, n)
    window_ends: np.ndarray | None = None  # (K,) analysis files: each window's end time
    window_end_states: np.ndarray | None = (
        None  # (K, n): the analysis there (observations up to it only)
    )


def read_starting_states(
    path, layout: StateLayout, model_name: str, time_axis: TimeAxis
) -> StartingStates:
    """The analysis trajectory and window-end analyses of an analysis file, or a state file's
    states.

    An analysis file written for another model (its ``dacli_config``) is refused, naming both; a
    grid of another size is refused by the reader, naming the shapes.
    """
    what = "--from"
    dataset = open_netcdf(path, what)
    first = layout.variables[0]
    if f"{first}_analysis" in dataset.variables:
        written_for = _model_name(dataset)
        if written_for is not None and written_for.lower() != model_name.lower():
            raise DataError(
                f"{what} file {path}: an analysis of model {written_for!r}; the config's model is "
                f"{model_name!r}"
            )
        what = f"{what} analysis"
        times, states = states_in_dataset(dataset, path, layout, what, suffix="_analysis")
        times = _model_times(dataset, "time", times, time_axis, f"{what} file {path}")
        ends, end_states = None, None
        if (
            f"{first}_analysis_window_end" in dataset.variables
            and "window_end" in dataset.variables
        ):
            ends, end_states = states_in_dataset(
                dataset,
                path,
                layout,
                what,
                suffix="_analysis_window_end",
                time_dim="window",
                time_variable="window_end",
            )
            ends = _model_times(dataset, "window_end", ends, time_axis, f"{what} file {path}")
        return StartingStates(str(path), "analysis", times, states, ends, end_states)
    if first in dataset.variables:  # a state file of any tool: the one input reader
        times, states = read_states(path, layout, f"{what} state", time_axis)
        return StartingStates(str(path), "state", times, states)
    found = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
    raise DataError(
        f"{what} file {path}: neither an analysis file (no variable {first + '_analysis'!r}) nor a "
        f"state file (no variable {first!r}) of the config's model {model_name!r}; data variables "
        f"found: {found}"
    )


def _model_times(
    dataset: xr.Dataset, name: str, values: np.ndarray, time_axis: TimeAxis, where: str
) -> np.ndarray:
    """An analysis file's times (its own CF units and calendar) on the run's time axis."""
    variable = dataset[name]
    times, _ = time_axis.from_file(
        values,
        variable.attrs.get("units"),
        variable.attrs.get("calendar"),
        f"{where}, variable {name!r}",
    )
    return times


def _model_name(dataset: xr.Dataset) -> str | None:
    try:
        return json.loads(dataset.attrs["dacli_config"])["model"]["name"]
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ForecastRecord:
    """What the run layer hands over for writing."""

    layout: StateLayout
    start_times: np.ndarray  # (S,)
    lead_times: np.ndarray  # (L,) lead 0 (the initial state) included
    forecast: np.ndarray  # (S, L, n) from the unperturbed initial states
    ensemble: np.ndarray | None  # (S, N, L, n) members from perturbed initial states, or None
    ensemble_mean: np.ndarray | None  # (S, L, n)
    ensemble_spread: np.ndarray | None  # (S, L, n) standard deviation over members (N - 1)
    scores: dict[str, np.ndarray]  # SCORES keys -> (L,)
    climatology: np.ndarray | None  # (n,) the anomaly reference, when verified
    provenance: dict[str, str | int | float]


REFERENCE_TIME = "forecast_reference_time"  # the dimension of the initial times (CF name)


def forecast_dataset(
    record: ForecastRecord, time_axis: TimeAxis, discovery: Discovery, command: str
) -> xr.Dataset:
    """The forecast file of ``record`` (see the module docstring)."""
    layout = record.layout
    grid = layout.dims
    data_vars = {}

    def add_states(kind: str, states: np.ndarray, dims: tuple[str, ...], long_name: str):
        for name, values in layout.split(states).items():
            attrs = state_attributes(layout, name, f"{long_name} of {name}", kind)
            data_vars[f"{name}_{kind}"] = xr.Variable(dims, values, attrs)

    add_states(
        "forecast",
        record.forecast,
        (REFERENCE_TIME, "lead_time", *grid),
        "forecast from the initial state",
    )
    if record.ensemble is not None:
        assert record.ensemble_mean is not None and record.ensemble_spread is not None
        add_states(
            "ensemble",
            record.ensemble,
            (REFERENCE_TIME, "member", "lead_time", *grid),
            "ensemble member forecast",
        )
        add_states(
            "ensemble_mean",
            record.ensemble_mean,
            (REFERENCE_TIME, "lead_time", *grid),
            "ensemble mean forecast",
        )
        add_states(
            "ensemble_spread",
            record.ensemble_spread,
            (REFERENCE_TIME, "lead_time", *grid),
            "ensemble spread (standard deviation over members, N - 1)",
        )
    if record.climatology is not None:
        add_states(
            "climatology",
            record.climatology,
            grid,
            "climatology (truth time mean) used for anomalies",
        )
    for name, values in record.scores.items():
        long_name, units = SCORES[name]
        array = np.asarray(values)
        if name == "verified_starts":
            array = array.astype(np.int32)
        data_vars[name] = xr.Variable(
            ("lead_time",), array, {"long_name": long_name, "units": units or layout.units}
        )

    coords = coordinates(layout, record.start_times, time_axis)
    # The initial times: not the T axis (the valid time is time + lead_time), so no axis attribute.
    initial = coords.pop("time")
    initial.attrs.update(standard_name=REFERENCE_TIME, long_name="forecast initial time")
    initial.attrs.pop("axis")
    coords[REFERENCE_TIME] = xr.Variable((REFERENCE_TIME,), initial.values, initial.attrs)
    coords["lead_time"] = xr.Variable(
        ("lead_time",),
        np.asarray(record.lead_times, float),
        {
            "standard_name": "forecast_period",
            "long_name": "forecast lead time",
            "units": time_axis.unit,
        },
    )
    valid = (
        np.asarray(record.start_times, float)[:, None]
        + np.asarray(record.lead_times, float)[None, :]
    )
    coords["valid_time"] = xr.Variable(
        (REFERENCE_TIME, "lead_time"),
        valid,
        {"standard_name": "time", "long_name": "forecast valid time", **time_axis.attributes()},
    )
    if record.ensemble is not None:
        coords["member"] = xr.Variable(
            ("member",),
            np.arange(1, record.ensemble.shape[1] + 1, dtype=np.int32),
            {"standard_name": "realization", "long_name": "ensemble member", "units": "1"},
        )
    attrs = global_attributes(command, record.provenance)
    dataset = without_fill_on_coordinates(xr.Dataset(data_vars, coords=coords, attrs=attrs))
    description = Description(
        _summary(record, time_axis),
        ("data assimilation", "forecast", "forecast verification", _model(record.provenance)),
        "model forecast",
        REFERENCES,
        content={
            **{name: "qualityInformation" for name in SCORES},
            "verified_starts": "auxiliaryInformation",
            **{f"{name}_climatology": "referenceInformation" for name in layout.variables},
        },
    )
    return describe(dataset, discovery, description)


def _model(provenance: dict) -> str:
    try:
        return str(json.loads(str(provenance["config"]))["model"]["name"])
    except (KeyError, TypeError, ValueError):
        return "the model"


def _summary(record: ForecastRecord, time_axis: TimeAxis) -> str:
    """The forecast file's ACDD summary, from what was forecast."""
    starts = np.asarray(record.start_times, float)
    members = "" if record.ensemble is None else f", with {record.ensemble.shape[1]} members"
    verified = " verified against a truth run" if record.scores.get("rmse") is not None else ""
    return (
        f"Forecasts of the {_model(record.provenance)} model by dacli {__version__} from "
        f"{len(starts)} initial time{'s' if len(starts) != 1 else ''} (model time "
        f"{starts.min():g} to {starts.max():g}, {time_axis.units}) to lead time "
        f"{float(np.max(record.lead_times)):g} {time_axis.unit}{members}{verified}: "
        "forecast fields over lead times, valid times and scores per lead time."
    )
