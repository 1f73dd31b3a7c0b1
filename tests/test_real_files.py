"""Input files as other tools write them, read through dacli's one input reader.

Every file here is made the way a user's files are made, never with dacli's writer: xarray
encoding real ``datetime64`` and cftime dates with its own choice of units and calendar
(``proleptic_gregorian`` by default), netCDF4 writing a CF point file by hand, and reanalysis
layouts (descending latitude, 0..360 longitude, a pressure level, ``valid_time`` in hours since
1900, packed int16 in cm). Each case checks the exit code and the key words of the message
(file, variable or key, what was expected and what was found) or the numbers read.

Checks go through ``dacli validate --json`` (no JAX compilation) or the readers themselves;
the three ``dacli assimilate`` runs (Lorenz-96, 3 windows, 80 minimiser steps) build the same
compiled program and are module-scoped fixtures shared by the tests that look at them.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dacli.errors import DATA_ERROR, SUCCESS, USAGE_ERROR

L96 = "configs/lorenz96.toml"
QG = "configs/qg.toml"
FAST = ["--set", "window.count=3", "--set", "method.max_steps=80"]  # one compiled program for every run
CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)  # decode output times to cftime dates (any calendar)
SECOND = datetime.timedelta(seconds=1)


# --- helpers -----------------------------------------------------------------------------------

def sets(*items: str) -> list[str]:
    """``--set`` options for each ``key=value``."""
    return [part for item in items for part in ("--set", item)]


def error_text(stderr: str) -> str:
    return stderr[stderr.index("dacli: error: ") + len("dacli: error: "):].rstrip("\n")


def valid(cli, ws: Path, config: str, *overrides: str) -> dict:
    """``dacli validate --json``, which must succeed; its summary."""
    result = cli(["validate", config, "--json", *sets(*overrides)], ws)
    assert result.exit_code == SUCCESS, result.stderr
    return json.loads(result.stdout)


def refused(cli, ws: Path, config: str, code: int, *overrides: str) -> str:
    """``dacli validate`` that must fail with ``code``, no traceback and nothing on stdout; its error message."""
    result = cli(["validate", config, *sets(*overrides)], ws)
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return error_text(result.stderr)


def load(ws: Path, config: str, *overrides: str):
    import dacli.config

    with contextlib.chdir(ws):
        return dacli.config.load(ws / config, overrides=list(overrides))


def layout_of(config):
    from dacli.build.problem import build_dynamics

    return build_dynamics(config.model).layout()


def read_obs(ws: Path, config: str, *overrides: str):
    from dacli.io.observations import read_observations

    loaded = load(ws, config, *overrides)
    return read_observations(loaded.observations, layout_of(loaded), loaded.time.axis())


def sample(ws: Path, name: str) -> xr.Dataset:
    """A sample file's content with its time numbers as stored (not decoded)."""
    with xr.open_dataset(ws / "sample_data" / name, decode_times=False) as data:
        return data.load()


def with_dates(data: xr.Dataset, dates, dim: str = "time") -> xr.Dataset:
    """``data`` with its time coordinate replaced by real dates (datetime64 or cftime) for xarray to encode."""
    data = data.drop_vars("time")
    return data.assign_coords(time=(dim, np.asarray(dates)))


def shifted_dates(start, days) -> np.ndarray:
    """``start`` (a datetime or cftime date) plus ``days``, rounded to whole seconds."""
    return np.array([start + int(round(float(d) * 86400)) * SECOND for d in np.atleast_1d(days)])


def write(data: xr.Dataset, path: Path, units: str | None = None, calendar: str | None = None, **encoding) -> Path:
    time = {key: value for key, value in (("units", units), ("calendar", calendar)) if value is not None}
    if time:
        time.setdefault("dtype", "float64")
    data.to_netcdf(path, encoding={**({"time": time} if time else {}), **encoding})
    return path


def stored_time(path: Path) -> tuple[np.ndarray, dict]:
    """(time numbers, attributes) as stored in the file: what the other tool wrote."""
    with xr.open_dataset(path, decode_times=False) as data:
        return np.asarray(data["time"].values, float), dict(data["time"].attrs)


def stored_coordinate(path: Path, name: str) -> np.ndarray:
    with xr.open_dataset(path, decode_times=False) as data:
        return np.asarray(data[name].values, float)


@pytest.fixture(scope="module")
def ws(module_workspace) -> Path:
    (module_workspace / "real").mkdir()
    (module_workspace / "out").mkdir()
    return module_workspace


def assimilate(cli, ws: Path, name: str, *overrides: str) -> tuple[dict, Path]:
    output = ws / "out" / f"{name}.nc"
    result = cli(["assimilate", L96, "--json", *FAST, *sets(*overrides, f"output.path={output}")], ws)
    assert result.exit_code == SUCCESS, result.stderr
    return json.loads(result.stdout), output


def analysis(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, decode_times=CFTIME) as data:
        return data.load()


