"""``dacli plot``: PNGs for 2-D (maps), 1-D and 0-D (no grid) outputs, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from dacli.errors import DATA_ERROR, OUTPUT_ERROR, SUCCESS, USAGE_ERROR, DataError

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--set", "window.count=3", "--set", "method.max_steps=80"]  # test_bad_input's compiled program


@pytest.fixture(scope="module")
def lorenz96_output(cli, module_workspace):
    feedback = ["--set", 'output.observation_diagnostics="lorenz96_obs_diagnostics.nc"']
    result = cli(["assimilate", "configs/lorenz96.toml", "-q", "--overwrite", *FAST, *feedback], module_workspace)
    assert result.exit_code == SUCCESS, result.stderr
    return module_workspace / "lorenz96_analysis.nc"


def test_plot_writes_three_pngs_for_a_gridded_model(cli, module_workspace, lorenz96_output):
    result = cli(["plot", lorenz96_output, "--json", "-o", "figs", "--point", "3"], module_workspace)
    assert result.exit_code == SUCCESS, result.stderr
    import json

    written = json.loads(result.stdout)
    assert sorted(written) == ["diagnostics", "hovmoller", "timeseries"]
    for path in written.values():
        data = (module_workspace / path).read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000  # a real picture, not an empty canvas
    # Existing pictures are kept without --overwrite, and nothing is half-written.
    before = (module_workspace / "figs_hovmoller.png").read_bytes()
    again = cli(["plot", lorenz96_output, "--output", "figs"], module_workspace)
    assert again.exit_code == OUTPUT_ERROR
    assert "dacli: error: output file figs_hovmoller.png exists; pass --overwrite to replace it" in again.stderr
    assert (module_workspace / "figs_hovmoller.png").read_bytes() == before
    assert not list(module_workspace.glob(".figs_*"))
    assert cli(["plot", lorenz96_output, "-o", "figs", "--overwrite", "-q"], module_workspace).exit_code == SUCCESS
    # The spelling before issue 18 is refused, naming the new one; nothing is drawn.
    old = cli(["plot", lorenz96_output, "--out", "old"], module_workspace)
    assert old.exit_code == USAGE_ERROR
    assert "dacli: error: --out is now -o/--output PREFIX (the prefix of the PNG files)" in old.stderr
    assert not list(module_workspace.glob("old_*"))


def test_1d_pictures_show_the_runs_truth_and_observations(module_workspace, lorenz96_output):
    """Without options, the run's truth file and feedback file join the Hovmoller diagram and the time series;
    Lorenz time stays model time; the diagnostics number the windows from 0, as --windows does."""
    from matplotlib.lines import Line2D

    from dacli.io.figures import _figure
    from dacli.run import plot as run

    with xr.open_dataset(lorenz96_output) as analysis:
        used = int(analysis.attrs["dacli_observations_used"])
        windows = analysis.sizes["window"]
    inputs = run.read_inputs(lorenz96_output, "3", None, None, None)
    assert inputs.truth["x"].shape == (inputs.dataset.sizes["time"], 40) and np.isfinite(inputs.truth["x"]).all()
    assert len(inputs.observed["x"]) == used and inputs.observed["x"].departure is not None

    diagram = run.draw("hovmoller", inputs)
    titles = [axis.get_title() for axis in diagram.axes if axis.get_label() != "<colorbar>"]
    assert titles == ["x: truth", "x: background", "x: analysis", "x: increment", "x: analysis \u2212 truth",
                      f"x: O\u2212B (n={used})"]
    assert diagram.get_suptitle().endswith("\nt = 0 to 0.6")  # model time: no calendar date for Lorenz-96
    gridded = diagram.axes[[a.get_title() for a in diagram.axes].index(f"x: O\u2212B (n={used})")].images[0]
    low, high = gridded.get_clim()
    assert low == -high and gridded.get_cmap().name == "RdBu_r"
    assert np.isfinite(gridded.get_array()).sum() == used  # gridded observations: one cell each

    series = run.draw("timeseries", inputs)
    lines = {line.get_label(): line for line in series.axes[0].get_lines() if isinstance(line, Line2D)}
    at_site = inputs.observed["x"].location[:, 0] == 3
    assert lines["truth"].get_ydata() == pytest.approx(inputs.truth["x"][:, 3])
    assert f"observations (n={at_site.sum()})" in lines and 0 < at_site.sum() < used
    assert series.axes[0].get_title(loc="left") == "x at site = 3"

    diagnostics = run.draw("diagnostics", inputs)
    panels = {axis.get_title(): axis for axis in diagnostics.axes if axis.get_visible()}
    assert list(panels) == ["RMSE against the truth", "cost per window", "O\u2212B and O\u2212A per window",
                            f"iterations and convergence ({windows} of {windows} converged)",
                            "gradient norm at the analysis"]
    for axis in panels.values():
        assert axis.get_xlabel() == "window (from 0, as --windows counts)"
    assert list(panels["RMSE against the truth"].get_lines()[0].get_xdata()) == list(range(windows))
    departures = {line.get_label(): line for line in panels["O\u2212B and O\u2212A per window"].get_lines()}
    assert sorted(departures) == sorted(["O\u2212B RMS", "O\u2212A RMS", "O\u2212B mean", "O\u2212A mean", "_child4"])
    assert departures["O\u2212A RMS"].get_ydata() == pytest.approx(inputs.dataset["oma_rms"].values)
    bars = panels[f"iterations and convergence ({windows} of {windows} converged)"].patches
    assert [bar.get_height() for bar in bars] == list(inputs.dataset["iterations"].values)
    assert diagnostics.get_suptitle().endswith(f"\nwindows 0 to {windows - 1}: t = 0 to 0.6")
    for figure in (diagram, series, diagnostics):
        _figure().close(figure)


def test_times_read_as_dates_in_the_files_calendar_and_windows_as_windows_counts(lorenz96_output):
    """A calendar time reads as dates in its own calendar; a time whose long_name says it is dimensionless
    (Lorenz's default) reads as model time; a file written for --windows 3:6 numbers its windows 3, 4, 5 (its
    window coordinate, or window.select in a file without one)."""
    import json

    from dacli.io.netcdf import open_netcdf
    from dacli.run.plot_inputs import figure_times, requested_time

    analysis = open_netcdf(lorenz96_output, "analysis")
    lorenz = figure_times(analysis)
    assert lorenz.calendar is None and lorenz.text(0.35) == "t = 0.35" and lorenz.axis_label() == "time"
    assert list(lorenz.window_numbers) == [0, 1, 2]
    config = json.loads(analysis.attrs["dacli_config"])
    config["window"]["select"] = "3:6"
    analysis.attrs["dacli_config"] = json.dumps(config)
    # a calendar time ([time] units set): long_name "time", not "dimensionless model time (...)"
    analysis["time"].attrs.update(
        units="days since 2000-01-01 00:00:00", calendar="360_day", long_name="time"
    )
    assert list(figure_times(analysis.assign_coords(window=[3, 4, 5])).window_numbers) == [3, 4, 5]
    analysis = analysis.drop_vars("window")
    dated = figure_times(analysis)
    assert list(dated.window_numbers) == [3, 4, 5]
    assert dated.text(30.25) == "2000-02-01 06:00"  # 360-day calendar: day 30 is the 1st of February
    assert dated.window_text(1) == "window 4 (2000-01-01 04:48 to 2000-01-01 09:36)"
    assert dated.axis_label() == "date (360_day calendar)"
    analysis["time"].attrs.update(units="1")
    assert figure_times(analysis).text(2) == "t = 2"
    with pytest.raises(DataError, match="^--time 2000-01-02: analysis file l96.nc has a dimensionless model time; "
                       "expected a number of model time units$"):
        requested_time("2000-01-02", analysis, "l96.nc")


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
    far = cli(["plot", lorenz96_output, "--point", "40", "-o", "far"], module_workspace)
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


def _maps_of(tmp_path, flavour="yx", time=11.2, truth=True, feedback=True):
    """The maps figure of the synthetic 2-D file, drawn through the library (run.read_inputs, run.draw)."""
    from dacli.run import plot as run

    analysis = write_2d_analysis(tmp_path / f"{flavour}.nc", flavour)
    inputs = run.read_inputs(analysis, None, time, write_2d_truth(tmp_path / f"t_{flavour}.nc", flavour) if truth else None,
                             write_2d_feedback(tmp_path / f"f_{flavour}.nc", flavour) if feedback else None)
    return inputs, run.draw("maps", inputs)


def test_maps_panels_titles_and_colour_scales(tmp_path):
    from dacli.io.figures import _figure
    from dacli.io.netcdf import open_netcdf
    from dacli.run import plot as run

    analysis = open_netcdf(write_2d_analysis(tmp_path / "a.nc"), "analysis")
    grid = run.grid_dims(analysis, "psi", "a.nc")
    assert grid == ("y", "x")
    index = run.time_index(11.2, analysis, "a.nc")  # within half a step (1.25) past the last time, 10
    assert index == 4
    assert run.time_index("2000-01-08 12:00", analysis, "a.nc") == run.time_index("7.4", analysis, "a.nc") == 3
    with pytest.raises(DataError, match=r"^--time 2000-01-30: analysis file a.nc holds times 0 .. 10 days \(step 2.5\); "
                       r"expected a time in that range \(or within half a step of it\): 2000-01-01 00:00 to 2000-01-11 00:00$"):
        run.time_index("2000-01-30", analysis, "a.nc")
    with pytest.raises(DataError, match="^--time 2000-02-30: expected a number of days or a date in the standard calendar "
                       "of analysis file a.nc, such as 2000-01-01 00:00$"):
        run.time_index("2000-02-30", analysis, "a.nc")
    inputs, with_truth = _maps_of(tmp_path)
    assert inputs.index == 4 and inputs.truth["psi"].shape == (5, 12, 16)
    # The second window's 30 observations, less the 10 rejected by QC; the first window's are left out.
    assert len(inputs.observed["psi"]) == 40 and set(inputs.observed["psi"].window) == {0, 1}

    panels = _image_panels(with_truth)
    assert len(panels) == 5
    assert [axis.get_title() for axis in panels] == [
        f"psi: {what}" for what in ("truth", "background", "analysis", "increment", "analysis \u2212 truth")]
    # Issue 18: the date of the mapped time and its window (numbered from 0, as --windows counts) in the title.
    assert with_truth.get_suptitle() == ("2-D test (yx)\n2000-01-11 00:00, window 1 (2000-01-06 00:00 to "
                                         "2000-01-11 00:00)")
    truth_panel, background, analysis_panel, increment, error = (axis.images[0] for axis in panels)
    assert truth_panel.get_clim() == background.get_clim() == analysis_panel.get_clim()
    low, high = increment.get_clim()
    assert low == -high and increment.get_cmap().name == "RdBu_r" and error.get_clim()[0] == -error.get_clim()[1]
    assert panels[0].get_xlabel() == "x [m]" and panels[0].get_ylabel() == "y [m]"
    assert panels[0].get_aspect() == 1.0
    assert [text.get_text() for text in panels[0].get_legend().get_texts()] == ["observations (n=20)"]
    # Observed values over the three states, on their colour scale; O-B alone on a sixth panel.
    over = [axis.collections[-1] for axis in panels[:3]]
    assert all(len(c.get_offsets()) == 20 and c.norm.vmin == truth_panel.norm.vmin for c in over)
    departures = with_truth.axes[[a.get_title() for a in with_truth.axes].index("psi: O\u2212B (n=20)")]
    scatter = departures.collections[0]
    assert scatter.get_cmap().name == "RdBu_r" and scatter.norm.vmin == -scatter.norm.vmax > -10
    omb = write_2d_feedback(tmp_path / "again.nc")
    with xr.open_dataset(omb) as feedback:
        used = (feedback["qc_flag"].values == 0) & (feedback["window"].values == 1)
        expected = np.sort(feedback["omb"].values[used])
    assert np.allclose(np.sort(scatter.get_array()), expected)
    assert scatter.norm.vmax == pytest.approx(np.percentile(np.abs(expected), 99))
    assert len([axis for axis in with_truth.axes if axis.get_label() == "<colorbar>"]) == 4

    _, without_truth = _maps_of(tmp_path, truth=False, feedback=False)
    assert len(_image_panels(without_truth)) == 3 and len(without_truth.axes) == 5  # 3 maps, 2 colour bars
    transposed = analysis.transpose("time", "x", "y", "window")  # (time, x, y) in the file: still y up
    assert run.grid_dims(transposed, "psi", "a.nc") == ("y", "x")
    from dacli.io.figure_maps import maps

    flipped = maps(transposed, ["psi"], ("y", "x"), index, "t", inputs.times)
    assert np.array_equal(_image_panels(flipped)[1].images[0].get_array(), analysis_panel.get_array())
    for figure in (with_truth, without_truth, flipped):
        _figure().close(figure)


def test_lat_lon_maps_have_degree_ticks_and_coastlines_only_with_cartopy(tmp_path, caplog, monkeypatch):
    """Degree tick labels always; coastlines drawn from cartopy's Natural Earth feature when it is importable,
    else the same maps and one INFO line saying why (CI has no cartopy: a stand-in feature plays it)."""
    import logging
    from types import SimpleNamespace

    from shapely.geometry import LineString, Polygon

    from dacli.io import figure_geography
    from dacli.io.figures import _figure

    assert [figure_geography.latitude_text(v) for v in (30, -12.5, 0)] == ["30°N", "12.5°S", "0°"]
    assert [figure_geography.longitude_text(v) for v in (-60, 20, 300, 180, 0)] == ["60°W", "20°E", "60°W", "180°", "0°"]
    monkeypatch.setattr(figure_geography, "cartopy_feature", None)
    with caplog.at_level(logging.INFO, logger="dacli"):
        _, plain = _maps_of(tmp_path, "latlon", time=0.0, feedback=False)
    assert [r.getMessage() for r in caplog.records if "coastlines" in r.getMessage()] == [
        "maps drawn without coastlines: cartopy is not installed (pip install 'dacli[maps]')"]
    panel = _image_panels(plain)[0]
    assert panel.get_xlabel() == "longitude" and panel.get_ylabel() == "latitude"
    assert panel.get_title() == "psi: truth" and "2000-01-01 00:00, window 0 (" in plain.get_suptitle()
    plain.draw_without_rendering()
    assert "30°N" in [label.get_text() for label in panel.get_yticklabels()]
    assert "20°W" in [label.get_text() for label in panel.get_xticklabels()]
    assert panel.get_aspect() == pytest.approx(1 / np.cos(np.radians(46.5)))
    assert not [c for axis in plain.axes for c in axis.collections if c.get_label() == "coastline"]

    asked = []

    class Coastlines:
        def __init__(self, category, name, scale):
            asked.append((category, name, scale))

        def intersecting_geometries(self, box):
            asked.append(tuple(round(v, 3) for v in box))
            return [LineString([(-10, 40), (0, 50)]), Polygon([(5, 35), (10, 35), (10, 40)])]

    monkeypatch.setattr(figure_geography, "cartopy_feature", SimpleNamespace(NaturalEarthFeature=Coastlines))
    _, coasts = _maps_of(tmp_path, "latlon", time=0.0, feedback=False)
    assert asked == [("physical", "coastline", "50m"), (-21.5, 26.5, 28.5, 64.5)]
    lines = [c for axis in _image_panels(coasts) for c in axis.collections if c.get_label() == "coastline"]
    assert len(lines) == 5 and [len(s) for s in lines[0].get_segments()] == [2, 4]  # a line and a closed ring
    assert _image_panels(coasts)[0].get_xlim() == panel.get_xlim()  # the map's extent is kept
    for figure in (plain, coasts):
        _figure().close(figure)


def test_marker_size_shrinks_with_density(tmp_path):
    """A few observations get large markers, thousands small ones, within readable bounds."""
    from dacli.io import figure_observations as marks
    from dacli.io.figure_maps import maps
    from dacli.io.figures import _figure

    sizes = [marks.marker_size(n, 60_000.0, marks.ON_THEIR_OWN) for n in (1, 10, 1_000, 10_000, 10**6)]
    assert sizes == [36.0, 36.0, 30.0, 3.0, 1.0]
    inputs, sparse = _maps_of(tmp_path)
    rng = np.random.default_rng(0)
    dense = marks.ObservedPoints(time=np.full(5000, 10.0), location=rng.uniform((0, 0), (1.1e6, 1.5e6), (5000, 2)),
                                 value=rng.normal(size=5000), window=np.ones(5000, int), departure=rng.normal(size=5000))
    crowded = maps(inputs.dataset, ["psi"], ("y", "x"), 4, "t", inputs.times, truth={"psi": inputs.truth["psi"][4]},
                   observed={"psi": dense}, window=1)

    def sizes_of(figure):
        from matplotlib.collections import PathCollection

        return [float(c.get_sizes()[0]) for axis in figure.axes for c in axis.collections
                if isinstance(c, PathCollection)]

    assert len(sizes_of(sparse)) == len(sizes_of(crowded)) == 4  # three states and the O-B panel
    assert all(a > b for a, b in zip(sizes_of(sparse), sizes_of(crowded), strict=True))
    assert min(sizes_of(crowded)) >= marks.SMALLEST_MARKER
    for figure in (sparse, crowded):
        _figure().close(figure)


def test_diagnostics_mark_unconverged_windows_and_the_outer_loops(tmp_path):
    """Iterations coloured by convergence (a legend only when both occur), plain-number log ticks, the
    incremental formulation's outer-loop panel; windows numbered by the file's window coordinate."""
    from dacli.io.figure_diagnostics import window_diagnostics
    from dacli.io.figures import _figure
    from dacli.io.netcdf import open_netcdf
    from dacli.run.plot_inputs import figure_times

    dataset = open_netcdf(write_2d_analysis(tmp_path / "a.nc"), "analysis").assign(
        iterations=("window", [12, 40]), converged=("window", np.array([1, 0], np.int8)),
        outer_cost=(("window", "outer_loop"), [[400.0, 60.0], [300.0, 50.0]])).assign_coords(window=[7, 8])
    figure = window_diagnostics(dataset, "t", figure_times(dataset))
    panels = {axis.get_title(): axis for axis in figure.axes if axis.get_visible()}
    assert list(panels) == ["RMSE against the truth", "cost per window", "iterations and convergence (1 of 2 converged)",
                            "cost per outer loop, every window"]
    bars = panels["iterations and convergence (1 of 2 converged)"]
    assert [(bar.get_x() + bar.get_width() / 2, bar.get_height()) for bar in bars.patches] == [(7, 12), (8, 40)]
    assert [text.get_text() for text in bars.get_legend().get_texts()] == ["converged", "not converged"]
    assert bars.patches[0].get_facecolor() != bars.patches[1].get_facecolor()
    assert figure.get_suptitle() == "t\nwindows 7 to 8: 2000-01-01 00:00 to 2000-01-11 00:00"
    figure.draw_without_rendering()
    assert "100" in [label.get_text() for label in panels["cost per window"].get_yticklabels()]
    outer = panels["cost per outer loop, every window"]
    assert [label.get_text() for label in outer.get_xticklabels()] == ["1", "2", "final"]
    assert list(outer.get_lines()[-1].get_ydata()) == pytest.approx([np.sqrt(400 * 300), np.sqrt(60 * 50), np.sqrt(30 * 25)])
    _figure().close(figure)


def test_plot_2d_errors(cli, tmp_path):
    write_2d_analysis(tmp_path / "qg.nc")
    late = cli(["plot", "qg.nc", "--time", "13"], tmp_path)
    assert late.exit_code == DATA_ERROR
    assert ("--time 13: analysis file qg.nc holds times 0 .. 10 days (step 2.5); expected a time in that range "
            "(or within half a step of it)") in late.stderr
    assert cli(["plot", "qg.nc", "--time", "11.2", "-o", "edge", "-q"], tmp_path).exit_code == SUCCESS
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
