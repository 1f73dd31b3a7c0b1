"""Pictures of dacli's files (matplotlib, PNG): the backend, atomic saving, labels, training curves.

The pictures of an analysis file each have their module: :mod:`dacli.io.figure_maps` (2-D models),
:mod:`dacli.io.figure_hovmoller` (1-D models), :mod:`dacli.io.figure_series` (time series at a
grid point) and :mod:`dacli.io.figure_diagnostics` (per-window diagnostics). A figure function
returns the matplotlib Figure (tests read its artists); :func:`save_figure` writes it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
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


def units_text(variable: xr.DataArray) -> str:
    """'[m]' from a variable's units; '' without units or for '1'."""
    units = variable.attrs.get("units")
    return f"[{units}]" if units and units != "1" else ""


def axis_label(variable: xr.DataArray, fallback: str) -> str:
    """'ssh [m]': ``fallback`` with the variable's units."""
    return f"{fallback} {units_text(variable)}".strip()


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
