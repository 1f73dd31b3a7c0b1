"""Process-wide JAX set-up from the configuration: precision, device, compilation cache.

Call :func:`configure` once per command, before the first computation (JAX reads these settings
when its backend starts, not when it is imported, so the computing modules may be imported
before). What the libraries read at import time (``EQX_ON_ERROR=nan``: equinox/diffrax/optimistix
runtime checks become NaNs, every method checks its results for finiteness itself) is set
earlier, by the entry point (:func:`dacli.__main__.set_process_environment`).

The persistent compilation cache (JAX's ``jax_compilation_cache_dir``) is on by default in the
user cache folder: a second run of the same configuration loads its compiled programs instead
of compiling them (benchmarks/compile_cache.py measures the start-up). ``run.compilation_cache``
(or ``$DACLI_COMPILATION_CACHE``) names another folder or turns it "off".

``--device auto`` on a machine with a GPU places each run by :func:`place_work`'s documented
rule (state values computed together against :data:`GPU_MIN_VALUES`), not "the GPU whenever one
is visible": small programs are launch-bound on a GPU.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import jax

from dacli.errors import DeviceError

log = logging.getLogger("dacli")


def cache_folder(setting: str = "auto") -> Path | None:
    """The compilation cache folder ``setting`` means: "auto", "off" (None) or a folder."""
    if setting == "auto":
        setting = os.environ.get("DACLI_COMPILATION_CACHE", "auto")
    if setting.strip().lower() == "off":
        return None
    if setting == "auto":
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "dacli" / "jax"
    return Path(setting).expanduser()


def configure(
    precision: str = "float64", device: str = "auto", compilation_cache: str = "auto"
) -> str:
    """Apply precision, device and cache choices; return the platform JAX will use ("cpu",
    "gpu")."""
    jax.config.update("jax_enable_x64", precision == "float64")
    _use_cache(cache_folder(compilation_cache))
    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    try:
        platform = jax.default_backend()
    except (RuntimeError, AssertionError) as exc:
        raise DeviceError(
            f"JAX could not start a backend ({exc}); is the right jaxlib installed?"
        ) from None
    if device == "gpu" and platform != "gpu":
        raise DeviceError(
            "--device gpu: no GPU is visible to JAX (backend is "
            f'{platform!r}); install the CUDA build with `pip install "dacli[cuda]"` on a machine '
            "with an NVIDIA GPU"
        )
    return platform


def _use_cache(folder: Path | None) -> None:
    """Point JAX's persistent cache at ``folder`` (None: off); an unusable folder only warns."""
    if folder is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("compilation cache %s unusable (%s): compiling without it", folder, exc)
        jax.config.update("jax_enable_compilation_cache", False)
        return
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Keep programs that took a tenth of a second to compile (JAX's default threshold is one
    # second),
    # so the smaller ones (forecasts, the stepwise minimiser's) are kept too; entries are small.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


# ``--device auto`` puts work on a visible GPU only from this many state values computed together
# (state or control size x batch). Measured per window of strong 4DVar, one H100 against a
# 12-16-core CPU (benchmarks/GPU.md, benchmarks/QG.md): Lorenz-96 GPU 33x slower at N = 40, 13x
# at 400, 1.5x at 4000, 7.5x faster at 40000; QG 1.4x slower at 64 x 64 (4096), 4.8x faster at
# 128 x 128 (16384). Each minimiser iteration costs the GPU about 3 ms of launches whatever the
# size, so below this the CPU is faster.
GPU_MIN_VALUES = 16384


def place_work(device: str, values: int, what: str) -> str:
    """The platform a run of ``values`` state values computed together (``what`` says which, for
    the log) uses under ``device``: with "auto" and a GPU visible, the CPU below
    :data:`GPU_MIN_VALUES` (made JAX's default device), the choice and its reason logged. Call
    after :func:`configure`, before the run's first computation. Returns "cpu" or "gpu"."""
    platform = jax.default_backend()
    if device != "auto" or platform != "gpu":
        return platform
    if values >= GPU_MIN_VALUES:
        log.info(
            "device auto: gpu (%s: %d values >= %d, where a GPU beats the CPU)",
            what,
            values,
            GPU_MIN_VALUES,
        )
        return "gpu"
    jax.config.update("jax_default_device", jax.devices("cpu")[0])
    log.info(
        "device auto: cpu although a GPU is visible (%s: %d values < %d: launch-bound on a GPU, "
        "benchmarks/GPU.md; --device gpu to override)",
        what,
        values,
        GPU_MIN_VALUES,
    )
    return "cpu"


def describe_device() -> str:
    """The device JAX computes on by default, as "platform:kind" (e.g. "gpu:NVIDIA H100 80GB
    HBM3")."""
    device = getattr(jax.config, "jax_default_device", None) or jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', device.platform)}"
