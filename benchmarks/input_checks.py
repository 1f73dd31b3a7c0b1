"""Start-up cost of the input checks (issue 15): dacli validate and assimilate, before vs after.

"Before" is a git revision checked out into a scratch worktree (its own configs and sample
data); "after" is this working tree. Each measurement is a fresh process (``python -m dacli``,
with ``PYTHONPATH`` pointing at the tree measured), timed end to end; per configuration and
repeat the two trees run one after the other, so the machine's load affects both alike. The
median over repeats is reported with the after/before ratio. The persistent compilation cache
is warm for both (one untimed run each first), so that the difference is the reading, not
compiling.

    python benchmarks/input_checks.py --before 60dfeea                     # lorenz96, qg, qg_ioda; 3 repeats
    python benchmarks/input_checks.py --before 60dfeea --configs lorenz96 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import sample_workspace
from provenance import ROOT, environment


def timed(tree: Path, workspace: Path, args: list[str], cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "DACLI_COMPILATION_CACHE": str(cache)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dacli", *args], cwd=workspace, env=env, capture_output=True,
                            text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{tree}: dacli {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare with (e.g. the commit before)")
    parser.add_argument("--configs", default="lorenz96,qg,qg_ioda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "input_checks"))
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dacli-input-checks-"))
    before_tree = scratch / "tree-before"
    subprocess.run(["git", "worktree", "add", "--detach", str(before_tree), options.before], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        trees = {"before": before_tree, "after": ROOT}
        workspaces = {name: sample_workspace(scratch / name, tree) for name, tree in trees.items()}
        caches = {name: scratch / f"cache-{name}" for name in trees}
        rows = []
        for config in options.configs.split(","):
            commands = {"validate": ["validate", f"configs/{config}.toml", "-q"],
                        "assimilate": ["assimilate", f"configs/{config}.toml", "--overwrite", "-q"]}
            for name in trees:  # warm the compilation cache: the comparison is about reading inputs
                timed(trees[name], workspaces[name], commands["assimilate"], caches[name])
            for command, args in commands.items():
                times = {name: [] for name in trees}
                for _ in range(options.repeats):
                    for name in trees:
                        times[name].append(timed(trees[name], workspaces[name], args, caches[name]))
                medians = {name: statistics.median(values) for name, values in times.items()}
                rows.append({"config": config, "command": command, **{f"{k}_seconds": v for k, v in medians.items()},
                             "ratio": medians["after"] / medians["before"], "all": times})
                print(f"{config:10s} {command:10s} before {medians['before']:7.2f} s  after {medians['after']:7.2f} s"
                      f"  ratio {medians['after'] / medians['before']:.3f}", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    report = {"before": options.before, "repeats": options.repeats, "rows": rows, "environment": environment()}
    Path(options.output + ".json").write_text(json.dumps(report, indent=2))
    lines = [f"# Input checks: start-up before ({options.before}) vs after", "",
             f"`python benchmarks/input_checks.py --before {options.before} --configs {options.configs} "
             f"--repeats {options.repeats}` (median of {options.repeats}, fresh processes, warm compilation cache)", "",
             "| config | command | before (s) | after (s) | after / before |", "|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['command']} | {r['before_seconds']:.2f} | {r['after_seconds']:.2f} | "
              f"{r['ratio']:.3f} |" for r in rows]
    Path(options.output + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