@pytest.fixture(scope="module")
def sample_run(cli, ws):
    return assimilate(cli, ws, "sample")


# --- 1. gridded observations in hours since 2000-01-01 ----------------------------------------

@pytest.fixture(scope="module")
def hours_obs(ws) -> Path:
    obs = sample(ws, "lorenz96_obs.nc")
    dates = pd.Timestamp("2000-01-01") + pd.to_timedelta(np.rint(obs.time.values * 86400).astype("int64"), unit="s")
    path = write(with_dates(obs, dates), ws / "real" / "l96_obs_hours.nc", "hours since 2000-01-01")
    numbers, attrs = stored_time(path)
    assert attrs["units"] == "hours since 2000-01-01"
    np.testing.assert_allclose(numbers, 24 * obs.time.values, rtol=1e-12)  # the file really is in hours
    return path


def test_hours_observations_are_converted_not_taken_24_times_off(cli, ws, hours_obs):
    expected = valid(cli, ws, L96)
    summary = valid(cli, ws, L96, f"observations.path={hours_obs}")
    assert summary["observation_times"] == expected["observation_times"] == \
        "0.05 (2000-01-01 01:12:00) .. 10 (2000-01-11 00:00:00)"
    assert summary["windows"] == expected["windows"] == 50
    converted = read_obs(ws, L96, f"observations.path={hours_obs}")
    original = read_obs(ws, L96)
    np.testing.assert_allclose(converted.times, original.times, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(converted.values, original.values)


def test_xarray_default_time_encoding(cli, ws):
    """xarray left to choose: integer minutes since the first time, proleptic_gregorian."""
    obs = sample(ws, "lorenz96_obs.nc")
    dates = pd.Timestamp("2000-01-01") + pd.to_timedelta(np.rint(obs.time.values * 86400).astype("int64"), unit="s")
    path = ws / "real" / "l96_obs_xarray_default.nc"
    with_dates(obs, dates).to_netcdf(path)
    numbers, attrs = stored_time(path)
    assert attrs == {"units": "minutes since 2000-01-01 01:12:00", "calendar": "proleptic_gregorian"}
    assert numbers[:3].tolist() == [0, 72, 144]
    summary = valid(cli, ws, L96, f"observations.path={path}")
    assert summary["observation_times"] == "0.05 (2000-01-01 01:12:00) .. 10 (2000-01-11 00:00:00)"
    converted = read_obs(ws, L96, f"observations.path={path}")
    np.testing.assert_allclose(converted.times, read_obs(ws, L96).times, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def hours_run(cli, ws, hours_obs):
    return assimilate(cli, ws, "hours", f"observations.path={hours_obs}")


def test_hours_observations_give_the_sample_analysis(sample_run, hours_run):
    (reference, reference_path), (summary, path) = sample_run, hours_run
    assert summary["observations_used"] == reference["observations_used"]
    expected, found = analysis(reference_path), analysis(path)
    np.testing.assert_allclose(found["x_analysis"].values, expected["x_analysis"].values, rtol=0, atol=1e-10)
    assert list(found.time.values) == list(expected.time.values)


# --- 2. time coordinate missing, or without units ----------------------------------------------

def test_gridded_file_without_time_coordinate(cli, ws):
    path = ws / "real" / "l96_no_time.nc"
    sample(ws, "lorenz96_obs.nc").drop_vars("time").to_netcdf(path)
    with xr.open_dataset(path, decode_times=False) as data:
        assert "time" in data.dims and "time" not in data.variables
    message = refused(cli, ws, L96, DATA_ERROR, f"observations.path={path}")
    assert message.startswith(f"observations file {path}: no time coordinate 'time'; the file has: site, x, x_error")
    assert 'dims = { time = "valid_time" }' in message


def test_time_without_units_needs_model_time(cli, ws):
    obs = sample(ws, "lorenz96_obs.nc")
    obs["time"].attrs = {}
    path = ws / "real" / "l96_time_no_units.nc"
    obs.to_netcdf(path)
    assert "units" not in stored_time(path)[1]
    message = refused(cli, ws, L96, DATA_ERROR, f"observations.path={path}")
    assert message.startswith(f"observations file {path}, time coordinate 'time': has no 'units' attribute")
    assert "'days since 2000-01-01 00:00:00'" in message and "model_time = true" in message
    summary = valid(cli, ws, L96, f"observations.path={path}", "observations.model_time=true")
    assert summary["observation_times"] == "0.05 (2000-01-01 01:12:00) .. 10 (2000-01-11 00:00:00)"


# --- 3. background states at other times -------------------------------------------------------

def l96_states(times, states) -> xr.Dataset:
    return xr.Dataset({"x": (("time", "site"), np.asarray(states, float), {"units": "1"})},
                      coords={"time": times, "site": ("site", np.arange(40.0), {"units": "1"})})


@pytest.fixture(scope="module")
def x0(ws) -> np.ndarray:
    return sample(ws, "lorenz96_background.nc")["x"].values[0]


def test_background_without_a_state_at_the_window_start(cli, ws, x0):
    path = ws / "real" / "l96_background_day5.nc"
    l96_states(pd.date_range("2000-01-06", periods=1), [x0]).to_netcdf(path)  # xarray's own units and calendar
    message = refused(cli, ws, L96, DATA_ERROR, f"background.path={path}")
    assert message == (f"background file {path}: holds no state at model time 0 (2000-01-01 00:00:00) (within "
                       "0.025); its times are: 5 (2000-01-06 00:00:00)")


def test_background_at_zero_does_not_serve_a_later_start(cli, ws):
    message = refused(cli, ws, L96, DATA_ERROR, "window.start=0.4")
    path = ws / "sample_data" / "lorenz96_background.nc"
    assert message == (f"background file {path}: holds no state at model time 0.4 (2000-01-01 09:36:00) (within "
                       "0.025); its times are: 0 (2000-01-01 00:00:00)")


def test_background_interpolated_in_time_only_when_asked(cli, ws, x0):
    from dacli.run.inputs import initial_background

    x1 = np.roll(x0, 7) + 0.5
    path = ws / "real" / "l96_background_days01.nc"
    l96_states(pd.date_range("2000-01-01", periods=2, freq="D"), [x0, x1]).to_netcdf(path)
    message = refused(cli, ws, L96, DATA_ERROR, f"background.path={path}", "window.start=0.4")
    assert message.startswith(f"background file {path}: holds no state at model time 0.4 (2000-01-01 09:36:00)")
    assert "its times are: 0 (2000-01-01 00:00:00), 1 (2000-01-02 00:00:00)" in message
    assert message.endswith("set background.interpolate_time = true to interpolate between its states")
    summary = valid(cli, ws, L96, f"background.path={path}", "window.start=0.4", "background.interpolate_time=true")
    assert summary["background_times"] == 2
    config = load(ws, L96, f"background.path={path}", "window.start=0.4", "background.interpolate_time=true")
    state = initial_background(config, layout_of(config), 0.4)
    np.testing.assert_allclose(state, 0.6 * x0 + 0.4 * x1, rtol=0, atol=1e-12)


# --- 4. a reanalysis-like QG state file ----------------------------------------------------------

REANALYSIS = ['background.names={ ssh = "zos" }',
              'background.dims={ lat = "latitude", lon = "longitude", time = "valid_time" }']
PACKING = dict(scale_factor=0.01, add_offset=5.0)  # cm per count, cm


def zos_cm(level, lat, lon):
    """A field in cm that tells north from south, east from west and one level from another."""
    lat, lon = np.meshgrid(np.asarray(lat, float), np.asarray(lon, float), indexing="ij")
    return (float(level) / 500.0) * (20.0 * np.sin(np.radians(2 * lat + 10)) * np.cos(np.radians(3 * lon))
                                     + 0.1 * lat + 8.0)


@pytest.fixture(scope="module")
def qg_grid(ws):
    layout = layout_of(load(ws, QG))
    return layout, layout.axes[0], layout.axes[1]


@pytest.fixture(scope="module")
def reanalysis(ws, qg_grid) -> tuple[Path, np.ndarray, np.ndarray]:
    """A global file: latitude 90 .. -90, longitude 0 .. 360, 3 levels, valid_time in hours since 1900, zos in cm
    packed as int16; with the level-500 field the model grid should receive, in m, before and after packing."""
    _, lat_axis, lon_axis = qg_grid
    dlat, dlon = lat_axis.spacing, lon_axis.spacing
    k = np.arange(-int((90 + lat_axis.values[0]) / dlat), int((90 - lat_axis.values[0]) / dlat) + 1)
    lat = lat_axis.values[0] + k * dlat
    lat[(k >= 0) & (k < len(lat_axis.values))] = lat_axis.values  # exactly the model's latitudes
    lat = lat[::-1]  # north to south
    first = lon_axis.values[0] % 360
    k = np.arange(-int(first / dlon), int((360 - first) / dlon) + 1)
    lon = first + k * dlon
    lon = lon[(lon >= 0) & (lon < 360)]
    assert lat[0] > 89.8 and lat[-1] < -89.8 and lon[0] < 0.3 and lon[-1] > 359.7
    levels = np.array([1000.0, 500.0, 250.0])
    field = np.stack([zos_cm(level, lat, lon) for level in levels])
    field[:, lat < -70, :] = np.nan  # land (Antarctica) as _FillValue, far from the model's box
    data = np.stack([field, field + 1.5])  # two valid times
    dataset = xr.Dataset(
        {"zos": (("valid_time", "level", "latitude", "longitude"), data,
                 {"units": "cm", "standard_name": "sea_surface_height_above_geoid"})},
        coords={"valid_time": pd.to_datetime(["2020-01-01 00:00", "2020-01-01 06:00"]),
                "level": ("level", levels, {"units": "hPa", "long_name": "pressure level"}),
                "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude"})})
    path = ws / "real" / "reanalysis_zos.nc"
    dataset.to_netcdf(path, encoding={
        "valid_time": {"units": "hours since 1900-01-01", "calendar": "gregorian", "dtype": "int32"},
        "zos": {"dtype": "int16", "_FillValue": -32767, **PACKING}})
    with netCDF4.Dataset(path) as raw:
        assert raw["zos"].dtype == np.int16 and raw["valid_time"].units == "hours since 1900-01-01"
        assert raw["valid_time"][:].tolist() == [1051896, 1051902]
    # what the model grid should receive at level 500, in m, before and after int16 packing
    model = np.stack([zos_cm(500.0, lat_axis.values, lon_axis.values % 360) + extra for extra in (0.0, 1.5)])
    packed = np.round((model - PACKING["add_offset"]) / PACKING["scale_factor"]) * PACKING["scale_factor"] \
        + PACKING["add_offset"]
    return path, model / 100.0, packed / 100.0


