"""Provenance recorded by every benchmark: the dacli commit, package versions, the machine.

Imported by the benchmark scripts beside it (``python benchmarks/<script>.py`` puts this folder
on the path).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """HEAD of this checkout, flagged when dacli/ has uncommitted changes; or $DACLI_COMMIT when set
    (for a copy of the tree without .git, or a snapshot of a working tree)."""
    if os.environ.get("DACLI_COMMIT"):
        return os.environ["DACLI_COMMIT"]
    if os.environ.get("PYTHONPATH"):
        return None  # another dacli tree may come first on the path: see each run's dacli_source
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "dacli"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" + uncommitted changes in dacli/" if dirty else "")
    return None


def package_version(name: str) -> str | None:
    with contextlib.suppress(PackageNotFoundError):
        return version(name)
    return None


def environment(extra_packages: tuple[str, ...] = ()) -> dict:
    """The machine, its load, the GPU if any, the dacli commit and package versions (+ ``extra_packages``)."""
    names = (*extra_packages, "dacli", "jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda13-pjrt", "jax-cuda12-plugin",
             "jax-cuda12-pjrt", "diffrax", "optimistix", "equinox", "lineax", "numpy", "xarray", "netCDF4", "pydantic")
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
    gpu = None
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(Exception):
            gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    load = None
    with contextlib.suppress(OSError):
        load = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": memory,
        "load_average_at_end": load,
        "nvidia_smi": gpu,
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "xla_python_client_preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
        "dacli_commit": git_commit(),
        "versions": {name: package_version(name) for name in names},
    }
