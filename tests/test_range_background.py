"""A window range's first background is the state *valid* at the range's start, or the run is refused.

``--windows A:B`` (``window.select``) starts from background.path's state at window A's start. A
previous forecast run is one of the files array.sbatch suggests for independent ranges; a forecast
file's ``time`` is the forecasts' start (reference) time, each field valid a lead time later. With
one lead time selected (``select = { lead_time = ... }``, as the reader's own hint says) the range
once started, without a word, from the forecast *started* at its start time: a field valid a whole
lead time later. The valid time now dates each field (said in the log); a file without one is
refused. A state up to half a model step from the time asked is still used, but with a warning
naming both times, and ``dacli forecast --start-time`` starts at the stored time it used.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

import dacli.config
from dacli.build.problem import build_dynamics
from dacli.run.forecast import choose_starts
from dacli.run.inputs import initial_background

CONFIG = "configs/lorenz96.toml"
RANGE = ["--set", "window.count=4", "--set", 'window.select="2:4"']  # windows 2 and 3: the range starts at 0.4
SITES = np.arange(40.0)
DAYS = {"units": "days since 2000-01-01 00:00:00", "calendar": "standard"}


def forecast_file(path, *, starts=(0.0, 0.2, 0.4, 0.6), leads=(0.0, 0.2, 0.4), valid_time=True):
    """dacli forecast's layout: x_forecast(time, lead_time, site); field (i, l) holds 100 i + l everywhere."""
    starts, leads = np.asarray(starts), np.asarray(leads)
    values = (100.0 * np.arange(len(starts))[:, None, None] + np.arange(len(leads))[None, :, None]
              + np.zeros((1, 1, SITES.size)))
    coords = {
        "time": ("time", starts, {"standard_name": "forecast_reference_time", **DAYS}),
        "lead_time": ("lead_time", leads, {"standard_name": "forecast_period", "units": "days"}),
        "site": ("site", SITES),
    }
    if valid_time:
        valid = starts[:, None] + leads[None, :]
        coords["valid_time"] = (("time", "lead_time"), valid, {"standard_name": "time", **DAYS})
    xr.Dataset({"x_forecast": (("time", "lead_time", "site"), values, {"units": "1"})}, coords=coords).to_netcdf(path)


def background(workspace, *overrides, start=0.4):
    config = dacli.config.load(workspace / CONFIG, list(overrides))
    return initial_background(config, build_dynamics(config.model).layout(), start)


def test_a_forecast_file_gives_the_state_valid_at_the_range_start(workspace, cli):
    forecast_file(workspace / "forecast.nc")
    mapping = ['background.path="forecast.nc"', 'background.names={x="x_forecast"}']
    # Lead 0.2: the field valid at 0.4 is the forecast started at 0.2 (i = 1, l = 1), not the one started at 0.4.
    state = background(workspace, *mapping, "background.select={lead_time=0.2}")
    np.testing.assert_array_equal(state, np.full(40, 101.0))
    state = background(workspace, *mapping, "background.select={lead_time=0.4}")
    np.testing.assert_array_equal(state, np.full(40, 2.0))  # started at 0, lead 0.4
    state = background(workspace, *mapping, "background.select={lead_time=0}")
    np.testing.assert_array_equal(state, np.full(40, 200.0))  # lead 0: the initial state at 0.4

    options = [arg for item in mapping for arg in ("--set", item)]
    result = cli(["validate", CONFIG, *RANGE, *options, "--set", "background.select={lead_time=0.2}", "--json"],
                 workspace)
    assert result.exit_code == 0, result.stderr
    assert ("background file forecast.nc: time coordinate 'time' holds the forecasts' reference (start) times; "
            "each field is dated by its valid time 'valid_time' instead") in result.stderr.replace(
                str(workspace) + "/", "")
    assert json.loads(result.stdout)["background_start"] == "0.4 (2000-01-01 09:36:00)"

    # Lead 0.4 from starts 0 .. 0.6: valid 0.4 .. 1.0; the range 6:8 starts at 1.2, which no forecast reaches.
    late = cli(["validate", CONFIG, "--set", "window.count=8", "--set", 'window.select="6:8"', *options,
                "--set", "background.select={lead_time=0.4}"], workspace)
    assert late.exit_code == 3
    assert ("forecast.nc: holds no state at model time 1.2 (2000-01-02 04:48:00) (within 0.025); its times are: "
            "0.4 (2000-01-01 09:36:00), 0.6 (2000-01-01 14:24:00), 0.8 (2000-01-01 19:12:00), "
            "1 (2000-01-02 00:00:00)") in late.stderr

    # No lead selected: refused before the dims check, pointing at the lead dimension.
    unselected = cli(["validate", CONFIG, *RANGE, *options], workspace)
    assert unselected.exit_code == 3
    assert ("time coordinate 'time' holds forecast reference times (standard name 'forecast_reference_time'): the "
            "forecasts' start times, not the times their fields are valid at; select one lead time with "
            "select = { lead_time = ... }") in unselected.stderr


