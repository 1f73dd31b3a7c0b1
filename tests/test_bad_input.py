"""Bad input through the command line: exact message, exit code, no traceback, no output left.

Every failing run is pointed at an output file in a fresh folder; afterwards neither that file
nor any temporary ``.<name>.*.tmp`` file may exist. Runs happen in this process (typer's
CliRunner) and share one compiled 4DVar program: every run that gets as far as computing uses
the same model, minimiser, ``max_steps`` and observation capacity. One numerical-failure case
runs as a real process.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dacli.errors import (
    DATA_ERROR,
    NUMERICAL_ERROR,
    OUTPUT_ERROR,
    SUCCESS,
    USAGE_ERROR,
    OutputError,
)

CONFIG = "configs/lorenz96.toml"
FAST = ["--set", "window.count=3", "--set", "method.max_steps=80"]  # the same compiled program everywhere


# --- fixtures and helpers ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def ws(module_workspace) -> Path:
    """The workspace plus a folder of broken input files derived from the sample observations."""
    bad = module_workspace / "bad"
    bad.mkdir()
    obs = xr.open_dataset(module_workspace / "sample_data" / "lorenz96_obs.nc", decode_times=False).load()
    raw = (module_workspace / "sample_data" / "lorenz96_obs.nc").read_bytes()
    (bad / "garbage.nc").write_bytes(b"GARBAGE, not NetCDF\n" * 200)
    (bad / "truncated.nc").write_bytes(raw[:3000])
    (bad / "empty.nc").write_bytes(b"")
    (bad / "folder.nc").mkdir()

    all_nan = obs.copy(deep=True)
    all_nan["x"].values[:] = np.nan
    all_nan.to_netcdf(bad / "all_nan.nc")

    late = obs.assign_coords(time=obs.time + 1000.0)
    late.to_netcdf(bad / "late.nc")

    obs.rename({"x": "u"}).to_netcdf(bad / "renamed.nc")
    empty = obs.isel(time=slice(0, 0))
    for variable in empty.variables.values():
        variable.encoding = {}  # a contiguous layout cannot hold a zero-length dimension
    empty.to_netcdf(bad / "no_times.nc")

    # Holes in window 2 only (times (0.2, 0.4] = rows 4..7): window 1 keeps the largest count,
    # so the padded capacity (and the compiled program) stays the same as for the sample file.
    holes = obs.copy(deep=True)
    values = holes["x"].values
    values[4:6, :] = np.nan
    values[6, ::2] = np.inf
    values[7, ::4] = -np.inf
    holes.to_netcdf(bad / "holes.nc")
    return module_workspace


def out_dir(ws: Path, name: str) -> Path:
    folder = ws / "out" / name
    folder.mkdir(parents=True)
    return folder


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write would leave (``.<name>.*.tmp``)."""
    return sorted(p.name for p in folder.glob(".*.tmp"))


def fails(cli, ws, args, code, name):
    """Run a command that must fail with ``code``; check no output and no traceback; return stderr."""
    folder = out_dir(ws, name)
    output = folder / "analysis.nc"
    result = cli([*args, "--set", f"output.path={output}"], ws)
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "dacli: error: " in result.stderr
    assert not output.exists()
    assert list(folder.iterdir()) == []  # no temporary file either
    return result.stderr


def error_text(stderr: str) -> str:
    """The error message (what follows 'dacli: error: '), without the log lines before it."""
    return stderr[stderr.index("dacli: error: ") + len("dacli: error: "):].rstrip("\n")


def write_config(ws: Path, name: str, text: str) -> str:
    path = ws / "configs" / name
    path.write_text(text)
    return f"configs/{name}"


def base_text(ws: Path) -> str:
    return (ws / CONFIG).read_text()


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


# --- configuration errors (exit 2, before anything is computed) ---------------------------------

def test_malformed_toml(cli, ws):
    text = base_text(ws).replace("[method]", "[method")
    config = write_config(ws, "malformed.toml", text)
    line = line_of(text, "[method")
    stderr = fails(cli, ws, ["assimilate", config], USAGE_ERROR, "malformed")
    assert stderr == (f"dacli: error: invalid configuration {config} (1 problem):\n"
                      f"  - {config}:{line}: not valid TOML: Expected ']' at the end of a table declaration "
                      f"(at line {line}, column 8)\n")


