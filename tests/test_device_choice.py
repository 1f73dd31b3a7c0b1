"""``--device auto``: a visible GPU is used only for work big enough to beat the CPU (issue 19).

CI has no GPU, so the GPU is simulated where the rule reads it (JAX's default backend); the CPU
device the rule falls back to is real.
"""

import logging

import jax
import pytest

from dacli.run import runtime


@pytest.fixture
def gpu_visible(monkeypatch):
    """JAX reports a GPU backend; the default device is restored afterwards."""
    monkeypatch.setattr(runtime.jax, "default_backend", lambda: "gpu")
    yield
    jax.config.update("jax_default_device", None)


def test_small_work_goes_to_the_cpu_and_says_why(gpu_visible, caplog):
    with caplog.at_level(logging.INFO, logger="dacli"):
        assert runtime.place_work("auto", 40, "the control vector") == "cpu"
    assert jax.config.jax_default_device.platform == "cpu"
    assert "device auto: cpu although a GPU is visible (the control vector: 40 values < 16384" in (
        caplog.text)


def test_large_work_stays_on_the_gpu(gpu_visible, caplog):
    with caplog.at_level(logging.INFO, logger="dacli"):
        assert runtime.place_work("auto", runtime.GPU_MIN_VALUES, "the control vector") == "gpu"
    assert jax.config.jax_default_device is None
    assert "device auto: gpu (the control vector: 16384 values >= 16384" in caplog.text


def test_an_explicit_device_is_never_overridden(gpu_visible):
    assert runtime.place_work("gpu", 3, "the state") == "gpu"
    assert jax.config.jax_default_device is None


def test_without_a_gpu_auto_is_the_cpu_silently(caplog):
    with caplog.at_level(logging.INFO, logger="dacli"):
        assert runtime.place_work("auto", 10**6, "the state") == jax.default_backend() == "cpu"
    assert "device auto" not in caplog.text
