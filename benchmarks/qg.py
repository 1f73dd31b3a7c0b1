"""Benchmark: dacli strong-constraint 4DVar on the 1.5-layer QG model, 64 x 64 ... 1024 x 1024, CPU or GPU.

Three suites (``--suites``, default all three):

* ``methods``: one grid (``--method-size``, default 256 x 256), 2-day windows; the nonlinear
  formulation (LBFGS, ``max_steps`` 30) and the incremental one (CG, 2 outer loops of at most 60
  inner iterations, gradient reduction 1e-3), each with every diffrax ``forward_adjoint``:
  RecursiveCheckpointAdjoint, BacksolveAdjoint, DirectAdjoint, ForwardMode. A combination dacli
  refuses, or that fails, is recorded with its error instead of stopping the benchmark. With
  ForwardMode dacli takes dJ/dv by ``jax.jacfwd`` (every LBFGS gradient; in the incremental
  formulation the gradient of each outer loop), i.e. one tangent per control variable (n = 65 536
  at 256 x 256: a 128 GiB allocation, measured on the GPU): it is not run above
  ``--forward-mode-limit`` control variables (default 4096) and recorded as "not run", with the reason.
* ``grid``: the incremental formulation with RecursiveCheckpointAdjoint, 2-day windows, on grids
  ``--sizes`` (default 64, 128, 256, 512).
* ``window``: the same on ``--window-size`` (default 128 x 128) with windows of ``--window-lengths``
  days (default 1, 2, 4, 8 = 4, 8, 16, 32 steps of 6 hours).

A case shared by two suites (e.g. grid 256 and methods incremental/RecursiveCheckpointAdjoint) runs once.

The twin experiment is configs/qg.toml adapted: a doubly periodic box of nx x nx cells of 20 km
(``length_x = nx * 20 km``, deformation radius 40 km, viscosity 20 m^2/s, beta-plane defaults,
coordinates in metres), RK4 with dt = 0.25 day, spun up 100 days; nadir-altimeter-like tracks
every 6 hours (noise 2 cm); background error 5 cm correlated like B; B = Gaussian correlation
(80 km, std 5 cm) applied by FFT. ``dacli simulate`` writes it once per grid size (a subprocess,
on ``--sim-device`` in float64, so every device and precision assimilates the same numbers).

Each case is ``dacli.run.assimilate.assimilate(config)`` in a fresh child process (this script
re-run with ``--child``): every case pays its own cold compilation, and the peak memory read at the
end belongs to that case alone (``peak_bytes_in_use`` and ``ru_maxrss`` only ever grow within a
process). ``--windows`` windows (default 3) back to back: dacli compiles chunks of
``max(1, windows // 4)`` windows, so with 3 windows the first window's chunk holds the tracing and
compilation (``compile_and_first_chunk_seconds``) and the other two are timed
(``seconds_per_window_after_first_chunk``). Memory: the process's peak RSS (``getrusage``), its RSS
just before ``assimilate`` (JAX started, backend up: the baseline), and on a GPU
``device.memory_stats()["peak_bytes_in_use"]``.

    python benchmarks/qg.py --device cpu                         # all suites, CPU, float64
    python benchmarks/qg.py --device cpu --suites methods        # 256 x 256, every formulation x adjoint
    python benchmarks/qg.py --device gpu --sizes 64,128,256,512,1024
    python benchmarks/qg.py --device gpu --precision float32 --suites grid --sizes 256,1024
    python benchmarks/qg.py --quick                              # smoke run: 32/64 grids, 2 windows (~4 min, 2 cores)
    python benchmarks/qg.py --compare A.json B.json ...          # side-by-side table of runs (ratios to A)
    python benchmarks/qg.py --merge A.json B.json --out PREFIX   # one report from runs of one device

Writes benchmarks/results/qg_<device>_<precision>[_quick].{json,md}, or ``--out PREFIX``. Other
options: ``--data DIR`` (keep the twin experiments there, reused while their config is unchanged),
``--case-timeout S``, ``--set key=value`` (extra dacli overrides for every case). This is a
benchmark, not a test.
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
DX = 20e3  # m
DT = 0.25  # days
ADJOINTS = ("RecursiveCheckpointAdjoint", "BacksolveAdjoint", "DirectAdjoint", "ForwardMode")
FORMULATIONS = ("nonlinear", "incremental")
SIZES = (64, 128, 256, 512)
WINDOW_LENGTHS = (1.0, 2.0, 4.0, 8.0)
NONLINEAR_MAX_STEPS = 30

DATA_TEMPLATE = """\
# Written by benchmarks/qg.py: configs/qg.toml adapted (nx = ny = {nx}, 20 km cells, coordinates in
# metres), the twin experiment for every case on this grid.

