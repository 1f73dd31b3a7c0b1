"""Training windows for 4DVarNet: (observations, mask, truth) from a twin experiment.

A long truth run of any dacli model is cut into windows of ``length`` model steps; each window is
observed every ``obs_every`` steps (a random ``observed_fraction`` of the state) with Gaussian
noise. Windows are laid out as the networks expect (:func:`to_channels`): for a model without a
grid (Lorenz-63) the variables are channels over time, (n, T); for a gridded model the window's
time steps are channels over the grid, (T, *grid) — Fablet et al. (2021)'s two layouts.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from dacli.models.integrate import integrate


def to_channels(layout, windows: np.ndarray) -> np.ndarray:
    """Flat-state windows (B, T, n) -> network layout: (B, n, T) without a grid, (B, T, *grid) with one."""
    windows = np.asarray(windows)
    if not layout.axes:
        return np.swapaxes(windows, 1, 2)
    if len(layout.variables) != 1:
        raise ValueError("4DVarNet on a grid needs a single-variable model (time steps are the channels)")
    return windows.reshape(*windows.shape[:2], *layout.shape)


def spatial_dims(layout) -> int:
    return max(1, len(layout.axes))


def is_periodic(layout) -> bool:
    return bool(layout.axes) and all(axis.periodic for axis in layout.axes)


def twin_windows(dynamics, solver, dt: float, count: int, length: int, obs_every: int, noise_std: float,
                 seed: int, spinup_steps: int = 1000, observed_fraction: float = 1.0, dtype=jnp.float64):
    """(y with NaN where unobserved, mask, truth), each (count, C, *S), from one long truth run."""
    key = jax.random.PRNGKey(seed)
    x0 = jnp.asarray(dynamics.default_state(key), dtype)
    direct = diffrax.DirectAdjoint()
    if spinup_steps:
        x0 = integrate(dynamics, x0, 0.0, spinup_steps, dt, solver, direct)[-1]
    truth = np.asarray(integrate(dynamics, x0, 0.0, count * length, dt, solver, direct))[1:]
    truth = truth.reshape(count, length, -1)
    rng = np.random.default_rng(seed)
    observed = np.zeros(truth.shape, bool)
    observed[:, obs_every - 1::obs_every] = rng.random(observed[:, obs_every - 1::obs_every].shape) < observed_fraction
    noisy = np.where(observed, truth + rng.normal(0.0, noise_std, truth.shape), np.nan)
    layout = dynamics.layout()
    floats = np.dtype(dtype)
    return (to_channels(layout, noisy).astype(floats), to_channels(layout, observed),
            to_channels(layout, truth).astype(floats))