def test_unknown_key_with_suggestion(cli, ws):
    text = base_text(ws).replace('minimiser = "LBFGS"', 'minimiserr = "LBFGS"')
    config = write_config(ws, "unknown_key.toml", text)
    stderr = fails(cli, ws, ["assimilate", config], USAGE_ERROR, "unknown_key")
    assert error_text(stderr) == (
        f"invalid configuration {config} (1 problem):\n"
        f"  - {config}:{line_of(text, 'minimiserr')}: method.minimiserr: unknown key; did you mean 'minimiser'?")


def test_wrong_type(cli, ws):
    text = base_text(ws).replace("max_steps = 100", 'max_steps = "ten"')
    config = write_config(ws, "wrong_type.toml", text)
    stderr = fails(cli, ws, ["validate", config], USAGE_ERROR, "wrong_type")
    assert error_text(stderr).endswith(
        f"  - {config}:{line_of(text, 'max_steps')}: method.max_steps: input should be a valid integer, "
        "unable to parse string as an integer, found 'ten'")


def test_nan_where_a_finite_number_is_required(cli, ws):
    text = base_text(ws).replace("rtol = 1e-6", "rtol = nan")
    config = write_config(ws, "nan.toml", text)
    stderr = fails(cli, ws, ["assimilate", config], USAGE_ERROR, "nan")
    assert error_text(stderr).endswith(
        f"  - {config}:{line_of(text, 'rtol')}: method.rtol: expected a finite number, found nan")


def test_unknown_registry_names_all_reported(cli, ws):
    text = (base_text(ws).replace('minimiser = "LBFGS"', 'minimiser = "LBFS"')
            .replace('forward_adjoint = "RecursiveCheckpointAdjoint"', 'forward_adjoint = "RecursiveCheckpoint"'))
    config = write_config(ws, "names.toml", text)
    stderr = fails(cli, ws, ["assimilate", config], USAGE_ERROR, "names")
    assert error_text(stderr) == (
        f"invalid configuration {config} (2 problems):\n"
        f"  - {config}:{line_of(text, 'minimiser ')}: method.minimiser: unknown minimiser 'LBFS'; did you mean "
        "'LBFGS'? (choose from: auto, LBFGS, BFGS, NonlinearCG, GradientDescent, GaussNewton, LevenbergMarquardt, CG)\n"
        f"  - {config}:{line_of(text, 'forward_adjoint')}: method.forward_adjoint: unknown forward_adjoint "
        "'RecursiveCheckpoint'; did you mean 'RecursiveCheckpointAdjoint'? (choose from: "
        "RecursiveCheckpointAdjoint, BacksolveAdjoint, DirectAdjoint, ForwardMode)")


def test_several_errors_at_once_from_file_and_set(cli, ws):
    text = (base_text(ws).replace("max_steps = 100", 'max_steps = "ten"')
            .replace('minimiser = "LBFGS"', 'minimiser = "LBFS"')
            .replace("dt = 0.05", "dt = 0.05\nsolverr = \"RK4\""))
    config = write_config(ws, "several.toml", text)
    stderr = fails(cli, ws, ["assimilate", config, "--set", "window.count=0", "--set", "nonsense"],
                   USAGE_ERROR, "several")
    lines = error_text(stderr).splitlines()
    assert lines[0] == f"invalid configuration {config} (5 problems):"
    assert lines[1] == f"  - {config}:{line_of(text, 'solverr')}: model.solverr: unknown key; did you mean 'ode_solver'?"
    assert lines[2].startswith(f"  - {config}:{line_of(text, 'minimiser ')}: method.minimiser: unknown minimiser 'LBFS'")
    assert lines[3].startswith(f"  - {config}:{line_of(text, 'max_steps')}: method.max_steps: input should be a valid integer")
    assert lines[4] == "  - --set 'nonsense': expected KEY.PATH=VALUE, found no '='"
    assert lines[5] == "  - --set window.count=0: window.count: input should be greater than 0, found 0"


