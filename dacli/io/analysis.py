"""The analysis file: CF-1.11 and ACDD-1.3 NetCDF with trajectories, per-window diagnostics and
provenance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dacli import __version__
from dacli.io.metadata import Description, Discovery, describe, now_iso
from dacli.io.states import coordinates, variable_attributes
from dacli.io.times import TimeAxis
from dacli.layout import StateLayout

REFERENCES = (
    "Le Dimet & Talagrand (1986) Tellus 38A; Courtier, Thepaut & Hollingsworth (1994) QJRMS 120; "
    "Kidger (2021) On Neural Differential Equations (diffrax)"
)

# name -> (long name, units) of the per-window diagnostics
WINDOW_DIAGNOSTICS = {
    "window_start": ("start time of the assimilation window", None),
    "window_end": ("end time of the assimilation window", None),
    "cost_initial": ("cost function J at the background", "1"),
    "cost_background_initial": ("background term Jb at the background", "1"),
    "cost_observation_initial": ("observation term Jo at the background", "1"),
    "cost_model_error_initial": (
        "model-error term Jq at the background (weak constraint; 0 otherwise)",
        "1",
    ),
    "cost_final": ("cost function J at the analysis", "1"),
    "cost_background_final": ("background term Jb at the analysis", "1"),
    "cost_observation_final": ("observation term Jo at the analysis", "1"),
    "cost_model_error_final": (
        "model-error term Jq at the analysis (weak constraint; 0 otherwise)",
        "1",
    ),
    "iterations": ("minimiser iterations (incremental: CG iterations over all outer loops)", "1"),
    "gradient_norm": ("norm of the cost gradient at the analysis (control space)", "1"),
    "converged": ("minimiser converged flag", "1"),
    "observations_used": ("observations assimilated", "1"),
    "observations_rejected": ("observations in the window rejected by quality control", "1"),
    "omb_mean": ("mean observation-minus-background departure", None),
    "omb_rms": ("RMS observation-minus-background departure", None),
    "oma_mean": ("mean observation-minus-analysis departure", None),
    "oma_rms": ("RMS observation-minus-analysis departure", None),
    "background_rmse": ("background RMSE against truth, time mean over the window", None),
    "analysis_rmse": ("analysis RMSE against truth, time mean over the window", None),
}


# name -> long name of the per-window, per-outer-loop diagnostics (incremental formulation)
OUTER_LOOP_DIAGNOSTICS = {
    "outer_cost": "nonlinear cost J at the outer loop's linearisation state",
    "outer_cost_background": "background term Jb at the outer loop's linearisation state",
    "outer_cost_observation": "observation term Jo at the outer loop's linearisation state",
    "outer_cost_model_error": "model-error term Jq at the outer loop's linearisation state",
    "outer_quadratic_cost_initial": "quadratic cost at the start of the inner loop",
    "outer_quadratic_cost_final": "quadratic cost at the end of the inner loop",
    "outer_inner_iterations": "conjugate-gradient iterations of the inner loop",
    "outer_gradient_reduction": "gradient norm of the quadratic cost, end of inner loop over start",
    "outer_inner_converged": "inner loop reached the requested gradient reduction",
}


# name -> long name of the per-window states (written as <variable>_<name>(window, grid))
WINDOW_STATES = {
    "analysis_window_start": "analysis at the start of the window (the smoother analysis)",
    "analysis_window_end": (
        "analysis at the end of the window (the newest-observation, filter analysis)"
    ),
}


@dataclass(frozen=True)
class AnalysisRecord:
    """What the run layer hands over for writing."""

    layout: StateLayout
    times: np.ndarray
    analysis: np.ndarray  # (T, n)
    background: np.ndarray  # (T, n)
    windows: dict[str, np.ndarray]  # WINDOW_DIAGNOSTICS keys -> (K,)
    window_states: dict[str, np.ndarray]  # WINDOW_STATES keys -> (K, n)
    provenance: dict[str, str | int | float]
    outer_loops: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # OUTER_LOOP_DIAGNOSTICS keys -> (K, L)


def analysis_dataset(
    record: AnalysisRecord, time_axis: TimeAxis, discovery: Discovery, command: str
) -> xr.Dataset:
    """The analysis file of ``record``: CF-1.11 and ACDD-1.3 (:mod:`dacli.io.metadata`).

    Only the analysis trajectory ``<var>_analysis`` carries the variable's CF standard name, so
    that ``ds.cf["<standard name>"]`` is the analysis; the background, the increment and the
    window-bound analyses say what they are in their ``long_name``. The ``window`` dimension has
    a coordinate (each window's index in the whole schedule, from 0 as in ``--windows``), and
    ``window_start`` / ``window_end`` are its auxiliary coordinates.
    """
    layout = record.layout
    dims = ("time", *layout.dims)
    data_vars: dict[str, xr.Variable] = {}
    fields = {
        "analysis": record.analysis,
        "background": record.background,
        "increment": record.analysis - record.background,
    }
    for kind, states in fields.items():
        for name, values in layout.split(states).items():
            data_vars[f"{name}_{kind}"] = xr.Variable(
                dims, values, state_attributes(layout, name, f"{kind} of {name}", kind)
            )
    window_dims = ("window", *layout.dims)
    for kind, states in record.window_states.items():
        for name, values in layout.split(states).items():
            long_name = f"{WINDOW_STATES[kind]} of {name}"
            data_vars[f"{name}_{kind}"] = xr.Variable(
                window_dims, values, state_attributes(layout, name, long_name, kind)
            )
    coords = coordinates(layout, record.times, time_axis)
    for name, values in record.windows.items():
        variable = _window_variable(name, values, layout, time_axis)
        (coords if name in ("window_start", "window_end") else data_vars)[name] = variable
    for name, values in record.outer_loops.items():
        array = np.asarray(values)
        attrs: dict[str, Any] = {"long_name": OUTER_LOOP_DIAGNOSTICS[name], "units": "1"}
        if array.dtype == bool:
            array = array.astype(np.int8)
            attrs = {
                "long_name": attrs["long_name"],
                "flag_values": np.array([0, 1], np.int8),
                "flag_meanings": "not_reached reached",
            }
        elif array.dtype.kind in "iu":
            array = array.astype(np.int32)
        data_vars[name] = xr.Variable(("window", "outer_loop"), array, attrs)
    starts = np.asarray(record.windows.get("window_start", np.zeros(0)), float)
    coords["window"] = xr.Variable(
        ("window",),
        window_numbers(starts, record.provenance),
        {"long_name": "assimilation window number in the whole schedule, from 0 (as --windows)"},
    )
    attrs = global_attributes(command, record.provenance)
    dataset = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    description = Description(
        analysis_summary(record.provenance, len(starts), record.times, time_axis),
        analysis_keywords(record.provenance),
        "model analysis (variational data assimilation)",
        REFERENCES,
        content=_content_types(dataset, layout),
        default_content="auxiliaryInformation",
    )
    return describe(without_fill_on_coordinates(dataset), discovery, description)


def _window_variable(name: str, values, layout: StateLayout, time_axis: TimeAxis) -> xr.Variable:
    """One per-window diagnostic of :data:`WINDOW_DIAGNOSTICS` along ``window``."""
    long_name, units = WINDOW_DIAGNOSTICS[name]
    attrs: dict[str, Any] = {"long_name": long_name, "units": units or layout.units}
    if name in ("window_start", "window_end"):
        attrs.update(time_axis.attributes())
    if name == "observations_used":
        attrs["standard_name"] = "number_of_observations"
    array = np.asarray(values)
    if name == "converged":
        array = array.astype(np.int8)
        attrs.update(flag_values=np.array([0, 1], np.int8), flag_meanings="not_converged converged")
        attrs.pop("units")
    elif array.dtype.kind in "iu":
        array = array.astype(np.int32)
    return xr.Variable(("window",), array, attrs)


def state_attributes(layout: StateLayout, name: str, long_name: str, kind: str) -> dict[str, Any]:
    """A state variable's attributes; the CF standard name only on the file's main product
    (``kind`` "analysis", "forecast", "state"): ``ds.cf[...]`` must find one variable."""
    attrs: dict[str, Any] = variable_attributes(layout, name, long_name)
    if kind not in MAIN_PRODUCTS:
        attrs.pop("standard_name", None)
    return attrs


MAIN_PRODUCTS = ("analysis", "forecast", "state")


def _content_types(dataset: xr.Dataset, layout: StateLayout) -> dict[str, str]:
    """ISO 19115-1 content of the analysis file's variables: states are model results, the
    departure and error statistics quality information (the rest: auxiliary information)."""
    content = {}
    for name in map(str, dataset.data_vars):
        if name in WINDOW_DIAGNOSTICS:
            if name.endswith(QUALITY):
                content[name] = "qualityInformation"
        elif any(name.startswith(f"{variable}_") for variable in layout.variables):
            content[name] = "modelResult"
    return content


QUALITY = ("_rms", "_mean", "_rmse")


def window_numbers(starts: np.ndarray, provenance: dict) -> np.ndarray:
    """Each window's number in the whole schedule (a job-array range's too), from its start:
    (start - window.start) / shift, from the run's configuration; 0, 1, ... without one."""
    try:
        window = json.loads(str(provenance["config"]))["window"]
        shift = float(window.get("shift") or window["length"])
        numbers = np.rint((starts - float(window["start"])) / shift)
    except (KeyError, TypeError, ValueError):
        numbers = np.arange(len(starts))
    return numbers.astype(np.int32)


