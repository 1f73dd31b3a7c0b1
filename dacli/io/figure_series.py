"""Time series at one grid point: background, analysis, the truth and the observations there.

One panel per variable: the background (grey) and analysis (blue) trajectories, the truth
(black, thin) when given, the observations at that grid point (orange dots) and the window
starts (light vertical lines). The time axis carries dates when the file's time is a calendar
time.

Not for the per-window statistics (:mod:`dacli.io.figure_diagnostics`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dacli.io.figure_geography import latitude_text, longitude_text
from dacli.io.figure_observations import ObservedPoints
from dacli.io.figure_time import FigureTimes
from dacli.io.figures import _figure, axis_label

OBSERVATION_COLOUR = "C1"
DEGREES = {"degrees_north": latitude_text, "degrees_east": longitude_text}


def time_series(
    dataset: xr.Dataset,
    variables: list[str],
    point: dict[str, int],
    title: str,
    times: FigureTimes,
    truth: dict[str, np.ndarray] | None = None,
    observed: dict[str, ObservedPoints] | None = None,
):
    """Trajectories at the grid point ``{dim: index}`` (``{}`` without a grid), one panel per
    variable. ``truth``: per variable (time,) at that point; ``observed``: per variable the
    observations at that point."""
    plt = _figure()
    figure, axes = plt.subplots(
        len(variables),
        1,
        figsize=(11, 2.9 * len(variables) + 0.5),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    time = np.asarray(dataset["time"].values, float)
    where = ", ".join(_where(dataset, dim, i) for dim, i in point.items())
    for (axes_of,), name in zip(axes, variables, strict=True):
        _trajectories(axes_of, dataset, name, point, time, truth)
        points = None if observed is None else observed.get(name)
        if points is not None and len(points):
            axes_of.plot(
                points.time,
                points.value,
                "o",
                ms=3.5,
                color=OBSERVATION_COLOUR,
                zorder=4,
                label=f"observations (n={len(points)})",
            )
        for start in times.window_starts:
            axes_of.axvline(start, color="0.88", lw=0.6, zorder=0)
        axes_of.set_ylabel(axis_label(dataset[f"{name}_analysis"], name))
        axes_of.set_title(f"{name} at {where}" if where else name, loc="left")
        axes_of.legend(
            loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="small", ncols=4, frameon=False
        )
    last = axes[-1][0]
    last.set_xlabel(times.axis_label())
    times.format_axis(last.xaxis)
    figure.suptitle(f"{title}\n{times.span(time[0], time[-1])}")
    return figure


def _trajectories(axes, dataset, name, point, time, truth) -> None:
    """Background, analysis and (when given) truth lines."""
    axes.plot(
        time,
        dataset[f"{name}_background"].isel(point).values,
        color="0.55",
        lw=1.2,
        label="background",
    )
    axes.plot(
        time, dataset[f"{name}_analysis"].isel(point).values, color="C0", lw=1.4, label="analysis"
    )
    if truth is not None and name in truth:
        axes.plot(time, truth[name], color="k", lw=0.9, label="truth")


def _where(dataset: xr.Dataset, dim: str, index: int) -> str:
    """'site = 3', 'x = 8e+05 m', 'lat = 38.1°N': the coordinate at ``index`` along ``dim`` (the
    index itself without a coordinate variable)."""
    if dim not in dataset.variables:
        return f"{dim} index {index}"
    value = float(dataset[dim].values[index])
    units = str(dataset[dim].attrs.get("units", ""))
    if units in DEGREES:
        return f"{dim} = {DEGREES[units](round(value, 2))}"
    return f"{dim} = {value:g}" + (f" {units}" if units and units != "1" else "")
