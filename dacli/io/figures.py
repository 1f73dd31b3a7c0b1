"""Pictures of an analysis file (matplotlib, PNG), written atomically like every dacli output.

For a model on a 1-D grid: a Hovmoller diagram (background, analysis on one colour scale, and the
increment on a symmetric one); for every model: time series of background and analysis at a
chosen grid point (each variable); and the per-window diagnostics: RMSE against truth when the
file has it, the cost before and after each window, and, for the incremental formulation, the
nonlinear cost over the outer loops.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from dacli.errors import OutputError


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path, overwrite: bool) -> Path:
    """PNG via a temporary file and an atomic rename (never a partial or clobbered file)."""
    if path.exists() and not overwrite:
        raise OutputError(f"output file {path} exists; pass --overwrite to replace it")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=110)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None
    finally:
        _figure().close(figure)
    return path


def _label(variable: xr.DataArray, fallback: str) -> str:
    units = variable.attrs.get("units")
    return f"{fallback} [{units}]" if units and units != "1" else fallback


def hovmoller(dataset: xr.Dataset, variables: list[str], grid: str, title: str):
    """Background | analysis | increment over (time, grid), one row per variable."""
    plt = _figure()
    figure, axes = plt.subplots(len(variables), 3, figsize=(13, 3.6 * len(variables)), squeeze=False, sharey=True, layout="constrained")
    time = dataset["time"].values
    extent = [float(dataset[grid].values[0]), float(dataset[grid].values[-1]), float(time[0]), float(time[-1])]
    for row, name in zip(axes, variables):
        background, analysis = dataset[f"{name}_background"].values, dataset[f"{name}_analysis"].values
        increment = dataset[f"{name}_increment"].values
        low, high = np.nanmin([background.min(), analysis.min()]), np.nanmax([background.max(), analysis.max()])
        bound = float(np.nanmax(np.abs(increment))) or 1.0
        panels = ((background, "background", "viridis", low, high), (analysis, "analysis", "viridis", low, high),
                  (increment, "increment (analysis - background)", "RdBu_r", -bound, bound))
        for axis, (values, what, colours, vmin, vmax) in zip(row, panels):
            image = axis.imshow(values, aspect="auto", origin="lower", extent=extent, cmap=colours, vmin=vmin,
                                vmax=vmax, interpolation="nearest")
            axis.set_title(f"{name}: {what}")
            axis.set_xlabel(_label(dataset[grid], grid))
            figure.colorbar(image, ax=axis, label=_label(dataset[f"{name}_analysis"], name))
        row[0].set_ylabel(_label(dataset["time"], "time"))
    figure.suptitle(title)
    return figure


def time_series(dataset: xr.Dataset, variables: list[str], grid: str | None, point: int, title: str):
    """Background and analysis against time at grid index ``point`` (window starts marked)."""
    plt = _figure()
    figure, axes = plt.subplots(len(variables), 1, figsize=(11, 2.8 * len(variables)), squeeze=False, sharex=True, layout="constrained")
    time = dataset["time"].values
    for (axis,), name in zip(axes, variables):
        select = {grid: point} if grid else {}
        axis.plot(time, dataset[f"{name}_background"].isel(select).values, color="0.55", lw=1.2, label="background")
        axis.plot(time, dataset[f"{name}_analysis"].isel(select).values, color="C0", lw=1.4, label="analysis")
        for start in dataset["window_start"].values:
            axis.axvline(start, color="0.85", lw=0.6, zorder=0)
        where = f" at {grid} = {float(dataset[grid].values[point]):g}" if grid else ""
        axis.set_ylabel(_label(dataset[f"{name}_analysis"], name))
        axis.set_title(f"{name}{where}")
        axis.legend(loc="upper right", fontsize="small")
    axes[-1][0].set_xlabel(_label(dataset["time"], "time"))
    figure.suptitle(title)
    return figure


def window_diagnostics(dataset: xr.Dataset, title: str):
    """RMSE per window (with truth), cost before/after each window, outer-loop cost (incremental)."""
    plt = _figure()
    panels = ["cost"]
    if "analysis_rmse" in dataset and np.isfinite(dataset["analysis_rmse"].values).any():
        panels.insert(0, "rmse")
    if "outer_cost" in dataset:
        panels.append("outer")
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, layout="constrained")
    window = np.arange(1, dataset.sizes["window"] + 1)
    for axis, panel in zip(axes[0], panels):
        if panel == "rmse":
            axis.plot(window, dataset["background_rmse"].values, "o-", ms=3, color="0.55", label="background")
            axis.plot(window, dataset["analysis_rmse"].values, "o-", ms=3, color="C0", label="analysis")
            axis.set_ylabel("RMSE against truth")
            axis.set_title("RMSE per window")
        elif panel == "cost":
            axis.semilogy(window, dataset["cost_initial"].values, "o-", ms=3, color="0.55", label="J at background")
            axis.semilogy(window, dataset["cost_final"].values, "o-", ms=3, color="C0", label="J at analysis")
            axis.set_ylabel("cost J")
            axis.set_title("cost per window")
        else:
            costs = np.column_stack([dataset["outer_cost"].values, dataset["cost_final"].values])
            loops = np.arange(costs.shape[1])
            for k in range(costs.shape[0]):
                axis.semilogy(loops, costs[k], color="C0", alpha=max(0.05, 1.0 / costs.shape[0] ** 0.5), lw=0.8)
            axis.semilogy(loops, np.exp(np.log(costs).mean(axis=0)), "o-", color="C3", label="geometric mean")
            axis.set_xticks(loops, [str(i + 1) for i in loops[:-1]] + ["final"])
            axis.set_xlabel("outer loop")
            axis.set_ylabel("nonlinear J")
            axis.set_title("cost per outer loop, every window")
        if panel != "outer":
            axis.set_xlabel("window")
        axis.legend(fontsize="small")
    figure.suptitle(title)
    return figure
