"""dacli sweep: one cycled run per value of an error scale, vmapped and sharded as one program."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import xarray as xr

# the first window (start 0.0 < 0.15 - dt / 2; the next starts at 0.2) is the burn-in
FOUR = ["--set", "window.count=4", "--set", "diagnostics.burn_in=0.15"]


def test_a_sweep_row_is_the_assimilation_with_that_value(workspace, cli):
    swept = cli(["sweep", "configs/lorenz96.toml", *FOUR, "--values", "background.covariance.std=0.3,1.0,3.0",
                 "-o", "sweep.csv", "--json"], workspace)
    assert swept.exit_code == 0, swept.stderr
    rows = json.loads(swept.stdout)["rows"]
    assert [row["background.covariance.std"] for row in rows] == [0.3, 1.0, 3.0]
    with open(workspace / "sweep.csv") as stream:
        table = list(csv.DictReader(stream))
    assert [float(row["analysis_rmse"]) for row in table] == pytest.approx([row["analysis_rmse"] for row in rows])
    # A swept row equals dacli assimilate run with that value (0.3: B^{1/2} scaled inside the one program)
    single = cli(["assimilate", "configs/lorenz96.toml", *FOUR, "--set", "background.covariance.std=0.3",
                  "--json", "-q"], workspace)
    assert single.exit_code == 0, single.stderr
    summary = json.loads(single.stdout)
    assert rows[0]["analysis_rmse"] == pytest.approx(summary["analysis_rmse"], rel=1e-9)
    assert rows[0]["background_rmse"] == pytest.approx(summary["background_rmse"], rel=1e-9)
    assert rows[0]["cost_final_mean"] == pytest.approx(summary["cost_final_mean"], rel=1e-9)
    assert rows[0]["converged_windows"] == summary["converged_windows"]
    assert rows[0]["analysis_rmse"] != pytest.approx(rows[1]["analysis_rmse"], rel=1e-3)  # the value matters
    # Time averages (issue 18, item 5): the per-window RMSE of windows 2..4 (the file's window
    # variables), the same in the JSON, the file's attributes and the sweep's row; 3 windows are
    # too few for an interval (NaN, JSON null).
    averages = summary["time_averages"]
    assert (averages["burn_in_windows"], averages["windows"], averages["confidence"]) == (1, 3, 0.95)
    with xr.open_dataset(workspace / "lorenz96_analysis.nc", decode_times=False) as ds:
        per_window = {name: ds[name].values for name in ("analysis_rmse", "background_rmse")}
        attributes = dict(ds.attrs)
    for name, values in per_window.items():
        assert len(values) == 4
        assert averages[name]["mean"] == pytest.approx(np.mean(values[1:]), rel=1e-12)
        assert averages[name]["mean"] != pytest.approx(np.mean(values), rel=1e-6)
        assert averages[name]["samples"] == 3 and averages[name]["low"] is None
        assert attributes[f"dacli_time_average_{name}"] == pytest.approx(averages[name]["mean"], rel=1e-12)
        assert rows[0][f"{name}_time_mean"] == pytest.approx(averages[name]["mean"], rel=1e-9)
        assert float(table[0][f"{name}_time_mean"]) == pytest.approx(rows[0][f"{name}_time_mean"])
    assert attributes["dacli_time_average_burn_in_windows"] == 1
    assert rows[0]["burn_in_windows"] == 1 and "background_spread" not in averages


@pytest.mark.parametrize(("values", "message"), [
    ("model.dt=1,2", "--values: expected KEY=v1,v2,... with KEY one of background.covariance.std, "
                     "method.model_error.covariance.std, found 'model.dt=1,2'"),
    ("background.covariance.std=1,-2", "--values background.covariance.std: expected positive finite numbers"),
    ("method.model_error.covariance.std=1", "--values method.model_error.covariance.std: the configuration has no "
                                            "method.model_error.covariance"),
])
def test_sweep_refusals(workspace, cli, values, message):
    result = cli(["sweep", "configs/lorenz96.toml", "--values", values], workspace)
    assert result.exit_code == 2
    assert message in result.stderr
