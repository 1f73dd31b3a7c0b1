"""What the benchmark scripts share: logging, the child's environment and command line, the
device and memory facts each child records, and timing a compiled call (:func:`per_call`).

Imported by the scripts beside it (``python benchmarks/<script>.py`` puts this folder on the
path), like :mod:`provenance`. Not for dacli itself: nothing in the package imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from provenance import ROOT


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


def fmt(value, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or "n/a" when it was not measured."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def child_env() -> dict:
    """The environment of child processes: this checkout's dacli on the path, after any
    PYTHONPATH already set (so a PYTHONPATH holding another dacli tree benchmarks that one)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*filter(None, [env.get("PYTHONPATH")]), str(ROOT)])
    return env


def child_command(
    script: str, config: Path, device: str, precision: str, overrides: list[str]
) -> list[str]:
    """The command line that runs ``script --child config`` with these settings."""
    command = [sys.executable, str(Path(script).resolve()), "--child", str(config),
               "--device", device, "--precision", precision]
    for item in overrides:
        command += ["--set", item]
    return command


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gpu_memory() -> dict:
    """The first device's peak bytes in use and limit (None where the backend does not say)."""
    import jax

    stats = {}
    with contextlib.suppress(Exception):
        stats = jax.devices()[0].memory_stats() or {}
    return {
        "gpu_peak_bytes_in_use": stats.get("peak_bytes_in_use"),
        "gpu_bytes_limit": stats.get("bytes_limit"),
    }


def run_environment(sets: list[str]) -> dict:
    """The backend, devices and dacli tree a child ran on, and the overrides it was given."""
    import jax

    import dacli

    dev = jax.devices()[0]
    return {
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "device_kind": getattr(dev, "device_kind", dev.platform),
        "dacli_version": dacli.__version__,
        "dacli_source": str(Path(dacli.__file__).resolve().parent),
        "overrides": sets,
    }


def sample_workspace(folder: Path, tree: Path = ROOT) -> Path:
    """``folder`` with copies of ``tree``'s configs/ and sample_data/ (a checkout's shipped configs
    and the data their relative paths name), for fresh ``dacli`` processes to run in."""
    shutil.copytree(tree / "configs", folder / "configs")
    shutil.copytree(tree / "sample_data", folder / "sample_data")
    return folder


def write_json_and_markdown(
    out: str | Path, report: dict, markdown: str, quiet: bool = False
) -> None:
    """``out``.json (the report) and ``out``.md (``markdown``, its tables); said on stderr unless
    ``quiet`` (a report rewritten after every case)."""
    Path(f"{out}.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{out}.md").write_text(markdown)
    if not quiet:
        log(f"wrote {out}.json and {out}.md")


def show_text(text: str, out: str | None) -> None:
    """Print ``text``, written to the file ``out`` first when one is given."""
    if out:
        Path(out).write_text(text)
        log(f"wrote {out}")
    print(text)


def timed(call, *args) -> float:
    """Seconds of one call of ``call(*args)``, waiting for its result."""
    import jax

    began = time.perf_counter()
    jax.block_until_ready(call(*args))
    return time.perf_counter() - began


def machine_line(report: dict) -> str:
    """The closing line of a result table: machine, jax, dacli commit, the run's seconds."""
    env = report["environment"]
    return (f"Machine: {env.get('cpu')}, {env.get('cpu_count')} cores; jax {env['versions'].get('jax')}; "
            f"dacli {env.get('dacli_commit', 'unknown')}; whole run {report['seconds_total']:.0f} s.")


def per_call(call, *args, budget: float = 0.3) -> float:
    """Seconds per call of a compiled ``call(*args)``: the median of 5 batches of calls, each about
    ``budget`` / 5 seconds long, after one call to warm it."""
    import jax

    jax.block_until_ready(call(*args))
    one = timed(call, *args)
    count = max(1, int(budget / 5 / max(one, 1e-6)))
    batches = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(count):
            out = call(*args)
        jax.block_until_ready(out)
        batches.append((time.perf_counter() - began) / count)
    return statistics.median(batches)
