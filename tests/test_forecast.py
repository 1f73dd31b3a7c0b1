"""``dacli forecast``: the model's own trajectory, verification scores on known cases, ensembles, the file.

Every forecast here is Lorenz-96 (N = 40, RK4, dt = 0.05; the shipped sample data) for lead 1 every
0.2 (5 outputs of 4 steps), so the batched forecast compiles once per batch size.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from dacli.errors import DATA_ERROR, OUTPUT_ERROR, SUCCESS, USAGE_ERROR
from dacli.io.times import TimeAxis

LEAD = ["--lead-time", "1", "--interval", "0.2"]
TRUTH = "sample_data/lorenz96_truth.nc"


@pytest.fixture(scope="module")
def from_truth(cli, module_workspace):
    """A forecast from the truth run at t = 1 and t = 2, verified against that same truth (CLI, --json)."""
    result = cli(["forecast", "configs/lorenz96.toml", "--from", TRUTH, "--start-time", "1", "--start-time", "2",
                  *LEAD, "--truth", TRUTH, "-o", "from_truth.nc", "--json"], module_workspace)
    assert result.exit_code == SUCCESS, result.stderr
    with xr.open_dataset(module_workspace / "from_truth.nc", decode_times=False) as dataset:
        return json.loads(result.stdout), dataset.load(), module_workspace


def _config(workspace, *overrides):
    import dacli.config

    return dacli.config.load(workspace / "configs" / "lorenz96.toml", list(overrides))


# --- the model's own trajectory ---------------------------------------------------------------

def test_forecast_reproduces_the_models_own_trajectory(from_truth):
    """The forecast equals `integrate` run directly from the same state, sampled every 4 steps."""
    import diffrax
    import jax.numpy as jnp

    from dacli.models.integrate import integrate
    from dacli.models.lorenz import Lorenz96
    from dacli.models.solvers import RK4

    _, dataset, workspace = from_truth
    truth = xr.open_dataset(workspace / TRUTH, decode_times=False)
    assert dataset["forecast_reference_time"].values.tolist() == [1.0, 2.0]
    np.testing.assert_allclose(dataset["lead_time"].values, [0, 0.2, 0.4, 0.6, 0.8, 1.0], rtol=0, atol=1e-15)
    for k, start in enumerate((1.0, 2.0)):
        x0 = truth["x"].sel(time=start).values
        direct = integrate(Lorenz96(n=40, forcing=8.0), jnp.asarray(x0), start, 20, 0.05, RK4(),
                           diffrax.RecursiveCheckpointAdjoint())
        forecast = dataset["x_forecast"].values[k]
        np.testing.assert_array_equal(forecast[0], x0)
        np.testing.assert_allclose(forecast, np.asarray(direct)[::4], rtol=0, atol=1e-12)


def test_forecast_from_every_analysis_of_dacli_assimilate(cli, from_truth):
    """End to end: 2 windows of 4DVar, then --all-windows: each forecast starts from its window's end
    analysis and follows the model from there (two starts: the compiled forecast is reused)."""
    import diffrax
    import jax.numpy as jnp

    from dacli.models.integrate import integrate
    from dacli.models.lorenz import Lorenz96
    from dacli.models.solvers import RK4

    workspace = from_truth[2]
    result = cli(["assimilate", "configs/lorenz96.toml", "--set", "window.count=2", "--set", "method.max_steps=30",
                  "--set", "output.path=two_windows.nc", "-q"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    result = cli(["forecast", "configs/lorenz96.toml", "--from", "two_windows.nc", "--all-windows", *LEAD,
                  "-o", "two_forecasts.nc", "-q"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    with xr.open_dataset(workspace / "two_windows.nc", decode_times=False) as analysis, \
            xr.open_dataset(workspace / "two_forecasts.nc", decode_times=False) as forecast:
        np.testing.assert_allclose(forecast["forecast_reference_time"].values, [0.2, 0.4], rtol=1e-15)
        assert forecast.attrs["dacli_initial_states"] == "analysis at the end of each of 2 windows"
        for k in range(2):
            x0 = analysis["x_analysis_window_end"].values[k]
            np.testing.assert_array_equal(forecast["x_forecast"].values[k, 0], x0)
            direct = integrate(Lorenz96(n=40, forcing=8.0), jnp.asarray(x0), 0.2 * (k + 1), 20, 0.05, RK4(),
                               diffrax.RecursiveCheckpointAdjoint())
            np.testing.assert_allclose(forecast["x_forecast"].values[k], np.asarray(direct)[::4], rtol=0, atol=1e-12)
        # verified against the config's truth: the forecasts start at the analyses' error
        np.testing.assert_allclose(forecast["rmse"].values[0], np.sqrt(np.mean(
            (analysis["x_analysis_window_end"].values - xr.open_dataset(workspace / TRUTH, decode_times=False)["x"]
             .sel(time=[0.2, 0.4], method="nearest").values) ** 2)), rtol=1e-12)


# --- verification --------------------------------------------------------------------------------

def test_a_forecast_of_the_truth_from_the_truth_scores_perfectly(from_truth):
    summary, dataset, _ = from_truth
    assert summary["verified_starts"] == [2] * 6
    np.testing.assert_allclose(summary["rmse"], 0.0, atol=1e-11)
    np.testing.assert_allclose(summary["anomaly_correlation"], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dataset["rmse"].values, summary["rmse"], rtol=0, atol=0)
    truth = xr.open_dataset(from_truth[2] / TRUTH, decode_times=False)
    np.testing.assert_allclose(dataset["x_climatology"].values, truth["x"].values.mean(axis=0), rtol=1e-14)


def test_scores_in_closed_form():
    """Anomalies +-3 about the climatology (zero mean), forecasts off by a constant 4: RMSE 4 and
    ACC = 3 / sqrt(3^2 + 4^2) = 0.6; the mirrored anomaly: ACC -1, RMSE 6; twice the anomaly:
    ACC 1, RMSE 3; the climatology itself: ACC undefined (NaN), RMSE 3."""
    from dacli.diagnostics.verification import anomaly_correlation_by_lead, rmse_by_lead

    reference = np.array([1.0, -2.0, 5.0, 0.5])
    signs = np.array([[1, -1, 1, -1], [-1, 1, -1, 1], [1, 1, -1, -1]], float)  # each column sums to 0 over starts
    truth = (reference + 3.0 * signs)[:, None, :]  # (S = 3, L = 1, n = 4)
    for forecast, rmse, acc in ((truth + 4.0, 4.0, 0.6), (2 * reference - truth, 6.0, -1.0),
                                (reference + 2 * (truth - reference), 3.0, 1.0)):
        np.testing.assert_allclose(rmse_by_lead(forecast, truth), [rmse], rtol=1e-14)
        np.testing.assert_allclose(anomaly_correlation_by_lead(forecast, truth, reference), [acc], rtol=1e-14)
    climatological = np.broadcast_to(reference, truth.shape)
    np.testing.assert_allclose(rmse_by_lead(climatological, truth), [3.0], rtol=1e-14)
    assert np.isnan(anomaly_correlation_by_lead(climatological, truth, reference)).all()


def test_scores_leave_out_starts_the_truth_does_not_reach():
    from dacli.diagnostics.verification import (
        anomaly_correlation_by_lead,
        rmse_by_lead,
        verified_count,
    )

    truth = np.zeros((2, 3, 2))
    truth[1, 1:] = np.nan  # the second start's later leads are beyond the truth file
    truth[:, 2] = np.nan  # nobody reaches lead 2
    forecast = np.ones_like(truth)
    forecast[1] = 7.0  # only counted at lead 0
    assert verified_count(truth).tolist() == [2, 1, 0]
    np.testing.assert_allclose(rmse_by_lead(forecast, truth), [5.0, 1.0, np.nan])  # sqrt((1 + 49) / 2)
    assert np.isnan(anomaly_correlation_by_lead(forecast, truth, np.zeros(2))[2])


def test_spread_of_a_known_ensemble():
    from dacli.diagnostics.verification import ensemble_spread_by_lead, ensemble_statistics

    members = np.zeros((2, 3, 1, 2))  # (S, N, L, n)
    members[:, :, 0, 0] = [1.0, 2.0, 3.0]  # unbiased variance 1
    members[:, :, 0, 1] = [0.0, 0.0, 3.0]  # unbiased variance 3
    mean, spread = ensemble_statistics(members)
    np.testing.assert_allclose(mean[0, 0], [2.0, 1.0])
    np.testing.assert_allclose(spread[0, 0], [1.0, np.sqrt(3.0)])
    np.testing.assert_allclose(ensemble_spread_by_lead(members), [np.sqrt(2.0)])  # sqrt(mean(1, 3))
    assert np.isnan(ensemble_spread_by_lead(members[:, :1])).all()


# --- ensembles -------------------------------------------------------------------------------------

def test_ensemble_spread_starts_at_the_background_std_and_one_member_is_deterministic(module_workspace):
    """Members x0 + B^{1/2} z with B = 0.5^2 I: the lead-0 spread is 0.5 (2 starts x 100 members x 40
    sites: the estimate's relative std is about 1/sqrt(2 * 99 * 80) = 0.8 %; 4 % is 5 of those), the
    lead-0 ensemble mean is x0 within 4 standard errors, the same seed gives the same members. (Two
    start times, as in the module's CLI forecast: the one-member run reuses its compiled program.)"""
    import dacli.config
    from dacli.run.forecast import forecast

    text = (module_workspace / "configs" / "lorenz96.toml").read_text()
    text = text.replace('kind = "gaussian"', 'kind = "diagonal"').replace("length_scale = 1.5", "")
    (module_workspace / "configs" / "diagonal.toml").write_text(text)
    config = dacli.config.load(module_workspace / "configs" / "diagonal.toml", ["background.covariance.std=0.5", "run.seed=7"])
    common = dict(initial=module_workspace / TRUTH, start_times=[3.0, 4.0], lead_time=1.0, interval=0.2, truth=None,
                  overwrite=True)
    ensemble = forecast(config, members=100, output=module_workspace / "ensemble.nc", **common)
    assert ensemble.ensemble.shape == (2, 100, 6, 40)
    x0 = ensemble.forecast[:, 0]
    np.testing.assert_allclose(ensemble.scores["spread"][0], 0.5, rtol=0.04)
    assert np.all(np.diff(ensemble.scores["spread"][:3]) > 0)  # chaos: the spread grows
    assert np.max(np.abs(ensemble.ensemble[:, :, 0].mean(axis=1) - x0)) < 4 * 0.5 / np.sqrt(100)
    again = forecast(config, members=100, output=module_workspace / "ensemble.nc", **common)
    np.testing.assert_array_equal(again.ensemble, ensemble.ensemble)
    with xr.open_dataset(module_workspace / "ensemble.nc", decode_times=False) as dataset:
        assert dataset["x_ensemble"].dims == ("forecast_reference_time", "member", "lead_time", "site")
        assert dataset["member"].attrs["standard_name"] == "realization"
        np.testing.assert_allclose(dataset["x_ensemble_spread"].values, ensemble.ensemble.std(axis=1, ddof=1))
        assert dataset.attrs["dacli_members"] == 100 and dataset.attrs["dacli_seed"] == 7

    one = forecast(config, members=1, output=module_workspace / "one.nc", **common)
    assert one.ensemble is None and "spread" not in one.scores
    np.testing.assert_array_equal(one.forecast, ensemble.forecast)  # the unperturbed forecast, whatever N


# --- where forecasts start ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def analysis_file(module_workspace):
    """A small analysis file in dacli assimilate's layout: the truth as the analysis trajectory over
    3 windows of 0.2, and window-end analyses that differ from it (truth + 1) so the tests can tell them apart."""
    from dacli.io.analysis import AnalysisRecord, analysis_dataset
    from dacli.io.metadata import Discovery
    from dacli.models.lorenz import Lorenz96

    truth = xr.open_dataset(module_workspace / TRUTH, decode_times=False)
    times = truth["time"].values[:13]  # 0 .. 0.6
    states = truth["x"].values[:13]
    ends = np.array([0.2, 0.4, 0.6])
    end_states = states[[4, 8, 12]] + 1.0
    windows = {"window_start": ends - 0.2, "window_end": ends}
    record = AnalysisRecord(Lorenz96(n=40).layout(), times, states, states, windows,
                            {"analysis_window_start": states[[0, 4, 8]], "analysis_window_end": end_states},
                            {"config": json.dumps({"model": {"name": "lorenz96"}})})
    path = module_workspace / "analysis.nc"
    analysis_dataset(record, TimeAxis("days since 2000-01-01"), Discovery("test", institution="tests"),
                     "test").to_netcdf(path)
    return path, states, end_states


def test_start_states_from_an_analysis_file(module_workspace, analysis_file):
    from dacli.models.lorenz import Lorenz96
    from dacli.run.forecast import choose_starts

    path, states, end_states = analysis_file
    config, layout = _config(module_workspace), Lorenz96(n=40).layout()
    last = choose_starts(config, layout, path, None, False)
    assert last.times.tolist() == [0.6] and last.description == "analysis at the end of the last window"
    np.testing.assert_array_equal(last.states, end_states[-1:])
    every = choose_starts(config, layout, path, None, True)
    assert every.times.tolist() == [0.2, 0.4, 0.6]
    np.testing.assert_array_equal(every.states, end_states)
    picked = choose_starts(config, layout, path, [0.4 + 0.01, 0.1], False)  # a window end (within dt/2), mid-window
    assert picked.times.tolist() == [0.4, 0.1]
    np.testing.assert_array_equal(picked.states, [end_states[1], states[2]])
    background = choose_starts(config, layout, None, None, False)
    assert background.times.tolist() == [0.0] and background.source == "background"


def test_start_time_errors(module_workspace, analysis_file):
    from dacli.errors import ConfigError, DataError
    from dacli.models.lorenz import Lorenz96
    from dacli.run.forecast import choose_starts, lead_steps

    path = analysis_file[0]
    config, layout = _config(module_workspace), Lorenz96(n=40).layout()
    with pytest.raises(DataError, match=r"--from analysis file .*analysis.nc: no state at time 5 \(times span \[0, 0.6\]\)"):
        choose_starts(config, layout, path, [5.0], False)
    with pytest.raises(ConfigError, match="--start-time: picks states of a --from file"):
        choose_starts(config, layout, None, [1.0], False)
    with pytest.raises(DataError, match="--all-windows: .* is not an analysis file"):
        choose_starts(config, layout, module_workspace / TRUTH, None, True)
    with pytest.raises(ConfigError, match=r"--interval: 0.07 is not a whole number of model steps \(model.dt = 0.05\)"):
        lead_steps(1.0, 0.07, 0.05)
    assert lead_steps(1.0, 0.2, 0.05) == (5, 4)


def test_an_analysis_of_another_model_or_size_is_refused(cli, module_workspace):
    from dacli.models.lorenz import Lorenz96

    layout = Lorenz96(n=20).layout()
    for name, attrs, message in (
            ("small.nc", {}, "--from analysis file small.nc: 'x_analysis' has a grid of shape (20,) over ('site',); "
                             "the model's is (40,)"),
            ("l63.nc", {"dacli_config": json.dumps({"model": {"name": "lorenz63"}})},
             "--from file l63.nc: an analysis of model 'lorenz63'; the config's model is 'lorenz96'")):
        xr.Dataset({"x_analysis": (("time", "site"), np.zeros((2, 20)))},
                   coords={"time": [0.0, 0.05], "site": layout.axes[0].values}, attrs=attrs).to_netcdf(
            module_workspace / name)
        result = cli(["forecast", "configs/lorenz96.toml", "--from", name, *LEAD], module_workspace)
        assert result.exit_code == DATA_ERROR
        assert result.stderr == f"dacli: error: {message}\n"


# --- the command line and the file ----------------------------------------------------------------

def test_the_file_is_cf_with_forecast_coordinates(from_truth):
    summary, dataset, _ = from_truth
    assert dataset.attrs["Conventions"] == "CF-1.11, ACDD-1.3"
    for key in ("title", "summary", "source", "history", "references", "dacli_initial_source", "dacli_lead_time",
                "dacli_interval", "dacli_members", "dacli_config"):
        assert key in dataset.attrs, key
    assert ": dacli " in dataset.attrs["history"]  # the command line (here pytest's: the CLI runs in-process)
    assert dataset["forecast_reference_time"].attrs["standard_name"] == "forecast_reference_time"
    assert dataset["lead_time"].attrs == {"standard_name": "forecast_period", "long_name": "forecast lead time",
                                          "units": "days"}
    assert dataset["valid_time"].attrs["standard_name"] == "time"
    np.testing.assert_allclose(dataset["valid_time"].values,
                               dataset["forecast_reference_time"].values[:, None] + dataset["lead_time"].values)
    assert dataset["x_forecast"].dims == ("forecast_reference_time", "lead_time", "site")
    assert dataset["x_forecast"].attrs["units"] == "1"
    assert dataset["anomaly_correlation"].attrs["units"] == "1"
    assert summary["output"] == "from_truth.nc" and summary["members"] == 1


@pytest.mark.filterwarnings("ignore:The ioos_sos checker is deprecated:DeprecationWarning")
def test_compliance_checker_on_the_forecast_file(from_truth, tmp_path, capsys):
    """No CF error (the reference times are ``forecast_reference_time``, as in ECMWF's CDS files: a
    dimension *named* ``time`` must be the time itself for the checker). Left, with reasons: CF
    warnings on the dimension order (CF recommends T, Z, Y, X: lead_time is neither) and on the
    Lorenz-96 site index taken for a longitude; ACDD's standard_name where CF has none, and the
    attributes only a user can give. ACDD's time-extent check crashes on a 2-D valid time."""
    from test_output_cf import NO_PLACE, SITE_IS_NO_LONGITUDE, checker_findings, medium

    findings = checker_findings(from_truth[2] / "from_truth.nc", tmp_path, capsys)
    errors, warnings = findings["cf"]
    assert errors == ()
    assert warnings[-1] == SITE_IS_NO_LONGITUDE
    order = "spatio-temporal dimensions are not in the recommended order T, Z, Y, X"
    assert [w.split("'")[0] for w in warnings[:-1]] == ["§2.4 Dimensions: valid_time", "§2.4 Dimensions: x_forecast"]
    assert all(order in w for w in warnings[:-1])
    assert set(findings["acdd"][0]) == {f'variable "{name}" missing the following attributes:: standard_name'
                                        for name in ("anomaly_correlation", "rmse", "site", "verified_starts",
                                                     "x_climatology", "x_forecast")}
    assert set(findings["acdd"][1]) == medium(place=False) and "geospatial_bounds" in NO_PLACE
    assert findings["crashed"] == {"check_time_extents"}


def test_cli_errors(cli, from_truth):
    workspace = from_truth[2]
    again = cli(["forecast", "configs/lorenz96.toml", "--from", TRUTH, *LEAD, "-o", "from_truth.nc"], workspace)
    assert again.exit_code == OUTPUT_ERROR
    assert again.stderr == ("dacli: error: output file from_truth.nc exists; pass --overwrite (or output.overwrite = "
                            "true) to replace it\n")
    missing = cli(["forecast", "configs/lorenz96.toml", "--from", "nope.nc", *LEAD], workspace)
    assert missing.exit_code == DATA_ERROR
    assert missing.stderr == "dacli: error: --from file nope.nc: no such file\n"
    lead = cli(["forecast", "configs/lorenz96.toml", "--lead-time", "1", "--interval", "0.3"], workspace)
    assert lead.exit_code == USAGE_ERROR
    assert lead.stderr == "dacli: error: --lead-time: 1.0 is not a whole number of --interval (0.3)\n"
    assert not (workspace / "lorenz96_forecast.nc").exists()


def test_a_forecast_that_blows_up_writes_nothing(cli, from_truth):
    """Initial states of order 1e200 overflow in the first step: exit 4, no file (two starts: the compiled batch is reused)."""
    from dacli.errors import NUMERICAL_ERROR
    from dacli.models.lorenz import Lorenz96

    workspace = from_truth[2]
    layout = Lorenz96(n=40).layout()
    xr.Dataset({"x": (("time", "site"), 1e200 * np.random.default_rng(0).normal(size=(2, 40)), {"units": "1"})},
               coords={"time": ("time", [0.0, 0.05], {"units": "days since 2000-01-01 00:00:00"}),
                       "site": layout.axes[0].values}).to_netcdf(workspace / "huge.nc")
    result = cli(["forecast", "configs/lorenz96.toml", "--from", "huge.nc", "--start-time", "0", "--start-time", "0.05",
                  *LEAD, "-o", "huge_forecast.nc", "-q"], workspace)
    assert result.exit_code == NUMERICAL_ERROR
    assert result.stderr == ("dacli: error: the forecast from time 0 became non-finite (NaN/Inf) at lead 0.2; no output "
                             "was written. Try a smaller model.dt\n")
    assert not (workspace / "huge_forecast.nc").exists()
