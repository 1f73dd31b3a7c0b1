"""How long ``dacli check-adjoints`` takes: a config's full check, its ``--quick`` level, the
built-in suite (issue 20's targets: the shipped Lorenz-96 config under 60 s, the built-in suite
under 3 minutes on 2 cores).

Each measurement is a fresh ``dacli check-adjoints`` process with an empty compilation cache
(what a model's CI sees on a new runner), timed end to end (imports, reading, tracing,
compiling, the checks), with its exit code and how many checks ended in each status. The runs
are interleaved per repeat, so the machine's load affects them alike; the median is reported.

    python benchmarks/check_adjoints.py                 # 1 repeat
    python benchmarks/check_adjoints.py --repeats 3
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import ROOT, environment

RUNS = {
    "lorenz96 config, full": ["configs/lorenz96.toml"],
    "lorenz96 config, --quick": ["configs/lorenz96.toml", "--quick"],
    "lorenz63 config, full": ["configs/lorenz63.toml"],
    "built-in suite": [],
}


def run_once(arguments: list[str], cache: Path) -> dict:
    env = {**os.environ, "DACLI_COMPILATION_CACHE": str(cache)}
    command = [sys.executable, "-m", "dacli", "check-adjoints", *arguments, "--json", "-q"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    statuses = collections.Counter(check["status"] for check in report["checks"])
    return {"wall_seconds": wall, "exit_code": result.returncode, "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "check_adjoints"))
    args = parser.parse_args()
    measured: dict[str, list[dict]] = {name: [] for name in RUNS}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for name, arguments in RUNS.items():
                cache = Path(scratch) / f"cache-{repeat}-{len(measured[name])}-{abs(hash(name))}"
                measured[name].append(run_once(arguments, cache))
                print(f"{name}: {measured[name][-1]}", flush=True)
    rows = []
    for name, runs in measured.items():
        rows.append({
            "run": name,
            "command": "dacli check-adjoints " + " ".join(RUNS[name]),
            "wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
            "wall_seconds": [round(r["wall_seconds"], 1) for r in runs],
            "exit_code": runs[-1]["exit_code"],
            "statuses": runs[-1]["statuses"],
        })
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = environment()
    out.with_suffix(".json").write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    lines = [
        "# `dacli check-adjoints`: time per run (fresh process, empty compilation cache)",
        "",
        f"`python benchmarks/check_adjoints.py --repeats {args.repeats}` at {env.get('dacli_commit')}; "
        f"{os.cpu_count()} CPU cores; load average at the end {os.getloadavg()[0]:.1f}.",
        "",
        "| run | command | wall s (median) | exit | statuses |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(row["statuses"].items()))
        lines.append(f"| {row['run']} | `{row['command'].strip()}` | {row['wall_seconds_median']:.1f} | "
                     f"{row['exit_code']} | {statuses} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
