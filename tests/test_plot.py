"""``dacli plot``: PNGs for 1-D and 0-D (no grid) outputs, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from dacli.errors import DATA_ERROR, OUTPUT_ERROR, SUCCESS

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--set", "window.count=3", "--set", "method.max_steps=80"]  # test_bad_input's compiled program


@pytest.fixture(scope="module")
def lorenz96_output(cli, module_workspace):
    result = cli(["assimilate", "configs/lorenz96.toml", "-q", "--overwrite", *FAST], module_workspace)
    assert result.exit_code == SUCCESS, result.stderr
    return module_workspace / "lorenz96_analysis.nc"


def test_plot_writes_three_pngs_for_a_gridded_model(cli, module_workspace, lorenz96_output):
    result = cli(["plot", lorenz96_output, "--json", "--out", "figs", "--point", "3"], module_workspace)
    assert result.exit_code == SUCCESS, result.stderr
    import json

    written = json.loads(result.stdout)
    assert sorted(written) == ["diagnostics", "hovmoller", "timeseries"]
    for path in written.values():
        data = (module_workspace / path).read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000  # a real picture, not an empty canvas
    # Existing pictures are kept without --overwrite, and nothing is half-written.
    before = (module_workspace / "figs_hovmoller.png").read_bytes()
    again = cli(["plot", lorenz96_output, "--out", "figs"], module_workspace)
    assert again.exit_code == OUTPUT_ERROR
    assert "dacli: error: output file figs_hovmoller.png exists; pass --overwrite to replace it" in again.stderr
    assert (module_workspace / "figs_hovmoller.png").read_bytes() == before
    assert not list(module_workspace.glob(".figs_*"))
    assert cli(["plot", lorenz96_output, "--out", "figs", "--overwrite", "-q"], module_workspace).exit_code == SUCCESS


def test_plot_without_a_grid_draws_time_series_and_diagnostics(cli, tmp_path):
    """A Lorenz-63-shaped file (variables over time only, no truth): no Hovmoller diagram."""
    time = np.arange(21) * 0.05
    state = np.sin(time)
    dataset = xr.Dataset(
        {**{f"{v}_{kind}": ("time", state + i) for i, v in enumerate("xyz") for kind in ("analysis", "background")},
         "window_start": ("window", [0.0, 0.5]), "cost_initial": ("window", [10.0, 8.0]),
         "cost_final": ("window", [4.0, 3.0])},
        coords={"time": time}, attrs={"title": "no grid"})
    dataset.to_netcdf(tmp_path / "l63.nc")
    result = cli(["plot", "l63.nc", "--json"], tmp_path)
    assert result.exit_code == SUCCESS, result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["l63_diagnostics.png", "l63_timeseries.png"]


def test_plot_errors(cli, module_workspace, lorenz96_output):
    not_analysis = cli(["plot", "sample_data/lorenz96_obs.nc"], module_workspace)
    assert not_analysis.exit_code == DATA_ERROR
    assert ("analysis file sample_data/lorenz96_obs.nc: not a dacli analysis file (no <variable>_analysis and "
            "<variable>_background pair, or no window_start); data variables found: x") in not_analysis.stderr
    far = cli(["plot", lorenz96_output, "--point", "40", "--out", "far"], module_workspace)
    assert far.exit_code == DATA_ERROR
    assert "--point 40: the grid 'site' has 40 points (0 .. 39)" in far.stderr
    missing = cli(["plot", "nothing.nc"], module_workspace)
    assert missing.exit_code == DATA_ERROR and "analysis file nothing.nc: no such file" in missing.stderr
    assert not list(module_workspace.glob("far_*.png"))