@pytest.mark.parametrize(("overrides", "problems"), [
    (["method.max_steps=ten"], ["--set method.max_steps=ten: method.max_steps: input should be a valid integer, "
                                "unable to parse string as an integer, found 'ten'"]),
    (["method.max_steps.deep=1", "=2"], ["--set 'method.max_steps.deep=1': 'max_steps' is a value, not a table",
                                         "--set '=2': expected a dotted key such as method.max_steps"]),
    (["method.minimiser=LBFS"], ["--set method.minimiser=LBFS: method.minimiser: unknown minimiser 'LBFS'; did you "
                                 "mean 'LBFGS'? (choose from: auto, LBFGS, BFGS, NonlinearCG, GradientDescent, "
                                 "GaussNewton, LevenbergMarquardt, CG)"]),
    (["method.rtol=nan", "model.dt=0"], ["--set model.dt=0: model.dt: input should be greater than 0, found 0",
                                         "--set method.rtol=nan: method.rtol: expected a finite number, found nan"]),
])
def test_set_override_errors(cli, ws, overrides, problems, request):
    args = ["assimilate", CONFIG]
    for item in overrides:
        args += ["--set", item]
    stderr = fails(cli, ws, args, USAGE_ERROR, re.sub(r"\W+", "_", request.node.name))
    body = error_text(stderr).splitlines()
    assert sorted(body[1:]) == sorted(f"  - {p}" for p in problems)
    assert body[0].endswith(f"({len(problems)} problem{'s' if len(problems) > 1 else ''}):")


def test_precision_option_error(cli, ws):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--precision", "float16"], USAGE_ERROR, "precision")
    assert "Invalid value for '--precision': 'float16' is not one of 'float32', 'float64'." in stderr


# --- input data errors (exit 3) ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["observations", "background", "truth"])
def test_missing_netcdf_file(cli, ws, kind):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", f"{kind}.path=bad/nope_{kind}.nc"], DATA_ERROR,
                   f"missing_{kind}")
    assert error_text(stderr) == f"{kind} file {ws / 'bad' / f'nope_{kind}.nc'}: no such file"


@pytest.mark.parametrize(("name", "reason"), [
    ("garbage.nc", "not a NetCDF file (no NetCDF-3 or HDF5/NetCDF-4 signature)"),
    ("truncated.nc", "not a readable NetCDF file (NetCDF: HDF error)"),
    ("empty.nc", "is empty (0 bytes), not a NetCDF file"),
    ("folder.nc", "is a directory, not a NetCDF file"),
])
def test_corrupt_netcdf(cli, ws, name, reason):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", f"observations.path=bad/{name}"], DATA_ERROR,
                   f"corrupt_{name}")
    assert error_text(stderr) == f"observations file {ws / 'bad' / name}: {reason}"


def test_corrupt_background(cli, ws):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", "background.path=bad/garbage.nc"], DATA_ERROR,
                   "corrupt_background")
    assert error_text(stderr) == f"background file {ws / 'bad' / 'garbage.nc'}: not a NetCDF file " \
                                 "(no NetCDF-3 or HDF5/NetCDF-4 signature)"


def test_missing_observation_variable(cli, ws):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", "observations.path=bad/renamed.nc"], DATA_ERROR,
                   "missing_variable")
    assert error_text(stderr) == (
        f"observations file {ws / 'bad' / 'renamed.nc'}: no variable 'x'; data variables found: u, x_error. "
        'Map names with observations.names = { x = "..." }')


def test_mapped_observation_variable_missing(cli, ws):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", 'observations.names={ x = "temperature" }'],
                   DATA_ERROR, "mapped_variable")
    assert "names maps 'x' to 'temperature', which the file does not have; its variables and dimensions are: " \
           "site, time, x, x_error" in stderr


def test_missing_background_variable(cli, ws):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", "background.path=bad/renamed.nc"], DATA_ERROR,
                   "background_variable")
    assert error_text(stderr) == (
        f"background file {ws / 'bad' / 'renamed.nc'}: no variable 'x'; data variables found: u, x_error. "
        'Map names with names = { x = "..." }')


def test_all_nan_observations(cli, ws):
    expected = (f"observations file {ws / 'bad' / 'all_nan.nc'}: all 8000 observations of 'x' are missing "
                "(NaN, Inf or _FillValue) or have a non-positive error; there is nothing to assimilate")
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", "observations.path=bad/all_nan.nc"], DATA_ERROR, "all_nan")
    assert error_text(stderr) == expected
    stderr = fails(cli, ws, ["validate", CONFIG, "--set", "observations.path=bad/all_nan.nc"], DATA_ERROR,
                   "all_nan_validate")
    assert error_text(stderr) == expected


def test_observation_file_without_observations(cli, ws):
    stderr = fails(cli, ws, ["validate", CONFIG, "--set", "observations.path=bad/no_times.nc"], DATA_ERROR, "no_times")
    assert error_text(stderr) == (f"observations file {ws / 'bad' / 'no_times.nc'}: holds no observations of 'x' "
                                  "(zero-length dimensions)")