def test_reanalysis_background_lands_on_the_model_grid(cli, ws, qg_grid, reanalysis):
    from dacli.io.inputs import FileMapping
    from dacli.io.states import read_states
    from dacli.io.times import TimeAxis

    layout, _, _ = qg_grid
    path, model, packed = reanalysis
    mapping = FileMapping(names={"ssh": "zos"}, dims={"lat": "latitude", "lon": "longitude", "time": "valid_time"},
                          select={"level": 500})
    times, states = read_states(path, layout, "background", TimeAxis("days since 2020-01-01 00:00:00"), mapping)
    np.testing.assert_allclose(times, [0.0, 0.25], rtol=0, atol=1e-12)
    fields = states.reshape(2, *layout.shape)
    np.testing.assert_allclose(fields, packed, rtol=0, atol=1e-12)  # exactly the unpacked values, in m
    np.testing.assert_allclose(fields, model, rtol=0, atol=0.5 * PACKING["scale_factor"] / 100 + 1e-12)
    summary = valid(cli, ws, QG, f"background.path={path}", *REANALYSIS, "background.select={ level = 500 }")
    assert summary["background_times"] == 2


def test_reanalysis_level_must_be_selected(cli, ws, reanalysis):
    path = reanalysis[0]
    message = refused(cli, ws, QG, DATA_ERROR, f"background.path={path}", *REANALYSIS)
    assert message.startswith(f"background file {path}: variable 'ssh' has dims ('time', 'level', 'lat', 'lon'); "
                              "expected ('time', 'lat', 'lon')")
    assert "select one value along ['level'] with select = { level = ... }" in message
    message = refused(cli, ws, QG, DATA_ERROR, f"background.path={path}", *REANALYSIS,
                      "background.select={ level = 850 }")
    assert message == (f"background file {path}: select = {{ level = 850 }}: no 'level' value within 1e-06 of 850; "
                       "the file has: 1000.0, 500.0, 250.0")


