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

import jax.numpy as jnp
import numpy as np
import xarray as xr

from dacli.build.dynamics import build_dynamics
from dacli.build.factories import build_ode_solver
from dacli.config.schema import Config, CorrelatedCovariance
from dacli.covariances.background import background_sqrt_operator
from dacli.errors import ConfigError
from dacli.io.analysis import without_fill_on_coordinates
from dacli.io.ioda import ioda_tree
from dacli.io.netcdf import check_writable, write_netcdf_atomically
from dacli.io.observation_set import ObservationSet
from dacli.io.observations import ioda_coordinates, observations_in_dataset
from dacli.io.states import coordinates, state_dataset
from dacli.io.times import TimeAxis
from dacli.io.twin_files import TwinExperiment, twin_file
from dacli.models.base import StateLayout
from dacli.observations.windows import whole_steps
from dacli.run.runtime import configure
from dacli.tuning.twin_data import (
    background_error,
    gridded_samples,
    observation_locations,
    scattered_samples,
    truth_run,
)


@dataclass(frozen=True)
class SimulatedFiles:
    observations: str
    background: str
    truth: str


@dataclass(frozen=True)
class SimulationResult:
    """What ``dacli simulate`` wrote: the files, the truth's length, the background's error."""

    files: SimulatedFiles
    truth_steps: int
    observation_times: int
    background_rmse: float


def _check(config: Config) -> None:
    problems = []
    if config.simulate is None:
        problems.append("simulate: section missing; dacli simulate needs [simulate] (see configs/)")
    if config.background.path is None:
        problems.append("background.path: dacli simulate writes the background there; set a path")
    if config.truth is None:
        problems.append("truth.path: dacli simulate writes the truth there; add [truth] path = ...")
    if problems:
        raise ConfigError(problems)


def simulate(config: Config, *, overwrite: bool = False) -> SimulationResult:
    """Make the twin of ``[simulate]`` with ``run.seed`` and write its three files (see the module
    docstring)."""
    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    _check(config)
    assert config.simulate is not None and config.truth is not None  # checked (_check)
    assert config.background.path is not None  # checked (_check)
    overwrite = overwrite or config.output.overwrite
    files = SimulatedFiles(
        str(config.observations.path), str(config.background.path), str(config.truth.path)
    )
    paths = {
        "observations": config.observations.path,
        "background": config.background.path,
        "truth": config.truth.path,
    }
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
        "background": state_dataset(
            layout, times[:1], background[None], units, {**attrs, "title": "dacli background"}
        ),
        "truth": state_dataset(layout, times, truth, units, {**attrs, "title": "dacli truth run"}),
    }
    discovery = config.output.discovery(config.output.title or config.run.name)
    experiment = TwinExperiment(layout, units, config.model.name, config.run.seed)
    for kind, dataset in outputs.items():
        tidy = (
            without_fill_on_coordinates(dataset) if isinstance(dataset, xr.Dataset) else dataset
        )  # IODA: groups
        tidy = twin_file(tidy, kind, discovery, experiment)
        write_netcdf_atomically(tidy, paths[kind], overwrite)
    return SimulationResult(
        files=files,
        truth_steps=len(times),
        observation_times=twin.observation_times,
        background_rmse=float(np.sqrt(np.mean((background - truth[0]) ** 2))),
    )


@dataclass(frozen=True)
class Twin:
    """A truth run with its synthetic observations (a CF dataset, gridded or point) and
    background."""

    layout: StateLayout
    times: np.ndarray  # (T + 1,) model times of the truth
    truth: np.ndarray  # (T + 1, n)
    observations: xr.Dataset
    background: np.ndarray  # (n,) the truth at the first time plus the background error
    variables: list[str]
    observation_times: int