def test_all_observations_outside_the_windows(cli, ws):
    stderr = fails(cli, ws, ["assimilate", CONFIG, "--set", "observations.path=bad/late.nc", *FAST], DATA_ERROR,
                   "late")
    assert error_text(stderr).startswith(
        "no usable observation inside any assimilation window: observation times span [1000.05, 1010], "
        "the 3 window(s) cover (0, 0.6]")


# --- NaN observations are rejected and counted; the run succeeds --------------------------------

def _finite_in_windows(path: Path, end: float) -> tuple[int, int]:
    """(finite, non-finite) observations with times in (0, end]."""
    data = xr.open_dataset(path, decode_times=False)
    inside = (data.time.values > 0) & (data.time.values <= end + 1e-9)
    values = data["x"].values[inside]
    return int(np.isfinite(values).sum()), int((~np.isfinite(values)).sum())


@pytest.fixture(scope="module")
def sample_run(cli, ws):
    folder = out_dir(ws, "sample_run")
    result = cli(["assimilate", CONFIG, "--json", *FAST, "--set", f"output.path={folder / 'a.nc'}"], ws)
    assert result.exit_code == SUCCESS, result.stderr
    return json.loads(result.stdout), folder / "a.nc"


def test_nan_observations_are_rejected_and_counted(cli, ws, sample_run):
    folder = out_dir(ws, "holes")
    output = folder / "a.nc"
    result = cli(["assimilate", CONFIG, "--json", *FAST, "--set", "observations.path=bad/holes.nc",
                  "--set", f"output.path={output}"], ws)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    finite, missing = _finite_in_windows(ws / "bad" / "holes.nc", 0.6)
    base_finite, base_missing = _finite_in_windows(ws / "sample_data" / "lorenz96_obs.nc", 0.6)
    assert missing > base_missing + 80
    assert summary["observations_rejected"] == missing
    assert summary["observations_used"] == finite
    assert sample_run[0]["observations_rejected"] == base_missing
    assert sample_run[0]["observations_used"] == base_finite
    assert summary["converged_windows"] == 3
    assert summary["analysis_rmse"] < summary["background_rmse"]
    with xr.open_dataset(output, decode_times=False) as data:
        rejected = data["observations_rejected"].values
        assert rejected.sum() == missing and rejected[1] == rejected.max()  # the holes are in window 2
        for name in ("gradient_norm", "cost_final", "cost_initial", "x_analysis", "x_increment"):
            assert np.all(np.isfinite(data[name].values)), name  # NaNs never reached the arithmetic
        assert np.all(data["cost_final"].values < data["cost_initial"].values)
        assert int(data.attrs["dacli_observations_rejected"]) == missing
    assert leftovers(folder) == []


# --- numerical failure (exit 4): no output file ------------------------------------------------

def test_huge_background_is_a_numerical_failure(cli, ws):
    text = base_text(ws).replace('path = "../sample_data/lorenz96_background.nc"',
                                 "state = [" + ", ".join(["1e200"] * 40) + "]")
    config = write_config(ws, "huge_background.toml", text)
    stderr = fails(cli, ws, ["assimilate", config, *FAST], NUMERICAL_ERROR, "huge_background")
    assert error_text(stderr) == (
        "window 1 (start 0) produced non-finite values (NaN/Inf in the trajectory, cost or gradient); no output "
        "was written. Try a smaller model.dt, a smaller background error, or check the observations")


def test_blow_up_in_a_real_process(dacli_process, ws):
    folder = out_dir(ws, "blow_up")
    output = folder / "a.nc"
    result = dacli_process(["assimilate", CONFIG, "--set", "window.count=1", "--set", "model.parameters.forcing=1e200",
                            "--set", f"output.path={output}"], ws)
    assert result.returncode == NUMERICAL_ERROR, result.stderr
    assert "dacli: error: window 1 (start 0) produced non-finite values" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not output.exists() and list(folder.iterdir()) == []


# --- output errors (exit 5) and overwriting -----------------------------------------------------