@pytest.fixture(scope="module")
def reanalysis_north(ws, qg_grid, reanalysis) -> Path:
    """The reanalysis file north of 35N only: the model's southern rows are missing."""
    with xr.open_dataset(reanalysis[0], decode_times=False, mask_and_scale=False) as data:
        north = data.sel(latitude=slice(90, 35)).load()  # keeps the packing as it is
    assert north.latitude.values.min() > qg_grid[1].values[0]
    return write(north, ws / "real" / "reanalysis_north.nc")


def test_reanalysis_missing_model_grid_points(cli, ws, qg_grid, reanalysis_north):
    _, lat_axis, _ = qg_grid
    path = reanalysis_north
    found = stored_coordinate(path, "latitude")
    message = refused(cli, ws, QG, DATA_ERROR, f"background.path={path}", *REANALYSIS,
                      "background.select={ level = 500 }")
    assert message.startswith(f"background file {path}: coordinate 'latitude' (model axis 'lat') runs {found[0]:g} .. {found[-1]:g} "
                              f"({len(found)} values); the model grid's 'lat' runs {lat_axis.values[0]:g} .. "
                              f"{lat_axis.values[-1]:g} (64 values, spacing {lat_axis.spacing:g})")
    missing = int(np.sum(lat_axis.values < found[-1] - 1e-3 * lat_axis.spacing))
    assert 0 < missing < 64
    assert f" and {missing} of its points (e.g. {lat_axis.values[0]:g}) are not in the file" in message


# --- 5. scattered observations from the whole globe for the regional QG box --------------------

