"""The files dacli writes are CF-1.11: checked with the IOOS compliance checker and by hand.

The analysis of a short run and the twin-experiment files of ``dacli simulate`` (gridded
Lorenz-96 and scattered Lorenz-63 observations) must give no compliance *errors*; warnings are
allowed (the checker takes any ``axis = "X"`` coordinate for a longitude and warns that the
Lorenz-96 site index has no degrees).
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

pytestmark = pytest.mark.filterwarnings("ignore:The ioos_sos checker is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def files(cli, module_workspace):
    """{name: path} of an analysis and of simulate's outputs for both sample configs."""
    ws = module_workspace
    (ws / "out").mkdir()
    result = cli(["assimilate", "configs/lorenz96.toml", "--set", "window.count=3", "--set", "method.max_steps=80",
                  "--set", "output.path=out/analysis.nc", "--set", 'output.institution="dacli tests"'], ws)
    assert result.exit_code == SUCCESS, result.stderr
    paths = {"analysis": ws / "out" / "analysis.nc"}
    for model, duration in (("lorenz96", "0.6"), ("lorenz63", "1.0")):  # 0.6 as in test_cli: compiled once
        args = ["simulate", f"configs/{model}.toml", "--set", f"simulate.duration={duration}"]
        for kind in ("observations", "background", "truth"):
            paths[f"{model}_{kind}"] = ws / "out" / f"{model}_{kind}.nc"
            args += ["--set", f"{kind}.path=out/{model}_{kind}.nc"]
        result = cli(args, ws)
        assert result.exit_code == SUCCESS, result.stderr
    return paths


# The checker itself crashes in this check on any CF point dataset without a cf_role variable
# (cf/util.py is_dataset_valid_ragged_array_repr_featureType indexes an empty list; a point
# featureType needs no cf_role). Its crashes are reported as "checker exceptions", not results.
CHECKER_BUGS = {"lorenz63_observations": {"check_domain_variables"}}


def compliance(path, tmp_path, capsys):
    """(errors, warnings, checks that crashed): failed high/medium-priority CF-1.11 checks."""
    runner = pytest.importorskip("compliance_checker.runner")
    runner.CheckSuite.load_all_available_checkers()
    report = tmp_path / f"{path.stem}.json"
    capsys.readouterr()
    passed, had_errors = runner.ComplianceChecker.run_checker(
        str(path), ["cf:1.11"], 0, "lenient", output_filename=str(report), output_format="json")
    crashed = set(re.findall(r"^cf:1\.11\.(\w+): ", capsys.readouterr().err, flags=re.M))
    assert had_errors == bool(crashed)
    results = json.loads(report.read_text())["cf:1.11"]

    def messages(key):
        failed = [item for item in results[key] if item["value"][0] != item["value"][1]]
        return [f"{item['name']}: {msg}" for item in failed for msg in item["msgs"] or ["(no message)"]]

    errors = messages("high_priorities")
    assert passed == (not errors)  # "lenient": only high-priority (error) checks decide
    return errors, messages("medium_priorities"), crashed


@pytest.mark.parametrize("name", ["analysis", "lorenz96_observations", "lorenz96_background", "lorenz96_truth",
                                  "lorenz63_observations", "lorenz63_background", "lorenz63_truth"])
def test_compliance_checker_finds_no_errors(files, name, tmp_path, capsys):
    errors, warnings, crashed = compliance(files[name], tmp_path, capsys)
    assert errors == []
    # The only warning left: the checker calls every axis = "X" coordinate a longitude.
    assert [w for w in warnings if "should define valid units for longitude" not in w] == []
    assert crashed <= CHECKER_BUGS.get(name, set())


def test_global_attributes_and_provenance(files):
    with netCDF4.Dataset(files["analysis"]) as nc:
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    assert attrs["Conventions"] == "CF-1.11"
    assert attrs["title"] == "Lorenz-96 strong-constraint 4DVar twin experiment"
    assert attrs["institution"] == "dacli tests"
    import diffrax
    import jax
    import optimistix

    assert attrs["source"] == (f"dacli {__version__} (jax {jax.__version__}, diffrax {diffrax.__version__}, "
                               f"optimistix {optimistix.__version__})")
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
        for name in ("x_analysis", "x_background", "x_increment", "x_analysis_window_start", "x_analysis_window_end"):
            variable = nc[name]
            assert variable.dimensions[-1] == "site"
            assert np.isnan(variable.getncattr("_FillValue"))
            assert variable.units == "1" and variable.long_name
        for name in ("cost_initial", "cost_final", "cost_background_final", "cost_observation_final", "iterations",
                     "gradient_norm", "observations_used", "observations_rejected", "omb_rms", "oma_rms"):
            assert nc[name].dimensions == ("window",) and nc[name].long_name, name
        assert list(nc["converged"].flag_values) == [0, 1]
        assert nc["converged"].flag_meanings == "not_converged converged"
        assert nc["window_start"].units == time.units

    with xr.open_dataset(files["analysis"], decode_times=False) as data:
        assert data.sizes == {"time": 3 * 4 + 1, "site": 40, "window": 3}
        np.testing.assert_allclose(data["x_increment"], data["x_analysis"] - data["x_background"])
        np.testing.assert_allclose(data["time"], 0.05 * np.arange(13), atol=1e-12)
        np.testing.assert_allclose(data["window_start"], [0.0, 0.2, 0.4], atol=1e-12)
        np.testing.assert_allclose(data["cost_final"], data["cost_background_final"] + data["cost_observation_final"])
        assert np.all(data["cost_final"] < data["cost_initial"])
        assert np.all(data["oma_rms"] < data["omb_rms"])
        # The end-of-window analysis of one window is the start of the next one's background.
        np.testing.assert_allclose(data["x_analysis_window_end"][0], data["x_background"].sel(time=0.2, method="nearest"))


def test_simulate_outputs_have_history_and_coordinate_names(files):
    for name in ("lorenz96_observations", "lorenz96_truth", "lorenz63_observations"):
        with netCDF4.Dataset(files[name]) as nc:
            assert nc.Conventions == "CF-1.11"
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: ", nc.history)
            for coordinate in ("time", "site"):
                if coordinate in nc.variables:
                    variable = nc[coordinate]
                    assert "_FillValue" not in variable.ncattrs()
                    assert "long_name" in variable.ncattrs() or "standard_name" in variable.ncattrs()
    with netCDF4.Dataset(files["lorenz63_observations"]) as nc:
        assert nc.featureType == "point"
        assert nc["x"].dimensions == ("obs",)