def test_existing_output_is_kept_without_overwrite_and_replaced_with_it(cli, ws):
    folder = out_dir(ws, "existing")
    output = folder / "analysis.nc"
    precious = b"results of last week's run\n" * 100
    output.write_bytes(precious)
    args = ["assimilate", CONFIG, "--json", *FAST, "--set", f"output.path={output}"]

    result = cli(args, ws)
    assert result.exit_code == OUTPUT_ERROR
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert error_text(result.stderr) == (
        f"output file {output} exists; pass --overwrite (or output.overwrite = true) to replace it")
    assert output.read_bytes() == precious
    assert sorted(p.name for p in folder.iterdir()) == ["analysis.nc"]

    result = cli([*args, "--overwrite"], ws)
    assert result.exit_code == SUCCESS, result.stderr
    assert json.loads(result.stdout)["output"] == str(output)
    with xr.open_dataset(output, decode_times=False) as data:
        assert data.attrs["Conventions"] == "CF-1.11, ACDD-1.3"
        assert data.sizes["window"] == 3
    assert sorted(p.name for p in folder.iterdir()) == ["analysis.nc"]

    first = output.read_bytes()
    result = cli([*args, "--set", "output.overwrite=true"], ws)  # the config key works too
    assert result.exit_code == SUCCESS, result.stderr
    assert output.read_bytes() != first  # rewritten (the history time stamp at least differs or the file is new)
    assert leftovers(folder) == []


def test_output_folder_missing(cli, ws):
    missing = ws / "out" / "does" / "not" / "exist" / "a.nc"
    result = cli(["assimilate", CONFIG, "--set", f"output.path={missing}"], ws)
    assert result.exit_code == OUTPUT_ERROR
    assert error_text(result.stderr) == f"output folder {missing.parent} does not exist"
    assert not missing.parent.exists()


def test_output_path_is_a_directory(cli, ws):
    folder = out_dir(ws, "is_dir")
    result = cli(["assimilate", CONFIG, "--overwrite", "--set", f"output.path={folder}"], ws)
    assert result.exit_code == OUTPUT_ERROR
    assert error_text(result.stderr) == f"output path {folder} is a directory"
    assert list(folder.iterdir()) == []


def test_simulate_refuses_to_overwrite_inputs(cli, ws):
    truth = ws / "sample_data" / "lorenz96_truth.nc"
    before = truth.read_bytes()
    result = cli(["simulate", CONFIG], ws)
    assert result.exit_code == OUTPUT_ERROR
    assert error_text(result.stderr).startswith(f"output file {ws / 'sample_data' / 'lorenz96_obs.nc'} exists; ")
    assert truth.read_bytes() == before
    assert leftovers(ws / "sample_data") == []


# --- atomic writes -----------------------------------------------------------------------------

def _dataset():
    return xr.Dataset({"a": ("t", np.arange(3.0))}, attrs={"title": "t"})


def test_write_is_atomic_via_a_temporary_file_and_replace(tmp_path, monkeypatch):
    import os

    from dacli.io import atomic, netcdf

    target = tmp_path / "out.nc"
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((Path(src), Path(dst), Path(src).exists(), Path(dst).exists()))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    netcdf.write_netcdf_atomically(_dataset(), target, overwrite=False)
    ((src, dst, src_existed, dst_existed),) = calls
    assert dst == target and not dst_existed and src_existed
    assert src.parent == tmp_path and src.name.startswith(".out.nc.") and src.name.endswith(".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()
    with xr.open_dataset(target) as data:
        assert data["a"].values.tolist() == [0.0, 1.0, 2.0]


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current


def test_failed_write_leaves_nothing(tmp_path):
    from dacli.io.netcdf import write_netcdf_atomically

    bad = _dataset()
    bad.attrs["nested"] = {"not": "serialisable"}  # netCDF attributes cannot be dicts
    with pytest.raises(TypeError):
        write_netcdf_atomically(bad, tmp_path / "out.nc", overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_failed_replace_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    from dacli.io import atomic, netcdf

    target = tmp_path / "out.nc"
    target.write_bytes(b"old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OutputError) as info:
        netcdf.write_netcdf_atomically(_dataset(), target, overwrite=True)
    assert info.value.exit_code == OUTPUT_ERROR
    assert str(info.value) == f"cannot write {target}: [Errno 28] No space left on device"
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


def test_interrupted_write_removes_the_temporary(tmp_path, monkeypatch):
    from dacli.io import netcdf

    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        netcdf.write_netcdf_atomically(_dataset(), tmp_path / "out.nc", overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_refused_write_changes_nothing(tmp_path):
    from dacli.io.netcdf import write_netcdf_atomically

    target = tmp_path / "out.nc"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        write_netcdf_atomically(_dataset(), target, overwrite=False)
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]
