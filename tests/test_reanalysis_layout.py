"""A global reanalysis-like file serves a regional model through the config alone.

The same twin experiment is assimilated twice: once from dacli's own files, once from the same
numbers rewritten the way reanalyses and data centres lay them out — global grid with
descending latitude and 0..360 longitude, an extra pressure-level dimension, packed int16 values
in other units (degrees Celsius, centimetres), ``valid_time`` in hours since 1900, other variable
names, CF point observations in seconds since 1970. With ``names``, ``dims`` and ``select`` in
the config (nothing else changed), the analysis must be the same, on the model's own (regional,
ascending) coordinates and at the same dates. Two models: the regional QG box and a user plug-in
on a one-degree latitude-longitude box (tests/plugins/regional_models.py).
"""

from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

import dacli.config

PLUGINS = Path(__file__).resolve().parent / "plugins"
LEVELS = np.array([1000.0, 850.0, 500.0])
LEVEL = 850.0  # the level holding the model's field; the others hold something else
HOURS_1900 = "hours since 1900-01-01 00:00:00"
CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)

COMMON = """
[time]
units = "days since 2020-01-01 00:00:00"
calendar = "standard"
[window]
length = 1.0
[observations]
path = "{obs}"
layout = "{layout}"
{obs_mapping}
[background]
path = "{background}"
{state_mapping}
[background.covariance]
kind = "diagonal"
std = {background_std}
[output]
path = "{output}"
[truth]
path = "{truth}"
{state_mapping}
"""

PLUGIN = """
[model]
name = "regional_models:make_regional"
parameters = { ny = 12, nx = 16, south = 35.0, west = -20.0 }
ode_solver = "RK4"
dt = 0.25
[method]
max_steps = 60
[simulate]
spinup = 2.0
duration = 3.0
obs_interval = 0.25
obs_error_std = 0.5
observed_fraction = 0.3
background_error_std = 1.5
"""

QG = """
[model]
name = "qg"
parameters = { nx = 16, ny = 16, length_x = 1.28e6, deformation_radius = 40e3, coordinates = "latlon", center_lat = 38.0, center_lon = -60.0 }
ode_solver = "RK4"
dt = 0.25
[method]
formulation = "incremental"
incremental = { outer_loops = 1, inner_steps = 20 }
[simulate]
spinup = 20.0
duration = 2.0
obs_interval = 0.25
obs_error_std = 0.02
obs_per_time = 40
background_error_std = 0.05
"""


def write_config(folder: Path, model: str, layout: str, std: float, files: dict, mapped: bool) -> Path:
    obs_mapping = state_mapping = ""
    if mapped:
        names = files["names"]
        state_mapping = (f'names = {names}\ndims = {{ lat = "latitude", lon = "longitude", time = "valid_time" }}\n'
                         f"select = {{ level = {LEVEL} }}")
        obs_mapping = state_mapping if layout == "gridded" else \
            f'names = {names}\ndims = {{ lat = "latitude", lon = "longitude", obs = "station_obs" }}'
    text = model + COMMON.format(layout=layout, obs_mapping=obs_mapping, state_mapping=state_mapping,
                                 background_std=std, **{k: v for k, v in files.items() if k != "names"})
    path = folder / f"{'mapped' if mapped else 'native'}.toml"
    path.write_text(text)
    return path


