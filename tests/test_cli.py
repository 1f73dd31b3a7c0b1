"""The command line end to end: JSON on stdout, logs on stderr, help, validate, simulate.

The ``assimilate`` run on the sample data happens once as a real process (the module fixture
``sample_process``) so stdout/stderr separation and batch-log formatting are those a user
gets; the simulate -> assimilate round trip runs in this process.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dacli import __version__
from dacli.errors import DATA_ERROR, SUCCESS, USAGE_ERROR

CONFIG = "configs/lorenz96.toml"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) \S")


# --- assimilate on the sample data, as a real process -------------------------------------------

@pytest.fixture(scope="module")
def sample_process(dacli_process, module_workspace):
    output = module_workspace / "out" / "analysis.nc"
    output.parent.mkdir()
    result = dacli_process(["assimilate", CONFIG, "--json", "--set", "window.count=3", "--set", "method.max_steps=80",
                            "--set", "run.name=cli-test", "--set", "output.path=out/analysis.nc"], module_workspace)
    assert result.returncode == SUCCESS, result.stderr
    return result, output


def test_assimilate_json_summary(sample_process):
    result, output = sample_process
    summary = json.loads(result.stdout)
    assert summary["windows"] == 3
    assert summary["converged_windows"] == 3
    assert summary["output"] == "out/analysis.nc"
    assert summary["precision"] == "float64"
    assert re.match(r"^(cpu|gpu|cuda|rocm|tpu):", summary["device"])
    assert 0 < summary["analysis_rmse"] < summary["background_rmse"]
    assert summary["cost_final_mean"] < summary["cost_initial_mean"]
    assert 0 < summary["iterations_mean"] <= 80
    assert summary["observations_used"] + summary["observations_rejected"] + summary["observations_outside_windows"] \
        == 8000  # every observation of the sample file is accounted for
    assert summary["observations_used"] > 400 and summary["observations_outside_domain"] == 0
    assert summary["compile_and_first_chunk_seconds"] > 0
    assert output.exists()


def test_stdout_is_exactly_the_json_and_logs_go_to_stderr(sample_process):
    result, _ = sample_process
    assert result.stdout.startswith("{\n") and result.stdout.endswith("}\n")
    json.loads(result.stdout)  # nothing else on stdout
    lines = result.stderr.splitlines()
    ours = [line for line in lines if LOG_LINE.match(line)]
    assert len(ours) >= 5, lines
    # Not a terminal: plain timestamped lines, no rich markup or progress bar. Anything else
    # may only be JAX's own notice about accelerators (e.g. "CUDA-enabled jaxlib is not installed").
    others = [line for line in lines if not LOG_LINE.match(line)]
    assert all(re.search(r"jax|cuda|gpu|tpu|platform", line, re.I) for line in others), others
    assert "\x1b[" not in result.stderr and "━" not in result.stderr
    text = result.stderr
    for k in (1, 2, 3):
        assert f"INFO window {k}/3: J " in text
    assert "INFO wrote out/analysis.nc: 3 window(s), 3/3 converged, RMSE background " in text


def test_set_overrides_are_recorded_in_the_output(sample_process):
    _, output = sample_process
    with xr.open_dataset(output, decode_times=False) as data:
        config = json.loads(data.attrs["dacli_config"])
        assert config["method"]["max_steps"] == 80  # the file says 100
        assert config["window"]["count"] == 3
        assert config["run"]["name"] == "cli-test"
        assert config["output"]["path"] == "out/analysis.nc"
        assert Path(config["observations"]["path"]).is_absolute()
        history = data.attrs["history"]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: dacli assimilate configs/lorenz96.toml --json ", history)
        assert "--set method.max_steps=80" in history
        assert data.sizes["window"] == 3
        assert int(data.attrs["dacli_windows"]) == 3
    assert not list(output.parent.glob(".*.tmp"))


def test_quiet_run_logs_nothing_but_warnings(cli, workspace):
    result = cli(["assimilate", CONFIG, "-q", "-o", "q.nc", "--set", "window.count=2", "--set", "method.max_steps=80"],
                 workspace)  # -o sets output.path
    assert result.exit_code == SUCCESS, result.stderr
    assert result.stdout == ""  # no --json: nothing on stdout
    assert "INFO" not in result.stderr
    assert (workspace / "q.nc").exists()


# --- help, version, tracebacks ------------------------------------------------------------------

def test_python_m_dacli_help():
    result = subprocess.run([sys.executable, "-m", "dacli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("assimilate", "simulate", "validate"):
        assert command in result.stdout


# A child process that runs dacli's entry point with its own arguments, holding an object whose
# finaliser writes to stderr: it runs only in the interpreter's teardown.
TEARDOWN_PROBE = """
import sys
class Probe:
    def __del__(self):
        sys.stderr.write("teardown ran\\n")
probe = Probe()
if sys.argv[1] == "--no-dacli":
    raise SystemExit(3)
