"""The files dacli writes are CF-1.11 and ACDD-1.3: checked with the IOOS compliance checker, cf_xarray
and by hand.

Every kind of file (issue 18): the analysis of a short Lorenz-96 run, its observation-space
diagnostics, two window ranges merged, and ``dacli simulate``'s gridded (Lorenz-96), scattered
(Lorenz-63) and IODA (Lorenz-96) observations with their background and truth; the IODA feedback
tree; the forecast file is checked in test_forecast.py with the same :func:`checker_findings`.
Each kind's findings are pinned: no CF error, and every CF warning and ACDD failure that is left
is listed with the reason it cannot (or need not) be fixed.
"""

from __future__ import annotations

import json
import re

import netCDF4
import numpy as np
import pytest
import xarray as xr

from dacli import __version__
from dacli.errors import SUCCESS

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ioos_sos checker is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def files(cli, module_workspace):
    """{kind: path} of an analysis (with its observation diagnostics), a merge of it with the next
    window range, and simulate's outputs for Lorenz-96 (gridded, IODA) and Lorenz-63 (scattered)."""
    ws = module_workspace
    (ws / "out").mkdir()
    run = ["assimilate", "configs/lorenz96.toml", "--set", "method.max_steps=80", "-q"]
    result = cli(
        [
            *run,
            "--set",
            "window.count=3",
            "--set",
            "output.path=out/analysis.nc",
            "--set",
            'output.institution="dacli tests"',
            "--set",
            "output.observation_diagnostics=out/feedback.nc",
        ],
        ws,
    )
    assert result.exit_code == SUCCESS, result.stderr
    # window 3 of the 4-window schedule, from the analysis at its start: the next job-array range
    result = cli(
        [
            *run,
            "--set",
            "window.count=4",
            "--windows",
            "3:4",
            "--set",
            "output.path=out/part.nc",
            "--set",
            'output.institution="dacli tests"',
            "--set",
            "background.path=out/analysis.nc",
        ],
        ws,
    )
    assert result.exit_code == SUCCESS, result.stderr
    result = cli(["merge", "-o", "out/merged.nc", "out/part.nc", "out/analysis.nc", "-q"], ws)
    assert result.exit_code == SUCCESS, result.stderr
    paths = {name: ws / "out" / f"{name}.nc" for name in ("analysis", "feedback", "merged")}
    runs = (
        ("lorenz96", "0.6", "gridded"),
        ("lorenz63", "1.0", "scattered"),
        ("lorenz96", "0.6", "ioda"),
    )
    for model, duration, layout in runs:  # 0.6 as in test_cli: compiled once
        args = [
            "simulate",
            f"configs/{model}.toml",
            "--set",
            f"simulate.duration={duration}",
            "--set",
            f'observations.layout="{layout}"',
            "-q",
        ]
        for kind in ("observations", "background", "truth"):
            name = f"{model}_{kind}" if layout != "ioda" else f"{model}_ioda_{kind}"
            paths[name] = ws / "out" / f"{name}.nc"
            args += ["--set", f"{kind}.path=out/{name}.nc"]
        result = cli(args, ws)
        assert result.exit_code == SUCCESS, result.stderr
    return paths


@pytest.fixture(scope="module")
def ioda_feedback(module_workspace):
    """An IODA v3 feedback file (dacli.io.ioda_feedback) of five uses of two variables."""
    from dacli.io.ioda_feedback import feedback_tree
    from dacli.io.metadata import Discovery
    from dacli.io.netcdf import write_netcdf_atomically
    from dacli.io.times import TimeAxis

    tree = feedback_tree(
        np.arange(5.0),
        np.ones(5),
        np.zeros(5),
        np.ones(5),
        np.array([0, 0, 1, 3, 0]),
        np.array([0.25, 0.25, 0.5, 0.75, 1.0]),
        {"latitude": np.arange(5.0), "longitude": np.arange(5.0) + 10},
        ["ssh", "sst", "ssh", "sst", "ssh"],
        TimeAxis("days since 2020-01-01 00:00:00"),
        {"ssh": "m", "sst": "K"},
        discovery=Discovery("dacli tests"),
    )
    return write_netcdf_atomically(tree, module_workspace / "ioda_feedback.nc", overwrite=True)