def test_another_tools_forecast_file_and_one_without_valid_time(workspace, cli):
    # cfgrib-like: 'step' in hours, reference and valid times in seconds since 1970, another variable name.
    epoch = 946684800.0  # 2000-01-01 in seconds since 1970
    starts, steps = np.array([0.0, 0.2, 0.4]), np.array([0.0, 4.8])  # days; hours
    seconds = {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian"}
    values = 100.0 * np.arange(3)[:, None, None] + np.arange(2)[None, :, None] + np.zeros((1, 1, 40))
    xr.Dataset({"t2": (("time", "step", "site"), values)}, coords={
        "time": ("time", epoch + 86400 * starts, {"standard_name": "forecast_reference_time", **seconds}),
        "step": ("step", steps, {"standard_name": "forecast_period", "units": "hours"}),
        "valid_time": (("time", "step"), epoch + 86400 * starts[:, None] + 3600 * steps[None, :],
                       {"standard_name": "time", **seconds}),
        "site": ("site", SITES)}).to_netcdf(workspace / "other.nc")
    state = background(workspace, 'background.path="other.nc"', 'background.names={x="t2"}',
                       "background.select={step=4.8}")
    np.testing.assert_array_equal(state, np.full(40, 101.0))  # started at 0.2, valid at 0.4

    forecast_file(workspace / "bare.nc", valid_time=False)
    result = cli(["validate", CONFIG, *RANGE, "--set", 'background.path="bare.nc"', "--set",
                  'background.names={x="x_forecast"}', "--set", "background.select={lead_time=0.2}"], workspace)
    assert result.exit_code == 3
    assert ("holds forecast reference times (standard name 'forecast_reference_time'): the forecasts' start times, "
            "not the times their fields are valid at; the file has no valid time") in result.stderr


def test_a_state_near_but_not_at_the_range_start_is_said_or_refused(workspace, cli):
    def states(path, times):
        xr.Dataset({"x": (("time", "site"), np.asarray(times)[:, None] + np.zeros((1, 40)), {"units": "1"})},
                   coords={"time": ("time", np.asarray(times), DAYS), "site": ("site", SITES)}).to_netcdf(path)

    states(workspace / "near.nc", [0.0, 0.42, 0.8])  # 0.02 from 0.4: within model.dt / 2 = 0.025
    result = cli(["validate", CONFIG, *RANGE, "--set", 'background.path="near.nc"'], workspace)
    assert result.exit_code == 0, result.stderr
    assert ("near.nc: holds no state at exactly model time 0.4 (2000-01-01 09:36:00); its state at 0.42 "
            "(2000-01-01 10:04:48) is used, 0.02 away (within 0.025)") in result.stderr
    states(workspace / "exact.nc", [0.0, 0.4000000000000001, 0.8])  # round-off: no warning
    result = cli(["validate", CONFIG, *RANGE, "--set", 'background.path="exact.nc"'], workspace)
    assert result.exit_code == 0 and "WARNING" not in result.stderr, result.stderr
    states(workspace / "far.nc", [0.0, 0.45, 0.8])
    result = cli(["validate", CONFIG, *RANGE, "--set", 'background.path="far.nc"'], workspace)
    assert result.exit_code == 3
    assert ("far.nc: holds no state at model time 0.4 (2000-01-01 09:36:00) (within 0.025); its times are: "
            "0 (2000-01-01 00:00:00), 0.45 (2000-01-01 10:48:00), 0.8 (2000-01-01 19:12:00); set "
            "background.interpolate_time = true") in result.stderr


def test_forecast_start_times_are_the_stored_times_used(workspace, caplog):
    config = dacli.config.load(workspace / CONFIG)
    layout = build_dynamics(config.model).layout()
    truth = workspace / "sample_data/lorenz96_truth.nc"
    with caplog.at_level("WARNING", logger="dacli"):
        starts = choose_starts(config, layout, truth, [0.42, 0.6], False)
    np.testing.assert_allclose(starts.times, [0.4, 0.6])  # not 0.42 with the state of 0.4
    with xr.open_dataset(truth, decode_times=False) as file:
        np.testing.assert_array_equal(starts.states, file["x"].values[[8, 12]])
    assert ("holds no state at exactly --start-time 0.42 (2000-01-01 10:04:48); starting from its state at 0.4 "
            "(2000-01-01 09:36:00), 0.02 away") in caplog.text
    assert "--start-time 0.6 " not in caplog.text