from dacli.__main__ import main
sys.argv = ["dacli", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("arguments", "status", "stdout", "stderr"),
    [
        (["--no-dacli"], 3, "", "teardown ran\n"),  # the probe works: Python's own exit tears down
        (["--version"], SUCCESS, f"dacli {__version__}\n", ""),
        (["validate", "missing.toml"], USAGE_ERROR, "", "dacli: error: invalid configuration (1 problem):\n"
                                                        "  - missing.toml: no such file\n"),
    ],
)
def test_the_process_ends_with_the_commands_status_and_no_teardown(tmp_path, arguments, status, stdout, stderr):
    """After the command, dacli's entry point ends the process with the command's exit status and
    its output flushed, skipping the interpreter's teardown (0.45-1.05 s of a warm assimilate)."""
    result = subprocess.run([sys.executable, "-c", TEARDOWN_PROBE, *arguments], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (result.returncode, result.stdout, result.stderr) == (status, stdout, stderr)


def test_help_and_config_errors_do_not_import_jax(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[method]\nminimiserr = 1\n")
    code = f"""
import sys
from typer.testing import CliRunner
from dacli.cli.app import app

assert "jax" not in sys.modules, "importing the CLI imported jax"
runner = CliRunner()
for args in (["--help"], ["assimilate", "--help"], ["simulate", "--help"], ["validate", "--help"], ["plot", "--help"],
             ["--version"]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
result = runner.invoke(app, ["assimilate", {str(bad)!r}])
assert result.exit_code == 2, result.output
assert "did you mean 'minimiser'" in result.stderr, result.stderr
heavy = sorted(m for m in ("jax", "jaxlib", "equinox", "diffrax", "optimistix", "xarray", "matplotlib") if m in sys.modules)
assert not heavy, heavy
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_version(cli, tmp_path):
    result = cli(["--version"], tmp_path)
    assert result.exit_code == 0 and result.stdout == f"dacli {__version__}\n"


def test_no_traceback_for_user_errors_unless_asked(dacli_process, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[method]\nminimiserr = 1\n")
    result = dacli_process(["validate", bad], tmp_path)
    assert result.returncode == USAGE_ERROR
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"dacli: error: invalid configuration {bad} (")
    assert f"{bad}:2: method.minimiserr: unknown key; did you mean 'minimiser'?" in result.stderr
    assert result.stdout == ""

    result = dacli_process(["validate", bad, "--traceback"], tmp_path)
    assert result.returncode == USAGE_ERROR
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr
    assert "dacli: error: invalid configuration" in result.stderr


def test_usage_errors_exit_2(cli, tmp_path):
    assert cli(["assimilate"], tmp_path).exit_code == USAGE_ERROR  # missing argument
    assert cli(["assimilate", "x.toml", "--no-such-option"], tmp_path).exit_code == USAGE_ERROR
    assert cli(["frobnicate"], tmp_path).exit_code == USAGE_ERROR
    result = cli(["validate", "missing.toml"], tmp_path)
    assert result.exit_code == USAGE_ERROR
    assert result.stderr == "dacli: error: invalid configuration (1 problem):\n  - missing.toml: no such file\n"


# --- validate ----------------------------------------------------------------------------------

def test_validate_good_config(cli, workspace):
    result = cli(["validate", CONFIG, "--json"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    with xr.open_dataset(workspace / "sample_data" / "lorenz96_obs.nc", decode_times=False) as obs:
        finite = int(np.isfinite(obs["x"].values).sum())
        total = obs["x"].size
    assert summary == {"config": "lorenz96-4dvar", "state_size": 40,
                       "time_axis": "days since 2000-01-01 00:00:00 (standard)", "observations": total,
                       "valid_observations": finite, "observations_outside_domain": 0, "observations_duplicate": 0,
                       "observation_times": "0.05 (2000-01-01 01:12:00) .. 10 (2000-01-11 00:00:00)",
                       "background_times": 1, "truth_times": 201, "windows": 50, "observations_in_windows": finite,
                       "windows_without_observations": 0, "method": "strong4dvar",
                       "formulation": "nonlinear", "minimiser": "LBFGS", "model_adjoint": "hand-written"}
    assert finite < total  # the sample has a few holes
    assert "configs/lorenz96.toml is valid" in result.stderr
    assert not list(workspace.glob("*.nc"))  # validate writes nothing


def test_validate_scattered_config(cli, workspace):
    result = cli(["validate", "configs/lorenz63.toml", "--json"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state_size"] == 3 and summary["observations"] == 200  # x and z at 100 times


def test_validate_missing_observation_file(cli, workspace):
    (workspace / "sample_data" / "lorenz96_obs.nc").unlink()
    result = cli(["validate", CONFIG], workspace)
    assert result.exit_code == DATA_ERROR
    assert result.stderr == (f"dacli: error: observations file {workspace / 'sample_data' / 'lorenz96_obs.nc'}: "
                             "no such file\n")
    assert result.stdout == ""


# --- simulate, then assimilate what it wrote ----------------------------------------------------

def test_simulate_then_assimilate(cli, workspace):
    sim = ["--set", "observations.path=twin/obs.nc", "--set", "background.path=twin/background.nc",
           "--set", "truth.path=twin/truth.nc"]
    (workspace / "twin").mkdir()
    result = cli(["simulate", CONFIG, "--json", *sim, "--set", "simulate.duration=0.6"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    assert summary["files"] == {kind: str(workspace / "twin" / name) for kind, name in
                                (("observations", "obs.nc"), ("background", "background.nc"), ("truth", "truth.nc"))}
    assert summary["truth_steps"] == 13 and summary["observation_times"] == 12
    assert sorted(p.name for p in (workspace / "twin").iterdir()) == ["background.nc", "obs.nc", "truth.nc"]
    for kind in ("observations", "background", "truth"):
        assert f"INFO wrote {kind}: " in result.stderr

    with xr.open_dataset(workspace / "twin" / "obs.nc", decode_times=False) as obs:
        assert obs["x"].shape == (12, 40)
        assert np.allclose(obs["time"].values, 0.05 * np.arange(1, 13))

    # Without --overwrite a second simulate refuses and changes nothing.
    before = (workspace / "twin" / "truth.nc").read_bytes()
    again = cli(["simulate", CONFIG, *sim, "--set", "simulate.duration=0.6"], workspace)
    assert again.exit_code == 5
    assert (workspace / "twin" / "truth.nc").read_bytes() == before

    result = cli(["assimilate", CONFIG, "--json", *sim, "--set", "method.max_steps=80",
                  "--set", "output.path=twin/analysis.nc"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    assert summary["windows"] == 3  # as many windows as the 0.6 time units of observations cover
    assert summary["analysis_rmse"] < summary["background_rmse"]
    with xr.open_dataset(workspace / "twin" / "analysis.nc", decode_times=False) as data:
        assert np.allclose(data["time"].values[[0, -1]], [0.0, 0.6])


# --- exit codes 1, 70 and 130 (the run function replaced: only the mapping is under test) -------

def _fake_run(summary=None, error=None):
    def run(config, *, overwrite=False, resume=False, restart=False, command="", on_window=None, on_phase=None):
        from dacli.run.assimilate import AssimilationResult

        if error is not None:
            raise error
        return AssimilationResult(output=str(config.output.path), summary=_fake_summary(summary), windows={})

    return run


def _fake_summary(values):
    """A summary record with exactly ``values``' fields (the RMSE left out of the JSON when absent)."""
    optional = [(name, float, dataclasses.field(default=None, metadata={"json": "optional"}))
                for name in ("background_rmse", "analysis_rmse") if name not in values]
    fields = [(name, type(value)) for name, value in values.items()]
    return dataclasses.make_dataclass("FakeSummary", fields + optional, frozen=True)(**values)


SUMMARY = {"output": "a.nc", "windows": 4, "converged_windows": 3}


def test_strict_fails_when_a_window_did_not_converge(cli, workspace, monkeypatch):
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_run(SUMMARY))
    result = cli(["assimilate", CONFIG, "--json"], workspace)
    assert result.exit_code == SUCCESS and json.loads(result.stdout) == SUMMARY  # not converged is no error...
    result = cli(["assimilate", CONFIG, "--json", "--strict"], workspace)
    assert result.exit_code == 1  # ... unless --strict
    assert json.loads(result.stdout) == SUMMARY
    assert result.stderr.endswith("dacli: check failed: the minimiser did not converge in 1 of 4 window(s) "
                                  "(--strict); the output was written\n")
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_run({**SUMMARY, "converged_windows": 4}))
    assert cli(["assimilate", CONFIG, "--strict"], workspace).exit_code == SUCCESS


def test_internal_error_exit_70(cli, workspace, monkeypatch):
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_run(error=ZeroDivisionError("boom")))
    result = cli(["assimilate", CONFIG], workspace)
    assert result.exit_code == 70
    assert result.stderr == ("dacli: error: internal error: ZeroDivisionError: boom (rerun with --traceback and "
                             "report it)\n")
    result = cli(["assimilate", CONFIG, "--traceback"], workspace)
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.stderr and "ZeroDivisionError: boom" in result.stderr


def test_interrupt_exit_130(cli, workspace, monkeypatch):
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_run(error=KeyboardInterrupt()))
    result = cli(["assimilate", CONFIG], workspace)
    assert result.exit_code == 130
    assert result.stderr == "dacli: error: interrupted\n"


def test_json_is_strict_json(cli, workspace, monkeypatch):
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_run({**SUMMARY, "analysis_rmse": float("nan"),
                                                                      "background_rmse": float("inf")}))
    result = cli(["assimilate", CONFIG, "--json"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    assert json.loads(result.stdout) == {**SUMMARY, "analysis_rmse": None, "background_rmse": None}
