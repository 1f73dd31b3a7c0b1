"""The numerics of a twin experiment: a truth run, synthetic observations and a background.

Plain arrays in, plain arrays out (no configuration, no files): ``dacli simulate`` writes what
these make (:mod:`dacli.run.simulate`), ``dacli train`` and ``dacli tune`` cut windows from it
(:mod:`dacli.run.train`, :mod:`dacli.tuning.twins`). Every random draw comes from one numpy
generator, in a fixed order (observation locations, then per variable noise and holes, then the
background error), so a seed gives the same twin everywhere.

Observations are the truth plus Gaussian noise: on the grid (:func:`gridded_samples`: a random
fraction observed, holes as NaN) or scattered (:func:`observation_locations`: uniform random
points or satellite-like tracks over a 2-D grid, :mod:`dacli.observations.tracks`;
:func:`scattered_samples`: interpolated linearly on 1-D grids, bilinearly on 2-D grids). Not a
model of real instruments: no biases, no correlated errors.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.typing import DTypeLike

from dacli.io.interpolation import interpolation_weights
from dacli.models.base import Dynamics, StateLayout
from dacli.models.integrate import solve_with_diffeqsolve
from dacli.observations.tracks import axis_extent, track_positions


def truth_run(
    dynamics: Dynamics,
    ode_solver: diffrax.AbstractSolver,
    *,
    seed: int,
    start: float,
    spinup: float,
    spinup_steps: int,
    steps: int,
    dt: float,
    dtype: DTypeLike,
) -> np.ndarray:
    """(steps + 1, n) states from ``start``: the model's default state (key ``seed``) run for
    ``spinup_steps`` steps from ``start - spinup``, then ``steps`` steps.

    Forward only, through :func:`diffrax.diffeqsolve` (not the scan of solver steps windows use,
    equal to it to round-off): chaos amplifies round-off over a long nature run, and this is
    the integration the shipped sample files were made with, so ``dacli simulate`` remakes
    them bit for bit (tests/test_simulate_reproduces_samples.py)."""
    direct = diffrax.DirectAdjoint()
    x0 = jnp.asarray(dynamics.default_state(jax.random.PRNGKey(seed)), dtype)
    if spinup_steps:
        x0 = solve_with_diffeqsolve(
            dynamics, x0, start - spinup, spinup_steps, dt, ode_solver, direct
        )[-1]
    return np.asarray(solve_with_diffeqsolve(dynamics, x0, start, steps, dt, ode_solver, direct))


def gridded_samples(
    fields: dict[str, np.ndarray],
    variables: list[str],
    obs_steps: np.ndarray,
    *,
    error_std: float,
    observed_fraction: float,
    missing_fraction: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per variable, (len(obs_steps), *grid) noisy values at the observation steps: a random
    ``observed_fraction`` of the points kept, then ``missing_fraction`` holes; NaN where hidden."""
    samples = {}
    for name in variables:
        clean = fields[name][obs_steps]
        noisy = clean + rng.normal(0.0, error_std, clean.shape)
        hidden = rng.random(clean.shape) >= observed_fraction
        hidden |= rng.random(clean.shape) < missing_fraction
        noisy[hidden] = np.nan
        samples[name] = noisy
    return samples


def observation_locations(
    layout: StateLayout,
    obs_steps: np.ndarray,
    *,
    sampling: str,
    per_time: int | None,
    obs_interval: float,
    tracks_per_time: int,
    repeat_period: float | None,
    along_track_spacing: float | None,
    track_angle: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(model step, positions (P, D)) of every scattered observation: uniform, or along tracks
    (``sampling = "tracks"``, a 2-D grid only: ValueError otherwise)."""
    if sampling == "tracks":
        if len(layout.axes) != 2:
            raise ValueError(
                f"'tracks' needs a model on a 2-D grid; this one has {len(layout.axes)} grid "
                "dimensions"
            )
        period = repeat_period or 10 * obs_interval
        per_cycle = max(1, round(period / obs_interval)) * tracks_per_time
        spacing = along_track_spacing or min(abs(axis.spacing) for axis in layout.axes)
        step_parts, position_parts = [], []
        for number, step in enumerate(np.repeat(obs_steps, tracks_per_time)):
            track = track_positions(number, layout.axes, track_angle, per_cycle, spacing)
            step_parts.append(np.full(len(track), step))
            position_parts.append(track)
        return np.concatenate(step_parts), np.concatenate(position_parts)
    steps = np.repeat(obs_steps, per_time or max(1, layout.grid_size // 2))
    columns = []
    for axis in layout.axes:
        start, extent = axis_extent(axis)
        columns.append(rng.uniform(start, start + extent, steps.size))
    return steps, np.stack(columns, axis=-1) if columns else np.zeros((steps.size, 0))


def scattered_samples(
    layout: StateLayout,
    fields: dict[str, np.ndarray],
    variables: list[str],
    steps: np.ndarray,
    positions: np.ndarray,
    *,
    error_std: float,
    missing_fraction: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per variable, the truth interpolated to each (step, position), plus noise; NaN for a
    random ``missing_fraction``."""
    if layout.axes:
        index, weight, _ = interpolation_weights(positions, layout)
    samples = {}
    for name in variables:
        field = fields[name].reshape(
            len(fields[name]), -1
        )  # (T, grid): gather only the interpolation points
        clean = (
            np.sum(field[steps[:, None], index] * weight, axis=1)
            if layout.axes
            else field[steps, 0]
        )
        noisy = clean + rng.normal(0.0, error_std, clean.shape)
        noisy[rng.random(clean.shape) < missing_fraction] = np.nan
        samples[name] = noisy
    return samples


def background_error(
    size: int,
    rng: np.random.Generator,
    correlation_sqrt: lx.AbstractLinearOperator | None,
    dtype: DTypeLike,
) -> np.ndarray:
    """A unit-variance error draw: white, or C^{1/2} xi for a correlation square root."""
    noise = rng.normal(0.0, 1.0, size)
    if correlation_sqrt is None:
        return noise
    return np.asarray(correlation_sqrt.mv(np.asarray(noise, dtype)))
