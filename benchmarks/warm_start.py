"""Benchmark: a warm `dacli assimilate` start, to its first window and to the end of the process.

Issue 19's target "warm <= 3 s to the first window" on the shipped Lorenz-96 config: fresh
``python -m dacli assimilate configs/lorenz96.toml`` processes on the sample data copied to a
scratch folder, with a compilation cache filled by one run first. Measured from the spawn: the
first window's log line (written when the first chunk of windows is done) and the end of the
process. Beside each run, interleaved, the same entry point with Python's interpreter teardown
left on (``dacli.__main__.end_without_teardown`` replaced by a no-op before ``main`` runs), so
the teardown's share is measured side by side in one run. Median and range over ``--rounds``.

    python benchmarks/warm_start.py
    python benchmarks/warm_start.py --rounds 10

Writes benchmarks/results/warm_start.{json,md}. A benchmark, not a test. On a machine that sets
PYTHONDONTWRITEBYTECODE=1, run ``python -m compileall -q dacli`` first for an editable install,
or every process compiles dacli's modules from source (0.1 s) as an installed dacli does not.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import child_env, log, machine_line, sample_workspace, write_json_and_markdown
from provenance import ROOT, environment

COMMAND = ["assimilate", "configs/lorenz96.toml", "--overwrite"]
ENTRIES = {
    "dacli (no teardown)": [sys.executable, "-m", "dacli"],
    "with the interpreter's teardown": [
        sys.executable,
        "-c",
        "import sys, dacli.__main__ as entry; entry.end_without_teardown = lambda: None; "
        "sys.argv = ['dacli', *sys.argv[1:]]; entry.main()",
    ],
}


def one_run(entry: list[str], workspace: Path, env: dict) -> dict:
    """Seconds from the spawn to the first window's log line and to the process's end."""
    began = time.perf_counter()
    process = subprocess.Popen([*entry, *COMMAND], cwd=workspace, env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    assert process.stderr is not None
    for line in process.stderr:
        if first is None and " window 1/" in line:
            first = time.perf_counter() - began
    code = process.wait()
    ended = time.perf_counter() - began
    if code != 0 or first is None:
        raise SystemExit(f"{' '.join(entry)}: exit {code}, first window logged: {first is not None}")
    return {"first_window_seconds": first, "process_seconds": ended}


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "warm_start"))
    args = parser.parse_args()

    started = time.perf_counter()
    runs: dict[str, list[dict]] = {name: [] for name in ENTRIES}
    with tempfile.TemporaryDirectory() as scratch:
        workspace = sample_workspace(Path(scratch))
        env = {**child_env(), "DACLI_COMPILATION_CACHE": str(workspace / "cache")}
        one_run(ENTRIES["dacli (no teardown)"], workspace, env)  # fills the cache
        for round_ in range(args.rounds):
            for name, entry in ENTRIES.items():
                runs[name].append(one_run(entry, workspace, env))
                log(f"round {round_ + 1} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[name][-1].items()))

    report = {"environment": environment(), "rounds": args.rounds, "runs": runs,
              "seconds_total": time.perf_counter() - started}
    lines = ["| entry point | to the first window | to the end of the process |", "|---|---|---|"]
    for name, values in runs.items():
        lines.append(f"| {name} | {summary([v['first_window_seconds'] for v in values])} | "
                     f"{summary([v['process_seconds'] for v in values])} |")
    table = "\n".join(lines)
    markdown = (f"# Warm start of `dacli assimilate configs/lorenz96.toml`\n\n{table}\n\n"
                f"Median (range) over {args.rounds} interleaved rounds of fresh processes, compilation cache "
                f"warm; command: `python benchmarks/warm_start.py --rounds {args.rounds}`.\n\n"
                f"{machine_line(report)}\n")
    write_json_and_markdown(args.out, report, markdown)
    print(table)


if __name__ == "__main__":
    main()
