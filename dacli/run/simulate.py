"""``dacli simulate``: a twin experiment — truth run, synthetic observations, background.

The truth starts from the model's default state, spun up for ``simulate.spinup``, then runs for
``simulate.duration`` from ``window.start``. Observations (every ``obs_interval``) are the truth
plus Gaussian noise of std ``obs_error_std``: gridded (a random ``observed_fraction`` of grid
points, then ``missing_fraction`` holes written as missing values) or scattered (``obs_per_time``
random off-grid locations, or satellite-like tracks over a 2-D grid (``sampling = "tracks"``,
:mod:`dacli.observations.tracks`), interpolated linearly on 1-D grids and bilinearly on 2-D
grids), written as a CF point file or, with ``observations.layout = "ioda"``, as IODA v3 (the
ObsValue, ObsError and MetaData groups; times as seconds since 1970 from model time,
``[time]``). The background is the truth at ``window.start`` plus an error of std
``background_error_std``: white, or correlated like the configured B when that is a Gaussian or
Matern correlation. Files go where the config's
``observations.path``, ``background.path`` and ``truth.path`` point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dacli.config.schema import CORRELATED_KINDS, Config
from dacli.errors import ConfigError
from dacli.observations.windows import whole_steps


@dataclass
class SimulationResult:
    files: dict[str, str]
    summary: dict


def simulate(config: Config, *, overwrite: bool = False) -> SimulationResult:
    from dacli.run.runtime import configure

    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    import xarray as xr

    from dacli.io.analysis import without_fill_on_coordinates
    from dacli.io.netcdf import check_writable, write_netcdf_atomically
    from dacli.io.states import state_dataset

    sim = config.simulate
    problems = []
    if sim is None:
        problems.append("simulate: section missing; dacli simulate needs [simulate] (see configs/)")
    if config.background.path is None:
        problems.append("background.path: dacli simulate writes the background there; set a path")
    if config.truth is None:
        problems.append("truth.path: dacli simulate writes the truth there; add [truth] path = ...")
    if problems:
        raise ConfigError(problems)
    overwrite = overwrite or config.output.overwrite
    paths = {"observations": config.observations.path, "background": config.background.path,
             "truth": config.truth.path}
    for path in paths.values():
        check_writable(path, overwrite)

    twin = make_twin(config, config.run.seed, config.simulate.duration)
    layout, truth, times, units = twin.layout, twin.truth, twin.times, config.time.axis()
    obs_dataset = twin.observations
    if config.observations.layout == "ioda":
        obs_dataset = _as_ioda(obs_dataset, config, layout, twin.variables)
    background = twin.background
    attrs = {"Conventions": "CF-1.11", "source": f"dacli simulate (seed {config.run.seed})"}
    outputs = {
        "observations": obs_dataset,
        "background": state_dataset(layout, times[:1], background[None], units, {**attrs, "title": "dacli background"}),
        "truth": state_dataset(layout, times, truth, units, {**attrs, "title": "dacli truth run"}),
    }
    for kind, dataset in outputs.items():
        tidy = without_fill_on_coordinates(dataset) if isinstance(dataset, xr.Dataset) else dataset  # IODA: groups
        write_netcdf_atomically(tidy, paths[kind], overwrite)
    summary = {
        "files": {k: str(v) for k, v in paths.items()},
        "truth_steps": len(times),
        "observation_times": twin.observation_times,
        "background_rmse": float(np.sqrt(np.mean((background - truth[0]) ** 2))),
    }
    return SimulationResult(files={k: str(v) for k, v in paths.items()}, summary=summary)


@dataclass
class Twin:
    """A truth run with its synthetic observations (a CF dataset, gridded or point) and background."""

    layout: object
    times: np.ndarray  # (T + 1,) model times of the truth
    truth: np.ndarray  # (T + 1, n)
    observations: object  # xarray.Dataset
    background: np.ndarray  # (n,) the truth at the first time plus the background error
    variables: list[str]
    observation_times: int


def make_twin(config: Config, seed: int, duration: float) -> Twin:
    """The twin experiment of ``[simulate]`` from ``seed`` over ``duration`` (in memory).

    ``dacli simulate`` writes it with ``run.seed``; ``dacli train`` draws its training windows
    from it with another seed, so the simulated experiment stays unseen in training.
    """
    import diffrax
    import jax
    import jax.numpy as jnp

    from dacli.build.problem import build_dynamics
    from dacli.models.integrate import integrate

    sim, dt = config.simulate, config.model.dt
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    solver = _solver(config)
    rng = np.random.default_rng(seed)
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    direct = diffrax.DirectAdjoint()
    x0 = jnp.asarray(dynamics.default_state(jax.random.PRNGKey(seed)), dtype)
    spin = whole_steps(sim.spinup, dt, "simulate.spinup", minimum=0)
    if spin:
        x0 = integrate(dynamics, x0, config.window.start - sim.spinup, spin, dt, solver, direct)[-1]
    nsteps = whole_steps(duration, dt, "simulate.duration")
    truth = np.asarray(integrate(dynamics, x0, config.window.start, nsteps, dt, solver, direct))
    if not np.all(np.isfinite(truth)):
        raise ConfigError(["model.dt: the truth run blew up (non-finite values); use a smaller step"])
    times = config.window.start + dt * np.arange(nsteps + 1)
    stride = whole_steps(sim.obs_interval, dt, "simulate.obs_interval")
    obs_steps = np.arange(stride, nsteps + 1, stride)
    variables = config.observations.variables or list(layout.variables)
    units = config.time.axis()
    fields = layout.split(truth)
    if config.observations.layout == "gridded":
        observations = _gridded_observations(layout, fields, variables, obs_steps, times, units, sim, rng)
    else:
        observations = _scattered_observations(layout, fields, variables, obs_steps, times, units, sim, rng)
    background = truth[0] + sim.background_error_std * _background_error(config, layout, rng, dtype)
    return Twin(layout, times, truth, observations, background, variables, int(len(obs_steps)))


def twin_observations(config: Config, twin: Twin, source: str):
    """The twin's observations as an :class:`~dacli.observations.sets.ObservationSet`, read as
    ``dacli assimilate`` reads the file ``dacli simulate`` writes (IODA: its CF points)."""
    from dacli.io.observations import observations_in_dataset

    layout_read = "gridded" if config.observations.layout == "gridded" else "scattered"
    return observations_in_dataset(twin.observations, source, config.observations.model_copy(
        update={"path": source, "layout": layout_read, "names": {}, "dims": {}, "select": {}, "model_time": False}),
        twin.layout, config.time.axis())


def _solver(config: Config):
    from dacli.build.registry import SOLVERS

    return SOLVERS.resolve(config.model.solver)()


def _background_error(config: Config, layout, rng, dtype) -> np.ndarray:
    """A unit-variance error draw: white, or correlated like the configured B (C^{1/2} xi)."""
    covariance = config.background.covariance
    noise = rng.normal(0.0, 1.0, layout.size)
    if covariance.kind not in CORRELATED_KINDS:
        return noise
    from dacli.covariances.background import background_sqrt_operator

    root = background_sqrt_operator(covariance.kind, 1.0, layout, covariance.length_scale, dtype)
    return np.asarray(root.mv(np.asarray(noise, dtype)))


def _gridded_observations(layout, fields, variables, obs_steps, times, units, sim, rng):
    """Every grid point at each observation time, a random fraction hidden (missing values)."""
    import xarray as xr

    from dacli.io.states import coordinates

    data = {}
    for name in variables:
        clean = fields[name][obs_steps]
        noisy = clean + rng.normal(0.0, sim.obs_error_std, clean.shape)
        hidden = rng.random(clean.shape) >= sim.observed_fraction
        hidden |= rng.random(clean.shape) < sim.missing_fraction
        noisy[hidden] = np.nan
        data[name] = xr.Variable(("time", *layout.dims), noisy, {"long_name": f"observed {name}", "units": layout.units,
                                                                  "_FillValue": np.float64(-9999.0)})
        data[f"{name}_error"] = xr.Variable((), sim.obs_error_std, {
            "long_name": f"observation error standard deviation of {name}", "units": layout.units})
    coords = coordinates(layout, times[obs_steps], units)
    return xr.Dataset(data, coords=coords, attrs={"Conventions": "CF-1.11", "title": "dacli synthetic gridded observations"})


def _locations(layout, obs_steps, sim, rng) -> tuple[np.ndarray, np.ndarray]:
    """(model step, positions (P, D)) of every scattered observation: uniform or along tracks."""
    from dacli.observations.tracks import axis_extent, track_positions

    if sim.sampling == "tracks":
        if len(layout.axes) != 2:
            raise ConfigError([f"simulate.sampling: 'tracks' needs a model on a 2-D grid; this one has "
                               f"{len(layout.axes)} grid dimensions"])
        period = sim.repeat_period or 10 * sim.obs_interval
        per_cycle = max(1, round(period / sim.obs_interval)) * sim.tracks_per_time
        spacing = sim.along_track_spacing or min(abs(axis.spacing) for axis in layout.axes)
        steps, positions = [], []
        for number, step in enumerate(np.repeat(obs_steps, sim.tracks_per_time)):
            track = track_positions(number, layout.axes, sim.track_angle, per_cycle, spacing)
            steps.append(np.full(len(track), step))
            positions.append(track)
        return np.concatenate(steps), np.concatenate(positions)
    per_time = sim.obs_per_time or max(1, layout.grid_size // 2)
    steps = np.repeat(obs_steps, per_time)
    columns = []
    for axis in layout.axes:
        start, extent = axis_extent(axis)
        columns.append(rng.uniform(start, start + extent, steps.size))
    return steps, np.stack(columns, axis=-1) if columns else np.zeros((steps.size, 0))


def _as_ioda(points, config: Config, layout, variables):
    """The CF point observations rewritten as an IODA v3 tree (file names from ``observations.names``).

    Times go through the model's time axis (``[time]``) to IODA's seconds since 1970; values and
    errors are in the model's units, coordinates in their grid axes' units.
    """
    from dacli.io.ioda import ioda_tree
    from dacli.io.observations import ioda_coordinates
    from dacli.io.times import TimeAxis

    names = {v: config.observations.names.get(v, v) for v in variables}
    coordinate_names = ioda_coordinates(config.observations, layout)
    return ioda_tree(
        {names[v]: (points[v].values, points[f"{v}_error"].values) for v in variables},
        points["time"].values, TimeAxis(config.time.units, config.time.calendar),
        {name: points[dim].values for name, dim in zip(coordinate_names, layout.dims)},
        layout.units, {"title": "dacli synthetic observations (IODA v3)"},
        {name: axis.units for name, axis in zip(coordinate_names, layout.axes)})


def _scattered_observations(layout, fields, variables, obs_steps, times, units, sim, rng):
    """A CF point file: off-grid locations, interpolated from the truth (linear / bilinear)."""
    import xarray as xr

    from dacli.observations.sets import interpolation_weights

    steps, positions = _locations(layout, obs_steps, sim, rng)
    if layout.axes:
        index, weight, _ = interpolation_weights(positions, layout)
    data = {}
    location_names = " ".join(layout.dims)
    for name in variables:
        field = fields[name].reshape(len(fields[name]), -1)  # (T, grid): gather only the interpolation points
        clean = np.sum(field[steps[:, None], index] * weight, axis=1) if layout.axes else field[steps, 0]
        noisy = clean + rng.normal(0.0, sim.obs_error_std, clean.shape)
        noisy[rng.random(clean.shape) < sim.missing_fraction] = np.nan
        data[name] = xr.Variable(("obs",), noisy, {"long_name": f"observed {name}", "units": layout.units,
                                                   "coordinates": f"time {location_names}".strip()})
        data[f"{name}_error"] = xr.Variable(("obs",), np.full(clean.shape, sim.obs_error_std), {
            "long_name": f"observation error standard deviation of {name}", "units": layout.units})
    coords = {"time": xr.Variable(("obs",), times[steps], {"standard_name": "time", **units.attributes(), "axis": "T"})}
    for column, axis in enumerate(layout.axes):
        coords[axis.name] = xr.Variable(("obs",), positions[:, column], {**axis.attributes(), "long_name": f"observation {axis.name}"})
        coords[axis.name].attrs.pop("axis")
    return xr.Dataset(data, coords=coords, attrs={"Conventions": "CF-1.11", "featureType": "point",
                                                  "title": "dacli synthetic scattered observations"})
