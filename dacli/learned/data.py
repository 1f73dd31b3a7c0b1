"""Windows for 4DVarNet: (observations on the window's grid, mask, truth), in the networks' layout.

Training and assimilation see observations the same way. A window's observations (any layout
dacli reads: gridded, CF points, IODA) are put on the (model step, state) grid of the window by
:func:`grid_observations`: an observation adds its value to the grid point it weighs most (its
own point for gridded data, the nearest for interpolated ones, e.g. along satellite tracks) at
its model step, and points observed several times take the mean — how 4dvarnet-starter grids
along-track altimetry. :func:`window_pairs` cuts an observation set and a truth run into
consecutive windows of ``length`` steps (steps 1..length after each window start, as 4DVar's
windows (start, start + length]) for training. :func:`to_channels` lays a window out as the
networks expect: for a model without a grid (Lorenz-63) the variables are channels over time,
(n, T); for a gridded model the window's time steps are channels over the grid, (T, *grid) —
Fablet et al. (2021)'s two layouts. :func:`forecast_backgrounds` makes the training windows'
backgrounds for a network using them (``network.background``): model forecasts over each window
from a perturbed true initial state, as the cycled backgrounds of assimilation are.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Shaped

from dacli.io.observation_set import ObservationSet
from dacli.io.states import states_at
from dacli.layout import StateLayout
from dacli.models.base import Dynamics
from dacli.models.integrate import integrate
from dacli.observations.operator import WindowObservations
from dacli.observations.windows import make_schedule, pack_observations


def to_channels(
    layout: StateLayout, windows: Shaped[np.ndarray, "batch steps n"]
) -> Shaped[np.ndarray, " batch *layout"]:
    """Flat-state windows (B, T, n) -> network layout: (B, n, T) without a grid, (B, T, *grid) with
    one."""
    windows = np.asarray(windows)
    if not layout.axes:
        return np.swapaxes(windows, 1, 2)
    if len(layout.variables) != 1:
        raise ValueError(
            "4DVarNet on a grid needs a single-variable model (time steps are the channels)"
        )
    return windows.reshape(*windows.shape[:2], *layout.shape)


def spatial_dims(layout: StateLayout) -> int:
    return max(1, len(layout.axes))


def is_periodic(layout: StateLayout) -> bool:
    return bool(layout.axes) and all(axis.periodic for axis in layout.axes)


def grid_observations(
    obs: WindowObservations, steps: int, size: int
) -> tuple[Float[Array, "steps n"], Bool[Array, "steps n"]]:
    """(y, mask) over (steps, size) for model steps 1..steps: the mean of the observations per
    point.

    ``obs`` is one window's :class:`~dacli.observations.operator.WindowObservations`; y is 0
    where nothing was observed.
    """
    nearest = jnp.take_along_axis(obs.index, jnp.argmax(obs.weight, axis=-1)[:, None], axis=-1)[
        :, 0
    ]
    row = jnp.clip(obs.slot - 1, 0, steps - 1)
    used = obs.mask & (obs.slot >= 1)
    total = (
        jnp.zeros((steps, size), obs.values.dtype)
        .at[row, nearest]
        .add(jnp.where(used, obs.values, 0.0))
    )
    count = (
        jnp.zeros((steps, size), obs.values.dtype)
        .at[row, nearest]
        .add(used.astype(obs.values.dtype))
    )
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), 0.0), count > 0


def window_pairs(
    observations: ObservationSet,
    truth_times: Float[np.ndarray, " times"],
    truth: Float[np.ndarray, "times n"],
    layout: StateLayout,
    *,
    start: float,
    steps: int,
    dt: float,
    count: int,
    source: str,
    dtype=np.float64,
) -> tuple[
    Float[np.ndarray, " count *layout"],
    Bool[np.ndarray, " count *layout"],
    Float[np.ndarray, " count *layout"],
    Float[np.ndarray, "count n"],
    Float[np.ndarray, " count"],
]:
    """(y, mask, truth, initial, starts) for ``count`` consecutive windows of ``steps`` model steps
    from ``start``.

    ``observations`` is an :class:`~dacli.io.observation_set.ObservationSet`; ``truth`` the states
    (T, n) at ``truth_times``, which must cover every window's steps 0..steps (``source`` names it
    in the error). y, mask and truth (steps 1..steps) are (count, *network layout); ``initial`` is
    the true flat state at each window start (count, n), ``starts`` the start times (count,).
    """
    length = steps * dt
    schedule = make_schedule(start, length, length, dt, "newest", count, None)
    packed = pack_observations(observations, schedule, None, dtype)
    grid = jax.vmap(grid_observations, in_axes=(0, None, None))
    y, mask = grid(jax.tree_util.tree_map(jnp.asarray, packed.stacked()), steps, layout.size)
    wanted = (schedule.starts[:, None] + dt * np.arange(0, steps + 1)).ravel()
    states = states_at(truth_times, truth, wanted, source, "truth", 0.5 * dt).reshape(
        count, steps + 1, -1
    )
    return (
        to_channels(layout, np.asarray(y)).astype(dtype),
        to_channels(layout, np.asarray(mask)),
        to_channels(layout, states[:, 1:]).astype(dtype),
        states[:, 0].astype(dtype),
        np.asarray(schedule.starts, dtype),
    )


def forecast_backgrounds(
    dynamics: Dynamics,
    solver: diffrax.AbstractSolver,
    initial: Float[np.ndarray, "count n"],
    starts: Float[np.ndarray, " count"],
    *,
    steps: int,
    dt: float,
    error_std: float,
    layout: StateLayout,
    seed: int,
) -> Float[np.ndarray, " count *layout"]:
    """Background forecasts over steps 1..steps, in the network layout, for training windows.

    Each window's background state is its true initial state plus N(0, error_std^2) noise (numpy
    generator ``seed``); its forecast is the model run from there, all windows in one compiled,
    vmapped integration. Returns a numpy array (count, *network layout).
    """
    initial = np.asarray(initial)
    perturbed = initial + error_std * np.random.default_rng(seed).standard_normal(
        initial.shape
    ).astype(initial.dtype)

    @eqx.filter_jit
    def forecasts(dynamics, solver, x0, t0):
        def one(x, t):
            return integrate(dynamics, x, t, steps, dt, solver, diffrax.DirectAdjoint())[1:]

        return jax.vmap(one)(x0, t0)

    trajectories = np.asarray(
        forecasts(dynamics, solver, jnp.asarray(perturbed), jnp.asarray(starts, perturbed.dtype))
    )
    return to_channels(layout, trajectories).astype(initial.dtype)
