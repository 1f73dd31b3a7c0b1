"""Benchmark: dacli strong-constraint 4DVar on Lorenz-96, N = 40, 400, 4000, on CPU or GPU.

For each state size N:

1. A twin experiment is made with ``dacli simulate`` (a subprocess, always on the CPU in float64,
   so every device and precision assimilates the very same numbers): Lorenz-96 with
   ``{n = N, forcing = 8.0}``, RK4 dt = 0.05, every site observed every step (R = I, no missing
   values), background error std 1. The config is configs/lorenz96.toml adapted: back-to-back
   windows of 4 steps (length 0.2), ``--windows`` of them (40 by default), a *diagonal* B (std 1)
   for every N (configs/lorenz96.toml's Gaussian B is built as a dense N x N square root), LBFGS,
   forward_adjoint RecursiveCheckpointAdjoint, rtol = atol = 1e-6, max_steps 100.
2. ``dacli.run.assimilate.assimilate(config)`` runs it, on ``--device`` in ``--precision``, in a
   fresh child process per N (this script re-run with ``--child``): every N pays its own cold
   compilation, and the peak memory read at the end belongs to that N alone (JAX's
   ``peak_bytes_in_use`` and ``ru_maxrss`` only ever grow within a process).
3. Per N it records dacli's own timers (``compile_and_first_chunk_seconds``,
   ``seconds_per_window_after_first_chunk``: windows run in compiled chunks of up to 32, so the
   first chunk's time includes tracing and compiling), the wall time of the whole ``assimilate``
   call (reading, solving, writing the NetCDF file), analysis and background RMSE against the
   truth, the mean number of minimiser iterations, converged windows, and the peak memory:
   ``device.memory_stats()["peak_bytes_in_use"]`` on a GPU, peak RSS (``getrusage``) on the CPU
   (recorded on both).

    python benchmarks/gpu_lorenz96.py --device gpu                       # GPU, float64
    python benchmarks/gpu_lorenz96.py --device gpu --precision float32   # GPU, float32
    python benchmarks/gpu_lorenz96.py --device cpu                       # CPU, float64
    python benchmarks/gpu_lorenz96.py --device cpu --quick               # smoke run: N = 40, 400, 16 windows
    python benchmarks/gpu_lorenz96.py --compare A.json B.json ...        # side-by-side table of runs

Writes benchmarks/results/gpu_lorenz96_<device>_<precision>[_quick].{json,md}, or ``--out
PREFIX``.{json,md}. Other options: ``--sizes 40,4000``, ``--windows K``, ``--data DIR`` (keep
the twin-experiment files there and reuse them when their config is unchanged), ``--set
key=value`` (extra dacli overrides, repeatable). This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    child_command,
    child_env,
    fmt,
    gpu_memory,
    log,
    peak_rss_bytes,
    run_environment,
    show_text,
    write_json_and_markdown,
)
from provenance import environment  # benchmarks/provenance.py, beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DT = 0.05
STEPS_PER_WINDOW = 4
SIZES = (40, 400, 4000)
QUICK_SIZES = (40, 400)
WINDOWS = 40  # chunks of 10 (dacli's chunk_size): the first chunk compiles, 30 windows are timed after it
QUICK_WINDOWS = 16  # chunks of 4: 12 windows timed

CONFIG_TEMPLATE = """\
# Written by benchmarks/gpu_lorenz96.py: configs/lorenz96.toml adapted (N = {n}, diagonal B,
# every site observed, no missing values, {windows} back-to-back windows of {steps} steps).

[run]
name = "gpu-lorenz96-n{n}"
seed = 42
precision = "float64"
device = "auto"

[model]
name = "lorenz96"
parameters = {{ n = {n}, forcing = 8.0 }}
ode_solver = "RK4"
dt = {dt}

[window]
start = 0.0
length = {length}
shift = {length}
count = {windows}
assimilate = "newest"

[observations]
path = "lorenz96_n{n}_obs.nc"
layout = "gridded"

[background]
path = "lorenz96_n{n}_background.nc"

[background.covariance]
kind = "diagonal"
std = 1.0

