"""``dacli simulate``: a twin experiment — truth run, synthetic observations, background.

The truth starts from the model's default state, spun up for ``simulate.spinup``, then runs for
``simulate.duration`` from ``window.start``. Observations (every ``obs_interval``) are the truth
plus Gaussian noise of std ``obs_error_std``: gridded (a random ``observed_fraction`` of grid
points, then ``missing_fraction`` holes written as missing values) or scattered (``obs_per_time``
random off-grid locations, linearly interpolated). The background is the truth at
``window.start`` plus noise of std ``background_error_std``. Files go where the config's
``observations.path``, ``background.path`` and ``truth.path`` point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dacli.config.schema import Config
from dacli.errors import ConfigError


@dataclass
class SimulationResult:
    files: dict[str, str]
    summary: dict


def _steps(value: float, dt: float, key: str) -> int:
    steps = value / dt
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise ConfigError([f"{key}: {value} is not a whole number of model steps (model.dt = {dt})"])
    return int(round(steps))


def simulate(config: Config, *, overwrite: bool = False) -> SimulationResult:
    from dacli.run.runtime import configure

    configure(config.run.precision, config.run.device)
    import diffrax
    import jax
    import jax.numpy as jnp
    import xarray as xr

    from dacli.build.problem import build_dynamics
    from dacli.io.analysis import without_fill_on_coordinates
    from dacli.io.netcdf import check_writable, write_netcdf_atomically
    from dacli.io.states import state_dataset
    from dacli.models.integrate import integrate
    from dacli.observations.sets import interpolation_weights

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

    dt = config.model.dt
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    solver = _solver(config)
    rng = np.random.default_rng(config.run.seed)
    key = jax.random.PRNGKey(config.run.seed)
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    direct = diffrax.DirectAdjoint()
    x0 = jnp.asarray(dynamics.default_state(key), dtype)
    spin = _steps(sim.spinup, dt, "simulate.spinup")
    if spin:
        x0 = integrate(dynamics, x0, config.window.start - sim.spinup, spin, dt, solver, direct)[-1]
    nsteps = _steps(sim.duration, dt, "simulate.duration")
    truth = np.asarray(integrate(dynamics, x0, config.window.start, nsteps, dt, solver, direct))
    if not np.all(np.isfinite(truth)):
        raise ConfigError(["model.dt: the truth run blew up (non-finite values); use a smaller step"])
    times = config.window.start + dt * np.arange(nsteps + 1)
    stride = _steps(sim.obs_interval, dt, "simulate.obs_interval")
    obs_steps = np.arange(stride, nsteps + 1, stride)
    variables = config.observations.variables or list(layout.variables)
    units = config.output.time_units
    fields = layout.split(truth)

    if config.observations.layout == "gridded":
        data = {}
        for name in variables:
            clean = fields[name][obs_steps]
            noisy = clean + rng.normal(0.0, sim.obs_error_std, clean.shape)
            hidden = rng.random(clean.shape) >= sim.observed_fraction
            hidden |= rng.random(clean.shape) < sim.missing_fraction
            noisy[hidden] = np.nan
            dims = ("time", layout.grid_name) if layout.grid_name else ("time",)
            data[name] = xr.Variable(dims, noisy, {"long_name": f"observed {name}", "units": layout.units,
                                                    "_FillValue": np.float64(-9999.0)})
            data[f"{name}_error"] = xr.Variable((), sim.obs_error_std, {
                "long_name": f"observation error standard deviation of {name}", "units": layout.units})
        coords = {"time": xr.Variable(("time",), times[obs_steps], {"standard_name": "time", "units": units, "axis": "T"})}
        if layout.grid_name:
            coords[layout.grid_name] = xr.Variable((layout.grid_name,), np.asarray(layout.grid, float), {"units": layout.grid_units, "axis": "X"})
        obs_dataset = xr.Dataset(data, coords=coords, attrs={"Conventions": "CF-1.11", "title": "dacli synthetic gridded observations"})
    else:
        per_time = sim.obs_per_time or max(1, layout.grid_size // 2)
        step_index = np.repeat(obs_steps, per_time)
        if layout.grid_name:
            grid = np.asarray(layout.grid, float)
            spacing = grid[1] - grid[0] if len(grid) > 1 else 1.0
            upper = grid[0] + spacing * len(grid) if layout.periodic else grid[-1]
            location = rng.uniform(grid[0], upper, step_index.size)
            index, weight, _ = interpolation_weights(location, layout)
        data = {}
        for name in variables:
            field = fields[name][step_index]
            if layout.grid_name:
                clean = np.sum(np.take_along_axis(field, index, axis=1) * weight, axis=1)
            else:
                clean = field
            noisy = clean + rng.normal(0.0, sim.obs_error_std, clean.shape)
            noisy[rng.random(clean.shape) < sim.missing_fraction] = np.nan
            data[name] = xr.Variable(("obs",), noisy, {"long_name": f"observed {name}", "units": layout.units,
                                                       "coordinates": "time" + (f" {layout.grid_name}" if layout.grid_name else "")})
            data[f"{name}_error"] = xr.Variable(("obs",), np.full(clean.shape, sim.obs_error_std), {
                "long_name": f"observation error standard deviation of {name}", "units": layout.units})
        coords = {"time": xr.Variable(("obs",), times[step_index], {"standard_name": "time", "units": units, "axis": "T"})}
        if layout.grid_name:
            coords[layout.grid_name] = xr.Variable(("obs",), location, {"long_name": "observation location", "units": layout.grid_units})
        obs_dataset = xr.Dataset(data, coords=coords, attrs={"Conventions": "CF-1.11", "featureType": "point",
                                                             "title": "dacli synthetic scattered observations"})

    background = truth[0] + rng.normal(0.0, sim.background_error_std, truth[0].shape)
    attrs = {"Conventions": "CF-1.11", "source": f"dacli simulate (seed {config.run.seed})"}
    outputs = {
        "observations": obs_dataset,
        "background": state_dataset(layout, times[:1], background[None], units, {**attrs, "title": "dacli background"}),
        "truth": state_dataset(layout, times, truth, units, {**attrs, "title": "dacli truth run"}),
    }
    for kind, dataset in outputs.items():
        write_netcdf_atomically(without_fill_on_coordinates(dataset), paths[kind], overwrite)
    summary = {
        "files": {k: str(v) for k, v in paths.items()},
        "truth_steps": int(nsteps + 1),
        "observation_times": int(len(obs_steps)),
        "background_rmse": float(np.sqrt(np.mean((background - truth[0]) ** 2))),
    }
    return SimulationResult(files={k: str(v) for k, v in paths.items()}, summary=summary)


def _solver(config: Config):
    from dacli.build.registry import SOLVERS

    return SOLVERS.resolve(config.model.solver)()
