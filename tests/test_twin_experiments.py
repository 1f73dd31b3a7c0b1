"""Cycled twin experiments on the shipped sample data: 4DVar must beat background and observations.

The sample data were made by ``dacli simulate`` (observation error std 1.0 for both models).
"""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_shipped_configs import check_pinned_rmse

import dacli.config
from dacli.run.assimilate import assimilate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
OBS_ERROR_STD = 1.0


def run(name: str, tmp_path: Path, *overrides: str):
    output = tmp_path / f"{name}.nc"
    config = dacli.config.load(CONFIGS / f"{name}.toml", [f'output.path="{output}"', *overrides])
    return assimilate(config), output


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96"])
def test_cycled_4dvar_beats_background_and_observations(name, tmp_path):
    result, output = run(name, tmp_path)
    summary = result.summary
    assert summary.converged_windows == summary.windows > 10
    check_pinned_rmse(name, summary.analysis_rmse, summary.background_rmse)  # the table's row
    assert summary.analysis_rmse < 0.8 * summary.background_rmse, summary
    assert summary.analysis_rmse < 0.5 * OBS_ERROR_STD, summary
    # Every window decreased its cost; O-A is closer to the observations than O-B.
    windows = result.windows
    assert np.all(windows["cost_final"] <= windows["cost_initial"])
    assert np.mean(windows["oma_rms"]) < np.mean(windows["omb_rms"])
    # The file holds a continuous trajectory over all windows and the per-window diagnostics.
    with xr.open_dataset(output, decode_times=False) as ds:
        times = ds["time"].values
        assert np.allclose(np.diff(times), np.diff(times)[0])
        assert ds.sizes["window"] == summary.windows
        first = [v for v in ds.data_vars if v.endswith("_analysis")][0]
        variable = first.removesuffix("_analysis")
        np.testing.assert_allclose(ds[f"{variable}_increment"], ds[first] - ds[f"{variable}_background"])


def test_overlapping_windows_use_each_observation_once(tmp_path):
    """shift < length with 'newest': every valid observation is assimilated exactly once."""
    cycled, _ = run("lorenz96", tmp_path, "window.length=0.4", "window.shift=0.1", "window.count=20")
    every, _ = run("lorenz96", tmp_path, "window.length=0.4", "window.shift=0.1", "window.count=20",
                   'window.assimilate="all"', f'output.path="{tmp_path / "all.nc"}"')
    used = cycled.windows["observations_used"]
    assert np.all(used > 0) and np.all(used <= 80)  # at most 2 times (one shift) of 40 sites
    assert np.all(every.windows["observations_used"][3:] > 3.5 * used[3:])  # 8 times, not 2
    assert cycled.summary.analysis_rmse < cycled.summary.background_rmse


def test_window_solve_is_compiled_once_for_all_windows(tmp_path, monkeypatch):
    """Fixed shapes across windows: tracing (hence compiling) happens at most once per run."""
    from dacli.methods.strong4dvar import StrongConstraint4DVar

    traces = []
    original = StrongConstraint4DVar.analyse

    def counting(self, *args):
        traces.append(1)
        return original(self, *args)

    monkeypatch.setattr(StrongConstraint4DVar, "analyse", counting)
    result, _ = run("lorenz96", tmp_path, "window.count=12", "method.max_steps=37")
    assert result.summary.windows == 12
    # max_steps=37 is used by no other test, so this run must trace exactly once.
    assert len(traces) == 1, f"the window solve was traced {len(traces)} times for 12 windows"


def test_truth_shorter_than_the_windows_gives_rmse_where_it_reaches(tmp_path, caplog):
    """A truth file ending early must not fail the run after all the work: NaN RMSE past its end."""
    truth = CONFIGS.parent / "sample_data" / "lorenz96_truth.nc"
    with xr.open_dataset(truth, decode_times=False) as ds:
        ds.sel(time=slice(None, 0.37)).load().to_netcdf(tmp_path / "short_truth.nc")  # ends at 0.35
    result, _ = run("lorenz96", tmp_path, "window.count=4", f'truth.path="{tmp_path / "short_truth.nc"}"')
    rmse = result.windows["analysis_rmse"]
    assert np.all(np.isfinite(rmse[:2])) and np.all(np.isnan(rmse[2:]))
    assert np.isfinite(result.summary.analysis_rmse)
    assert "RMSE only where the truth reaches" in caplog.text
