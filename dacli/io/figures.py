"""Pictures of an analysis file (matplotlib, PNG), written atomically like every dacli output.

For a model on a 1-D grid: a Hovmoller diagram (background, analysis on one colour scale, and the
increment on a symmetric one); for a model on a 2-D grid: maps at one time (truth if given,
background, analysis on one colour scale; the increment and the analysis error on symmetric
ones; the observations used around that time on top); for every model: time series of
background and analysis at a chosen grid point (each variable); and the per-window diagnostics:
RMSE against truth when the file has it, the cost before and after each window, and, for the
incremental formulation, the nonlinear cost over the outer loops.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from dacli.io.atomic import write_atomically


def _figure():
    """pyplot, drawing with the Agg backend: files only, no display (set at first use, not on
    import)."""
    matplotlib.use("Agg")
    return plt


def save_figure(figure, path: Path, overwrite: bool) -> Path:
    """PNG, whole or not at all (:mod:`dacli.io.atomic`); the figure is closed either way."""
    try:
        return write_atomically(
            path,
            lambda temporary: figure.savefig(temporary, dpi=110, format="png"),
            overwrite=overwrite,
        )
    finally:
        _figure().close(figure)


def _label(variable: xr.DataArray, fallback: str) -> str:
    units = variable.attrs.get("units")
    return f"{fallback} [{units}]" if units and units != "1" else fallback


def _where(dataset: xr.Dataset, dim: str, index: int) -> str:
    """'x = 8e+05 m': the coordinate at ``index`` along ``dim`` (the index itself without a
    coordinate variable)."""
    if dim not in dataset.variables:
        return f"{dim} index {index}"
    units = dataset[dim].attrs.get("units")
    return f"{dim} = {float(dataset[dim].values[index]):g}" + (
        f" {units}" if units and units != "1" else ""
    )


def hovmoller(dataset: xr.Dataset, variables: list[str], grid: str, title: str):
    """Background | analysis | increment over (time, grid), one row per variable."""
    plt = _figure()
    figure, axes = plt.subplots(
        len(variables),
        3,
        figsize=(13, 3.6 * len(variables)),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    time = dataset["time"].values
    extent = [
        float(dataset[grid].values[0]),
        float(dataset[grid].values[-1]),
        float(time[0]),
        float(time[-1]),
    ]
    for row, name in zip(axes, variables, strict=True):
        background, analysis = (
            dataset[f"{name}_background"].values,
            dataset[f"{name}_analysis"].values,
        )
        increment = dataset[f"{name}_increment"].values
        low, high = (
            np.nanmin([background.min(), analysis.min()]),
            np.nanmax([background.max(), analysis.max()]),
        )
        bound = float(np.nanmax(np.abs(increment))) or 1.0
        panels = (
            (background, "background", "viridis", low, high),
            (analysis, "analysis", "viridis", low, high),
            (increment, "increment (analysis - background)", "RdBu_r", -bound, bound),
        )
        for axis, (values, what, colours, vmin, vmax) in zip(row, panels, strict=True):
            image = axis.imshow(
                values,
                aspect="auto",
                origin="lower",
                extent=extent,
                cmap=colours,
                vmin=vmin,
                vmax=vmax,
                interpolation="nearest",
            )
            axis.set_title(f"{name}: {what}")
            axis.set_xlabel(_label(dataset[grid], grid))
            figure.colorbar(image, ax=axis, label=_label(dataset[f"{name}_analysis"], name))
        row[0].set_ylabel(_label(dataset["time"], "time"))
    figure.suptitle(title)
    return figure


def maps(
    dataset: xr.Dataset,
    variables: list[str],
    grid: tuple[str, str],
    index: int,
    title: str,
    truth: dict[str, np.ndarray] | None = None,
    observed: dict[str | None, np.ndarray] | None = None,
):
    """Maps at time ``index``, one row per variable: [truth |] background | analysis | increment [|
    analysis - truth].

    Truth, background and analysis share one colour scale and colour bar; the increment and the
    error each have a symmetric one. ``observed``: locations ``(n, 2)`` in ``grid`` order, per
    observed variable (or under None for all), drawn on every panel of the row.
    """
    plt = _figure()
    columns = 5 if truth is not None else 3
    figure, axes = plt.subplots(
        len(variables),
        columns,
        figsize=(3.5 * columns + 1.2, 3.3 * len(variables)),
        squeeze=False,
        layout="constrained",
    )
    when = _time_text(dataset, index)
    for row, name in zip(axes, variables, strict=True):
        panels = _map_panels(dataset, grid, name, index, None if truth is None else truth[name])
        _map_row(figure, row, dataset, grid, name, panels, when)
        if observed is not None:
            _overlay_observations(row, observed.get(name, observed.get(None, np.empty((0, 2)))))
    figure.suptitle(title)
    return figure


def time_unit(dataset: xr.Dataset) -> str:
    """'days' for time units 'days since 2000-01-01 00:00:00'; '' for none or '1'."""
    units = str(dataset["time"].attrs.get("units", "")) if "time" in dataset.variables else ""
    unit = units.split(" since ")[0].strip()
    return "" if unit == "1" else unit


def _time_text(dataset: xr.Dataset, index: int) -> str:
    """'12.5 days': the time at ``index`` with its unit."""
    value = f"{float(dataset['time'].values[index]):g}"
    return f"{value} {time_unit(dataset)}".strip()


def _map_panels(
    dataset: xr.Dataset, grid: tuple[str, str], name: str, index: int, truth: np.ndarray | None
) -> list[tuple]:
    """(values (ny, nx), what, scale) per panel; scale 'state' (shared) or 'signed' (symmetric about
    0)."""

    def at_time(kind: str) -> np.ndarray:
        return dataset[f"{name}_{kind}"].transpose("time", *grid).isel(time=index).values

    background, analysis = at_time("background"), at_time("analysis")
    increment = at_time("increment") if f"{name}_increment" in dataset else analysis - background
    panels = [
        (background, "background", "state"),
        (analysis, "analysis", "state"),
        (increment, "increment", "signed"),
    ]
    if truth is not None:
        panels = [
            (truth, "truth", "state"),
            *panels,
            (analysis - truth, "analysis \u2212 truth", "signed"),
        ]
    return panels


def _map_row(
    figure,
    row,
    dataset: xr.Dataset,
    grid: tuple[str, str],
    name: str,
    panels: list[tuple],
    when: str,
) -> None:
    """Draw one variable's panels and colour bars: one shared by the states, one per signed
    field."""
    states = np.stack([values for values, _, scale in panels if scale == "state"])
    finite = states[np.isfinite(states)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    units = _label(dataset[f"{name}_analysis"], name)
    shared = {}
    for axis, (values, what, scale) in zip(row, panels, strict=True):
        axis.set_title(f"{name}: {what} at t = {when}", fontsize="medium")
        if scale == "state":
            shared[axis] = _draw_field(
                axis, dataset, grid, values, cmap="viridis", vmin=low, vmax=high
            )
            continue
        bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
        image = _draw_field(
            axis, dataset, grid, values, cmap="RdBu_r", vmin=-(bound or 1.0), vmax=bound or 1.0
        )
        figure.colorbar(
            image, ax=axis, label=f"{what} {units[len(name) :].strip()}".strip(), shrink=0.9
        )
    figure.colorbar(next(iter(shared.values())), ax=list(shared), label=units, shrink=0.9)


def _draw_field(axis, dataset: xr.Dataset, grid: tuple[str, str], values: np.ndarray, **style):
    """``values`` (ny, nx) on the grid's coordinates: an image on a regular grid, else a mesh;
    labelled axes."""
    ys, xs = (
        np.asarray(dataset[dim].values, float)
        if dim in dataset.variables
        else np.arange(dataset.sizes[dim], dtype=float)
        for dim in grid
    )
    if len(ys) > 1 and ys[0] > ys[-1]:
        ys, values = ys[::-1], values[::-1, :]
    if len(xs) > 1 and xs[0] > xs[-1]:
        xs, values = xs[::-1], values[:, ::-1]
    if _regular(xs) and _regular(ys):
        dx, dy = _spacing(xs), _spacing(ys)
        extent = [xs[0] - dx / 2, xs[-1] + dx / 2, ys[0] - dy / 2, ys[-1] + dy / 2]
        image = axis.imshow(
            values, origin="lower", extent=extent, interpolation="nearest", aspect="auto", **style
        )
    else:
        image = axis.pcolormesh(xs, ys, values, shading="nearest", **style)
    _map_axes(axis, dataset, grid, ys)
    return image


def _regular(values: np.ndarray) -> bool:
    steps = np.diff(values)
    return len(steps) < 2 or bool(np.allclose(steps, steps[0], rtol=1e-6, atol=0.0))


def _spacing(values: np.ndarray) -> float:
    return float(values[1] - values[0]) if len(values) > 1 else 1.0


def _map_axes(axis, dataset: xr.Dataset, grid: tuple[str, str], ys: np.ndarray) -> None:
    """Axis labels with units; equal aspect on a metric grid, 1/cos(latitude) on a
    latitude-longitude one."""
    ydim, xdim = grid
    axis.set_xlabel(_label(dataset[xdim], xdim) if xdim in dataset.variables else xdim)
    axis.set_ylabel(_label(dataset[ydim], ydim) if ydim in dataset.variables else ydim)
    yunits = str(dataset[ydim].attrs.get("units", "")) if ydim in dataset.variables else ""
    xunits = str(dataset[xdim].attrs.get("units", "")) if xdim in dataset.variables else ""
    if yunits.startswith("degree") and xunits.startswith("degree"):
        middle = float(np.clip(np.mean(ys), -80.0, 80.0))
        axis.set_aspect(1.0 / np.cos(np.radians(middle)))
    elif yunits == xunits:
        axis.set_aspect("equal")


def _overlay_observations(row, locations: np.ndarray) -> None:
    """Small black markers at the observation locations on every panel; a legend with the count on
    the first."""
    for number, axis in enumerate(row):
        limits = axis.get_xlim(), axis.get_ylim()
        axis.scatter(
            locations[:, 1],
            locations[:, 0],
            s=9,
            c="k",
            marker=".",
            linewidths=0,
            label=f"observations (n={len(locations)})",
        )
        axis.set_xlim(*limits[0])
        axis.set_ylim(*limits[1])
        if number == 0:
            axis.legend(loc="upper right", fontsize="x-small", framealpha=0.7)


def time_series(dataset: xr.Dataset, variables: list[str], point: dict[str, int], title: str):
    """Background and analysis against time at the grid point ``{dim: index}`` (window starts
    marked)."""
    plt = _figure()
    figure, axes = plt.subplots(
        len(variables),
        1,
        figsize=(11, 2.8 * len(variables)),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    time = dataset["time"].values
    for (axis,), name in zip(axes, variables, strict=True):
        axis.plot(
            time,
            dataset[f"{name}_background"].isel(point).values,
            color="0.55",
            lw=1.2,
            label="background",
        )
        axis.plot(
            time,
            dataset[f"{name}_analysis"].isel(point).values,
            color="C0",
            lw=1.4,
            label="analysis",
        )
        for start in dataset["window_start"].values:
            axis.axvline(start, color="0.85", lw=0.6, zorder=0)
        where = (
            " at " + ", ".join(_where(dataset, dim, i) for dim, i in point.items()) if point else ""
        )
        axis.set_ylabel(_label(dataset[f"{name}_analysis"], name))
        axis.set_title(f"{name}{where}")
        axis.legend(loc="upper right", fontsize="small")
    axes[-1][0].set_xlabel(_label(dataset["time"], "time"))
    figure.suptitle(title)
    return figure


def window_diagnostics(dataset: xr.Dataset, title: str):
    """RMSE per window (with truth), cost before/after each window, outer-loop cost
    (incremental)."""
    plt = _figure()
    panels = ["cost"]
    if "analysis_rmse" in dataset and np.isfinite(dataset["analysis_rmse"].values).any():
        panels.insert(0, "rmse")
    if "outer_cost" in dataset:
        panels.append("outer")
    figure, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, layout="constrained"
    )
    window = np.arange(1, dataset.sizes["window"] + 1)
    for axis, panel in zip(axes[0], panels, strict=True):
        if panel == "rmse":
            axis.plot(
                window,
                dataset["background_rmse"].values,
                "o-",
                ms=3,
                color="0.55",
                label="background",
            )
            axis.plot(
                window, dataset["analysis_rmse"].values, "o-", ms=3, color="C0", label="analysis"
            )
            axis.set_ylabel("RMSE against truth")
            axis.set_title("RMSE per window")
        elif panel == "cost":
            axis.semilogy(
                window,
                dataset["cost_initial"].values,
                "o-",
                ms=3,
                color="0.55",
                label="J at background",
            )
            axis.semilogy(
                window, dataset["cost_final"].values, "o-", ms=3, color="C0", label="J at analysis"
            )
            axis.set_ylabel("cost J")
            axis.set_title("cost per window")
        else:
            costs = np.column_stack([dataset["outer_cost"].values, dataset["cost_final"].values])
            loops = np.arange(costs.shape[1])
            for k in range(costs.shape[0]):
                axis.semilogy(
                    loops,
                    costs[k],
                    color="C0",
                    alpha=max(0.05, 1.0 / costs.shape[0] ** 0.5),
                    lw=0.8,
                )
            axis.semilogy(
                loops, np.exp(np.log(costs).mean(axis=0)), "o-", color="C3", label="geometric mean"
            )
            axis.set_xticks(loops, [str(i + 1) for i in loops[:-1]] + ["final"])
            axis.set_xlabel("outer loop")
            axis.set_ylabel("nonlinear J")
            axis.set_title("cost per outer loop, every window")
        if panel != "outer":
            axis.set_xlabel("window")
        axis.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def training_curves(history: list[dict], observation_error: float, title: str):
    """Training loss and validation RMSE per epoch (the observation error as a reference line)."""
    plt = _figure()
    figure, (loss_axes, rmse_axes) = plt.subplots(1, 2, figsize=(10.5, 3.8), layout="constrained")
    epochs = [row["epoch"] for row in history]
    loss_axes.semilogy(epochs, [row["loss"] for row in history], marker="o")
    loss_axes.set(xlabel="epoch", ylabel="training loss (dimensionless)", title="training loss")
    rmse_axes.plot(
        epochs, [row["validation_rmse"] for row in history], marker="o", label="4DVarNet analysis"
    )
    rmse_axes.axhline(observation_error, color="grey", linestyle="--", label="observation error")
    rmse_axes.set(xlabel="epoch", ylabel="RMSE", title="validation RMSE against the truth")
    rmse_axes.legend()
    figure.suptitle(title)
    return figure