[method]
kind = "strong4dvar"
minimiser = "LBFGS"
rtol = 1e-6
atol = 1e-6
max_steps = 100
forward_adjoint = "RecursiveCheckpointAdjoint"
minimiser_adjoint = "ImplicitAdjoint"

[output]
path = "lorenz96_n{n}_analysis.nc"
title = "dacli GPU benchmark, Lorenz-96 N = {n}"

[truth]
path = "lorenz96_n{n}_truth.nc"

[simulate]
spinup = 10.0
duration = {duration}
obs_interval = {dt}
obs_error_std = 1.0
observed_fraction = 1.0
missing_fraction = 0.0
background_error_std = 1.0
"""


# --------------------------------------------------------------------------------------------
# Twin experiment (dacli simulate)
# --------------------------------------------------------------------------------------------

def make_inputs(folder: Path, n: int, windows: int) -> Path:
    """Write the config for size ``n`` and run ``dacli simulate`` on it (CPU, float64).

    Files already there from the same config text are reused.
    """
    length = round(STEPS_PER_WINDOW * DT, 12)
    text = CONFIG_TEMPLATE.format(n=n, dt=DT, length=length, windows=windows, steps=STEPS_PER_WINDOW,
                                  duration=round(windows * length, 12))
    config = folder / f"lorenz96_n{n}.toml"
    files = [folder / f"lorenz96_n{n}_{kind}.nc" for kind in ("obs", "background", "truth")]
    if config.exists() and config.read_text() == text and all(f.exists() for f in files):
        log(f"N = {n}: reusing the twin experiment in {folder}")
        return config
    config.write_text(text)
    started = time.perf_counter()
    command = [sys.executable, "-m", "dacli", "simulate", str(config), "--device", "cpu",
               "--precision", "float64", "--overwrite", "-q", "--json"]
    # cwd = the data folder: ``-m`` puts the working directory first on sys.path.
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=folder)
    if done.returncode != 0:
        sys.exit(f"dacli simulate failed for N = {n} (exit {done.returncode}):\n{done.stderr}")
    log(f"N = {n}: dacli simulate wrote the twin experiment in {time.perf_counter() - started:.1f} s")
    return config


# --------------------------------------------------------------------------------------------
# One N, in a child process
# --------------------------------------------------------------------------------------------

def run_child(config_path: str, device: str, precision: str, overrides: list[str]) -> None:
    """Assimilate one config in this process; print one JSON object on stdout."""
    import dacli.config
    from dacli.cli.render import result_json
    from dacli.run.assimilate import assimilate

    sets = [f'run.device="{device}"', f'run.precision="{precision}"', *overrides]
    config = dacli.config.load(config_path, sets)
    # output.path is relative to the working directory: put the analysis beside the inputs.
    output = str(Path(config_path).parent / Path(config.output.path).name)
    config = config.model_copy(update={"output": config.output.model_copy(update={"path": output})})
    started = time.perf_counter()
    result = assimilate(config, overwrite=True)
    wall = time.perf_counter() - started

    record = {
        "n": int(config.model.parameters["n"]),
        "summary": result_json(result.summary),
        "assimilate_wall_seconds": round(wall, 3),
        **gpu_memory(),
        "peak_rss_bytes": peak_rss_bytes(),
        **run_environment(sets),
    }
    print(json.dumps(record))


def run_size(config: Path, device: str, precision: str, overrides: list[str]) -> dict:
    command = child_command(__file__, config, device, precision, overrides)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=config.parent)
    if done.returncode != 0:
        sys.exit(f"the run of {config.name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record["process_wall_seconds"] = round(time.perf_counter() - started, 3)  # with JAX start-up and imports
    return record


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def peak_memory(run: dict) -> tuple[float, str]:
    """(MiB, what was measured): GPU peak bytes in use on a GPU, peak RSS on the CPU."""
    if run.get("gpu_peak_bytes_in_use") is not None:
        return run["gpu_peak_bytes_in_use"] / 2**20, "GPU peak_bytes_in_use"
    return run["peak_rss_bytes"] / 2**20, "peak RSS"


def table(runs: list[dict]) -> list[str]:
    lines = [
        "| N | compile + first chunk (s) | ms / window after | windows timed | assimilate wall (s) | background RMSE "
        "| analysis RMSE | iterations (mean) | converged | peak memory (MiB) | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run["summary"]
        per_window = s["seconds_per_window_after_first_chunk"]
        timed = s["windows"] - s["windows_per_compiled_chunk"]
        memory, what = peak_memory(run)
        lines.append(
            f"| {run['n']} | {fmt(s['compile_and_first_chunk_seconds'], 2)} | "
            f"{fmt(None if per_window is None else 1e3 * per_window, 2)} | {timed} | {fmt(run['assimilate_wall_seconds'], 2)} | "
            f"{fmt(s.get('background_rmse'))} | {fmt(s.get('analysis_rmse'))} | {fmt(s['iterations_mean'], 1)} | "
            f"{s['converged_windows']}/{s['windows']} | {memory:.1f} | {what} |"
        )
    return lines


def markdown(report: dict) -> str:
    settings, env = report["settings"], report["environment"]
    runs = report["runs"]
    device_kind = runs[0]["device_kind"] if runs else "?"
    lines = [
        f"# dacli 4DVar on Lorenz-96: {settings['device']}, {settings['precision']}"
        + (" (quick)" if settings["quick"] else ""),
        "",
        f"`{report['command']}`",
        "",
        f"Device: {runs[0]['jax_devices'][0] if runs else '?'} ({device_kind}); CPU: {env['cpu']}, "
        f"{env['cpu_count']} cores; GPU (nvidia-smi): {env['nvidia_smi'] or 'none'}.",
        f"dacli {runs[0]['dacli_version'] if runs else '?'} at {env['dacli_commit']}, jax {env['versions']['jax']}, "
        f"jaxlib {env['versions']['jaxlib']}, diffrax {env['versions']['diffrax']}, optimistix "
        f"{env['versions']['optimistix']}, Python {env['python']}.",
        "",
        f"{settings['windows']} back-to-back windows of {STEPS_PER_WINDOW} steps (dt = {DT}, RK4), every site observed "
        "every step (R = I), diagonal B (std 1), LBFGS (rtol = atol = 1e-6, max_steps 100), "
        "RecursiveCheckpointAdjoint; each N in a fresh process (cold compile).",
        "",
        *table(runs),
        "",
        "\"compile + first chunk\" is dacli's `compile_and_first_chunk_seconds` (tracing, compiling and solving the "
        "first chunk of windows); \"ms / window after\" is `seconds_per_window_after_first_chunk`; \"assimilate "
        "wall\" is the whole `assimilate()` call (reading, building, solving, writing the NetCDF file).",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Comparison of several result files
# --------------------------------------------------------------------------------------------

def compare(paths: list[str], out: str | None) -> None:
    """Side-by-side table; files with the same device and precision are merged into one column
    (e.g. the main run and a ``--sizes 40000`` run). Ratios: first column's time / column's time."""
    columns: dict[str, dict[int, dict]] = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        label = f"{report['settings']['device']} {report['settings']['precision']}"
        if report["settings"].get("overrides"):
            label += " (" + ", ".join(report["settings"]["overrides"]) + ")"
        for run in report["runs"]:
            columns.setdefault(label, {})[run["n"]] = run
    labels = list(columns)
    sizes = sorted({n for runs in columns.values() for n in runs})
    metrics = [
        ("ms / window after first chunk", lambda r: None if r["summary"]["seconds_per_window_after_first_chunk"] is None
         else 1e3 * r["summary"]["seconds_per_window_after_first_chunk"], 2, True),
        ("compile + first chunk (s)", lambda r: r["summary"]["compile_and_first_chunk_seconds"], 2, True),
        ("analysis RMSE (background)", lambda r: r["summary"].get("analysis_rmse"), 3, False),
        ("iterations (mean)", lambda r: r["summary"]["iterations_mean"], 1, False),
        ("peak memory (MiB)", lambda r: peak_memory(r)[0], 1, False),
    ]
    lines = [f"# dacli 4DVar on Lorenz-96: {' vs '.join(labels)}", "",
             f"Speed-up = time on {labels[0]} / time on the column's device (> 1: faster than {labels[0]}). "
             "Peak memory: GPU `peak_bytes_in_use` on a GPU, the whole process's peak RSS on the CPU "
             "(not the same quantity).", ""]
    header = "| N | metric | " + " | ".join(labels) + " | " + " | ".join(f"{l} speed-up" for l in labels[1:]) + " |"
    lines += [header, "|" + "---|" * (2 + 2 * len(labels) - 1)]
    for n in sizes:
        for name, key, digits, ratio in metrics:
            values = [None if n not in columns[l] else key(columns[l][n]) for l in labels]
            cells = [fmt(v, digits) for v in values]
            if name.startswith("analysis RMSE"):
                cells = [c if n not in columns[l] else f"{c} ({fmt(columns[l][n]['summary'].get('background_rmse'))})"
                         for c, l in zip(cells, labels)]
            ratios = [f"{values[0] / v:.3g}x" if ratio and v and values[0] is not None else "" for v in values[1:]]
            lines.append(f"| {n} | {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    show_text("\n".join(lines) + "\n", out)


# --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    parser.add_argument("--precision", choices=("float64", "float32"), default="float64")
    parser.add_argument("--quick", action="store_true", help="N = 40, 400 and 16 windows (under a minute on 2 cores)")
    parser.add_argument("--sizes", help="comma-separated state sizes (default 40,400,4000)")
    parser.add_argument("--windows", type=int, help=f"windows per run (default {WINDOWS}; --quick {QUICK_WINDOWS})")
    parser.add_argument("--data", help="folder for the twin-experiment files (kept, reused); default a temporary one")
    parser.add_argument("--out", help="output prefix (default benchmarks/results/gpu_lorenz96_<device>_<precision>[_quick])")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra dacli override KEY=VALUE")
    parser.add_argument("--compare", nargs="+", metavar="JSON", help="print a side-by-side table of result files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run_child(args.child, args.device, args.precision, args.overrides)
        return
    if args.compare:
        compare(args.compare, args.out)
        return

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    windows = args.windows or (QUICK_WINDOWS if args.quick else WINDOWS)
    out = Path(args.out) if args.out else (
        HERE / "results" / f"gpu_lorenz96_{args.device}_{args.precision}{'_quick' if args.quick else ''}")
    if out.suffix in (".json", ".md"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli sets it

    with contextlib.ExitStack() as stack:
        if args.data:
            folder = Path(args.data).resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dacli-gpu-bench-")))
        configs = {n: make_inputs(folder, n, windows) for n in sizes}
        runs = []
        for n in sizes:
            log(f"N = {n}: assimilating on {args.device} in {args.precision} ...")
            run = run_size(configs[n], args.device, args.precision, args.overrides)
            s = run["summary"]
            per_window = s["seconds_per_window_after_first_chunk"]
            log(f"N = {n}: compile + first chunk {s['compile_and_first_chunk_seconds']:.2f} s, "
                f"{'n/a' if per_window is None else f'{1e3 * per_window:.2f}'} ms/window after, "
                f"RMSE {s.get('background_rmse', float('nan')):.3f} -> {s.get('analysis_rmse', float('nan')):.3f}, "
                f"{s['iterations_mean']:.1f} iterations, {s['converged_windows']}/{s['windows']} converged, "
                f"peak {peak_memory(run)[0]:.0f} MiB ({peak_memory(run)[1]}), {s['device']}")
            runs.append(run)

    report = {
        "benchmark": "gpu_lorenz96",
        "command": " ".join(["python", "benchmarks/gpu_lorenz96.py", *sys.argv[1:]]),
        "settings": {"device": args.device, "precision": args.precision, "quick": args.quick, "sizes": sizes,
                     "windows": windows, "steps_per_window": STEPS_PER_WINDOW, "dt": DT, "overrides": args.overrides},
        "environment": environment(),
        "runs": runs,
    }
    write_json_and_markdown(out, report, markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
