"""Process-wide JAX set-up: precision, device, error handling. Call before importing JAX.

``EQX_ON_ERROR=nan`` turns equinox/diffrax/optimistix runtime checks into NaNs instead of host
callbacks (which would keep programs out of JAX's persistent compilation cache); every method
checks its results for finiteness itself (../shared/CONVENTIONS.md).
"""

from __future__ import annotations

import os

from dacli.errors import DeviceError


def configure(precision: str = "float64", device: str = "auto") -> str:
    """Apply precision and device choices; return the platform JAX will use ("cpu", "gpu")."""
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    import jax

    jax.config.update("jax_enable_x64", precision == "float64")
    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    try:
        platform = jax.default_backend()
    except (RuntimeError, AssertionError) as exc:
        raise DeviceError(f"JAX could not start a backend ({exc}); is the right jaxlib installed?") from None
    if device == "gpu" and platform != "gpu":
        raise DeviceError(
            "--device gpu: no GPU is visible to JAX (backend is "
            f"{platform!r}); install the CUDA build with `pip install \"dacli[cuda]\"` on a machine with an NVIDIA GPU"
        )
    return platform


def describe_device() -> str:
    import jax

    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', device.platform)}"
