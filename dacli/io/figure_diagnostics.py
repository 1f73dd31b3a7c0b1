"""The per-window diagnostics figure: RMSE, J/Jb/Jo, O−B/O−A, iterations, convergence.

Panels, each when the analysis file has what it needs: the background and analysis RMSE against
the truth; the cost J at the background and at the analysis with the analysis' Jb, Jo (and Jq,
weak constraint); the RMS and mean of O−B and O−A; the minimiser's iterations, coloured by
convergence; the gradient norm at the analysis; for the incremental formulation the nonlinear
cost over the outer loops. Windows are numbered as ``dacli assimilate --windows`` numbers them
(from 0). What JEDI/OOPS reports per outer loop, drawn per window.

Not for the observations themselves (:mod:`dacli.io.figure_observations`).
Reference: Trémolet (2007) QJRMS 133 (incremental 4D-Var minimisation diagnostics); Desroziers
et al. (2005) QJRMS 131 (O−B and O−A statistics).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, StrMethodFormatter

from dacli.io.figure_time import FigureTimes
from dacli.io.figures import _figure, units_text

BACKGROUND, ANALYSIS, NOT_CONVERGED = "0.55", "C0", "C3"
TITLES = {
    "rmse": "RMSE against the truth",
    "cost": "cost per window",
    "departures": "O\u2212B and O\u2212A per window",
    "iterations": "iterations and convergence",
    "gradient": "gradient norm at the analysis",
    "outer": "cost per outer loop, every window",
}
COLUMNS = 3


def _finite(dataset: xr.Dataset, name: str) -> bool:
    return name in dataset and bool(np.isfinite(np.asarray(dataset[name].values, float)).any())


def panels_of(dataset: xr.Dataset) -> list[str]:
    """The panels (keys of TITLES) the analysis file has data for, in drawing order."""
    wanted = {
        "rmse": _finite(dataset, "analysis_rmse"),
        "cost": "cost_final" in dataset,
        "departures": _finite(dataset, "omb_rms"),
        "iterations": "iterations" in dataset,
        "gradient": _finite(dataset, "gradient_norm"),
        "outer": "outer_cost" in dataset,
    }
    return [panel for panel, present in wanted.items() if present]


def window_diagnostics(dataset: xr.Dataset, title: str, times: FigureTimes):
    """The diagnostics figure (see the module's docstring); axes titles are TITLES' values."""
    plt = _figure()
    panels = panels_of(dataset)
    columns = min(COLUMNS, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(5.0 * columns, 3.7 * rows + 0.5),
        squeeze=False,
        layout="constrained",
    )
    numbers = np.asarray(times.window_numbers)
    draw = {
        "rmse": _rmse,
        "cost": _cost,
        "departures": _departures,
        "iterations": _iterations,
        "gradient": _gradient,
        "outer": _outer_loops,
    }
    for axis, panel in zip(axes.ravel(), panels, strict=False):
        draw[panel](axis, dataset, numbers)
        axis.set_title(_title(panel, dataset))
        if panel != "outer":
            axis.set_xlabel("window (from 0, as --windows counts)")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    for axis in axes.ravel()[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(f"{title}\n{_windows_text(times)}")
    return figure


def _title(panel: str, dataset: xr.Dataset) -> str:
    if panel != "iterations" or "converged" not in dataset:
        return TITLES[panel]
    converged = np.asarray(dataset["converged"].values).astype(bool)
    return f"{TITLES[panel]} ({int(converged.sum())} of {len(converged)} converged)"


def _windows_text(times: FigureTimes) -> str:
    """'windows 0 to 49: t = 0 to 10' (dates for calendar times)."""
    numbers = times.window_numbers
    if not len(numbers):
        return ""
    ends = times.window_ends if times.window_ends is not None else times.window_starts
    span = times.span(float(times.window_starts[0]), float(ends[-1]))
    return f"windows {int(numbers[0])} to {int(numbers[-1])}: {span}"


def _log_scale(axis) -> None:
    """A logarithmic y axis (call after plotting) with ticks at 1, 2, 5 x 10^k over up to two
    decades of data, at the powers of ten beyond, labelled as plain numbers ('20', '500',
    '1e-08'): no mathtext, whose layout costs about a second per figure."""
    axis.set_yscale("log")
    low, high = axis.dataLim.intervaly
    decades = np.log10(high / low) if 0 < low < high else 0.0
    axis.yaxis.set_major_locator(LogLocator(subs=(1.0,) if decades > 2 else (1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.yaxis.set_minor_formatter(NullFormatter())


def _line(axis, numbers, values, colour, label, style="o-", **more):
    axis.plot(numbers, np.asarray(values, float), style, ms=3, color=colour, label=label, **more)


def _rmse(axis, dataset, numbers) -> None:
    _line(axis, numbers, dataset["background_rmse"].values, BACKGROUND, "background")
    _line(axis, numbers, dataset["analysis_rmse"].values, ANALYSIS, "analysis")
    axis.set_ylabel(f"RMSE {units_text(dataset['analysis_rmse'])}".strip())
    axis.set_ylim(bottom=0)


def _cost(axis, dataset, numbers) -> None:
    _line(axis, numbers, dataset["cost_initial"].values, BACKGROUND, "J at the background")
    _line(axis, numbers, dataset["cost_final"].values, ANALYSIS, "J at the analysis")
    terms = (
        ("cost_background_final", "C2", "Jb at the analysis"),
        ("cost_observation_final", "C1", "Jo at the analysis"),
        ("cost_model_error_final", "C4", "Jq at the analysis"),
    )
    for name, colour, label in terms:
        if name in dataset and np.nanmax(np.abs(dataset[name].values)) > 0:
            _line(axis, numbers, dataset[name].values, colour, label, "s--", lw=0.9)
    _log_scale(axis)
    axis.set_ylabel("cost")


def _departures(axis, dataset, numbers) -> None:
    _line(axis, numbers, dataset["omb_rms"].values, BACKGROUND, "O\u2212B RMS")
    _line(axis, numbers, dataset["oma_rms"].values, ANALYSIS, "O\u2212A RMS")
    if "omb_mean" in dataset:
        _line(axis, numbers, dataset["omb_mean"].values, BACKGROUND, "O\u2212B mean", "^--", lw=0.9)
        _line(axis, numbers, dataset["oma_mean"].values, ANALYSIS, "O\u2212A mean", "^--", lw=0.9)
    axis.axhline(0.0, color="0.3", lw=0.6)
    axis.set_ylabel(f"departure {units_text(dataset['omb_rms'])}".strip())


def _iterations(axis, dataset, numbers) -> None:
    iterations = np.asarray(dataset["iterations"].values)
    converged = (
        np.asarray(dataset["converged"].values).astype(bool)
        if "converged" in dataset
        else np.ones(len(iterations), bool)
    )
    mixed = bool(converged.any() and not converged.all())  # else the title says it all
    for flag, colour, label in (
        (True, ANALYSIS, "converged"),
        (False, NOT_CONVERGED, "not converged"),
    ):
        chosen = converged == flag
        if chosen.any():
            axis.bar(
                numbers[chosen],
                iterations[chosen],
                color=colour,
                width=0.8,
                label=label if mixed else None,
            )
    incremental = "outer_cost" in dataset
    axis.set_ylabel("CG iterations (all outer loops)" if incremental else "minimiser iterations")


def _gradient(axis, dataset, numbers) -> None:
    _line(axis, numbers, dataset["gradient_norm"].values, ANALYSIS, None)
    _log_scale(axis)
    axis.set_ylabel("|gradient of J|")


def _outer_loops(axis, dataset, numbers) -> None:
    costs = np.column_stack([dataset["outer_cost"].values, dataset["cost_final"].values])
    loops = np.arange(costs.shape[1])
    for k in range(costs.shape[0]):
        axis.semilogy(
            loops, costs[k], color=ANALYSIS, alpha=max(0.05, 1.0 / costs.shape[0] ** 0.5), lw=0.8
        )
    axis.semilogy(
        loops, np.exp(np.log(costs).mean(axis=0)), "o-", color="C3", label="geometric mean"
    )
    axis.set_xticks(loops, [str(i + 1) for i in loops[:-1]] + ["final"])
    _log_scale(axis)
    axis.set_xlabel("outer loop")
    axis.set_ylabel("nonlinear J")