[run]
name = "qg-bench-n{nx}"
seed = 7
precision = "float64"
device = "auto"

[model]
name = "qg"
parameters = {{ nx = {nx}, ny = {nx}, length_x = {length_x:.6g}, deformation_radius = 40e3, viscosity = 20.0 }}
ode_solver = "RK4"
dt = {dt}

[window]
start = 0.0
length = {length}
shift = {length}
count = {windows}

[observations]
path = "{folder}/qg_n{nx}_obs.nc"
layout = "scattered"

[background]
path = "{folder}/qg_n{nx}_background.nc"

[background.covariance]
kind = "gaussian"
std = 0.05
length_scale = 80e3          # m

[method]
kind = "strong4dvar"
formulation = "incremental"
{method}
[output]
path = "{output}"
title = "dacli QG benchmark, {nx} x {nx}"

[truth]
path = "{folder}/qg_n{nx}_truth.nc"

[simulate]
spinup = {spinup}
duration = {duration}
obs_interval = {dt}
obs_error_std = 0.02
sampling = "tracks"
tracks_per_time = 1
track_angle = 60.0
repeat_period = 10.0
background_error_std = 0.05
"""

INCREMENTAL = """\
forward_adjoint = "{adjoint}"

[method.incremental]
outer_loops = 2
inner_steps = 60
gradient_reduction = 1e-3
"""

NONLINEAR = """\
forward_adjoint = "{adjoint}"
minimiser = "LBFGS"
max_steps = {max_steps}
"""



# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

def case_key(case: dict) -> str:
    return f"n{case['nx']}_w{case['window_days']:g}_{case['formulation']}_{case['adjoint']}"


def plan_cases(suites: list[str], args) -> list[dict]:
    """The cases of the chosen suites, each once, in a sensible order (small first)."""
    cases: dict[str, dict] = {}

    def add(suite, nx, window_days, formulation, adjoint):
        case = {"nx": nx, "window_days": window_days, "formulation": formulation, "adjoint": adjoint}
        key = case_key(case)
        cases.setdefault(key, {**case, "key": key, "suites": []})["suites"].append(suite)

    if "grid" in suites:
        for nx in args.sizes:
            add("grid", nx, 2.0, "incremental", "RecursiveCheckpointAdjoint")
    if "window" in suites:
        for days in args.window_lengths:
            add("window", args.window_size, days, "incremental", "RecursiveCheckpointAdjoint")
    if "methods" in suites:
        for formulation in FORMULATIONS:
            for adjoint in ADJOINTS:
                add("methods", args.method_size, 2.0, formulation, adjoint)
    return sorted(cases.values(), key=lambda c: (c["nx"], c["window_days"], c["formulation"] != "incremental",
                                                  ADJOINTS.index(c["adjoint"])))


def config_text(folder: Path, nx: int, windows: int, window_days: float, duration: float, spinup: float,
                method: str, output: str) -> str:
    return DATA_TEMPLATE.format(nx=nx, length_x=nx * DX, dt=DT, length=window_days, windows=windows,
                                folder=folder, method=method, output=output, spinup=spinup, duration=duration)


def make_inputs(folder: Path, nx: int, windows: int, duration: float, spinup: float, sim_device: str) -> Path:
    """Write grid ``nx``'s twin-experiment config and run ``dacli simulate`` on it (float64).

    Files already there from the same config text are reused.
    """
    text = config_text(folder, nx, windows, 2.0, duration, spinup, INCREMENTAL.format(adjoint=ADJOINTS[0]),
                       f"{folder}/qg_n{nx}_analysis.nc")
    config = folder / f"qg_n{nx}.toml"
    files = [folder / f"qg_n{nx}_{kind}.nc" for kind in ("obs", "background", "truth")]
    if config.exists() and config.read_text() == text and all(f.exists() for f in files):
        log(f"{nx} x {nx}: reusing the twin experiment in {folder}")
        return config
    config.write_text(text)
    started = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "--simulate-child", "simulate", str(config),
               "--device", sim_device, "--precision", "float64", "--overwrite", "-q", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=folder)
    if done.returncode != 0:
        sys.exit(f"dacli simulate failed for {nx} x {nx} (exit {done.returncode}):\n{done.stderr}")
    log(f"{nx} x {nx}: dacli simulate wrote the twin experiment in {time.perf_counter() - started:.1f} s "
        f"(on {sim_device}, {duration:g} days after a {spinup:g}-day spin-up)")
    return config


def case_config(folder: Path, case: dict, windows: int, duration: float, spinup: float, max_steps: int) -> Path:
    template = INCREMENTAL if case["formulation"] == "incremental" else NONLINEAR
    method = template.format(adjoint=case["adjoint"], max_steps=max_steps)
    text = config_text(folder, case["nx"], windows, case["window_days"], duration, spinup, method,
                       f"{folder}/qg_{case['key']}_analysis.nc")
    text = text.replace('formulation = "incremental"', f'formulation = "{case["formulation"]}"')
    path = folder / f"qg_{case['key']}.toml"
    path.write_text(text)
    return path


def simulate_child(argv: list[str]) -> None:
    """``dacli simulate`` through its own CLI entry point, with ``argv``.

    (The runs recorded in results/ replaced dacli's scattered-observation sampler, which then read
    one whole truth state per observation (27 GiB at 512 x 512), by one reading only the
    interpolation points; dacli's own sampler has done that since, giving the same files.)
    """
    from dacli.cli.app import main as dacli_main

    sys.argv = ["dacli", *argv]
    dacli_main()


# --------------------------------------------------------------------------------------------
# One case, in a child process
# --------------------------------------------------------------------------------------------

def run_child(config_path: str, device: str, precision: str, overrides: list[str]) -> None:
    """Assimilate one config in this process; print one JSON object on stdout."""
    import dacli.config
    from dacli.cli.render import result_json
    from dacli.methods.cycling import chunk_inputs
    from dacli.methods.variational import analyse_windows
    from dacli.run.assimilate import assimilate
    from dacli.run.inputs import prepare_inputs
    from dacli.run.runtime import configure

    sets = [f'run.device="{device}"', f'run.precision="{precision}"', *overrides]
    config = dacli.config.load(config_path, sets)
    configure(config.run.precision, config.run.device)
    import jax
    import jax.numpy as jnp

    jax.devices()  # backend up: the baseline RSS includes JAX and XLA themselves
    baseline_rss = peak_rss_bytes()
    started = time.perf_counter()
    result = assimilate(config, overwrite=True)
    wall = time.perf_counter() - started
    xla_memory = {}
    with contextlib.suppress(Exception):  # the executable is in JAX's cache: no second compilation
        # XLA's memory analysis of the compiled chunk of windows the run used (the engine's own
        # chunk arguments: dacli.methods.cycling.chunk_inputs).
        inputs = prepare_inputs(config)
        background = jnp.asarray(inputs.background, inputs.problem.dtype)
        chunk = chunk_inputs(inputs.schedule, inputs.packed.stacked(), 0, result.summary.windows_per_compiled_chunk,
                             background.dtype)
        analysis = analyse_windows.lower(inputs.problem.method, background, *chunk,
                                         inputs.schedule.steps_per_shift).compile().compiled.memory_analysis()
        xla_memory = {name: int(getattr(analysis, name)) for name in (
            "temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
            "generated_code_size_in_bytes")}

    with contextlib.suppress(OSError):
        Path(config.output.path).unlink()  # up to 1024^2 x 27 states: not kept
    record = {
        "summary": result_json(result.summary),
        "assimilate_wall_seconds": round(wall, 3),
        **gpu_memory(),
        "peak_rss_bytes": peak_rss_bytes(),
        "baseline_rss_bytes": baseline_rss,
        "xla_memory_analysis": xla_memory,  # of the compiled chunk of windows (temp = its working buffers)
        **run_environment(sets),
    }
    print(json.dumps(record))


def run_case(config: Path, case: dict, device: str, precision: str, overrides: list[str], timeout: float) -> dict:
    command = child_command(__file__, config, device, precision, overrides)
    started = time.perf_counter()
    record = {**case, "status": "ok", "config": config.read_text()}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=config.parent,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**record, "status": "timed out", "error": f"no result within --case-timeout {timeout:g} s"}
    record["process_wall_seconds"] = round(time.perf_counter() - started, 3)  # with JAX start-up and imports
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {**record, "status": "failed", "returncode": done.returncode,
                "error": "\n".join(lines[-6:]), "stderr_tail": done.stderr[-4000:]}
    record.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return record


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def mib(value) -> float | None:
    return None if value is None else value / 2**20


def per_window(run: dict) -> float | None:
    s = run.get("summary")
    return None if not s else s["seconds_per_window_after_first_chunk"]


def xla_temp(run: dict) -> int | None:
    return (run.get("xla_memory_analysis") or {}).get("temp_size_in_bytes")


def memory_cells(run: dict) -> list[str]:
    """XLA temp, peak RSS, RSS above the baseline, GPU peak bytes in use (MiB)."""
    if run["status"] != "ok":
        return ["", "", "", ""]
    above = run["peak_rss_bytes"] - run["baseline_rss_bytes"]
    return [fmt(mib(xla_temp(run)), 1), fmt(mib(run["peak_rss_bytes"]), 0), fmt(mib(above), 0),
            fmt(mib(run.get("gpu_peak_bytes_in_use")), 1)]


def iterations_cell(run: dict) -> str:
    s = run["summary"]
    if "inner_iterations_per_loop_mean" in s:
        return "CG " + " + ".join(f"{n:.0f}" for n in s["inner_iterations_per_loop_mean"])
    return f"LBFGS {s['iterations_mean']:.0f}"


def status_cell(run: dict) -> str:
    if run["status"] == "ok":
        return f"{run['summary']['converged_windows']}/{run['summary']['windows']} converged"
    error = (run.get("error") or "").replace("\n", " ").replace("|", "/")
    return f"**{run['status']}**: {error[-300:]}"


MEM_HEADER = "XLA temp (MiB) | peak RSS (MiB) | RSS above baseline (MiB) | GPU peak in use (MiB)"


def methods_table(runs: list[dict]) -> list[str]:
    lines = [f"| formulation | forward_adjoint | s / window | compile + first window (s) | iterations / window "
             f"| background RMSE (m) | analysis RMSE (m) | {MEM_HEADER} | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        if run["status"] != "ok":
            lines.append(f"| {run['formulation']} | {run['adjoint']} | | | | | | | | | | {status_cell(run)} |")
            continue
        s = run["summary"]
        lines.append(f"| {run['formulation']} | {run['adjoint']} | {fmt(per_window(run), 2)} | "
                     f"{fmt(s['compile_and_first_chunk_seconds'], 1)} | {iterations_cell(run)} | "
                     f"{fmt(s.get('background_rmse'), 4)} | {fmt(s.get('analysis_rmse'), 4)} | "
                     f"{' | '.join(memory_cells(run))} | {status_cell(run)} |")
    return lines


def scaling_table(runs: list[dict], by: str) -> list[str]:
    """Rows by grid size (by = "nx") or window length (by = "window_days"), with ratios to the previous row."""
    first = "grid | N = nx^2" if by == "nx" else "window (days) | steps"
    lines = [f"| {first} | s / window | x previous | compile + first window (s) | iterations / window "
             f"| analysis RMSE (background) | {MEM_HEADER} | x previous (XLA temp) | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    previous = None
    for run in runs:
        label = (f"{run['nx']} x {run['nx']} | {run['nx'] ** 2}" if by == "nx"
                 else f"{run['window_days']:g} | {round(run['window_days'] / DT)}")
        if run["status"] != "ok":
            lines.append(f"| {label} | | | | | | | | | | | {status_cell(run)} |")
            continue
        s = run["summary"]
        ratio = memory_ratio = ""
        if previous is not None:
            ratio = f"{per_window(run) / per_window(previous):.2f}x" if per_window(previous) else ""
            memory_ratio = f"{xla_temp(run) / xla_temp(previous):.2f}x" if xla_temp(previous) and xla_temp(run) else ""
        lines.append(f"| {label} | {fmt(per_window(run), 3)} | {ratio} | {fmt(s['compile_and_first_chunk_seconds'], 1)} "
                     f"| {iterations_cell(run)} | {fmt(s.get('analysis_rmse'), 4)} ({fmt(s.get('background_rmse'), 4)}) | "
                     f"{' | '.join(memory_cells(run))} | {memory_ratio} | {status_cell(run)} |")
        previous = run
    return lines


def suite_runs(report: dict, suite: str) -> list[dict]:
    return [run for run in report["runs"] if suite in run["suites"]]


def markdown(report: dict) -> str:
    settings, env = report["settings"], report["environment"]
    ok = [run for run in report["runs"] if run["status"] == "ok"]
    device = ok[0]["jax_devices"][0] + f" ({ok[0]['device_kind']})" if ok else "?"
    lines = [
        f"# dacli 4DVar on the QG model: {settings['device']}, {settings['precision']}"
        + (" (quick)" if settings["quick"] else "") + ("" if report.get("complete", True) else " (INCOMPLETE run)"),
        "",
        f"`{report['command']}`",
        "",
        f"Device: {device}; CPU: {env['cpu']}, {env['cpus_usable']} of {env['cpu_count']} cores usable, "
        f"{env['memory_gib']} GiB; load average at the end {' '.join(env['load_average_at_end'] or [])}; "
        f"GPU (nvidia-smi): {env['nvidia_smi'] or 'none'}.",
        f"dacli at {env['dacli_commit']}, jax {env['versions']['jax']}, jaxlib {env['versions']['jaxlib']}, "
        f"diffrax {env['versions']['diffrax']}, optimistix {env['versions']['optimistix']}, Python {env['python']}.",
        "",
        *([("Merged from: " + "; ".join(f"`{m['command']}`" + ("" if m["complete"] else " (cut short)")
                                        for m in report["merged_from"])), ""] if report.get("merged_from") else []),
        f"{settings['windows']} back-to-back windows per case, RK4 dt = {DT} day, 20 km cells; "
        "\"s / window\" is dacli's `seconds_per_window_after_first_chunk` (windows after the first), "
        "\"compile + first window\" its `compile_and_first_chunk_seconds`. Memory: XLA's memory analysis of the "
        "compiled chunk of windows (temp buffers), the peak RSS of the case's process, the same minus the RSS just "
        "before `assimilate` (JAX and its backend started), and JAX's `peak_bytes_in_use` on a GPU. Each case in a "
        "fresh process.",
        "",
    ]
    if suite_runs(report, "methods"):
        n = settings["method_size"]
        lines += [f"## {n} x {n}: formulation x forward adjoint", "",
                  f"Nonlinear: LBFGS, max_steps {settings['max_steps']} (rtol = atol = 1e-6). Incremental: CG, "
                  "2 outer loops of at most 60 inner iterations, gradient reduction 1e-3.", "",
                  *methods_table(suite_runs(report, "methods")), ""]
    if suite_runs(report, "grid"):
        lines += ["## Scaling with grid size (incremental, RecursiveCheckpointAdjoint, 2-day windows)", "",
                  *scaling_table(suite_runs(report, "grid"), "nx"), ""]
    if suite_runs(report, "window"):
        n = settings["window_size"]
        lines += [f"## Scaling with window length ({n} x {n}, incremental, RecursiveCheckpointAdjoint)", "",
                  *scaling_table(suite_runs(report, "window"), "window_days"), ""]
    lines += ["XLA temp: `temp_size_in_bytes` of XLA's memory analysis of the compiled chunk of windows (its working "
              "buffers; the same quantity on a CPU and a GPU, each from its own backend's compiler). RSS includes XLA's "
              "compiler.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Comparison of several result files
# --------------------------------------------------------------------------------------------

def compare(paths: list[str], out: str | None) -> None:
    """Side-by-side table of every case found in the files; files with the same label (device,
    precision, overrides) are merged. Speed-up: first column's time / the column's time."""
    columns: dict[str, dict[str, dict]] = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        label = f"{report['settings']['device']} {report['settings']['precision']}"
        if report["settings"].get("label"):
            label = report["settings"]["label"]
        for run in report["runs"]:
            columns.setdefault(label, {})[run["key"]] = run
    labels = list(columns)
    keys = []
    for runs in columns.values():
        keys += [k for k in runs if k not in keys]
    order = {k: i for i, k in enumerate(keys)}
    sample = {k: next(c[k] for c in columns.values() if k in c) for k in keys}
    keys.sort(key=lambda k: (sample[k]["nx"], sample[k]["window_days"], sample[k]["formulation"] != "incremental",
                             ADJOINTS.index(sample[k]["adjoint"]), order[k]))
    lines = [f"# dacli 4DVar on the QG model: {' vs '.join(labels)}", "",
             f"Speed-up = s / window on {labels[0]} / s / window on the column (> 1: faster than {labels[0]}). "
             "Memory: XLA temp (`temp_size_in_bytes` of the compiled chunk of windows), the same quantity on "
             "every device, each from its own backend's compiler.", ""]
    lines.append("| grid | window (days) | formulation | forward_adjoint | "
                 + " | ".join(f"{l}: s / window" for l in labels) + " | "
                 + " | ".join(f"{l} speed-up" for l in labels[1:]) + " | "
                 + " | ".join(f"{l}: compile + first (s)" for l in labels) + " | "
                 + " | ".join(f"{l}: XLA temp (MiB)" for l in labels) + " | "
                 + " | ".join(f"{l}: analysis RMSE" for l in labels) + " |")
    lines.append("|" + "---|" * (4 + 5 * len(labels) - 1))
    for key in keys:
        runs = [columns[l].get(key) for l in labels]
        times = [per_window(r) if r and r["status"] == "ok" else None for r in runs]

        def cell(r, fn, digits):
            if r is None:
                return ""
            if r["status"] != "ok":
                return r["status"]
            return fmt(fn(r), digits)

        mem = lambda r: mib(xla_temp(r))  # noqa: E731
        ratios = [f"{times[0] / t:.3g}x" if t and times[0] else "" for t in times[1:]]
        s = sample[key]
        lines.append(f"| {s['nx']} | {s['window_days']:g} | {s['formulation']} | {s['adjoint']} | "
                     + " | ".join(cell(r, per_window, 3) for r in runs) + " | " + " | ".join(ratios) + " | "
                     + " | ".join(cell(r, lambda r: r["summary"]["compile_and_first_chunk_seconds"], 1) for r in runs)
                     + " | " + " | ".join(cell(r, mem, 0) for r in runs) + " | "
                     + " | ".join(cell(r, lambda r: r["summary"].get("analysis_rmse"), 4) for r in runs) + " |")
    show_text("\n".join(lines) + "\n", out)


def merge(paths: list[str], out: str) -> None:
    """One report from several of the same device and precision (e.g. suites run in separate
    device calls): runs concatenated (a later file's case replaces an earlier one), each case's
    suites recomputed from the merged settings, the source commands kept."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    first = reports[0]
    for report in reports[1:]:
        for key in ("device", "precision", "windows", "method_size", "window_size"):
            if report["settings"][key] != first["settings"][key]:
                sys.exit(f"--merge: {key} differs between the files ({first['settings'][key]} vs {report['settings'][key]})")
    runs: dict[str, dict] = {}
    for report in reports:
        for run in report["runs"]:
            runs[run["key"]] = run
    settings = dict(first["settings"])
    for run in runs.values():
        suites = []
        if run["formulation"] == "incremental" and run["adjoint"] == ADJOINTS[0]:
            if run["window_days"] == 2.0:
                suites.append("grid")
            if run["nx"] == settings["window_size"]:
                suites.append("window")
        if run["nx"] == settings["method_size"] and run["window_days"] == 2.0:
            suites.append("methods")
        run["suites"] = suites
    ordered = sorted(runs.values(), key=lambda c: (c["nx"], c["window_days"], c["formulation"] != "incremental",
                                                   ADJOINTS.index(c["adjoint"])))
    settings["suites"] = sorted({s for run in ordered for s in run["suites"]})
    settings["sizes"] = sorted({run["nx"] for run in ordered if "grid" in run["suites"]})
    settings["window_lengths"] = sorted({run["window_days"] for run in ordered if "window" in run["suites"]})
    report = {
        "benchmark": "qg",
        "command": " ".join(["python", "benchmarks/qg.py", *sys.argv[1:]]),
        "merged_from": [{"file": Path(p).name, "command": r["command"], "complete": r.get("complete", True)}
                        for p, r in zip(paths, reports)],
        "settings": settings,
        "environment": first["environment"],
        "complete": True,
        "runs": ordered,
    }
    out_path = Path(out)
    if out_path.suffix in (".json", ".md"):
        out_path = out_path.with_suffix("")
    write_json_and_markdown(out_path, report, markdown(report))


# --------------------------------------------------------------------------------------------

def floats(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--precision", choices=("float64", "float32"), default="float64")
    parser.add_argument("--suites", default="methods,grid,window", help="comma-separated: methods, grid, window")
    parser.add_argument("--sizes", help="grid suite: comma-separated nx (default 64,128,256,512)")
    parser.add_argument("--method-size", type=int, default=256, help="methods suite: nx (default 256)")
    parser.add_argument("--window-size", type=int, default=128, help="window suite: nx (default 128)")
    parser.add_argument("--window-lengths", help="window suite: comma-separated days (default 1,2,4,8)")
    parser.add_argument("--formulations", default=",".join(FORMULATIONS), help="methods suite: which formulations")
    parser.add_argument("--adjoints", default=",".join(ADJOINTS), help="methods suite: which forward adjoints")
    parser.add_argument("--windows", type=int, default=3, help="windows per case (default 3: 1 compiles, 2 timed)")
    parser.add_argument("--max-steps", type=int, default=NONLINEAR_MAX_STEPS, help="nonlinear: LBFGS max_steps")
    parser.add_argument("--forward-mode-limit", type=int, default=4096,
                        help="largest control run with ForwardMode (dacli's gradient is then jax.jacfwd: one tangent "
                             "per control variable)")
    parser.add_argument("--spinup", type=float, default=100.0, help="twin experiment spin-up (days)")
    parser.add_argument("--sim-device", choices=("cpu", "gpu"), default="cpu", help="where dacli simulate runs")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 and 64 grids, 2 windows, short spin-up")
    parser.add_argument("--case-timeout", type=float, default=1800.0, help="seconds before a case is abandoned")
    parser.add_argument("--data", help="folder for the twin-experiment files (kept, reused); default a temporary one")
    parser.add_argument("--out", help="output prefix (default benchmarks/results/qg_<device>_<precision>[_quick])")
    parser.add_argument("--label", help="column label for --compare (default '<device> <precision>')")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra dacli override KEY=VALUE")
    parser.add_argument("--compare", nargs="+", metavar="JSON", help="print a side-by-side table of result files")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="merge result files of one device (needs --out)")
    parser.add_argument("--simulate-only", action="store_true",
                        help="write the twin experiments of the chosen cases into --data, run nothing else")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--simulate-child"]:
        simulate_child(sys.argv[2:])
        return
    args = parser.parse_args()

    if args.child:
        run_child(args.child, args.device, args.precision, args.overrides)
        return
    if args.compare:
        compare(args.compare, args.out)
        return
    if args.merge:
        if not args.out:
            parser.error("--merge needs --out PREFIX")
        merge(args.merge, args.out)
        return

    suites = [s for s in args.suites.split(",") if s]
    unknown = set(suites) - {"methods", "grid", "window"}
    if unknown:
        parser.error(f"unknown suites {sorted(unknown)}")
    if args.quick:
        args.sizes = args.sizes or "32,64"
        args.method_size, args.window_size = min(args.method_size, 32), min(args.window_size, 32)
        args.window_lengths = args.window_lengths or "1,2"
        args.windows, args.spinup = 2, min(args.spinup, 10.0)
        args.forward_mode_limit = 0
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(SIZES)
    args.window_lengths = floats(args.window_lengths) if args.window_lengths else list(WINDOW_LENGTHS)
    formulations = [s for s in args.formulations.split(",") if s]
    adjoints = [s for s in args.adjoints.split(",") if s]
    cases = [c for c in plan_cases(suites, args)
             if "methods" not in c["suites"] or len(c["suites"]) > 1
             or (c["formulation"] in formulations and c["adjoint"] in adjoints)]
    out = Path(args.out) if args.out else (
        HERE / "results" / f"qg_{args.device}_{args.precision}{'_quick' if args.quick else ''}")
    if out.suffix in (".json", ".md"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli sets it

    runs = []
    with contextlib.ExitStack() as stack:
        if args.data:
            folder = Path(args.data).resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dacli-qg-bench-")))
        # One twin experiment per grid, long enough for the longest window used on it (independent of
        # --suites, so that runs of different suites with the same options share the files).
        durations = {case["nx"]: args.windows * (max(args.window_lengths) if case["nx"] == args.window_size else 2.0)
                     for case in cases}
        for nx in sorted(durations):
            make_inputs(folder, nx, args.windows, durations[nx], args.spinup, args.sim_device)
        if args.simulate_only:
            return
        for i, case in enumerate(cases):
            label = (f"[{i + 1}/{len(cases)}] {case['nx']} x {case['nx']}, {case['window_days']:g}-day windows, "
                     f"{case['formulation']}, {case['adjoint']}")
            n_control = case["nx"] ** 2
            if case["adjoint"] == "ForwardMode" and n_control > args.forward_mode_limit:
                gib = n_control**2 * (8 if args.precision == "float64" else 4) / 2**30
                log(f"{label}: not run (jacfwd over {n_control} control variables)")
                runs.append({**case, "status": "not run", "error": (
                    f"with ForwardMode dacli takes dJ/dv by jax.jacfwd ({case['formulation']}: "
                    f"{'every LBFGS gradient' if case['formulation'] == 'nonlinear' else 'the gradient at each outer loop'}"
                    f"): {n_control} tangents of {n_control} variables, {gib:.3g} GiB for one state of them alone; "
                    f"above --forward-mode-limit {args.forward_mode_limit}")})
                write_report(args, suites, runs, out, final=False)
                continue
            log(f"{label}: assimilating on {args.device} in {args.precision} ...")
            config = case_config(folder, case, args.windows, durations[case["nx"]], args.spinup, args.max_steps)
            run = run_case(config, case, args.device, args.precision, args.overrides, args.case_timeout)
            if run["status"] == "ok":
                s = run["summary"]
                log(f"{label}: compile + first window {s['compile_and_first_chunk_seconds']:.1f} s, "
                    f"{fmt(per_window(run), 3)} s/window after, RMSE {s.get('background_rmse', float('nan')):.4f} -> "
                    f"{s.get('analysis_rmse', float('nan')):.4f}, {iterations_cell(run)}, "
                    f"peak RSS {mib(run['peak_rss_bytes']):.0f} MiB ({mib(run['peak_rss_bytes'] - run['baseline_rss_bytes']):.0f} "
                    f"above baseline), GPU peak {fmt(mib(run.get('gpu_peak_bytes_in_use')), 1)} MiB, {s['device']}")
            else:
                log(f"{label}: {run['status']}: {run.get('error')}")
            runs.append(run)
            write_report(args, suites, runs, out, final=False)  # so far: a run cut short keeps its cases
    write_report(args, suites, runs, out, final=True)


def write_report(args, suites: list[str], runs: list[dict], out: Path, final: bool) -> None:
    report = {
        "benchmark": "qg",
        "command": " ".join(["python", "benchmarks/qg.py", *sys.argv[1:]]),
        "settings": {"device": args.device, "precision": args.precision, "quick": args.quick, "suites": suites,
                     "sizes": args.sizes, "method_size": args.method_size, "window_size": args.window_size,
                     "window_lengths": args.window_lengths, "windows": args.windows, "max_steps": args.max_steps,
                     "spinup": args.spinup, "sim_device": args.sim_device, "dt": DT, "dx": DX,
                     "overrides": args.overrides, "label": args.label},
        "environment": environment(),
        "complete": final,  # False: written after a case, the run went on (or was cut short)
        "runs": runs,
    }
    write_json_and_markdown(out, report, markdown(report), quiet=not final)
    if final:
        print(markdown(report))


if __name__ == "__main__":
    main()