def global_axis(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """The model axis' regular points extended over [low, high] (a global grid holding the model's points)."""
    spacing = values[1] - values[0]
    before = int(np.floor((values[0] - low) / spacing))
    after = int(np.floor((high - values[-1]) / spacing))
    return values[0] + spacing * np.arange(-before, len(values) + after)


def hours_since_1900(model_days: np.ndarray) -> np.ndarray:
    offset = cftime.date2num(cftime.DatetimeGregorian(2020, 1, 1), HOURS_1900, "standard")
    return offset + 24.0 * np.asarray(model_days)


def quantised(values: np.ndarray, scale: float) -> np.ndarray:
    """The values xarray reads back from int16 packed with ``scale`` (and add_offset 0)."""
    return np.round(np.asarray(values) / scale) * scale


def packed(scale: float) -> dict:
    return {"dtype": "int16", "scale_factor": scale, "add_offset": 0.0, "_FillValue": np.int16(-32767)}


def to_reanalysis_grid(dataset: xr.Dataset, variable: str, name: str, units: str, factor: float, offset: float,
                       scale: float, lat: np.ndarray, lon: np.ndarray) -> tuple[xr.Dataset, np.ndarray]:
    """A (time, lat, lon) field of ``dataset`` on the global grid (lat descending, lon 0..360) at LEVEL.

    Returns the reanalysis-like dataset and the model-unit values that file decodes to.
    """
    field = dataset[variable].transpose("time", "lat", "lon").values
    in_file_units = quantised(field * factor + offset, scale)
    model_values = (in_file_units - offset) / factor
    latitudes = global_axis(lat, -90.0, 90.0)[::-1]
    longitudes_model = global_axis(lon, lon[0] - 180.0, lon[0] + 179.5)  # 360 distinct longitudes
    longitudes = np.mod(longitudes_model, 360.0)
    order = np.argsort(longitudes)
    grid = np.full((len(field), len(LEVELS), len(latitudes), len(longitudes)), np.nan)
    rows = [int(np.argmin(np.abs(latitudes - value))) for value in lat]
    columns = [int(np.argmin(np.abs(np.mod(longitudes - value + 180.0, 360.0) - 180.0))) for value in lon]
    level = int(np.flatnonzero(LEVELS == LEVEL)[0])
    for k in range(len(LEVELS)):  # other levels: another field, so a wrong selection cannot pass
        grid[:, k][:, np.ix_(rows, columns)[0], np.ix_(rows, columns)[1]] = in_file_units + (0.0 if k == level else 7.0)
    grid = grid[..., order]
    times = hours_since_1900(dataset["time"].values)
    out = xr.Dataset(
        {name: (("valid_time", "level", "latitude", "longitude"), grid, {"units": units})},
        coords={"valid_time": ("valid_time", times, {"units": HOURS_1900, "calendar": "gregorian",
                                                     "standard_name": "time"}),
                "level": ("level", LEVELS, {"units": "hPa", "long_name": "pressure level"}),
                "latitude": ("latitude", latitudes, {"units": "degrees_north"}),
                "longitude": ("longitude", longitudes[order], {"units": "degrees_east"})},
        attrs={"Conventions": "CF-1.6", "source": "reanalysis-like test file"})
    out[name].encoding.update(packed(scale))
    return out, model_values


def twin_files(folder: Path, model: str, layout: str, std: float) -> dict:
    """Simulate the twin in dacli's layout, then write both layouts from the same (quantised) numbers."""
    from dacli.build.problem import build_dynamics
    from dacli.run.simulate import simulate

    native = {kind: str(folder / f"{kind}.nc") for kind in ("obs", "background", "truth")}
    native["output"] = str(folder / "native_analysis.nc")
    config = dacli.config.load(write_config(folder, model, layout, std, {**native, "names": ""}, False))
    simulate(config, overwrite=True)
    layout_ = build_dynamics(config.model).layout()
    lat, lon = (np.asarray(axis.values) for axis in layout_.axes)
    variable = layout_.variables[0]
    file_name, units, factor, offset, scale = (
        ("zos", "cm", 100.0, 0.0, 0.01) if variable == "ssh" else ("air", "degC", 1.0, -273.15, 0.001))
    mapped = {"names": f'{{ {variable} = "{file_name}" }}', "output": str(folder / "mapped_analysis.nc")}
    for kind in ("background", "truth"):
        with xr.open_dataset(native[kind], decode_times=False) as dataset:
            dataset = dataset.load()
        reanalysis, model_values = to_reanalysis_grid(dataset, variable, file_name, units, factor, offset, scale,
                                                      lat, lon)
        mapped[kind] = str(folder / f"reanalysis_{kind}.nc")
        reanalysis.to_netcdf(mapped[kind])
        dataset[variable].values = model_values.reshape(dataset[variable].shape)  # what the mapped file holds
        dataset.to_netcdf(native[kind] + ".tmp")
        Path(native[kind] + ".tmp").replace(native[kind])
    with xr.open_dataset(native["obs"], decode_times=False) as observations:
        observations = observations.load()
    mapped["obs"] = str(folder / "reanalysis_obs.nc")
    if layout == "gridded":
        reanalysis, model_values = to_reanalysis_grid(observations, variable, file_name, units, factor, offset,
                                                      scale, lat, lon)
        reanalysis[f"{file_name}_error"] = xr.Variable((), float(observations[f"{variable}_error"]) * factor,
                                                       {"units": units})
        observations[variable].values = model_values
    else:  # a data centre's CF point file: seconds since 1970, longitudes 0..360, centimetres
        values = quantised(observations[variable].values * factor, scale)
        seconds = cftime.date2num(cftime.num2date(observations["time"].values, "days since 2020-01-01",
                                                  "standard"), "seconds since 1970-01-01 00:00:00", "standard")
        count = observations.sizes["obs"]
        reanalysis = xr.Dataset(
            {file_name: ("station_obs", values, {"units": units, "coordinates": "time latitude longitude"}),
             f"{file_name}_error": ("station_obs", observations[f"{variable}_error"].values * factor,
                                    {"units": units}),
             "station": ("station_obs", np.array([f"S{k:05d}" for k in range(count)]), {"cf_role": "timeseries_id"})},
            coords={"time": ("station_obs", seconds, {"units": "seconds since 1970-01-01 00:00:00",
                                                      "standard_name": "time"}),
                    "latitude": ("station_obs", observations["lat"].values, {"units": "degrees_north"}),
                    "longitude": ("station_obs", np.mod(observations["lon"].values, 360.0),
                                  {"units": "degrees_east"})},
            attrs={"Conventions": "CF-1.11", "featureType": "point"})
        observations[variable].values = values / factor
    reanalysis.to_netcdf(mapped["obs"])
    observations.to_netcdf(native["obs"] + ".tmp")
    Path(native["obs"] + ".tmp").replace(native["obs"])
    return {"native": write_config(folder, model, layout, std, {**native, "names": ""}, False),
            "mapped": write_config(folder, model, layout, std, mapped, True), "variable": variable}


@pytest.mark.parametrize("model, layout, std", [(PLUGIN, "gridded", 1.5), (QG, "scattered", 0.05)],
                         ids=["plugin-regional-gridded", "qg-regional-points"])
def test_reanalysis_layout_gives_the_same_analysis(tmp_path, monkeypatch, model, layout, std):
    from dacli.build.problem import build_dynamics
    from dacli.run.assimilate import assimilate

    monkeypatch.syspath_prepend(str(PLUGINS))
    files = twin_files(tmp_path, model, layout, std)
    native = assimilate(dacli.config.load(files["native"]))
    mapped = assimilate(dacli.config.load(files["mapped"]))
    assert mapped.summary.observations_used == native.summary.observations_used > 0
    variable = files["variable"]
    with xr.open_dataset(native.output, decode_times=CFTIME) as expected, \
            xr.open_dataset(mapped.output, decode_times=CFTIME) as found:
        np.testing.assert_allclose(found[f"{variable}_analysis"].values, expected[f"{variable}_analysis"].values,
                                   rtol=0, atol=1e-8)
        layout_ = build_dynamics(dacli.config.load(files["mapped"]).model).layout()
        for axis in layout_.axes:  # the model's own coordinates: regional, ascending, model longitudes
            np.testing.assert_array_equal(found[axis.name].values, axis.values)
        assert list(found["time"].values) == list(expected["time"].values)
        assert found["time"].encoding["calendar"] == "standard"
        assert found["time"].encoding["units"] == "days since 2020-01-01 00:00:00"
        first, last = found["time"].values[0], found["time"].values[-1]
        assert first == cftime.DatetimeGregorian(2020, 1, 1)  # window.start = 0
        assert last == cftime.DatetimeGregorian(2020, 1, 1) + (len(found["time"]) - 1) * (
            found["time"].values[1] - first)  # every model step of dt = 6 h
        assert found["time"].values[1] - first == cftime.DatetimeGregorian(2020, 1, 1, 6) - first
    # the analysis improves on the background: the run assimilated the right observations
    assert mapped.summary.analysis_rmse < mapped.summary.background_rmse