def _model_and_method(provenance: dict) -> tuple[str, str]:
    try:
        model = str(json.loads(str(provenance["config"]))["model"]["name"])
    except (KeyError, TypeError, ValueError):
        model = "the model"
    method = str(provenance.get("method") or "dacli")
    if provenance.get("formulation"):
        method = f"{method} ({provenance['formulation']} formulation)"
    return model, method


def analysis_summary(provenance: dict, windows: int, times, time_axis: TimeAxis) -> str:
    """The analysis file's ACDD summary, from the run (model, method, windows, times)."""
    model, method = _model_and_method(provenance)
    times = np.asarray(times, float)
    span = f" from model time {times.min():g} to {times.max():g}" if times.size else ""
    used = provenance.get("observations_used")
    observations = f", {used} observations assimilated" if used is not None else ""
    return (
        f"Analysis of the {model} model by {method} with "
        f"dacli {__version__}: {windows} assimilation window{'s' if windows != 1 else ''}{span} "
        f"({time_axis.units}){observations}. Holds the analysis and background trajectories, "
        "the increment, the analyses at each window's bounds, and per-window costs, "
        "convergence and observation departures."
    )


def analysis_keywords(provenance: dict) -> tuple[str, ...]:
    """ACDD keywords of an analysis file: data assimilation, the method, the model."""
    model, method = _model_and_method(provenance)
    return ("data assimilation", "analysis", str(provenance.get("method", "")), model)


