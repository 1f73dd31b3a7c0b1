"""Benchmark: strong (nonlinear BFGS / Gauss-Newton) vs incremental (outer loops + CG) vs weak 4DVar.

Lorenz-96 (N = 40, F = 8, RK4, dt = 0.05), every site observed every step with R = I (DAPPER's
sakov2008 observing system), a twin experiment made by ``dacli simulate``. Every method runs in
this one process on the same files, one after the other, so the times are comparable as ratios.

Two scenarios:

* ``perfect``: back-to-back windows of 4 steps, the assimilating model is the truth's.
* ``imperfect``: windows of 20 steps, the assimilating model has F = 7.5 (truth F = 8): where
  weak constraint should earn its keep.

Model runs per window are counted from the algorithms' structure and the iteration counts that
dacli reports (the README of this folder gives the formulas): a *forward* run is one nonlinear
integration of the window, a *TL* run one tangent-linear integration, an *adjoint* run one
reverse (adjoint) integration. Gauss-Newton's Jacobian rows are adjoint runs batched by vmap.

    python benchmarks/lorenz96_methods.py                 # ~5 min on 2 cores
    python benchmarks/lorenz96_methods.py --quick         # fewer windows, ~2 min
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the dacli command does (see benchmarks/README.md)
os.environ.setdefault("EQX_ON_ERROR", "nan")  # as the dacli command does, before equinox loads

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "lorenz96.toml"
RESULTS = HERE / "results"

def incremental(outer_loops: int) -> list[str]:
    """Overrides for the incremental formulation: CG inner loops on one stored linearisation per outer loop."""
    return ['method.formulation="incremental"', 'method.minimiser="auto"', 'method.forward_adjoint="DirectAdjoint"',
            f"method.incremental={{outer_loops={outer_loops}, inner_steps=100, gradient_reduction=1e-3}}"]


def weak(subwindows: int, q_std: float) -> list[str]:
    return ['method.kind="weak4dvar"',
            f'method.model_error={{subwindows={subwindows}, covariance={{kind="diagonal", std={q_std}}}}}']


# label, scenario, overrides
METHODS = [
    ("strong, BFGS", "perfect", ['method.minimiser="BFGS"']),
    ("strong, Gauss-Newton", "perfect", ['method.minimiser="GaussNewton"']),
    ("strong, incremental 1 outer loop", "perfect", incremental(1)),
    ("strong, incremental 3 outer loops", "perfect", incremental(3)),
    ("weak, Gauss-Newton", "perfect", [*weak(2, 0.05), 'method.minimiser="GaussNewton"']),
    ("weak, incremental 3 outer loops", "perfect", [*weak(2, 0.05), *incremental(3)]),
    ("3D-FGAT, 1 outer loop", "perfect", [
        'method.kind="3dfgat"', 'method.minimiser="auto"',
        "method.incremental={outer_loops=1, inner_steps=100, gradient_reduction=1e-3}"]),
    ("strong, BFGS", "imperfect", ['method.minimiser="BFGS"']),
    ("strong, Gauss-Newton", "imperfect", ['method.minimiser="GaussNewton"']),
    ("strong, incremental 8 outer loops", "imperfect", incremental(8)),
    ("weak, Gauss-Newton", "imperfect", [*weak(10, 0.1), 'method.minimiser="GaussNewton"']),
    ("weak, incremental 8 outer loops", "imperfect", [*weak(10, 0.1), *incremental(8)]),
]

SCENARIOS = {
    "perfect": ["window.length=0.2", "window.shift=0.2", "model.parameters={n=40, forcing=8.0}"],
    "imperfect": ["window.length=1.0", "window.shift=1.0", "model.parameters={n=40, forcing=7.5}"],
}


def make_twin(folder: Path, duration: float) -> None:
    """``dacli simulate`` with configs/lorenz96.toml's settings, all sites observed, no missing values."""
    overrides = [f"simulate.duration={duration}", "simulate.missing_fraction=0.0",
                 f'observations.path="{folder / "obs.nc"}"', f'background.path="{folder / "background.nc"}"',
                 f'truth.path="{folder / "truth.nc"}"']
    command = [sys.executable, "-m", "dacli", "simulate", str(CONFIG), "--overwrite", "-q"]
    for item in overrides:
        command += ["--set", item]
    subprocess.run(command, check=True)


def model_runs(label: str, windows: dict, outer: dict, observations: int) -> dict[str, float]:
    """Mean forward / TL / adjoint runs per window (see the module docstring and benchmarks/README.md)."""
    final = {"forward": 3, "tl": 0, "adjoint": 1}  # dacli's analyse(): background + candidate, then J and grad once
    if "incremental" in label or "FGAT" in label:
        inner = outer["outer_inner_iterations"]  # (K, L)
        matvecs = inner + 1 + inner // 10  # CG: r0 = b - A 0, one per iteration, a stabilising one every 10
        loops = inner.shape[1]
        fgat = "FGAT" in label
        return {"forward": float(loops + final["forward"]),
                "tl": 0.0 if fgat else float(np.mean(np.sum(matvecs + 1, axis=1))),
                "adjoint": float(np.mean(np.sum(matvecs + 2, axis=1)) * (0 if fgat else 1) + final["adjoint"])}
    iterations = windows["iterations"].astype(float)
    if "Gauss-Newton" in label:  # one forward and a Jacobian (one adjoint run per residual row, vmapped) per step
        return {"forward": float(np.mean(iterations + final["forward"])), "tl": 0.0,
                "adjoint": float(np.mean(iterations * observations + final["adjoint"]))}
    return {"forward": float(np.mean(iterations + final["forward"])), "tl": 0.0,  # quasi-Newton: f and grad per step
            "adjoint": float(np.mean(iterations + final["adjoint"]))}


