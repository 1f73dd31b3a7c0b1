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


def describe_device() -> str:
    """The first device JAX computes on, as "platform:kind" (e.g. "gpu:NVIDIA H100 80GB HBM3")."""
    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', device.platform)}"