def global_attributes(command: str, provenance: dict) -> dict:
    """CF global attributes of a dacli output file that do not come from ``[output]``:
    ``source`` (dacli and the ``engine`` library versions of ``provenance``), ``history``
    and the other ``provenance`` items as ``dacli_<key>``."""
    return {
        "source": f"dacli {__version__} ({provenance.get('engine', '')})",
        "history": f"{now_iso()}: {command}",
        **{f"dacli_{k}": v for k, v in provenance.items() if k != "engine"},
    }


def without_fill_on_coordinates(dataset: xr.Dataset) -> xr.Dataset:
    """CF tidy-up before writing any dacli file (analyses, and ``dacli simulate``'s outputs).

    * xarray adds ``_FillValue`` to float coordinates by default; CF forbids it there.
    * Every coordinate gets a ``long_name`` if it has neither that nor a ``standard_name``
      (CF 3.3; the IOOS compliance checker reports its absence as an error).
    * Float data variables get a NaN ``_FillValue`` unless they declare one.
    * A ``history`` line is added if the dataset has none (CF 2.6.2).
    """
    for name in dataset.coords:
        dataset[name].encoding["_FillValue"] = None
        attrs = dataset[name].attrs
        if "long_name" not in attrs and "standard_name" not in attrs:
            attrs["long_name"] = f"{name} coordinate"
    for name in dataset.data_vars:
        if dataset[name].dtype.kind == "f" and "_FillValue" not in dataset[name].attrs:
            dataset[name].encoding.setdefault("_FillValue", np.nan)
    if not dataset.attrs.get("history"):
        dataset.attrs["history"] = f"{now_iso()}: written by dacli {__version__}"
    return dataset