def make_twin(config: Config, seed: int, duration: float) -> Twin:
    """The twin experiment of ``[simulate]`` from ``seed`` over ``duration`` (in memory).

    ``dacli simulate`` writes it with ``run.seed``; ``dacli train`` draws its training windows
    from it with another seed, so the simulated experiment stays unseen in training. The
    numerics: :mod:`dacli.tuning.twin_data`.
    """
    sim, dt = config.simulate, config.model.dt
    assert sim is not None  # the callers' configs have [simulate] (simulate: _check; train)
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    rng = np.random.default_rng(seed)
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    truth = truth_run(
        dynamics,
        build_ode_solver(config.model),
        seed=seed,
        start=config.window.start,
        spinup=sim.spinup,
        spinup_steps=whole_steps(sim.spinup, dt, "simulate.spinup", minimum=0),
        steps=whole_steps(duration, dt, "simulate.duration"),
        dt=dt,
        dtype=dtype,
    )
    if not np.all(np.isfinite(truth)):
        raise ConfigError(
            ["model.dt: the truth run blew up (non-finite values); use a smaller step"]
        )
    times = config.window.start + dt * np.arange(len(truth))
    stride = whole_steps(sim.obs_interval, dt, "simulate.obs_interval")
    obs_steps = np.arange(stride, len(truth), stride)
    variables = config.observations.variables or list(layout.variables)
    fields = layout.split(truth)
    sample = (
        _gridded_observations
        if config.observations.layout == "gridded"
        else _scattered_observations
    )
    observations = sample(_ObservedTruth(layout, fields, variables, obs_steps, times), config, rng)
    covariance = config.background.covariance
    correlation_sqrt = None  # the background error is correlated like the configured B
    if isinstance(covariance, CorrelatedCovariance):  # the CORRELATED_KINDS
        correlation_sqrt = background_sqrt_operator(
            covariance.kind, 1.0, layout, covariance.length_scale, dtype
        )
    error = background_error(layout.size, rng, correlation_sqrt, dtype)
    return Twin(
        layout,
        times,
        truth,
        observations,
        truth[0] + sim.background_error_std * error,
        variables,
        int(len(obs_steps)),
    )


def twin_observations(config: Config, twin: Twin, source: str) -> ObservationSet:
    """The twin's observations as an :class:`~dacli.io.observation_set.ObservationSet`, read as
    ``dacli assimilate`` reads the file ``dacli simulate`` writes (IODA: its CF points)."""
    layout_read = "gridded" if config.observations.layout == "gridded" else "scattered"
    return observations_in_dataset(
        twin.observations,
        source,
        config.observations.model_copy(
            update={
                "path": source,
                "layout": layout_read,
                "names": {},
                "dims": {},
                "select": {},
                "model_time": False,
            }
        ),
        twin.layout,
        config.time.axis(),
    )


@dataclass(frozen=True)
class _ObservedTruth:
    """What an observation sampler draws from: the truth run and when it is observed."""

    layout: StateLayout
    fields: dict[str, np.ndarray]  # the truth run per variable, (time, *grid)
    variables: list[str]  # the observed variables
    steps: np.ndarray  # model steps observed
    times: np.ndarray  # model time of every step of the truth run


def _gridded_observations(
    truth: _ObservedTruth, config: Config, rng: np.random.Generator
) -> xr.Dataset:
    """Every grid point at each observation time, a random fraction hidden (missing values)."""
    sim, layout, variables, obs_steps = config.simulate, truth.layout, truth.variables, truth.steps
    assert sim is not None  # make_twin's config has [simulate]
    samples = gridded_samples(
        truth.fields,
        variables,
        obs_steps,
        error_std=sim.obs_error_std,
        observed_fraction=sim.observed_fraction,
        missing_fraction=sim.missing_fraction,
        rng=rng,
    )
    data = {}
    for name in variables:
        data[name] = xr.Variable(
            ("time", *layout.dims),
            samples[name],
            {
                "long_name": f"observed {name}",
                "units": layout.units,
                "_FillValue": np.float64(-9999.0),
            },
        )
        data[f"{name}_error"] = xr.Variable(
            (),
            sim.obs_error_std,
            {"long_name": f"observation error standard deviation of {name}", "units": layout.units},
        )
    coords = coordinates(layout, truth.times[obs_steps], config.time.axis())
    return xr.Dataset(
        data,
        coords=coords,
        attrs={"Conventions": "CF-1.11", "title": "dacli synthetic gridded observations"},
    )


