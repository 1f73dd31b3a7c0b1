"""Benchmark: throughput of a batch of independent Lorenz-96 window analyses vs batch size.

Independent windows (separate experiments, members, sweep configs) are run as one vmapped,
sharded program by :func:`dacli.parallel.map_sharded`. This measures windows per second for
batches of 1, 4, 16, 64, 256 and 1024 windows, all in one process:

* the problem is the shipped ``configs/lorenz96.toml`` (N = 40, 4-step windows, Gaussian B,
  strong-constraint 4DVar, LBFGS rtol = atol = 1e-6, RecursiveCheckpointAdjoint), built with
  dacli's own config and build path on the shipped sample data. Its 50 windows are the items,
  each from its own background (the truth at the window start + N(0, 1), seeded); a batch of B
  takes windows 0, 1, ..., 49, 0, 1, ... (tiled);
* per size, the first call (trace + compile + one run) is timed apart, then the batch is run
  ``--repeat`` times and the median is kept: windows/s = B / median. The ratio to batch 1 is
  the throughput gain from batching;
* under ``vmap`` a batch runs until its slowest window has converged (the minimiser's
  ``while_loop`` is batched), so the mean and maximum LBFGS iterations are recorded too.

    python benchmarks/batch_windows.py                      # 1 CPU device, sizes 1 ... 1024
    python benchmarks/batch_windows.py --devices 2          # 2 fake CPU devices: the sharded path
    python benchmarks/batch_windows.py --sizes 1,4,16 --repeat 2
    python benchmarks/batch_windows.py --device gpu         # on a GPU (all its local devices)

``--devices N`` sets ``JAX_NUM_CPU_DEVICES`` before JAX starts (CPU only): the batch is split
over N devices, which run concurrently on the host's cores. Writes
``benchmarks/results/batch_windows[_devicesN|_gpu].{json,md}`` (or ``--out PREFIX``). This is a
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from common import log, write_json_and_markdown
from provenance import environment  # benchmarks/provenance.py, beside this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = ROOT / "configs" / "lorenz96.toml"
SIZES = (1, 4, 16, 64, 256, 1024)


def independent_windows(device: str, seed: int = 0):
    """The shipped config's method and its windows as independent items:
    (method, backgrounds (K, n), starts (K,), observations (K, ...))."""
    import numpy as np

    import dacli.config
    from dacli.io.states import states_at
    from dacli.run.inputs import prepare_inputs
    from dacli.run.runtime import configure

    config = dacli.config.load(CONFIG, [f'run.device="{device}"'])
    configure(config.run.precision, config.run.device)
    inputs = prepare_inputs(config)
    starts = inputs.schedule.starts
    truth = states_at(*inputs.truth, starts, config.truth.path, "truth",
                      0.5 * config.model.dt)
    rng = np.random.default_rng(seed)
    backgrounds = truth + config.simulate.background_error_std * rng.normal(size=truth.shape)
    return inputs.problem.method, backgrounds, starts, inputs.packed.stacked()


def run(args) -> dict:
    import jax
    import numpy as np

    from dacli.parallel import batch_layout, describe_devices, map_sharded

    method, backgrounds, starts, observations = independent_windows(args.device)
    items = len(starts)
    rows = []
    for size in args.sizes:
        chosen = np.arange(size) % items
        batch = jax.tree_util.tree_map(lambda a: np.asarray(a)[chosen], (backgrounds, starts, observations))

        def solve():
            result = map_sharded(method.analyse, *batch)
            return jax.block_until_ready(result)

        started = time.perf_counter()
        result = solve()
        first = time.perf_counter() - started
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            solve()
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        iterations = np.asarray(result.iterations)
        row = {"batch": size, "padded": batch_layout(size, len(jax.local_devices())).padded,
               "first_call_seconds": round(first, 3), "compile_seconds_estimate": round(first - median, 3),
               "run_seconds": [round(t, 4) for t in times], "median_seconds": round(median, 4),
               "windows_per_second": size / median, "ms_per_window": 1e3 * median / size,
               "iterations_mean": float(iterations.mean()), "iterations_max": int(iterations.max()),
               "converged": int(np.asarray(result.converged).sum())}
        rows.append(row)
        log(f"batch {size:5d}: first call {first:7.2f} s, median {median:8.4f} s of {args.repeat}, "
            f"{row['windows_per_second']:9.1f} windows/s, LBFGS iterations mean {row['iterations_mean']:.1f} "
            f"max {row['iterations_max']}")
    base = rows[0]["windows_per_second"] if rows[0]["batch"] == 1 else None
    for row in rows:
        row["throughput_vs_batch_1"] = None if base is None else row["windows_per_second"] / base
    return {"devices": describe_devices(), "device_count": len(jax.local_devices()), "items": items, "rows": rows}


def markdown(report: dict) -> str:
    env, settings = report["environment"], report["settings"]
    lines = [
        "# Independent Lorenz-96 window analyses: throughput vs batch size",
        "",
        f"`{report['command']}`",
        "",
        f"Devices: {report['devices']}. CPU: {env['cpu']}, {env['cpu_count']} cores, load average at the end "
        f"{' '.join(env['load_average_at_end'] or [])}; GPU (nvidia-smi): {env['nvidia_smi'] or 'none'}. "
        f"dacli at {env['dacli_commit']}, jax {env['versions']['jax']}, Python {env['python']}.",
        "",
        "configs/lorenz96.toml's method (N = 40, 4-step windows, strong 4DVar, LBFGS, RecursiveCheckpointAdjoint, "
        f"float64) on its {report['items']} sample windows, each from its own background, tiled to the batch size; "
        f"`map_sharded(method.analyse, ...)`; median of {settings['repeat']} runs per size after a first "
        "(compiling) call. The whole benchmark took "
        f"{report['wall_seconds']:.0f} s.",
        "",
        "| batch | padded to | windows / s | ms / window | vs batch 1 | median run (s) | first call (s) "
        "| compile (s, ≈ first − median) | LBFGS iterations mean / max | converged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        ratio = row["throughput_vs_batch_1"]
        lines.append(
            f"| {row['batch']} | {row['padded']} | {row['windows_per_second']:.1f} | {row['ms_per_window']:.2f} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | {row['median_seconds']:.4f} | "
            f"{row['first_call_seconds']:.2f} | {row['compile_seconds_estimate']:.2f} | "
            f"{row['iterations_mean']:.1f} / {row['iterations_max']} | {row['converged']}/{row['batch']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated batch sizes")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (median kept)")
    parser.add_argument("--devices", type=int, help="fake CPU devices (JAX_NUM_CPU_DEVICES), set before JAX starts")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out", help="output prefix (default benchmarks/results/batch_windows[_devicesN|_gpu])")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.devices:
        if args.device != "cpu":
            parser.error("--devices makes fake CPU devices: use it with --device cpu")
        os.environ["JAX_NUM_CPU_DEVICES"] = str(args.devices)  # before anything imports JAX
    os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli sets it
    suffix = f"_devices{args.devices}" if args.devices else ("_gpu" if args.device == "gpu" else "")
    out = Path(args.out) if args.out else HERE / "results" / f"batch_windows{suffix}"
    started = time.perf_counter()
    measured = run(args)
    report = {
        "benchmark": "batch_windows",
        "command": " ".join(["python", "benchmarks/batch_windows.py", *sys.argv[1:]]),
        "settings": {"sizes": args.sizes, "repeat": args.repeat, "device": args.device, "fake_devices": args.devices,
                     "config": "configs/lorenz96.toml"},
        **measured,
        "wall_seconds": time.perf_counter() - started,
        "environment": environment(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_and_markdown(out, report, markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