# The checker itself crashes in these checks (its crashes are reported as "checker exceptions",
# not results): check_domain_variables on any CF point dataset without a cf_role variable
# (cf/util.py is_dataset_valid_ragged_array_repr_featureType indexes an empty list; CF 9.5 gives
# points no cf_role, and the only value that avoids the crash, point_id, is a CF error);
# check_invalid_same_named_dimension_across_groups on any file of two groups without a "time"
# dimension in each (IODA: groups share the root's Location).
POINT_CRASH = {"check_domain_variables"}
GROUPS_CRASH = {"check_invalid_same_named_dimension_across_groups"}


def checker_findings(path, tmp_path, capsys):
    """{"cf": (errors, warnings), "acdd": (high, medium, low), "crashed": checks}: each a list of
    "<check>: <message>" for every failed CF-1.11 / ACDD-1.3 check of ``path``."""
    runner = pytest.importorskip("compliance_checker.runner")
    runner.CheckSuite.load_all_available_checkers()
    found, crashed = {}, set()
    for test in ("cf:1.11", "acdd:1.3"):
        report = tmp_path / f"{path.stem}_{test.replace(':', '')}.json"
        capsys.readouterr()
        runner.ComplianceChecker.run_checker(
            str(path), [test], 0, "strict", output_filename=str(report), output_format="json"
        )
        crashed |= set(
            re.findall(rf"^{re.escape(test)}\.(\w+): ", capsys.readouterr().err, flags=re.M)
        )
        results = json.loads(report.read_text())[test]
        found[test] = tuple(
            tuple(
                sorted(
                    f"{item['name']}: {msg}"
                    for item in results[key]
                    if item["value"][0] != item["value"][1]
                    for msg in item["msgs"] or ["(no message)"]
                )
            )
            for key in ("high_priorities", "medium_priorities", "low_priorities")
        )
    return {
        "cf": found["cf:1.11"][:2],
        "acdd": found["acdd:1.3"],
        "crashed": crashed,
        "cf_low": found["cf:1.11"][2],
    }


def compliance(path, tmp_path, capsys):
    """(CF errors, CF warnings, checks that crashed) of ``path``."""
    findings = checker_findings(path, tmp_path, capsys)
    return (*findings["cf"], findings["crashed"])


# --- what is left, and why -------------------------------------------------------------------------
# CF warning: the checker takes every axis = "X" coordinate for a longitude (Lorenz-96's site index).
SITE_IS_NO_LONGITUDE = (
    "§4.2 Longitude Coordinate: longitude variable 'site' should define valid units for longitude"
)
# CF warning: IODA's layout attributes begin with "_" (JCSDA's names; JEDI needs them).
IODA_NAMES = tuple(
    f"§2.3 Naming Conventions: global attribute {name} should begin with a letter and be composed "
    "of letters, digits, and underscores"
    for name in ("_ioda_layout", "_ioda_layout_version")
)
# ACDD "recommended" attributes only a user can give ([output] creator_name ...; left out, never
# "unknown"), an identifier without a naming authority, a publisher (dacli publishes nothing) and a
# vertical extent (no model has a vertical axis).
USER_GIVEN = [
    "acknowledgment/acknowledgement",
    "id",
    "naming_authority",
    "creator_name",
    "creator_url",
    "creator_email",
    "project",
    "license",
    "publisher_name",
    "publisher_url",
    "publisher_email",
    "geospatial_vertical_min",
    "geospatial_vertical_max",
    "geospatial_vertical_positive",
    "geospatial_bounds_vertical_crs",
]
# ... and where there is no latitude/longitude (Lorenz models), no geospatial extent at all.
NO_PLACE = [
    "geospatial_bounds",
    "geospatial_lat_min",
    "geospatial_lat_max",
    "geospatial_lon_min",
    "geospatial_lon_max",
    "geospatial_bounds_crs",
]