@pytest.fixture(scope="module")
def global_points(ws, qg_grid):
    """A CF point file written with netCDF4: stations over the globe, times in seconds since 1970."""
    _, lat_axis, lon_axis = qg_grid
    lat_min, lat_max = lat_axis.values[0], lat_axis.values[-1]
    lon_min, lon_max = lon_axis.values[0] % 360, lon_axis.values[-1] % 360
    rng = np.random.default_rng(5)
    n_globe, n_box = 3000, 400
    lat = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, n_globe))),
                          rng.uniform(lat_min + 0.01, lat_max - 0.01, n_box)])
    lon = np.concatenate([rng.uniform(0, 360, n_globe), rng.uniform(lon_min + 0.01, lon_max - 0.01, n_box)])
    lon[n_globe + n_box // 2:] -= 360.0  # half the box's points given in -180..180, the others in 0..360
    # one period of the box's doubly periodic dynamics away, or just beyond an edge: elsewhere on the Earth
    lat_period, lon_period = 64 * lat_axis.spacing, 64 * lon_axis.spacing
    middle_lat, middle_lon = 0.5 * (lat_min + lat_max), 0.5 * (lon_min + lon_max)
    bait_lat = [middle_lat + lat_period, middle_lat - lat_period, middle_lat, middle_lat,
                lat_max + 0.5 * lat_axis.spacing, lat_min - 0.5 * lat_axis.spacing, middle_lat, middle_lat]
    bait_lon = [middle_lon, middle_lon, middle_lon + lon_period, middle_lon - lon_period - 360.0,
                middle_lon, middle_lon, lon_max + 0.5 * lon_axis.spacing, lon_min - 0.5 * lon_axis.spacing - 360]
    lat, lon = np.concatenate([lat, bait_lat]), np.concatenate([lon, bait_lon])
    inside = (lat >= lat_min) & (lat <= lat_max) & (lon % 360 >= lon_min) & (lon % 360 <= lon_max)
    assert inside[:n_globe].sum() >= 1 and inside[n_globe:n_globe + n_box].all() and not inside[-8:].any()
    n = len(lat)
    model_times = 0.25 * rng.integers(1, 9, n)  # on the model's 6-hour steps in the first 2-day window
    epoch = 1577836800.0  # 2020-01-01 00:00:00 in seconds since 1970-01-01
    path = ws / "real" / "qg_global_points.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions, nc.featureType = "CF-1.11", "point"
        nc.createDimension("obs", n)
        nc.createDimension("name_strlen", 8)
        station = nc.createVariable("station", "S1", ("obs", "name_strlen"))
        station.cf_role, station.long_name = "timeseries_id", "station identifier"
        station[:] = netCDF4.stringtochar(np.array([f"ST{i:06d}" for i in range(n)], "S8"))
        for name, values, attrs in (
                ("time", epoch + 86400.0 * model_times, {"standard_name": "time", "calendar": "standard",
                                                         "units": "seconds since 1970-01-01T00:00:00Z"}),
                ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
                ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
                ("ssh", 0.1 * np.sin(np.radians(lat)) + 0.05 * np.cos(np.radians(lon)),
                 {"standard_name": "sea_surface_height_above_geoid", "units": "m", "coordinates": "time lat lon"}),
                ("ssh_error", np.full(n, 0.02), {"units": "m"})):
            variable = nc.createVariable(name, "f8", ("obs",))
            variable.setncatts(attrs)
            variable[:] = values
    return path, inside, model_times


def test_global_points_outside_the_box_are_dropped_and_counted(cli, ws, qg_grid, global_points):
    _, lat_axis, lon_axis = qg_grid
    path, inside, model_times = global_points
    summary = valid(cli, ws, QG, f"observations.path={path}")
    assert summary["observations"] == int(inside.sum())
    assert summary["observations_outside_domain"] == int((~inside).sum())
    assert model_times[inside].min() == 0.25 and model_times[inside].max() == 2.0
    assert summary["observation_times"] == "0.25 (2020-01-01 06:00:00) .. 2 (2020-01-03 00:00:00)"
    assert summary["windows"] == 1
    kept = read_obs(ws, QG, f"observations.path={path}")
    lat, lon = kept.location[:, 0], kept.location[:, 1] % 360
    assert np.all((lat >= lat_axis.values[0]) & (lat <= lat_axis.values[-1]))  # none wrapped in
    assert np.all((lon >= lon_axis.values[0] % 360) & (lon <= lon_axis.values[-1] % 360))
    np.testing.assert_allclose(np.sort(kept.times), np.sort(model_times[inside]), rtol=0, atol=1e-9)


# --- 6. physical units -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def geopotential(ws) -> Path:
    """The QG sample observations as geopotential (m2 s-2) named 'z': another quantity."""
    obs = sample(ws, "qg_obs.nc").rename({"ssh": "z", "ssh_error": "z_error"})
    obs["z"] = obs["z"] * 9.80665
    obs["z"].attrs = {"standard_name": "geopotential", "units": "m2 s-2"}
    obs["z_error"].attrs = {"units": "m2 s-2"}
    return write(obs, ws / "real" / "qg_geopotential.nc")


def test_geopotential_is_not_a_height(cli, ws, geopotential):
    message = refused(cli, ws, QG, DATA_ERROR, f"observations.path={geopotential}", 'observations.names={ ssh = "z" }')
    assert message.startswith(f"observations file {geopotential}, variable 'z' (model variable 'ssh'): units 'm2 s-2' cannot be "
                              "converted to the model variable's units 'm' (a different physical quantity)")


def test_units_message_names_the_files_variable(cli, ws, geopotential):
    message = refused(cli, ws, QG, DATA_ERROR, f"observations.path={geopotential}", 'observations.names={ ssh = "z" }')
    assert "'z'" in message, message


def test_grid_message_names_the_files_coordinate(cli, ws, reanalysis_north):
    message = refused(cli, ws, QG, DATA_ERROR, f"background.path={reanalysis_north}", *REANALYSIS,
                      "background.select={ level = 500 }")
    assert "coordinate 'latitude'" in message, message


def test_observations_in_cm_are_converted(cli, ws):
    obs = sample(ws, "qg_obs.nc")
    in_cm = obs.copy()
    in_cm["ssh"] = obs["ssh"] * 100.0
    in_cm["ssh"].attrs = {**obs["ssh"].attrs, "units": "cm"}
    in_cm["ssh_error"] = obs["ssh_error"] * 100.0
    in_cm["ssh_error"].attrs = {**obs["ssh_error"].attrs, "units": "cm"}
    path = write(in_cm, ws / "real" / "qg_obs_cm.nc")
    converted = read_obs(ws, QG, f"observations.path={path}")
    original = read_obs(ws, QG)
    np.testing.assert_allclose(converted.values, original.values, rtol=1e-12, atol=0)
    np.testing.assert_allclose(converted.std, original.std, rtol=1e-12, atol=0)
    np.testing.assert_allclose(original.std, 0.02, rtol=1e-12)
    assert valid(cli, ws, QG, f"observations.path={path}")["observations"] == len(original)


# --- 7. the [time] section in the config ---------------------------------------------------------

def test_output_time_units_has_moved(cli, ws):
    message = refused(cli, ws, L96, USAGE_ERROR, 'output.time_units="fortnights since lunch"')
    assert "output.time_units has moved" in message
    assert "the model's time axis is the [time] section now (units = 'fortnights since lunch'" in message


def test_time_units_must_be_cf(cli, ws):
    message = refused(cli, ws, L96, USAGE_ERROR, 'time.units="fortnights since lunch"')
    assert "'fortnights since lunch' (calendar 'standard') cannot be decoded by cftime" in message
    message = refused(cli, ws, L96, USAGE_ERROR, 'time.units="days"')
    assert "'days' is not a CF time unit of the form '<unit> since <date>'" in message


def test_unknown_calendar(cli, ws):
    message = refused(cli, ws, L96, USAGE_ERROR, 'time.calendar="lunar"')
    assert "unknown calendar 'lunar'; CF calendars are 360_day, 365_day" in message


@pytest.mark.parametrize(("item", "key"), [
    ('time.units="fortnights since lunch"', "time.units"),
    ('time.calendar="lunar"', "time.calendar"),
    ('output.time_units="fortnights since lunch"', "output.time_units"),
])
def test_time_problems_name_the_key_and_its_origin(cli, ws, item, key):
    message = refused(cli, ws, L96, USAGE_ERROR, item)
    problem = message.splitlines()[1]
    assert problem.startswith(f"  - --set {item}: {key}: "), problem


# --- 8. a CF point file in seconds since 1970, julian calendar -----------------------------------

JULIAN_START = cftime.DatetimeJulian(2015, 1, 1)


@pytest.fixture(scope="module")
def julian_points(ws) -> tuple[Path, np.ndarray]:
    """The sample Lorenz-96 observations as a CF point file, dated from 2015-01-01 in the julian calendar."""
    obs = sample(ws, "lorenz96_obs.nc")
    days = np.repeat(obs.time.values, 40)
    points = xr.Dataset(
        {"x": ("obs", obs["x"].values.ravel(), obs["x"].attrs),
         "x_error": ("obs", np.full(days.size, float(obs["x_error"])), obs["x_error"].attrs)},
        coords={"time": ("obs", shifted_dates(JULIAN_START, days)),
                "site": ("obs", np.tile(obs.site.values, obs.sizes["time"]), {"units": "1"})},
        attrs={"Conventions": "CF-1.11", "featureType": "point"})
    path = write(points, ws / "real" / "l96_points_julian.nc", "seconds since 1970-01-01", "julian")
    numbers, attrs = stored_time(path)
    assert attrs == {"units": "seconds since 1970-01-01", "calendar": "julian"}
    assert numbers.min() > 1.4e9
    return path, days


def test_julian_seconds_are_converted_by_instant(cli, ws, julian_points):
    path, days = julian_points
    scattered = (f"observations.path={path}", 'observations.layout="scattered"')
    summary = valid(cli, ws, L96, *scattered)
    # julian 2015-01-01 is standard 2015-01-14, 5492 days after 2000-01-01
    assert summary["observation_times"] == "5492.05 (2015-01-14 01:12:00) .. 5502 (2015-01-24 00:00:00)"
    assert summary["observations"] == 8000 and summary["valid_observations"] == 7817
    assert summary["windows"] == int(np.ceil((5502.0 - 0.2) / 0.2 - 1e-9)) + 1  # from window.start = 0: counted only
    times = read_obs(ws, L96, *scattered).times
    np.testing.assert_allclose(times, 5492.0 + days, rtol=0, atol=1e-8)
    julian = read_obs(ws, L96, *scattered, 'time.calendar="julian"').times
    np.testing.assert_allclose(julian, 5479.0 + days, rtol=0, atol=1e-8)


def test_seconds_taken_as_model_time_exceed_the_window_bound(cli, ws, julian_points):
    path, _ = julian_points
    last = float(stored_time(path)[0].max())
    count = int(np.ceil((last - 0.2) / 0.2 - 1e-9)) + 1
    message = refused(cli, ws, L96, USAGE_ERROR, f"observations.path={path}", 'observations.layout="scattered"',
                      "observations.model_time=true")
    assert f"the last observation is at model time {last:.6g}" in message
    assert f"would number {count:.4g}, more than 1,000,000" in message


@pytest.fixture(scope="module")
def julian_run(cli, ws, julian_points, x0):
    path, _ = julian_points
    background = write(l96_states([JULIAN_START], [x0]), ws / "real" / "l96_background_julian.nc",
                       "hours since 2000-01-01", "julian")
    truth = sample(ws, "lorenz96_truth.nc")
    truth = write(with_dates(truth, shifted_dates(JULIAN_START, truth.time.values)),
                  ws / "real" / "l96_truth_julian.nc", "days since 2015-01-01", "julian")
    return assimilate(cli, ws, "julian", f"observations.path={path}", 'observations.layout="scattered"',
                      f"background.path={background}", f"truth.path={truth}", 'time.calendar="julian"',
                      "window.start=5479")


def test_julian_run_writes_julian_dates(sample_run, julian_run):
    (reference, reference_path), (summary, path) = sample_run, julian_run
    assert summary["observations_used"] == reference["observations_used"]
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw["time"].attrs["calendar"] == "julian"
        assert raw["time"].attrs["units"] == "days since 2000-01-01 00:00:00"
    found, expected = analysis(path), analysis(reference_path)
    assert list(found.time.values) == list(shifted_dates(JULIAN_START, 0.05 * np.arange(13)))
    assert list(found.window_start.values) == list(shifted_dates(JULIAN_START, [0.0, 0.2, 0.4]))
    # Lorenz-96 is autonomous: the same observations 15 years later give the same analysis
    np.testing.assert_allclose(found["x_analysis"].values, expected["x_analysis"].values, rtol=0, atol=1e-10)
    assert summary["analysis_rmse"] == pytest.approx(reference["analysis_rmse"], abs=1e-10)


@pytest.fixture(scope="module")
def points_with_missing_time(ws) -> tuple[Path, int]:
    """The Lorenz-63 sample as a CF point file written with netCDF4: int32 seconds since 1970, one time missing."""
    obs = sample(ws, "lorenz63_obs.nc")
    seconds = np.rint(946684800 + 86400 * obs.time.values).astype("int32")  # 2000-01-01 is 946684800 s
    missing = 5
    path = ws / "real" / "l63_points_missing_time.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.featureType = "point"
        nc.createDimension("obs", obs.sizes["obs"])
        time = nc.createVariable("time", "i4", ("obs",), fill_value=-2147483647)
        time.setncatts({"standard_name": "time", "units": "seconds since 1970-01-01 00:00:00", "calendar": "standard"})
        time[:] = np.ma.masked_array(seconds, mask=np.arange(seconds.size) == missing)
        for name in ("x", "x_error", "z", "z_error"):
            variable = nc.createVariable(name, "f8", ("obs",))
            variable.units = "1"
            variable[:] = obs[name].values
    return path, missing


def test_point_file_with_a_missing_time(cli, ws, points_with_missing_time):
    path, _ = points_with_missing_time
    result = cli(["validate", "configs/lorenz63.toml", "--json", *sets(f"observations.path={path}")], ws)
    assert result.exit_code in (SUCCESS, DATA_ERROR), result.stderr
    if result.exit_code == DATA_ERROR:
        message = error_text(result.stderr)
        assert str(path) in message and "time" in message, message
    else:
        summary = json.loads(result.stdout)
        assert summary["observation_times"] == "0.1 (2000-01-01 02:24:00) .. 10 (2000-01-11 00:00:00)"
        assert summary["observations_in_windows"] == 200 - 2  # x and z at the missing time are not used


# --- 9. repeated observations --------------------------------------------------------------------

@pytest.fixture(scope="module")
def repeated_row(ws) -> tuple[Path, int]:
    obs = sample(ws, "lorenz96_obs.nc")
    rows = [0, 1, 2, 3, 3, *range(4, obs.sizes["time"])]  # row 3 concatenated twice
    path = write(obs.isel(time=rows), ws / "real" / "l96_repeated_row.nc")
    return path, int(np.isfinite(obs["x"].values[3]).sum())


def test_repeated_row_first_kept(cli, ws, repeated_row):
    path, repeats = repeated_row
    assert 30 < repeats <= 40
    result = cli(["validate", L96, "--json", *sets(f"observations.path={path}")], ws)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    assert summary["observations_duplicate"] == repeats
    assert summary["observations"] == 8040 - repeats
    assert summary["valid_observations"] == 7817
    assert f"observations file {path}: {repeats} observation(s) repeat an earlier one's time, location and " \
           "variable (first: x at time 0.2, location (" in result.stderr
    assert "WARNING" in result.stderr


def test_repeated_row_refused(cli, ws, repeated_row):
    path, repeats = repeated_row
    message = refused(cli, ws, L96, DATA_ERROR, f"observations.path={path}", 'observations.duplicates="refuse"')
    assert message.startswith(f"observations file {path}: {repeats} observation(s) repeat an earlier one's time, "
                              "location and variable (first: x at time 0.2, location (")
    assert "observations.duplicates = 'refuse'" in message


def test_repeated_row_independent(cli, ws, repeated_row):
    path, repeats = repeated_row
    summary = valid(cli, ws, L96, f"observations.path={path}", 'observations.duplicates="independent"')
    assert summary["observations"] == 8040
    assert summary["valid_observations"] == 7817 + repeats
    assert summary["observations_duplicate"] == 0


# --- 10. model calendars other than standard ----------------------------------------------------

def calendar_files(ws: Path, calendar: str, start) -> dict[str, Path]:
    """The Lorenz-96 sample (observations, background, truth) dated from ``start`` in ``calendar``, by xarray."""
    paths = {}
    for kind in ("obs", "background", "truth"):
        data = sample(ws, f"lorenz96_{kind}.nc")
        data = with_dates(data, shifted_dates(cftime.datetime(*start, calendar=calendar), data.time.values))
        paths[kind] = write(data, ws / "real" / f"l96_{kind}_{calendar}.nc", "hours since 2000-01-01", calendar)
        assert stored_time(paths[kind])[1]["calendar"] == calendar
    return paths


@pytest.mark.parametrize(("calendar", "offset", "last"), [
    ("noleap", 55, "65 (2000-03-07 00:00:00)"),  # 2000-02-25 + 10 days, no 29 February
    ("360_day", 54, "64 (2000-03-05 00:00:00)"),  # 2000-02-25 + 10 days through 30 February
])
def test_model_calendar_matches_the_files(cli, ws, calendar, offset, last):
    paths = calendar_files(ws, calendar, (2000, 2, 25))
    files = (f"observations.path={paths['obs']}", f"background.path={paths['background']}",
             f"truth.path={paths['truth']}", f"window.start={offset}")
    message = refused(cli, ws, L96, DATA_ERROR, *files)
    assert message.startswith(f"observations file {paths['obs']}, time coordinate 'time': is in the '{calendar}' "
                              "calendar, the model's time axis in the 'standard' calendar ([time] calendar)")
    assert f"Set [time] calendar = '{calendar}'" in message
    summary = valid(cli, ws, L96, *files, f'time.calendar="{calendar}"')
    assert summary["time_axis"] == f"days since 2000-01-01 00:00:00 ({calendar})"
    assert summary["observation_times"] == f"{offset}.05 (2000-02-25 01:12:00) .. {last}"
    assert summary["windows"] == 50 and summary["background_times"] == 1 and summary["truth_times"] == 201
    times = read_obs(ws, L96, *files, f'time.calendar="{calendar}"').times
    np.testing.assert_allclose(times, offset + sample(ws, "lorenz96_obs.nc").time.values.repeat(40), rtol=0,
                               atol=1e-9)


# --- 11. the analysis file's times -------------------------------------------------------------

def test_analysis_times_decode_to_the_model_dates(sample_run):
    _, path = sample_run
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw["time"].attrs["units"] == "days since 2000-01-01 00:00:00"
        assert raw["time"].attrs["calendar"] == "standard"
    data = analysis(path)
    start = cftime.DatetimeGregorian(2000, 1, 1)
    assert list(data.time.values) == [start + k * 72 * 60 * SECOND for k in range(13)]
    assert list(data.window_start.values) == [start + k * 288 * 60 * SECOND for k in range(3)]
    assert list(data.window_end.values) == [start + (k + 1) * 288 * 60 * SECOND for k in range(3)]
