"""``dacli plot``: PNGs for 2-D (maps), 1-D and 0-D (no grid) outputs, and its errors."""

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
    result = cli(["plot", "l63.nc", "--json", "--time", "0.5"], tmp_path)
    assert result.exit_code == SUCCESS, result.stderr
    assert "--time ignored: analysis file l63.nc is not on a 2-D grid" in result.stderr
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


# 2-D models: maps ---------------------------------------------------------------------------

GRIDS = {
    "yx": (("y", np.linspace(0.0, 1.1e6, 12), {"units": "m", "standard_name": "projection_y_coordinate", "axis": "Y"}),
           ("x", np.linspace(0.0, 1.5e6, 16), {"units": "m", "standard_name": "projection_x_coordinate", "axis": "X"})),
    "latlon": (("lat", np.linspace(30.0, 63.0, 12), {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}),
               ("lon", np.linspace(-20.0, 25.0, 16), {"units": "degrees_east", "standard_name": "longitude", "axis": "X"})),
}
TIME_UNITS = "days since 2000-01-01 00:00:00"


def _field(times, ny, nx, phase):
    t, j, i = np.meshgrid(times, np.arange(ny), np.arange(nx), indexing="ij")
    return np.sin(0.5 * i + 0.3 * t + phase) * np.cos(0.4 * j)


def write_2d_analysis(path, flavour="yx"):
    """A 16x12 grid, 5 times (0 .. 10 days), 2 windows, one variable ``psi`` in metres, with truth RMSE."""
    (ydim, ys, yattrs), (xdim, xs, xattrs) = GRIDS[flavour]
    times = np.linspace(0.0, 10.0, 5)
    grid = ("time", ydim, xdim)
    analysis, background = _field(times, 12, 16, 0.1), _field(times, 12, 16, 0.5)
    attrs = {"units": "m"}
    dataset = xr.Dataset(
        {"psi_analysis": (grid, analysis, {**attrs, "long_name": "analysis of psi"}),
         "psi_background": (grid, background, {**attrs, "long_name": "background of psi"}),
         "psi_increment": (grid, analysis - background, {**attrs, "long_name": "increment of psi"}),
         "psi_analysis_window_start": (("window", ydim, xdim), analysis[[0, 2]], attrs),
         "psi_analysis_window_end": (("window", ydim, xdim), analysis[[2, 4]], attrs),
         "window_start": ("window", [0.0, 5.0], {"units": TIME_UNITS}),
         "window_end": ("window", [5.0, 10.0], {"units": TIME_UNITS}),
         "background_rmse": ("window", [0.4, 0.3], attrs), "analysis_rmse": ("window", [0.1, 0.08], attrs),
         "cost_initial": ("window", [120.0, 90.0]), "cost_final": ("window", [30.0, 25.0])},
        coords={"time": ("time", times, {"units": TIME_UNITS, "axis": "T"}),
                ydim: (ydim, ys, yattrs), xdim: (xdim, xs, xattrs)},
        attrs={"title": f"2-D test ({flavour})"})
    dataset.to_netcdf(path)
    return path


def write_2d_truth(path, flavour="yx", nx=16):
    (ydim, ys, yattrs), (xdim, xs, xattrs) = GRIDS[flavour]
    times = np.linspace(0.0, 10.0, 21)  # finer than the analysis: the nearest state is taken
    xs = np.linspace(xs[0], xs[-1], nx)
    xr.Dataset({"psi": (("time", ydim, xdim), _field(times, 12, nx, 0.0), {"units": "m"})},
               coords={"time": ("time", times, {"units": TIME_UNITS}), ydim: (ydim, ys, yattrs),
                       xdim: (xdim, xs, xattrs)}).to_netcdf(path)
    return path