def medium(*, place=True, institution=False, time=True, one_time=False):
    """The ACDD medium failures: the missing global attributes and the extents not checkable
    (``one_time``: a single state has no time resolution)."""
    names = [*USER_GIVEN, *([] if institution else ["institution"]), *([] if place else NO_PLACE)]
    names += ["time_coverage_resolution"] if one_time else []
    found = {f"Global Attributes: {name} not present" for name in names}
    if not place:
        found |= {
            f"geospatial_{c}_extents_match: geospatial_{c}_min/max attribute not found, CF-1.6 spec "
            f"chapter 4.1"
            for c in ("lat", "lon")
        }
    if not time:
        found |= {
            "time_coverage_extents_match: Could not find time variable to test extent of "
            "time_coverage_start/time_coverage_end, see CF-1.6 spec chapter 4.4"
        }
    return found


# ACDD high: "standard_name" where CF's table has no name for the quantity (a Lorenz variable, a
# cost, an iteration count, a departure statistic, a grid index): CF says to leave it out, and an
# invented one is a CF error.
NO_STANDARD_NAME = {
    "analysis": [
        "analysis_rmse",
        "background_rmse",
        "cost_background_final",
        "cost_background_initial",
        "cost_final",
        "cost_initial",
        "cost_model_error_final",
        "cost_model_error_initial",
        "cost_observation_final",
        "cost_observation_initial",
        "gradient_norm",
        "iterations",
        "observations_rejected",
        "oma_mean",
        "oma_rms",
        "omb_mean",
        "omb_rms",
        "site",
        "x_analysis",
        "x_analysis_window_end",
        "x_analysis_window_start",
        "x_background",
        "x_increment",
    ],
    "feedback": [
        "hofx_analysis",
        "hofx_background",
        "obs_error",
        "obs_value",
        "oma",
        "omb",
    ],
    "lorenz96_observations": ["site", "x", "x_error"],
    "lorenz96_background": ["site", "x"],
    "lorenz63_observations": ["x", "x_error", "z", "z_error"],
    "lorenz63_background": ["x", "y", "z"],
}
NO_STANDARD_NAME["merged"] = NO_STANDARD_NAME["analysis"]
NO_STANDARD_NAME["lorenz96_truth"] = NO_STANDARD_NAME[
    "lorenz96_ioda_background"
] = NO_STANDARD_NAME["lorenz96_ioda_truth"] = NO_STANDARD_NAME["lorenz96_background"]
NO_STANDARD_NAME["lorenz63_truth"] = NO_STANDARD_NAME["lorenz63_background"]

# kind -> (CF warnings, ACDD medium failures, checks that crash)
LEFT = {
    "analysis": ({SITE_IS_NO_LONGITUDE}, medium(place=False, institution=True), set()),
    "merged": ({SITE_IS_NO_LONGITUDE}, medium(place=False, institution=True), set()),
    "feedback": (set(), medium(place=False, institution=True), POINT_CRASH),
    "lorenz96_observations": ({SITE_IS_NO_LONGITUDE}, medium(place=False), set()),
    "lorenz96_background": ({SITE_IS_NO_LONGITUDE}, medium(place=False, one_time=True), set()),
    "lorenz96_truth": ({SITE_IS_NO_LONGITUDE}, medium(place=False), set()),
    "lorenz63_observations": (set(), medium(place=False), POINT_CRASH),
    "lorenz63_background": (set(), medium(place=False, one_time=True), set()),
    "lorenz63_truth": (set(), medium(place=False), set()),
    "lorenz96_ioda_observations": (set(IODA_NAMES), medium(place=False, time=False), GROUPS_CRASH),
    "lorenz96_ioda_background": ({SITE_IS_NO_LONGITUDE}, medium(place=False, one_time=True), set()),
    "lorenz96_ioda_truth": ({SITE_IS_NO_LONGITUDE}, medium(place=False), set()),
}