def run_method(folder: Path, label: str, scenario: str, overrides: list[str]) -> dict:
    import dacli.config
    from dacli.cli.render import result_json
    from dacli.run.assimilate import assimilate

    items = [*SCENARIOS[scenario], *overrides, f'output.path="{folder / "analysis.nc"}"', "output.overwrite=true",
             f'observations.path="{folder / "obs.nc"}"', f'background.path="{folder / "background.nc"}"',
             f'truth.path="{folder / "truth.nc"}"']
    config = dacli.config.load(CONFIG, items)
    started = time.perf_counter()
    result = assimilate(config)
    total = time.perf_counter() - started
    import xarray as xr

    with xr.open_dataset(folder / "analysis.nc", decode_times=False) as ds:
        outer = {name: ds[name].values for name in ds.data_vars if name.startswith("outer_")}
    summary = result_json(result.summary)
    observations = summary["observations_used"] / summary["windows"]
    runs = model_runs(label, result.windows, outer, observations)
    row = {
        "scenario": scenario, "method": label, "command": items,
        "background_rmse": summary["background_rmse"], "analysis_rmse": summary["analysis_rmse"],
        "converged_windows": summary["converged_windows"], "windows": summary["windows"],
        "iterations_mean": summary["iterations_mean"], "outer_loops": summary.get("outer_loops", 0),
        "compile_and_first_chunk_s": summary["compile_and_first_chunk_seconds"],
        "ms_per_window": 1e3 * summary["seconds_per_window_after_first_chunk"], "total_s": total,
        "forward_runs": runs["forward"], "tl_runs": runs["tl"], "adjoint_runs": runs["adjoint"],
        "minimiser": summary["minimiser"], "formulation": summary["formulation"],
    }
    print(f"{scenario:9s} {label:36s} rmse {row['analysis_rmse']:.3f} ({row['background_rmse']:.3f}) "
          f"{row['ms_per_window']:.2f} ms/window, runs F {runs['forward']:.0f} TL {runs['tl']:.0f} "
          f"AD {runs['adjoint']:.0f}", flush=True)
    return row


def markdown(report: dict) -> str:
    lines = [f"Lorenz-96 methods benchmark: {report['perfect_windows']} windows of 4 steps (perfect model), "
             f"{report['imperfect_windows']} windows of 20 steps (model F = 7.5, truth F = 8). "
             f"dacli {report['commit']}, {report['machine']}.", "",
             "| scenario | method | minimiser | analysis RMSE (background) | converged | iterations / window | "
             "forward runs / window | TL runs / window | adjoint runs / window | ms / window | "
             "time vs strong BFGS | compile + 1st chunk [s] |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    reference = {row["scenario"]: row["ms_per_window"] for row in report["rows"] if row["method"] == "strong, BFGS"}
    for row in report["rows"]:
        lines.append(
            f"| {row['scenario']} | {row['method']} | {row['minimiser']} | {row['analysis_rmse']:.3f} "
            f"({row['background_rmse']:.3f}) | {row['converged_windows']}/{row['windows']} | {row['iterations_mean']:.1f} | "
            f"{row['forward_runs']:.1f} | {row['tl_runs']:.1f} | {row['adjoint_runs']:.0f} | {row['ms_per_window']:.2f} | "
            f"{row['ms_per_window'] / reference[row['scenario']]:.2f} | {row['compile_and_first_chunk_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a shorter twin (smoke run)")
    parser.add_argument("--out", default=None, help="output prefix (default benchmarks/results/lorenz96_methods[_quick])")
    arguments = parser.parse_args()
    duration = 12.0 if arguments.quick else 40.0
    prefix = Path(arguments.out or RESULTS / ("lorenz96_methods_quick" if arguments.quick else "lorenz96_methods"))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        make_twin(folder, duration)
        rows = [run_method(folder, label, scenario, overrides) for label, scenario, overrides in METHODS]
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--", "../dacli"], capture_output=True,
                           text=True).stdout.strip()
    import jax

    report = {
        "commit": commit + (" + uncommitted changes in dacli/" if dirty else ""),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, jax {jax.__version__} "
                   f"on {jax.devices()[0].platform}",
        "perfect_windows": int(round(duration / 0.2)), "imperfect_windows": int(round(duration / 1.0)),
        "rows": rows,
    }
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".json").write_text(json.dumps(report, indent=2))
    prefix.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