def _as_ioda(points: xr.Dataset, config: Config, layout: StateLayout, variables: list[str]):
    """The CF point observations rewritten as an IODA v3 tree (file names from
    ``observations.names``).

    Times go through the model's time axis (``[time]``) to IODA's seconds since 1970; values and
    errors are in the model's units, coordinates in their grid axes' units.
    """
    names = {v: config.observations.names.get(v, v) for v in variables}
    coordinate_names = ioda_coordinates(config.observations, layout)
    return ioda_tree(
        {names[v]: (points[v].values, points[f"{v}_error"].values) for v in variables},
        points["time"].values,
        TimeAxis(config.time.units, config.time.calendar),
        {
            name: points[dim].values
            for name, dim in zip(coordinate_names, layout.dims, strict=False)
        },
        layout.units,
        {"title": "dacli synthetic observations (IODA v3)"},
        {name: axis.units for name, axis in zip(coordinate_names, layout.axes, strict=False)},
    )


def _locations(
    layout: StateLayout, obs_steps: np.ndarray, config: Config, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(model step, position) of every scattered observation, as ``[simulate]`` samples them."""
    sim = config.simulate
    assert sim is not None  # make_twin's config has [simulate]
    try:
        return observation_locations(
            layout,
            obs_steps,
            sampling=sim.sampling,
            per_time=sim.obs_per_time,
            obs_interval=sim.obs_interval,
            tracks_per_time=sim.tracks_per_time,
            repeat_period=sim.repeat_period,
            along_track_spacing=sim.along_track_spacing,
            track_angle=sim.track_angle,
            rng=rng,
        )
    except ValueError as exc:
        raise ConfigError([f"simulate.sampling: {exc}"]) from None


def _scattered_observations(
    truth: _ObservedTruth, config: Config, rng: np.random.Generator
) -> xr.Dataset:
    """A CF point file: off-grid locations, interpolated from the truth (linear / bilinear)."""
    sim, units = config.simulate, config.time.axis()
    assert sim is not None  # make_twin's config has [simulate]
    layout, variables = truth.layout, truth.variables
    steps, positions = _locations(layout, truth.steps, config, rng)
    samples = scattered_samples(
        layout,
        truth.fields,
        variables,
        steps,
        positions,
        error_std=sim.obs_error_std,
        missing_fraction=sim.missing_fraction,
        rng=rng,
    )
    data = {}
    location_names = " ".join(layout.dims)
    for name in variables:
        data[name] = xr.Variable(
            ("obs",),
            samples[name],
            {
                "long_name": f"observed {name}",
                "units": layout.units,
                "coordinates": f"time {location_names}".strip(),
            },
        )
        data[f"{name}_error"] = xr.Variable(
            ("obs",),
            np.full(samples[name].shape, sim.obs_error_std),
            {"long_name": f"observation error standard deviation of {name}", "units": layout.units},
        )
    coords = {
        "time": xr.Variable(
            ("obs",),
            truth.times[steps],
            {"standard_name": "time", **units.attributes(), "axis": "T"},
        )
    }
    for column, axis in enumerate(layout.axes):
        coords[axis.name] = xr.Variable(
            ("obs",),
            positions[:, column],
            {**axis.attributes(), "long_name": f"observation {axis.name}"},
        )
        coords[axis.name].attrs.pop("axis")
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "Conventions": "CF-1.11",
            "featureType": "point",
            "title": "dacli synthetic scattered observations",
        },
    )