@pytest.mark.parametrize("name", sorted(LEFT))
def test_both_checkers_on_every_kind_of_file(files, name, tmp_path, capsys):
    findings = checker_findings(files[name], tmp_path, capsys)
    warnings, acdd_medium, crashes = LEFT[name]
    assert findings["cf"] == ((), tuple(sorted(warnings)))
    high = {
        f'variable "{v}" missing the following attributes:: standard_name'
        for v in NO_STANDARD_NAME.get(name, [])
    }
    assert set(findings["acdd"][0]) == high
    assert set(findings["acdd"][1]) == acdd_medium
    assert findings["crashed"] == crashes
    # suggested (low) only: who contributed, platform/instrument vocabularies, publication date
    assert all(
        item.startswith(("Global Attributes:", "date_issued_is_iso:"))
        for item in findings["acdd"][2]
    )


def test_global_attributes_and_provenance(files):
    with netCDF4.Dataset(files["analysis"]) as nc:
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    assert attrs["Conventions"] == "CF-1.11, ACDD-1.3"
    assert attrs["title"] == "Lorenz-96 strong-constraint 4DVar twin experiment"
    assert attrs["institution"] == "dacli tests"
    import diffrax
    import jax
    import optimistix

    assert attrs["source"] == (
        f"dacli {__version__} (jax {jax.__version__}, diffrax {diffrax.__version__}, "
        f"optimistix {optimistix.__version__})"
    )
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: dacli ", attrs["history"])
    assert "Le Dimet & Talagrand (1986)" in attrs["references"]
    config = json.loads(attrs["dacli_config"])
    assert config["method"]["max_steps"] == 80 and config["window"]["count"] == 3
    assert attrs["dacli_method"] == "strong4dvar"
    assert attrs["dacli_minimiser"] == "LBFGS"
    assert attrs["dacli_forward_adjoint"] == "RecursiveCheckpointAdjoint"
    assert attrs["dacli_minimiser_adjoint"] == "ImplicitAdjoint"
    assert attrs["dacli_precision"] == "float64"
    assert re.match(r"^(cpu|gpu|cuda|rocm|tpu):", attrs["dacli_device"])
    assert attrs["dacli_windows"] == 3 and attrs["dacli_converged_windows"] == 3
    assert attrs["dacli_observations_used"] > 0


def test_coordinates_and_variables(files):
    with netCDF4.Dataset(files["analysis"]) as nc:
        time, site = nc["time"], nc["site"]
        assert time.standard_name == "time" and time.axis == "T" and time.calendar == "standard"
        assert time.units == "days since 2000-01-01 00:00:00"
        assert site.axis == "X" and site.units == "1" and site.long_name
        for coordinate in (time, site):  # CF: no _FillValue on coordinate variables
            assert "_FillValue" not in coordinate.ncattrs()
            assert "missing_value" not in coordinate.ncattrs()
        for name in (
            "x_analysis",
            "x_background",
            "x_increment",
            "x_analysis_window_start",
            "x_analysis_window_end",
        ):
            variable = nc[name]
            assert variable.dimensions[-1] == "site"
            assert np.isnan(variable.getncattr("_FillValue"))
            assert variable.units == "1" and variable.long_name
        for name in (
            "cost_initial",
            "cost_final",
            "cost_background_final",
            "cost_observation_final",
            "iterations",
            "gradient_norm",
            "observations_used",
            "observations_rejected",
            "omb_rms",
            "oma_rms",
        ):
            assert nc[name].dimensions == ("window",) and nc[name].long_name, name
        assert list(nc["converged"].flag_values) == [0, 1]
        assert nc["converged"].flag_meanings == "not_converged converged"
        assert nc["window_start"].units == time.units

    with xr.open_dataset(files["analysis"], decode_times=False) as data:
        assert data.sizes == {"time": 3 * 4 + 1, "site": 40, "window": 3}
        np.testing.assert_allclose(data["x_increment"], data["x_analysis"] - data["x_background"])
        np.testing.assert_allclose(data["time"], 0.05 * np.arange(13), atol=1e-12)
        np.testing.assert_allclose(data["window_start"], [0.0, 0.2, 0.4], atol=1e-12)
        np.testing.assert_allclose(
            data["cost_final"], data["cost_background_final"] + data["cost_observation_final"]
        )
        assert np.all(data["cost_final"] < data["cost_initial"])
        assert np.all(data["oma_rms"] < data["omb_rms"])
        # The end-of-window analysis of one window is the start of the next one's background.
        np.testing.assert_allclose(
            data["x_analysis_window_end"][0], data["x_background"].sel(time=0.2, method="nearest")
        )


