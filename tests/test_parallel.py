"""Parallel work: map_sharded over 4 fake CPU devices, two processes on localhost, merging parts.

The device count is fixed when JAX's backend starts, and this process started it already, so
the 4-device checks and the two processes run tests/parallel_check.py as child processes (one
launch for all the 4-device checks: each compile costs seconds).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dacli.errors import ConfigError, DataError
from dacli.io.times import TimeAxis
from dacli.parallel import launch_arguments, process_share

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "tests" / "parallel_check.py"


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "DACLI_", "XLA_FLAGS", "JAX_")) or k == "DACLI_COMPILATION_CACHE"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**env, "JAX_PLATFORMS": "cpu", **extra}


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# --- one process, four devices ---------------------------------------------------------------

@pytest.mark.slow  # two analysis compiles in a child process: about 25 s of CPU
def test_map_sharded_on_four_fake_devices_equals_vmap_and_pads_batches_that_do_not_divide():
    done = subprocess.run([sys.executable, str(CHECK), "devices"], env=child_env(JAX_NUM_CPU_DEVICES="4"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = last_json(done.stdout)
    assert report["devices"] == 4
    assert report["reference_devices"] == 1  # the plain vmap ran on one device
    assert all(report["reference_converged"])
    for count in (8, 5, 1):
        result = report[f"b{count}"]
        assert result["items"] == count  # padding stripped
        assert result["max_abs_difference"] <= 1e-12, (count, result)
    assert report["b8"]["iterations_equal"] and report["b5"]["iterations_equal"]  # same LBFGS path per window
    # B = 8 is not padded: the outputs stay spread over the 4 devices along the batch axis.
    assert report["b8"]["output_devices"] == 4 and report["b8"]["output_spec"] == "P('batch',)"


def test_map_sharded_in_this_process_one_device_and_bad_batches():
    import jax
    import jax.numpy as jnp

    from dacli.parallel import batch_layout, map_sharded

    def item(x, pair):
        return {"sum": jnp.sum(x) * pair[0], "scaled": x * pair[1]}

    x, pair = np.arange(12.0).reshape(3, 4), (np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 2.0]))
    out = map_sharded(item, x, pair, devices=jax.devices()[:1])
    np.testing.assert_array_equal(out["sum"], x.sum(axis=1) * pair[0])
    np.testing.assert_array_equal(out["scaled"], x * pair[1][:, None])
    with pytest.raises(ValueError, match="same leading batch axis"):
        map_sharded(item, x, (pair[0][:2], pair[1]))
    assert (batch_layout(5, 4).padded, batch_layout(8, 4).padding, batch_layout(1, 4).padded) == (8, 0, 4)
    with pytest.raises(ValueError):
        batch_layout(0, 4)


# --- several processes -----------------------------------------------------------------------

def test_process_share_covers_every_item_once_contiguously_and_balanced():
    for count in (0, 1, 5, 10, 1024):
        for processes in (1, 2, 3, 8):
            shares = [process_share(count, p, processes) for p in range(processes)]
            assert [i for share in shares for i in share] == list(range(count))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert process_share(10, 0, 3) == range(0, 4) and process_share(10, 2, 3) == range(7, 10)
    with pytest.raises(ValueError):
        process_share(10, 3, 3)


def test_launch_arguments_from_slurm_and_explicit_variables():
    assert launch_arguments({}) is None
    assert launch_arguments({"SLURM_NTASKS": "4"}) is None  # sbatch script, not under srun
    assert launch_arguments({"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "4"}) is None
    assert launch_arguments({"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4"}) == {}  # JAX detects the rest
    explicit = {"DACLI_COORDINATOR": "127.0.0.1:1234", "DACLI_NUM_PROCESSES": "2", "DACLI_PROCESS_ID": "1"}
    assert launch_arguments({**explicit, "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4"}) == {
        "coordinator_address": "127.0.0.1:1234", "num_processes": 2, "process_id": 1}
    with pytest.raises(ConfigError, match="DACLI_PROCESS_ID"):
        launch_arguments({"DACLI_COORDINATOR": "127.0.0.1:1234", "DACLI_NUM_PROCESSES": "2"})
    with pytest.raises(ConfigError, match=r"\[0, DACLI_NUM_PROCESSES=2\)"):
        launch_arguments({**explicit, "DACLI_PROCESS_ID": "2"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_processes(args: list[str], cwd: Path) -> list[tuple[str, str]]:
    """(stdout, stderr) of ``dacli ARGS`` launched as two processes on localhost (as srun -n 2 would,
    through the DACLI_* variables), 2 fake devices each; both must exit 0."""
    port = free_port()
    children = [subprocess.Popen(
        [sys.executable, "-m", "dacli", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
        env=child_env(JAX_NUM_CPU_DEVICES="2", DACLI_COORDINATOR=f"127.0.0.1:{port}", DACLI_NUM_PROCESSES="2",
                      DACLI_PROCESS_ID=str(index))) for index in range(2)]
    try:
        outputs = [child.communicate(timeout=600) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (stdout, stderr) in zip(children, outputs):
        assert child.returncode == 0, stderr[-3000:]
    return outputs


@pytest.mark.slow  # two dacli processes, each compiling the sweep program
def test_dacli_sweep_over_two_processes_equals_one_process(workspace, cli):
    """``dacli sweep`` as two processes: each runs its share of the 3 values (2 + 1), the results are
    all-gathered, process 0 alone writes the table and prints the JSON — the one-process rows."""
    args = ["sweep", "configs/lorenz96.toml", "--set", "window.count=4", "--values",
            "background.covariance.std=0.5,1.0,2.0", "--json"]
    alone = cli([*args, "--out", "alone.csv"], workspace)
    assert alone.exit_code == 0, alone.stderr
    (first, first_log), (second, second_log) = two_processes([*args, "--out", "two.csv"], workspace)
    assert second == "" and "process 1 of 2 runs values 3 to 3" in second_log
    assert "process 0 of 2 runs values 1 to 2" in first_log
    together, one = json.loads(first), json.loads(alone.stdout)
    assert together["processes"] == 2 and one["processes"] == 1
    # Batches of 2 and 1 values instead of 3 compile to other fusions: round-off, which the minimiser's
    # stopping test near the minimum turns into a few iterations more or less (measured: 2e-8 relative
    # in the mean J, 89.5 against 88.25 mean iterations); the minimum reached is the same.
    for row_two, row_one in zip(together["rows"], one["rows"], strict=True):
        assert row_two.keys() == row_one.keys()
        for name in row_one:
            tolerance = {"iterations_mean": 0.1}.get(name, 1e-6)
            if row_one[name] is None:  # a time average's interval over too few windows
                assert row_two[name] is None, name
                continue
            assert row_two[name] == pytest.approx(row_one[name], rel=tolerance), name
    assert (workspace / "two.csv").read_text().splitlines()[0] == (workspace / "alone.csv").read_text().splitlines()[0]


@pytest.mark.slow  # two dacli processes, each compiling the forecast program
def test_dacli_forecast_over_two_processes_equals_one_process(workspace, cli):
    """``dacli forecast`` launched as two processes on localhost (DACLI_COORDINATOR/NUM_PROCESSES/
    PROCESS_ID, as srun would with Slurm's variables; JAX's gloo CPU collectives), 2 fake devices
    each: every process forecasts its share of the 4 items (control + 3 members), the shares are
    all-gathered, process 0 writes the file — equal to the one-process file — and alone prints
    the JSON summary and the "wrote" line."""
    args = ["forecast", "configs/lorenz96.toml", "--lead-time", "1", "--interval", "0.2", "--members", "3", "--json"]
    alone = cli([*args, "--out", "alone.nc"], workspace)
    assert alone.exit_code == 0, alone.stderr
    (first, first_log), (second, second_log) = two_processes([*args, "--out", "two.nc"], workspace)
    assert json.loads(first)["processes"] == 2  # gloo's connection line went to stderr
    assert second == ""  # process 0 alone reports (stdout of the job step is one JSON document)
    assert "wrote two.nc" in first_log and "wrote" not in second_log
    with xr.open_dataset(workspace / "alone.nc") as one, xr.open_dataset(workspace / "two.nc") as two:
        for name in one.data_vars:
            np.testing.assert_array_equal(two[name].values, one[name].values, err_msg=name)


# --- merging the files of several processes -----------------------------------------------------

STEPS, DT, WINDOWS, SITES, OUTER = 4, 0.05, 6, 5, 2


def analysis_file(path: Path) -> xr.Dataset:
    """An analysis file as `dacli assimilate` writes it (its own writer), from made-up numbers."""
    import dacli.config
    from dacli.io.analysis import AnalysisRecord, analysis_dataset
    from dacli.io.metadata import Discovery
    from dacli.io.netcdf import write_netcdf_atomically
    from dacli.models.base import StateLayout

    rng = np.random.default_rng(0)
    config = dacli.config.load(REPO / "configs" / "lorenz96.toml")
    layout = StateLayout(("x",), "site", np.arange(SITES, dtype=float), periodic=True)
    length = STEPS * DT
    times = DT * np.arange(WINDOWS * STEPS + 1)
    starts = length * np.arange(WINDOWS)
    windows = {"window_start": starts, "window_end": starts + length, "cost_final": rng.uniform(size=WINDOWS),
               "iterations": rng.integers(1, 50, WINDOWS), "converged": rng.uniform(size=WINDOWS) > 0.3}
    states = {"analysis_window_start": rng.normal(size=(WINDOWS, SITES)),
              "analysis_window_end": rng.normal(size=(WINDOWS, SITES))}
    outer = {"outer_cost": rng.uniform(size=(WINDOWS, OUTER)), "outer_inner_converged": rng.uniform(size=(WINDOWS, OUTER)) > 0.5}
    provenance = {"config": config.model_dump_json(), "method": "strong4dvar", "windows": WINDOWS,
                  "observations_used": 7 * WINDOWS, "desroziers_r_ratio": 0.9}
    record = AnalysisRecord(layout, times, rng.normal(size=(times.size, SITES)), rng.normal(size=(times.size, SITES)),
                            windows, states, provenance, outer)
    discovery = Discovery("test", institution="nowhere")
    dataset = analysis_dataset(record, TimeAxis("days since 2000-01-01"), discovery, "dacli assimilate lorenz96.toml")
    write_netcdf_atomically(dataset, path, overwrite=False)
    return xr.open_dataset(path, decode_times=False).load()


def write_part(dataset: xr.Dataset, windows: slice, path: Path, **attrs) -> Path:
    """The windows ``windows`` of ``dataset`` as a part of the run would write them: its times run
    from its first window's start to its last window's end (shared with the next part)."""
    starts = dataset["window_start"].values[windows]
    ends = dataset["window_end"].values[windows]
    times = dataset["time"].values
    part = dataset.isel(window=windows, time=np.flatnonzero((times >= starts[0] - 1e-9) & (times <= ends[-1] + 1e-9)))
    part.attrs.update(dacli_windows=len(starts), dacli_observations_used=7 * len(starts), **attrs)
    part.to_netcdf(path)
    return path


def test_merging_two_parts_gives_back_the_whole_run(tmp_path):
    from dacli.io.merge import merge_analysis_files

    whole = analysis_file(tmp_path / "whole.nc")
    first = write_part(whole, slice(0, 2), tmp_path / "part0.nc")
    second = write_part(whole, slice(2, 5), tmp_path / "part1.nc")
    third = write_part(whole, slice(5, 6), tmp_path / "part2.nc")
    # the parts share their boundary times: 9 + 13 + 5 = 27 times for 25
    assert sum(xr.open_dataset(p).sizes["time"] for p in (first, second, third)) == whole.sizes["time"] + 2
    merged = merge_analysis_files([second, third, first])  # any order
    assert merged.attrs["dacli_windows"] == WINDOWS and merged.attrs["dacli_observations_used"] == 7 * WINDOWS
    assert "dacli_desroziers_r_ratio" not in merged.attrs
    assert merged.attrs["history"].startswith(whole.attrs["history"] + "\n") and "dacli merge (3 files" in merged.attrs["history"]
    merged.attrs = whole.attrs
    xr.testing.assert_identical(merged, whole)
    merged.to_netcdf(tmp_path / "merged.nc")  # writable as it is


def test_merge_refuses_gaps_overlaps_and_other_configs_naming_the_file(tmp_path):
    from dacli.io.merge import merge_analysis_files

    whole = analysis_file(tmp_path / "whole.nc")
    first = write_part(whole, slice(0, 2), tmp_path / "part0.nc")
    gapped = write_part(whole, slice(3, 6), tmp_path / "gapped.nc")
    overlapping = write_part(whole, slice(1, 6), tmp_path / "overlapping.nc")
    config = json.loads(whole.attrs["dacli_config"])
    config["method"]["minimiser"] = "BFGS"
    config["output"]["path"] = "elsewhere.nc"  # a per-part key: not a difference
    other = write_part(whole, slice(2, 6), tmp_path / "other.nc", dacli_config=json.dumps(config))
    with pytest.raises(DataError, match=r"gapped\.nc.*leaves a gap after .*part0\.nc"):
        merge_analysis_files([first, gapped])
    with pytest.raises(DataError, match=r"overlapping\.nc.*overlaps .*part0\.nc"):
        merge_analysis_files([first, overlapping])
    with pytest.raises(DataError, match=r"other\.nc: written with another configuration .*\(differs in method\.minimiser\)"):
        merge_analysis_files([first, other])
    xr.Dataset({"x": ("time", [1.0])}).to_netcdf(tmp_path / "plain.nc")
    with pytest.raises(DataError, match=r"plain\.nc: not a dacli analysis file"):
        merge_analysis_files([first, tmp_path / "plain.nc"])
