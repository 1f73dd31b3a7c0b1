"""Benchmark: dacli strong-constraint 4DVar against DAPPER on Lorenz-96 (sakov2008).

One process, one set of observations:

1. DAPPER's own ``sakov2008`` HMM (N = 40, F = 8, RK4 dt = 0.05, every variable observed every
   step, R = I) simulates the truth and the observations with a fixed seed.
2. They are written to NetCDF for dacli (the very same numbers), with B = cov(truth) — DAPPER's
   ``B = "clim"`` — and DAPPER's initial mean X0.mu as the first background.
3. DAPPER's Var3D, iEnKS and Var4D (patched, see setup_dapper.sh) assimilate them; then dacli
   (Python API, same process) runs the same cycling scheme — a window of Lag cycles shifted by
   one cycle, newest observation only, B = xB * clim — and classic back-to-back windows.
4. Every RMSE is computed the same way, from the stored estimates against the same truth: the
   time mean, over analysis times t > BurnIn, of sqrt(mean_i (x_i - x_i^true)^2).

    /work/bench-venv/bin/python benchmarks/lorenz96_dapper.py            # full (~10 min, 2 cores)
    /work/bench-venv/bin/python benchmarks/lorenz96_dapper.py --quick    # smoke run (~40 s)

(benchmarks/setup_dapper.sh makes that venv; see benchmarks/README.md.)

Writes benchmarks/results/lorenz96_dapper[_quick].{json,md}. This is a benchmark, not a test.
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy/scipy load OpenBLAS. On CPU, jaxlib's LAPACK kernels (the QR
# in dacli's Gauss-Newton step) run on scipy's OpenBLAS, whose spinning threads fight XLA's own
# pool: with the default (2 threads on this 2-core machine) a window whose Jacobian is 360 x 40
# went from ~5 ms to ~1 s in about half of the processes tried. DAPPER's timings are the same
# with 1 or 2 BLAS threads here (measured). Override by setting OPENBLAS_NUM_THREADS yourself.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli sets it (before equinox is imported)

import argparse
import contextlib
import io
import json
import logging
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "lorenz96_dapper.toml"
DT = 0.05

# Var4D background scale xB per Lag for this setup (dt = dto = 0.05): DAPPER's sakov2008 file only
# lists Var4D settings for dto = 0.2, so xB was tuned for DAPPER's Var4D by a sweep over
# {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04} on this seed (docs/methods/tuning.md); dacli uses the same.
XB_CYCLING = {1: 0.01, 2: 0.01, 4: 0.005, 8: 0.0025}
# Classic back-to-back windows (dacli only; DAPPER's Var4D always shifts by one cycle): tuned for
# dacli over {0.0025, 0.005, 0.01, 0.02, 0.04, 0.08}.
XB_BACK_TO_BACK = {2: 0.01, 4: 0.01, 8: 0.005}
# With --dko 4 (observations every 4 steps, dto = 0.2): DAPPER's own Var4D settings for dtObs = 0.2
# (sakov2008.py, "Bocquet/Sakov'2013 Joint..., Fig 4": Lag 1 xB 0.2, Lag 2 0.1, Lag 4 0.02; Lag 6
# 0.015, used here for Lag 8 too: the file lists no Lag 8).
XB_CYCLING_DKO4 = {1: 0.2, 2: 0.1, 4: 0.02, 8: 0.015}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# DAPPER
# --------------------------------------------------------------------------------------------

def import_dapper():
    """Import DAPPER quietly (it prints a liveplotting notice) and switch off its progress bars."""
    with contextlib.redirect_stdout(io.StringIO()):
        import dapper
        import dapper.da_methods as da
        import dapper.mods as modelling
        import dapper.tools.progressbar as progressbar
        from dapper.mods.Lorenz96 import sakov2008
    progressbar.disable_progbar = True
    return dapper, da, modelling, sakov2008


def check_var4d_patch() -> None:
    import dapper.da_methods.variational as variational

    text = Path(variational.__file__).read_text()
    if "Obs(ko).linear(x)" in text or "xo = Obs(ko)(x)" in text:
        sys.exit(
            f"DAPPER's Var4D is unpatched in {variational.__file__} (it raises IndexError as shipped); "
            "run benchmarks/setup_dapper.sh first"
        )


def make_hmm(modelling, sakov2008, cycles: int, burn_in: float, dko: int = 1):
    hmm = sakov2008.HMM.copy()
    hmm.tseq = modelling.Chronology(DT, dko=dko, Ko=cycles - 1, BurnIn=burn_in, Tplot=burn_in)
    return hmm


def run_dapper(dapper, factory, hmm, xx, yy, seed: int, lag: int | None, repeat: int) -> dict:
    """Run one DAPPER method ``repeat`` times; RMSE from the first run, times = median."""
    durations, walls, first = [], [], None
    for _ in range(repeat):
        method = factory()
        dapper.set_seed(seed + 1)  # iEnKS samples its initial ensemble: same draw every repetition
        started = time.perf_counter()
        method.assimilate(hmm, xx, yy)
        walls.append(time.perf_counter() - started)
        durations.append(float(method.stats.duration))  # DAPPER's own timer around its cycling loop
        if first is None:
            first = method
    method, stats = first, first.stats
    with contextlib.redirect_stdout(io.StringIO()):
        stats.average_in_time()
    cycles = hmm.tseq.Ko + 1
    masko = hmm.tseq.masko
    rmse_a = np.asarray(stats.err.rms.a)  # DAPPER: rmse = err.rms, one value per analysis time
    own = float(method.avrgs.rmse.a.val)
    mine = float(np.mean(rmse_a[masko]))
    assert abs(own - mine) < 1e-9 * max(1.0, own), (own, mine)
    duration = statistics.median(durations)
    row = {
        "rmse_a": own,
        "rmse_a_count": int(masko.sum()),
        "seconds_total": duration,
        "seconds_total_runs": durations,
        "seconds_wall_runs": walls,
        "windows": cycles,
        "seconds_per_window": duration / cycles,
        "seconds_per_cycle": duration / cycles,
        "settings": repr(method),
    }
    if lag is not None and hasattr(stats.err.rms, "s"):
        rmse_s = np.asarray(stats.err.rms.s)
        # The smoothed estimate at the window start: compared on the window starts dacli also has
        # (DAPPER keeps sliding past the last observation, dacli stops at the last full window).
        tto = hmm.tseq.tto
        keep = masko & (tto <= tto[-1] - lag * hmm.tseq.dko * DT + 1e-9)
        row["rmse_s"] = float(np.mean(rmse_s[keep]))
        row["rmse_s_count"] = int(keep.sum())
    iters = np.asarray(getattr(stats, "iters", []), float)
    if iters.size and np.isfinite(iters).any():
        row["iterations_mean"] = float(np.nanmean(iters))
    return row


# --------------------------------------------------------------------------------------------
# Shared data for dacli
# --------------------------------------------------------------------------------------------

def write_inputs(folder: Path, hmm, xx: np.ndarray, yy: np.ndarray) -> dict[str, Path]:
    import xarray as xr

    folder.mkdir(parents=True, exist_ok=True)
    site = xr.Variable(("site",), np.arange(xx.shape[1], dtype=float), {"long_name": "site coordinate"})
    tt, tto = hmm.tseq.tt, hmm.tseq.tto
    # Model time numbers, no CF units: lorenz96_dapper.toml says model_time = true for these files.
    time_attrs = {"standard_name": "time", "long_name": "model time"}
    files = {
        "obs": folder / "obs.nc",
        "truth": folder / "truth.nc",
        "background": folder / "background.nc",
        "B": folder / "B_clim.nc",
    }
    xr.Dataset(
        {"x": (("time", "site"), yy), "x_error": ((), 1.0)},
        coords={"time": xr.Variable(("time",), tto, time_attrs), "site": site},
        attrs={"title": "DAPPER sakov2008 observations (HMM.simulate)"},
    ).to_netcdf(files["obs"])
    xr.Dataset(
        {"x": (("time", "site"), xx)},
        coords={"time": xr.Variable(("time",), tt, time_attrs), "site": site},
        attrs={"title": "DAPPER sakov2008 truth (HMM.simulate)"},
    ).to_netcdf(files["truth"])
    xr.Dataset(
        {"x": (("time", "site"), np.asarray(hmm.X0.mu, float)[None])},
        coords={"time": xr.Variable(("time",), [0.0], time_attrs), "site": site},
        attrs={"title": "DAPPER sakov2008 X0.mu, the first background of Var3D/Var4D"},
    ).to_netcdf(files["background"])
    xr.Dataset(
        {"B": (("row", "col"), np.cov(xx.T))},
        attrs={"title": "climatological covariance np.cov(truth.T), DAPPER's B='clim'"},
    ).to_netcdf(files["B"])
    return files


# --------------------------------------------------------------------------------------------
# dacli
# --------------------------------------------------------------------------------------------

def dacli_overrides(files: dict[str, Path], output: Path, lag: int, shift: int, assimilate: str,
                    xb: float, forward_adjoint: str, dko: int = 1, minimiser: str | None = None,
                    max_steps: int | None = None) -> list[str]:
    """--set overrides of one run; ``lag`` and ``shift`` in observation cycles of ``dko`` steps."""
    chosen = [f"method.minimiser={json.dumps(minimiser)}"] if minimiser else []
    chosen += [f"method.max_steps={max_steps}"] if max_steps else []
    return [
        f"observations.path={json.dumps(str(files['obs']))}",
        f"background.path={json.dumps(str(files['background']))}",
        f"background.covariance.path={json.dumps(str(files['B']))}",
        f"output.path={json.dumps(str(output))}",
        f"window.length={lag * dko * DT!r}",
        f"window.shift={shift * dko * DT!r}",
        f"window.assimilate={json.dumps(assimilate)}",
        f"background.covariance.std={math.sqrt(xb)!r}",
        f"method.forward_adjoint={json.dumps(forward_adjoint)}",
        *chosen,
    ]


def summary_timings(summary: dict) -> tuple[float, float, int]:
    """(compile + first compiled unit [s], seconds per window after it, windows per compiled unit).

    dacli's summary names changed when windows began to run in compiled chunks (a scan over up to
    32 windows): ``compile_and_first_chunk_seconds`` / ``seconds_per_window_after_first_chunk``;
    before, one window per call: ``compile_and_first_window_seconds`` /
    ``seconds_per_window_after_first``. Both are read.
    """
    if "seconds_per_window_after_first_chunk" in summary:
        return (float(summary["compile_and_first_chunk_seconds"]),
                float(summary["seconds_per_window_after_first_chunk"]),
                int(summary.get("windows_per_compiled_chunk", 1)))
    return (float(summary["compile_and_first_window_seconds"]), float(summary["seconds_per_window_after_first"]), 1)


def run_dacli(overrides: list[str], xx: np.ndarray, burn_in: float, repeat: int, dko: int = 1) -> dict:
    """Run one dacli configuration ``repeat`` times (cold compile each); RMSE from the first."""
    import jax
    import xarray as xr

    import dacli.config
    from dacli.cli.render import result_json
    from dacli.run.assimilate import assimilate

    config = dacli.config.load(CONFIG, overrides)
    summaries, walls = [], []
    for _ in range(repeat):
        jax.clear_caches()  # every run pays its own compilation (no in-memory reuse)
        started = time.perf_counter()
        result = assimilate(config, overwrite=True)
        walls.append(time.perf_counter() - started)
        summaries.append(result_json(result.summary))
    summary = summaries[0]
    with xr.open_dataset(result.output, decode_times=False) as out:
        ends = out["window_end"].values
        starts = out["window_start"].values
        xa_end = out["x_analysis_window_end"].values
        xa_start = out["x_analysis_window_start"].values
        times = out["time"].values
        xa_traj = out["x_analysis"].values

    def rmse(states, at_times):
        k = np.rint(at_times / DT).astype(int)
        assert np.allclose(k * DT, at_times, atol=1e-9)
        return np.sqrt(np.mean((states - xx[k]) ** 2, axis=1))

    def after(t):  # DAPPER: tto > BurnIn (strict); and inside the truth (the last back-to-back
        return (t > burn_in + 1e-9) & (t <= (len(xx) - 1) * DT + 1e-9)  # window may end past it)

    end_rmse, start_rmse = rmse(xa_end[after(ends)], ends[after(ends)]), rmse(xa_start[after(starts)], starts[after(starts)])
    traj_rmse = rmse(xa_traj[after(times)], times[after(times)])  # the analysis trajectory, every step
    lag = int(round(config.window.length / (dko * DT)))  # in observation cycles
    shift = int(round(config.window.effective_shift / (dko * DT)))
    timings = [summary_timings(s) for s in summaries]
    per_window = statistics.median(t[1] for t in timings)
    return {
        "rmse_a": float(end_rmse.mean()),
        "rmse_a_count": int(after(ends).sum()),
        "rmse_s": float(start_rmse.mean()),
        "rmse_s_count": int(after(starts).sum()),
        "rmse_trajectory": float(traj_rmse.mean()),
        "rmse_trajectory_count": int(after(times).sum()),
        "windows_per_compiled_chunk": timings[0][2],
        "compile_and_first_chunk_seconds": statistics.median(t[0] for t in timings),
        "compile_and_first_chunk_seconds_runs": [t[0] for t in timings],
        "seconds_per_window": per_window,
        "seconds_per_window_runs": [t[1] for t in timings],
        "seconds_per_cycle": per_window / shift,
        "seconds_wall": statistics.median(walls),
        "seconds_wall_runs": walls,
        "windows": int(summary["windows"]),
        "converged_windows": int(summary["converged_windows"]),
        "iterations_mean": float(summary["iterations_mean"]),
        "observations_used": int(summary["observations_used"]),
        "observations_outside_windows": int(summary["observations_outside_windows"]),
        "forward_adjoint": config.method.forward_adjoint,
        "minimiser": config.method.minimiser,
        "lag": lag,
        "shift": shift,
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def git_commit() -> str | None:
    """The dacli being benchmarked: HEAD of this checkout (flagged when dacli/ has uncommitted
    changes), or, for a venv made with DACLI_REF (setup_dapper.sh), the commit installed there."""
    import dacli

    source = Path(dacli.__file__).resolve().parent
    if source != (HERE.parent / "dacli").resolve():
        ref = Path(sys.prefix) / "dacli-ref.txt"
        return (ref.read_text().strip() if ref.exists() else "unknown commit") + f" (installed at {source})"
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "dacli"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" + uncommitted changes in dacli/" if dirty else "")
    return None


def environment(dacli_commit: str | None) -> dict:
    """provenance.environment (machine, load, versions) plus DAPPER's, the JAX backend and both commits."""
    import jax
    from provenance import environment as machine

    return {
        **machine(("dapper", "scipy")),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "jax_compilation_cache_dir": os.environ.get("JAX_COMPILATION_CACHE_DIR"),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "dacli_commit": dacli_commit,  # when the dacli runs started (dacli is imported then)
        "dacli_commit_at_end": git_commit(),
    }


def fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_ms(seconds):
    return "–" if seconds is None else f"{1e3 * seconds:.3g}"


def observed_every(dko: int) -> str:
    return "step" if dko == 1 else f"{dko} steps (dto = {dko * DT:g})"


def markdown(report: dict) -> str:
    s = report["settings"]
    var4d = {r["lag"]: r for r in report["rows"] if r["method"] == "DAPPER Var4D"}
    lines = [
        f"Lorenz-96 sakov2008: N = 40, F = 8, RK4 dt = 0.05, all 40 variables observed every "
        f"{observed_every(s.get('dko', 1))}, R = I; "
        f"{s['cycles']} cycles; t <= {s['burn_in']:g} ({s['burn_in_cycles']} cycles) discarded; seed {s['seed']}; "
        f"times are the median of {s['repeat']} run(s); dacli compiles once and runs "
        f"{report['rows'][-1].get('windows_per_compiled_chunk', 1)} window(s) per compiled chunk.",
        "",
        "| method | scheme | Lag | xB | rmse.a | rmse.s | compile + 1st chunk [s] | total [s] "
        "| ms / window | DAPPER Var4D ms / window (same Lag) | speed-up / window | speed-up / cycle |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        is_dacli = r["method"].startswith("dacli")
        ref = var4d.get(r.get("lag")) if is_dacli else None
        speed_w = ref["seconds_per_window"] / r["seconds_per_window"] if ref else None
        speed_c = ref["seconds_per_cycle"] / r["seconds_per_cycle"] if ref else None
        rmse_a = fmt(r["rmse_a"])
        if is_dacli and r["shift"] > 1:
            rmse_a += f" ({r['rmse_a_count']} window ends); trajectory {fmt(r['rmse_trajectory'])}"
        method = r["method"] + (f" ({r['forward_adjoint']})" if is_dacli else "")
        total = r["seconds_wall"] if is_dacli else r["seconds_total"]
        lines.append(
            f"| {method} | {r['scheme']} | {r.get('lag') or '–'} | {r.get('xB') or '–'} | {rmse_a} "
            f"| {fmt(r.get('rmse_s'))} | {fmt(r.get('compile_and_first_chunk_seconds'), 1)} | {fmt(total, 1)} "
            f"| {fmt_ms(r['seconds_per_window'])} | {fmt_ms(ref['seconds_per_window']) if ref else '–'} "
            f"| {f'{speed_w:.1f}x' if speed_w else '–'} | {f'{speed_c:.1f}x' if speed_c else '–'} |"
        )
    e = report["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in e["versions"].items())
    lines += [
        "",
        f"Machine: {e['cpu']}, {e['cpu_count']} cores, {e['memory_gib']} GiB, JAX backend {e['jax_backend']} "
        f"(no GPU), OPENBLAS_NUM_THREADS={e['openblas_num_threads']}; Python {e['python']}; {versions}; "
        f"dacli commit {e['dacli_commit']}. "
        f"Whole benchmark: {report['seconds_total']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 cycles, burn-in 5, Lag 1 and 2, one repetition")
    parser.add_argument("--cycles", type=int, help="observation cycles (DAPPER Ko + 1); default 1001 (sakov2008)")
    parser.add_argument("--burn-in", type=float, help="model time discarded from every RMSE; default 20 (sakov2008)")
    parser.add_argument("--lags", help="comma-separated window lengths in cycles; default 1,2,4,8")
    parser.add_argument("--repeat", type=int, help="timed repetitions per method (median); default 3, quick 1")
    parser.add_argument("--seed", type=int, default=3000)
    parser.add_argument("--keep", type=Path, help="keep the NetCDF inputs and dacli outputs in this folder")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--no-back-to-back", action="store_true", help="skip dacli's back-to-back windows")
    parser.add_argument("--dko", type=int, default=1, choices=(1, 4),
                        help="observe every dko model steps: 1 (dto = 0.05, default) or 4 (dto = 0.2, DAPPER's "
                             "own Var4D settings; cycling runs only)")
    parser.add_argument("--minimiser", help="dacli's minimiser instead of the config's GaussNewton (e.g. LBFGS)")
    parser.add_argument("--max-steps", type=int, help="dacli's method.max_steps instead of the config's 10")
    parser.add_argument("--no-default-adjoint", action="store_true",
                        help="skip the extra dacli cycling runs with the default RecursiveCheckpointAdjoint")
    args = parser.parse_args(argv)

    cycles = args.cycles or (300 if args.quick else 1001)
    burn_in = args.burn_in if args.burn_in is not None else (5.0 if args.quick else 20.0)
    lags = [int(v) for v in (args.lags or ("1,2" if args.quick else "1,2,4,8")).split(",")]
    repeat = args.repeat or (1 if args.quick else 3)
    xb_cycling = XB_CYCLING if args.dko == 1 else XB_CYCLING_DKO4
    unknown = [lag for lag in lags if lag not in xb_cycling]
    if unknown:
        parser.error(f"--lags: no tuned xB for {unknown}; known: {sorted(xb_cycling)}")
    tag = ("lorenz96_dapper_quick" if args.quick else "lorenz96_dapper") + ("" if args.dko == 1 else f"_dko{args.dko}")
    tag += f"_{args.minimiser}" if args.minimiser else ""
    began = time.perf_counter()
    logging.getLogger("dacli").setLevel(logging.ERROR)  # non-convergence is counted, not printed

    dapper, da, modelling, sakov2008 = import_dapper()
    check_var4d_patch()
    hmm = make_hmm(modelling, sakov2008, cycles, burn_in, args.dko)
    dapper.set_seed(args.seed)
    xx, yy_objects = hmm.simulate()
    yy = np.stack(list(yy_objects)).astype(float)
    burn_in_cycles = int((~hmm.tseq.masko).sum())
    log(f"truth {xx.shape}, observations {yy.shape}, burn-in {burn_in_cycles} cycles, {repeat} repetition(s)")

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="dacli-bench-"))
    files = write_inputs(workdir, hmm, xx, yy)
    rows = []

    # -- DAPPER ------------------------------------------------------------------------------
    dapper_methods = [
        ("DAPPER Var3D", "3D-Var, B = xB clim", None, 0.02, lambda: da.Var3D(xB=0.02)),
        ("DAPPER iEnKS", "iEnKF: Lag 1, N 40, Sqrt, infl 1.01, rot", 1, None,
         lambda: da.iEnKS("Sqrt", N=40, Lag=1, infl=1.01, rot=True)),
    ] + [
        ("DAPPER Var4D", "cycling: shift 1, newest obs", lag, xb_cycling[lag],
         lambda lag=lag: da.Var4D(Lag=lag, xB=xb_cycling[lag]))
        for lag in lags
    ]
    for name, scheme, lag, xb, factory in dapper_methods:
        row = run_dapper(dapper, factory, hmm, xx, yy_objects, args.seed, lag, repeat)
        row.update(method=name, scheme=scheme, lag=lag, xB=xb)
        rows.append(row)
        log(f"{name:14s} Lag {lag}: rmse.a {row['rmse_a']:.4f}  {1e3 * row['seconds_per_window']:.3f} ms/window")

    # -- dacli -------------------------------------------------------------------------------
    dacli_commit = git_commit()
    cycling = "cycling: shift 1, newest obs"
    runs = [(cycling, lag, 1, "newest", xb_cycling[lag], "ForwardMode") for lag in lags]
    if not args.no_back_to_back and args.dko == 1:  # xB tuned for dto = 0.05 only
        runs += [("back-to-back: shift = Lag, all obs", lag, lag, "all", XB_BACK_TO_BACK[lag], "ForwardMode")
                 for lag in lags if lag > 1]  # Lag 1 back-to-back is the cycling run itself
    if not args.no_default_adjoint:
        runs += [(cycling, lag, 1, "newest", xb_cycling[lag], "RecursiveCheckpointAdjoint") for lag in lags]
    for scheme, lag, shift, mode, xb, adjoint in runs:
        output = workdir / f"dacli_lag{lag}_shift{shift}_{adjoint}.nc"
        overrides = dacli_overrides(files, output, lag, shift, mode, xb, adjoint, args.dko, args.minimiser,
                                    args.max_steps)
        row = run_dacli(overrides, xx, burn_in, repeat, args.dko)
        row.update(method="dacli strong4dvar", scheme=scheme, xB=xb,
                   command="dacli assimilate benchmarks/lorenz96_dapper.toml --json --overwrite -q "
                           + " ".join(f"--set '{o}'" for o in overrides[4:]))
        rows.append(row)
        log(f"dacli {adjoint:26s} {scheme:36s} Lag {lag}: rmse.a {row['rmse_a']:.4f}  "
            f"compile {row['compile_and_first_chunk_seconds']:.1f} s  {1e3 * row['seconds_per_window']:.3f} ms/window")

    report = {
        "benchmark": "Lorenz-96 sakov2008, dacli strong4dvar vs DAPPER",
        "settings": {
            "cycles": cycles, "burn_in": burn_in, "burn_in_cycles": burn_in_cycles, "seed": args.seed,
            "repeat": repeat, "lags": lags, "dt": DT, "dko": args.dko, "N": 40, "F": 8.0, "R": "I",
            "dacli_minimiser": args.minimiser or "GaussNewton (the config's)",
            "config": str(CONFIG.relative_to(HERE.parent)),
            "xB_cycling": xb_cycling, "xB_back_to_back": XB_BACK_TO_BACK,
            "dapper_patch": "Var4D: Obs(ko).linear(x) -> Obs.linear(x); Obs(ko)(x) -> Obs(x) (setup_dapper.sh)",
        },
        "environment": environment(dacli_commit),
        "rows": rows,
        "seconds_total": time.perf_counter() - began,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{tag}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    table = markdown(report)
    (args.results / f"{tag}.md").write_text(table)
    print(table)
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