def test_simulate_outputs_have_history_and_coordinate_names(files):
    for name in ("lorenz96_observations", "lorenz96_truth", "lorenz63_observations"):
        with netCDF4.Dataset(files[name]) as nc:
            assert nc.Conventions == "CF-1.11, ACDD-1.3"
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: ", nc.history)
            for coordinate in ("time", "site"):
                if coordinate in nc.variables:
                    variable = nc[coordinate]
                    assert "_FillValue" not in variable.ncattrs()
                    assert (
                        "long_name" in variable.ncattrs() or "standard_name" in variable.ncattrs()
                    )
    with netCDF4.Dataset(files["lorenz63_observations"]) as nc:
        assert nc.featureType == "point"
        assert nc["x"].dimensions == ("obs",)


def test_ioda_feedback_passes_both_checkers(ioda_feedback, tmp_path, capsys):
    findings = checker_findings(ioda_feedback, tmp_path, capsys)
    assert findings["cf"] == ((), IODA_NAMES)
    assert findings["acdd"][0] == ()
    # MetaData/latitude and dateTime are in a group, where the checker does not look for extents
    place = {
        f"geospatial_{c}_extents_match: Could not find {c} variable to test extent of geospatial_{c}_min/max, "
        f"see CF-1.6 spec chapter 4.{n}"
        for c, n in (("lat", 1), ("lon", 2))
    }
    assert set(findings["acdd"][1]) == medium(time=False) | place
    assert findings["crashed"] == GROUPS_CRASH
    with netCDF4.Dataset(ioda_feedback) as nc:
        assert nc.getncattr("_ioda_layout") == "ObsGroup" and set(nc.groups) >= {
            "MetaData",
            "ObsValue",
            "hofx0",
        }
        assert (nc.geospatial_lat_min, nc.geospatial_lat_max, nc.geospatial_lon_max) == (
            0.0,
            4.0,
            14.0,
        )
        assert (nc.time_coverage_start, nc.time_coverage_end) == (
            "2020-01-01T06:00:00Z",
            "2020-01-02T00:00:00Z",
        )
        assert nc.time_coverage_duration == "PT18H"


