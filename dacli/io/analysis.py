"""The analysis file: CF-1.11 NetCDF with trajectories, per-window diagnostics and provenance."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dacli import __version__
from dacli.io.states import coordinates, variable_attributes
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
    record: AnalysisRecord, time_axis, title: str, institution: str, command: str
) -> xr.Dataset:
    layout = record.layout
    dims = ("time", *layout.dims)
    data_vars = {}
    fields = {
        "analysis": record.analysis,
        "background": record.background,
        "increment": record.analysis - record.background,
    }
    for kind, states in fields.items():
        for name, values in layout.split(states).items():
            attrs: dict[str, Any] = variable_attributes(layout, name, f"{kind} of {name}")
            if kind == "increment":
                attrs.pop("standard_name", None)  # an increment is not the quantity itself
            data_vars[f"{name}_{kind}"] = xr.Variable(dims, values, attrs)
    window_dims = ("window", *layout.dims)
    for kind, states in record.window_states.items():
        for name, values in layout.split(states).items():
            data_vars[f"{name}_{kind}"] = xr.Variable(
                window_dims,
                values,
                variable_attributes(layout, name, f"{WINDOW_STATES[kind]} of {name}"),
            )
    for name, values in record.windows.items():
        long_name, units = WINDOW_DIAGNOSTICS[name]
        attrs = {
            "long_name": long_name,
            "units": time_axis.units
            if name in ("window_start", "window_end")
            else (units or layout.units),
        }
        if name in ("window_start", "window_end"):
            attrs["calendar"] = time_axis.calendar
        array = np.asarray(values)
        if name == "converged":
            array = array.astype(np.int8)
            attrs.update(
                flag_values=np.array([0, 1], np.int8), flag_meanings="not_converged converged"
            )
            attrs.pop("units")
        elif array.dtype.kind in "iu":
            array = array.astype(np.int32)
        data_vars[name] = xr.Variable(("window",), array, attrs)
    for name, values in record.outer_loops.items():
        array = np.asarray(values)
        attrs = {"long_name": OUTER_LOOP_DIAGNOSTICS[name], "units": "1"}
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
    attrs = global_attributes(title, institution, command, record.provenance)
    dataset = xr.Dataset(
        data_vars, coords=coordinates(layout, record.times, time_axis), attrs=attrs
    )
    return without_fill_on_coordinates(dataset)


def global_attributes(
    title: str, institution: str, command: str, provenance: dict, references: str = REFERENCES
) -> dict:
    """CF global attributes of a dacli output file; ``provenance`` items become ``dacli_<key>``
    (its ``engine`` entry, the library versions, goes into ``source``)."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Conventions": "CF-1.11",
        "title": title,
        "institution": institution,
        "source": f"dacli {__version__} ({provenance.get('engine', '')})",
        "history": f"{now}: {command}",
        "references": references,
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
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        dataset.attrs["history"] = f"{now}: written by dacli {__version__}"
    return dataset