def write_2d_feedback(path, flavour="yx"):
    """30 observations in each window, every third rejected by QC."""
    (ydim, ys, _), (xdim, xs, _) = GRIDS[flavour]
    rng = np.random.default_rng(1)
    n = 60
    window = np.repeat([0, 1], n // 2).astype(np.int32)
    qc = np.where(np.arange(n) % 3 == 0, 1, 0).astype(np.int8)
    xr.Dataset({"window": ("obs", window), "obs_value": ("obs", rng.normal(size=n)),
                "omb": ("obs", rng.normal(size=n)), "oma": ("obs", rng.normal(size=n)), "qc_flag": ("obs", qc),
                ydim: ("obs", rng.uniform(ys[0], ys[-1], n)), xdim: ("obs", rng.uniform(xs[0], xs[-1], n))},
               coords={"time": ("obs", np.where(window == 0, 2.5, 7.5), {"units": TIME_UNITS})},
               attrs={"featureType": "point"}).to_netcdf(path)
    return path


def _image_panels(figure):
    """Axes holding a map (an image or a mesh), colour bars left out."""
    from matplotlib.collections import QuadMesh

    return [axis for axis in figure.axes if axis.get_label() != "<colorbar>"
            and (axis.images or any(isinstance(c, QuadMesh) for c in axis.collections))]


@pytest.mark.parametrize("flavour", ["yx", "latlon"])
def test_plot_maps_a_2d_model(cli, tmp_path, flavour):
    write_2d_analysis(tmp_path / "qg_analysis.nc", flavour)
    write_2d_truth(tmp_path / "truth.nc", flavour)
    write_2d_feedback(tmp_path / "feedback.nc", flavour)
    args = ["plot", "qg_analysis.nc", "--json", "--truth", "truth.nc", "--observations", "feedback.nc",
            "--time", "7", "--point", "3,4"]
    result = cli(args, tmp_path)
    assert result.exit_code == SUCCESS, result.stderr
    import json

    written = json.loads(result.stdout)
    assert sorted(written) == ["diagnostics", "maps", "timeseries"]
    for path in written.values():
        data = (tmp_path / path).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    assert not list(tmp_path.glob("*hovmoller*"))
    # Existing pictures are kept without --overwrite; nothing is drawn.
    before = (tmp_path / "qg_analysis_maps.png").read_bytes()
    again = cli(["plot", "qg_analysis.nc"], tmp_path)
    assert again.exit_code == OUTPUT_ERROR
    assert "output file qg_analysis_maps.png exists; pass --overwrite to replace it" in again.stderr
    assert (tmp_path / "qg_analysis_maps.png").read_bytes() == before
    assert not list(tmp_path.glob(".qg_*"))


def test_maps_panels_titles_and_colour_scales(tmp_path):
    from dacli.io import figures
    from dacli.io.netcdf import open_netcdf
    from dacli.run import plot as run

    analysis = open_netcdf(write_2d_analysis(tmp_path / "a.nc"), "analysis")
    grid = run.grid_dims(analysis, "psi", "a.nc")
    assert grid == ("y", "x")
    index = run.time_index(11.2, analysis, "a.nc")  # within half a step (1.25) past the last time, 10
    assert index == 4
    truth = run.truth_maps(write_2d_truth(tmp_path / "t.nc"), analysis, ["psi"], grid, index, "a.nc")
    observed = run.observed_locations(write_2d_feedback(tmp_path / "f.nc"), analysis, grid, index)
    assert observed[None].shape == (20, 2)  # the second window's 30, less 10 rejected

    with_truth = figures.maps(analysis, ["psi"], grid, index, "t", truth, observed)
    panels = _image_panels(with_truth)
    assert len(panels) == 5
    assert [axis.get_title() for axis in panels] == [
        f"psi: {what} at t = 10 days" for what in ("truth", "background", "analysis", "increment", "analysis \u2212 truth")]
    truth_panel, background, analysis_panel, increment, error = (axis.images[0] for axis in panels)
    assert truth_panel.get_clim() == background.get_clim() == analysis_panel.get_clim()
    low, high = increment.get_clim()
    assert low == -high and increment.get_cmap().name == "RdBu_r" and error.get_clim()[0] == -error.get_clim()[1]
    assert panels[0].get_xlabel() == "x [m]" and panels[0].get_ylabel() == "y [m]"
    assert panels[0].get_aspect() == 1.0
    assert [text.get_text() for text in panels[0].get_legend().get_texts()] == ["observations (n=20)"]
    assert all(len(axis.collections[-1].get_offsets()) == 20 for axis in panels)  # on every panel
    assert len([axis for axis in with_truth.axes if axis.get_label() == "<colorbar>"]) == 3
    without_truth = figures.maps(analysis, ["psi"], grid, index, "t")
    assert len(_image_panels(without_truth)) == 3
    transposed = analysis.transpose("time", "x", "y", "window")  # (time, x, y) in the file: still y up
    assert run.grid_dims(transposed, "psi", "a.nc") == ("y", "x")
    flipped = figures.maps(transposed, ["psi"], ("y", "x"), index, "t")
    assert np.array_equal(_image_panels(flipped)[1].images[0].get_array(), analysis_panel.get_array())

    latlon = open_netcdf(write_2d_analysis(tmp_path / "ll.nc", "latlon"), "analysis")
    on_sphere = figures.maps(latlon, ["psi"], ("lat", "lon"), 0, "t")
    panel = _image_panels(on_sphere)[0]
    assert panel.get_xlabel() == "lon [degrees_east]" and panel.get_ylabel() == "lat [degrees_north]"
    assert panel.get_title() == "psi: background at t = 0 days"
    for figure in (with_truth, without_truth, flipped, on_sphere):
        figures._figure().close(figure)


def test_plot_2d_errors(cli, tmp_path):
    write_2d_analysis(tmp_path / "qg.nc")
    late = cli(["plot", "qg.nc", "--time", "13"], tmp_path)
    assert late.exit_code == DATA_ERROR
    assert ("--time 13: analysis file qg.nc holds times 0 .. 10 days (step 2.5); expected a time in that range "
            "(or within half a step of it)") in late.stderr
    assert cli(["plot", "qg.nc", "--time", "11.2", "--out", "edge", "-q"], tmp_path).exit_code == SUCCESS
    point = cli(["plot", "qg.nc", "--point", "3"], tmp_path)
    assert point.exit_code == DATA_ERROR
    assert "--point 3: expected 'iy,ix' (two grid indices, y first) for the 2-D grid (y, x) of analysis file qg.nc" in point.stderr
    outside = cli(["plot", "qg.nc", "--point", "12,0"], tmp_path)
    assert outside.exit_code == DATA_ERROR
    assert "--point 12,0: the grid (y, x) of analysis file qg.nc has shape (12, 16); expected y index 0 .. 11" in outside.stderr
    write_2d_truth(tmp_path / "coarse.nc", nx=8)
    mismatch = cli(["plot", "qg.nc", "--truth", "coarse.nc"], tmp_path)
    assert mismatch.exit_code == DATA_ERROR
    assert ("--truth coarse.nc: its x coordinate (8 points, 0 .. 1.5e+06) differs from that of analysis file qg.nc "
            "(16 points, 0 .. 1.5e+06); expected the same grid") in mismatch.stderr
    not_feedback = cli(["plot", "qg.nc", "--observations", "qg.nc"], tmp_path)
    assert not_feedback.exit_code == DATA_ERROR
    assert "--observations qg.nc: not an observation-space diagnostics (feedback) file for the grid (y, x): no window, qc_flag" in not_feedback.stderr
    three = xr.Dataset({f"u_{kind}": (("time", "z", "y", "x"), np.zeros((2, 2, 3, 4))) for kind in ("analysis", "background")}
                       | {"window_start": ("window", [0.0])}, coords={"time": [0.0, 1.0]})
    three.to_netcdf(tmp_path / "three.nc")
    too_many = cli(["plot", "three.nc"], tmp_path)
    assert too_many.exit_code == DATA_ERROR
    assert "u_analysis has dimensions ('time', 'z', 'y', 'x'), 3 spatial; dacli plot draws models on at most two" in too_many.stderr
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["edge_diagnostics.png", "edge_maps.png", "edge_timeseries.png"]