def test_discovery_attributes_are_filled_from_the_run(files):
    with xr.open_dataset(files["analysis"], decode_times=False) as data:
        attrs = data.attrs
    assert attrs["summary"].startswith(
        "Analysis of the lorenz96 model by strong4dvar (nonlinear formulation) "
    )
    assert (
        "3 assimilation windows from model time 0 to 0.6 (days since 2000-01-01 00:00:00)"
        in attrs["summary"]
    )
    assert attrs["keywords"] == "data assimilation, analysis, strong4dvar, lorenz96"
    assert attrs["processing_level"] == "model analysis (variational data assimilation)"
    for key in ("date_created", "date_modified", "date_metadata_modified"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", attrs[key]), key
    assert (attrs["time_coverage_start"], attrs["time_coverage_end"]) == (
        "2000-01-01T00:00:00Z",
        "2000-01-01T14:24:00Z",
    )
    assert (attrs["time_coverage_duration"], attrs["time_coverage_resolution"]) == (
        "PT14H24M",
        "PT1H12M",
    )
    assert not any(
        key.startswith("geospatial_") for key in attrs
    )  # Lorenz-96 has no place on Earth
    assert "unknown" not in attrs.values() and "creator_name" not in attrs
    assert attrs["standard_name_vocabulary"] == "CF Standard Name Table v93"


def test_lorenz_time_says_it_is_dimensionless(files):
    label = "dimensionless model time (one model time unit written as one day since 2000-01-01 00:00:00)"
    for name in ("analysis", "lorenz63_observations", "lorenz96_truth"):
        with xr.open_dataset(files[name]) as data:  # still CF time: xarray decodes it
            assert data["time"].attrs["long_name"] == label, name
            assert data["time"].dtype.kind == "M"
            assert "Model time is dimensionless" in data.attrs["comment"]


def test_window_coordinate_and_the_merged_union(files):
    with xr.open_dataset(files["analysis"], decode_times=False) as analysis:
        np.testing.assert_array_equal(analysis["window"], [0, 1, 2])
        assert set(analysis.coords) >= {"window_start", "window_end"}  # the windows' place in time
    with xr.open_dataset(files["merged"], decode_times=False) as merged:
        np.testing.assert_array_equal(merged["window"], [0, 1, 2, 3])
        np.testing.assert_allclose(merged["window_start"], [0.0, 0.2, 0.4, 0.6], atol=1e-12)
        assert (merged.attrs["time_coverage_start"], merged.attrs["time_coverage_end"]) == (
            "2000-01-01T00:00:00Z",
            "2000-01-01T19:12:00Z",
        )  # model time 0 .. 0.8, the union
        assert "4 assimilation windows from model time 0 to 0.8" in merged.attrs["summary"]
        assert (
            merged.attrs["history"].count("\n") == 1
            and merged.attrs["institution"] == "dacli tests"
        )


def test_observation_space_file_lists_its_coordinates(files):
    with netCDF4.Dataset(files["feedback"]) as nc:
        assert nc.featureType == "point"
        for name in ("obs_value", "omb", "oma", "qc_flag"):
            assert set(nc[name].coordinates.split()) == {
                "time",
                "location",
                "window",
                "window_start",
            }, name
        assert nc["obs_value"].coverage_content_type == "physicalMeasurement"
        assert nc["omb"].coverage_content_type == "qualityInformation"
        assert "uses) and each observation not assimilated" in nc.summary


def test_cf_xarray_finds_the_analysis_by_its_standard_name():
    """Only ``<var>_analysis`` carries the standard name: ``ds.cf[name]`` is the analysis."""
    cf_xarray = pytest.importorskip("cf_xarray")
    from dacli.io.analysis import WINDOW_STATES, AnalysisRecord, analysis_dataset
    from dacli.io.metadata import Discovery
    from dacli.io.times import TimeAxis
    from dacli.layout import GridAxis, StateLayout

    assert cf_xarray
    axes = (
        GridAxis(
            "lat", np.array([10.0, 11.0]), "degrees_north", standard_name="latitude", cf_axis="Y"
        ),
        GridAxis("lon", np.array([0.0, 1.0, 2.0]), "degrees_east", standard_name="longitude"),
    )
    name = "sea_surface_height_above_mean_sea_level"
    layout = StateLayout(("ssh",), units="m", axes=axes, standard_names=(name,))
    states = np.arange(3 * 6, dtype=float).reshape(3, 6)
    record = AnalysisRecord(
        layout,
        np.array([0.0, 0.5, 1.0]),
        states,
        states - 1.0,
        {"window_start": np.array([0.0]), "window_end": np.array([1.0])},
        {kind: states[:1] for kind in WINDOW_STATES},
        {},
    )
    dataset = analysis_dataset(
        record, TimeAxis("days since 2020-01-01 00:00:00"), Discovery("t"), "dacli test"
    )
    assert dataset.cf[name].name == "ssh_analysis"
    assert dataset.cf["latitude"].name == "lat" and dataset.cf["T"].name == "time"
    assert (dataset.attrs["geospatial_lat_min"], dataset.attrs["geospatial_lon_max"]) == (10.0, 2.0)
    assert dataset.attrs["geospatial_bounds"] == "POLYGON ((10 0, 10 2, 11 2, 11 0, 10 0))"
    assert dataset.attrs["geospatial_lat_resolution"] == "1 degrees_north"
    assert {
        dataset[v].attrs["coverage_content_type"] for v in ("ssh_background", "ssh_increment")
    } == {"modelResult"}
