"""Start-up with a cold vs a warm persistent compilation cache (and with the cache off).

Each measurement is a fresh ``dacli assimilate`` process on a shipped configuration (its sample
data copied to a scratch folder), timed end to end (wall clock, including Python and JAX imports,
reading the inputs, tracing, compiling or loading from the cache, all windows, writing the file),
with the summary's ``compile_and_first_chunk_seconds``. Per configuration and repeat, in this order:
cache off, cold (an empty cache folder), warm (the folder the cold run filled) — side by side in one
run, so the machine's load affects all three alike; the median over repeats is reported.

    python benchmarks/compile_cache.py                      # lorenz96 and qg, 3 repeats
    python benchmarks/compile_cache.py --configs lorenz96 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import sample_workspace
from provenance import ROOT, environment


def run_once(config: str, cache: str, workspace: Path) -> dict:
    env = {**os.environ, "DACLI_COMPILATION_CACHE": cache}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dacli", "assimilate", f"configs/{config}.toml", "--overwrite",
                             "--json", "-q"], cwd=workspace, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"dacli assimilate configs/{config}.toml failed ({result.returncode}): {result.stderr[-2000:]}")
    summary = json.loads(result.stdout)
    return {"wall_seconds": wall, "compile_and_first_chunk_seconds": summary["compile_and_first_chunk_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="lorenz96,qg")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compile_cache"))
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        workspace = sample_workspace(Path(scratch))
        for config in args.configs.split(","):
            runs = {"off": [], "cold": [], "warm": []}
            for repeat in range(args.repeats):
                folder = workspace / f"cache-{config}-{repeat}"
                runs["off"].append(run_once(config, "off", workspace))
                runs["cold"].append(run_once(config, str(folder), workspace))
                runs["warm"].append(run_once(config, str(folder), workspace))
                entries = len(list(folder.iterdir()))
                print(f"{config} repeat {repeat + 1}: " + ", ".join(
                    f"{kind} {r[-1]['wall_seconds']:.1f} s" for kind, r in runs.items()) + f"; {entries} cache entries",
                    flush=True)
            median = {kind: {key: statistics.median(r[key] for r in values) for key in values[0]}
                      for kind, values in runs.items()}
            rows.append({"config": config, "repeats": args.repeats, "cache_entries": entries, "median": median,
                         "runs": runs,
                         "warm_over_cold_wall": median["warm"]["wall_seconds"] / median["cold"]["wall_seconds"],
                         "warm_over_off_wall": median["warm"]["wall_seconds"] / median["off"]["wall_seconds"],
                         "warm_over_cold_compile": (median["warm"]["compile_and_first_chunk_seconds"]
                                                    / median["cold"]["compile_and_first_chunk_seconds"])})

    lines = ["| config | cache off: wall (first chunk) | cold: wall (first chunk) | warm: wall (first chunk) | "
             "warm / cold wall | warm / cold first chunk | entries |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        m = row["median"]
        cells = [f"{m[k]['wall_seconds']:.1f} s ({m[k]['compile_and_first_chunk_seconds']:.1f} s)" for k in ("off", "cold", "warm")]
        lines.append(f"| {row['config']} | " + " | ".join(cells) + f" | {row['warm_over_cold_wall']:.2f} | "
                     f"{row['warm_over_cold_compile']:.2f} | {row['cache_entries']} |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"environment": environment(), "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(f"# Compilation cache: start-up of `dacli assimilate`\n\n{table}\n\n"
                                      f"Medians over {args.repeats} repeat(s); command: `python benchmarks/compile_cache.py "
                                      f"--configs {args.configs} --repeats {args.repeats}`.\n")


if __name__ == "__main__":
    main()
