"""The shipped Slurm scripts (configs/slurm/*.sbatch) as real jobs on a real single-node Slurm.

tests/slurm/cluster.sh starts the cluster (munged, slurmctld, slurmd as background processes,
everything under the session's temporary folder) and stops it at the end; without root, the
packages or a node that comes up, every test here is skipped with the script's reason. The
scripts are submitted unchanged: sizes and paths come from their variables (DACLI_CONFIG, ...),
sbatch's own options (which override the #SBATCH lines) and the script's arguments (passed on to
dacli). Each job's result is compared, variable by variable, with ``dacli`` run directly, in the
same environment, on the same configuration.

Under pytest-xdist every worker that runs one of these tests holds a shared lock on a file beside
the cluster's folder while it uses the cluster; cluster.sh serialises starts, so the first worker
starts the cluster, the others find it running, and the last one to finish stops it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import REPO, copy_workspace

pytestmark = pytest.mark.slurm

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE"}
# How long a job may take before a test fails (generous: the machine may be busy with other tests).
JOB_SECONDS = 300
# One core per task (the shipped scripts ask for more): jobs run side by side on the test node.
SMALL = ["--cpus-per-task=1", "--mem=1G"]
# Lorenz-96 with 5000 model steps per window (model.dt 0.00004 instead of 0.05): its 50 windows
# take about 37 s (0.75 s each on 2 idle cores) after a start-up of 5-8 s, so a job is signalled
# before they are done (test_a_run_longer_than_its_time_limit_...); a stop waits for at most the
# 5 windows of a chunk.
LONG = ["--set", "model.dt=0.00004", "--set", "run.windows_per_chunk=5"]


class Slurm:
    """Submit to the test cluster and wait for jobs, with the environment the jobs get."""

    def __init__(self, conf: Path):
        # A job inherits the submitting environment (sbatch --export=ALL): dacli's bin folder
        # first on PATH, the test session's compilation cache, CPU only, none of an enclosing
        # Slurm job's variables.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLURM_", "JAX_", "XLA_FLAGS")) and k not in ("FORCE_COLOR", "COLUMNS")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        self.env = {**env, "SLURM_CONF": str(conf), "JAX_PLATFORMS": "cpu"}
        self.log = conf.parent / "log" / "slurmctld.log"

    def run(self, *command, cwd: Path, timeout: float = 60, **env) -> subprocess.CompletedProcess:
        """A command (sbatch, scontrol, dacli run directly, ...) in the jobs' environment."""
        return subprocess.run([str(c) for c in command], cwd=cwd, env={**self.env, **env}, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def dacli(self, *args, cwd: Path, timeout: float = JOB_SECONDS) -> subprocess.CompletedProcess:
        """``dacli ARGS`` run directly (no Slurm): the uninterrupted run a job is compared with."""
        done = self.run("dacli", *args, cwd=cwd, timeout=timeout)
        assert done.returncode == 0, f"dacli {' '.join(map(str, args))}: exit {done.returncode}\n{done.stderr[-3000:]}"
        return done

    def sbatch(self, *arguments, cwd: Path, **env) -> str:
        """Submit (``sbatch --parsable --chdir=cwd ARGUMENTS``); the job id."""
        done = self.run("sbatch", "--parsable", f"--chdir={cwd}", *arguments, cwd=cwd, **env)
        assert done.returncode == 0, f"sbatch {' '.join(arguments)}: {done.stderr}"
        return done.stdout.strip().split(";")[0]

    def jobs(self, job: str) -> list[dict[str, str]]:
        """``scontrol show job`` of a job (every task of an array): one dict of its fields per record."""
        done = self.run("scontrol", "--oneliner", "show", "job", job, cwd=Path.cwd())
        assert done.returncode == 0, f"scontrol show job {job}: {done.stderr}"
        return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in done.stdout.splitlines() if line.strip()]

    def wait(self, job: str, timeout: float) -> list[dict[str, str]]:
        """Poll until every record of ``job`` has finished; their scontrol fields."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.jobs(job)
            if all(r["JobState"] in FINISHED for r in records):
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job} not finished after {timeout:g} s: "
                                     + "; ".join(f"{r['JobId']} {r['JobState']} ({r['Reason']})" for r in records)
                                     + "".join(job_log(r) for r in records))
            time.sleep(0.5)

    def after_a_time_limit_check(self, timeout: float = 45) -> None:
        """Return just after slurmctld's next time-limit check. It checks every 30 s from its start
        (PERIODIC_TIMEOUT, not configurable), sends the --signal warnings and enforces the limits
        then, and logs "Testing job time limits" (SlurmctldDebug=debug2, tests/slurm/cluster.sh)."""
        def checks() -> int:
            return self.log.read_text(errors="replace").count("Testing job time limits")

        seen, deadline = checks(), time.monotonic() + timeout
        while checks() == seen:
            assert time.monotonic() < deadline, f"no time-limit check logged in {timeout:g} s in {self.log}"
            time.sleep(0.1)

    def wait_ok(self, job: str, timeout: float) -> list[dict[str, str]]:
        """:meth:`wait`, then assert every record completed with exit code 0 (its log in the message)."""
        records = self.wait(job, timeout)
        for record in records:
            assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), job_log(record)
        return records


def job_log(record: dict[str, str]) -> str:
    """The job's state and the end of its output file, for an assertion message."""
    path = Path(record.get("StdOut", ""))
    text = path.read_text(errors="replace")[-4000:] if path.is_file() else "(no output file)"
    return (f"\n--- job {record['JobId']}: {record['JobState']}, exit code {record['ExitCode']}, "
            f"{record.get('Restarts', '0')} restart(s); {path}:\n{text}")


@pytest.fixture(scope="session")
def shared_folder(tmp_path_factory, worker_id) -> Path:
    """The test session's folder common to every xdist worker (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@pytest.fixture(scope="session")
def slurm(shared_folder) -> Slurm:
    """The test cluster, started by the first worker that needs it and stopped by the last."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("the Slurm test cluster starts munged, slurmctld and slurmd: Linux and root only")
    folder = shared_folder / "slurm"
    with open(shared_folder / "slurm.users", "a") as users:
        fcntl.flock(users, fcntl.LOCK_SH)  # held while this worker uses the cluster
        started = subprocess.run(["bash", str(CLUSTER), "start", str(folder)], capture_output=True, text=True,
                                 timeout=300, stdin=subprocess.DEVNULL)
        if started.returncode != 0:
            pytest.skip(f"no Slurm test cluster: {started.stderr.strip()[-3000:]}")
        if shutil.which("dacli", path=str(Path(sys.executable).parent)) is None:
            pytest.skip(f"no dacli executable beside {sys.executable} for the jobs to run (pip install the package)")
        try:
            yield Slurm(folder / "slurm.conf")
        finally:
            fcntl.flock(users, fcntl.LOCK_UN)
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only when no other worker holds it
            except BlockingIOError:
                pass
            else:
                subprocess.run(["bash", str(CLUSTER), "stop", str(folder)], timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def lorenz96_run(slurm, shared_folder) -> Path:
    """The shipped Lorenz-96 run (50 windows), uninterrupted, run directly: the reference (run once
    for all the workers: the first to need it runs it, the others wait for it)."""
    root = shared_folder / "lorenz96-direct"
    with open(shared_folder / "lorenz96-direct.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "whole.nc").exists():
            shutil.rmtree(root, ignore_errors=True)
            copy_workspace(root)
            slurm.dacli("assimilate", "configs/lorenz96.toml", "--set", 'output.path="whole.nc"', "-q", cwd=root)
    return root / "whole.nc"


def assert_same_variables(path: Path, expected: Path, attributes=()) -> None:
    """Every data variable of ``path`` equals ``expected``'s exactly (NaN where it has NaN), and so
    do the named global attributes."""
    with xr.open_dataset(path, decode_times=False) as got, xr.open_dataset(expected, decode_times=False) as want:
        assert set(got.data_vars) == set(want.data_vars)
        assert dict(got.sizes) == dict(want.sizes)
        for name in want.data_vars:
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=f"{path.name}: {name}")
        for key in attributes:
            assert got.attrs.get(key) == want.attrs.get(key), f"{path.name}: attribute {key}"


# The long pole first: under pytest-xdist it starts while the other worker takes the next tests.
@pytest.mark.slow
def test_a_run_longer_than_its_time_limit_is_stopped_requeued_and_resumed(slurm, tmp_path):
    """requeue.sbatch with a real one-minute limit: Slurm's own early signal (--signal=USR1@20)
    stops dacli at a chunk boundary with a checkpoint (exit 143), the script requeues the job, the
    next run resumes from the checkpoint, until a run finishes. The file equals the uninterrupted
    run's.

    Slurm checks time limits every 30 s and signals a job at the first check where its limit is
    less than 20 + 30 s away, so a job always has more than 20 s left when signalled: enough to
    finish the chunk under way and write the file or the checkpoint on a busy machine (measured:
    up to 16 s, a chunk of 10 s and a write of 6 s). A job that ends after its limit, even with
    exit 0, is TIMEOUT: with USR1@5 a run signalled in its last chunk was (CI, 2026-12-08). The
    job is submitted just after a check, so it starts about 1 s later and is signalled at the next
    check, 29 s into its run, before its work (LONG) is done. A requeued run starts about 10 s
    after a check (the eligible time is cred_expire + 1 s after the requeue,
    tests/slurm/cluster.sh) and is signalled at the next, 20 s into it: each does a part of the
    rest (more runs on a busy machine) until one finishes."""
    workspace = copy_workspace(tmp_path)
    # The uninterrupted run first, while the test waits for the check: it fills the session's
    # compilation cache, so the job's runs load the program instead of compiling it.
    direct = subprocess.Popen(["dacli", "assimilate", "configs/lorenz96.toml", *LONG, "--set", 'output.path="whole.nc"',
                               "-q"], cwd=workspace, env=slurm.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        slurm.after_a_time_limit_check()
        job = slurm.sbatch("--time=1", "--signal=USR1@20", *SMALL, "configs/slurm/requeue.sbatch", *LONG,
                           cwd=workspace, DACLI_CONFIG="configs/lorenz96.toml", DACLI_OUTPUT="long.nc")
        _, stderr = direct.communicate(timeout=JOB_SECONDS)
    finally:
        direct.kill()
    assert direct.returncode == 0, f"dacli (uninterrupted): exit {direct.returncode}\n{stderr[-3000:]}"
    [record] = slurm.wait_ok(job, timeout=3 * JOB_SECONDS)
    log = (workspace / f"dacli-long-{job}.log").read_text()  # every run's, appended
    assert int(record["Restarts"]) >= 1, job_log(record)
    assert "stopped by SIGUSR1 after window" in log and "resuming after window" in log, log
    assert not (workspace / "long.nc.checkpoint").exists()
    assert_same_variables(workspace / "long.nc", workspace / "whole.nc",
                          ["dacli_converged_windows", "dacli_desroziers_r_ratio"])


def test_single_job_equals_the_direct_run(slurm, lorenz96_run, tmp_path):
    """single.sbatch as shipped (configs/lorenz96.toml): the job completes, its stdout file holds the
    JSON summary, and the analysis equals the direct run's."""
    workspace = copy_workspace(tmp_path)
    job = slurm.sbatch(*SMALL, "configs/slurm/single.sbatch", cwd=workspace)
    slurm.wait_ok(job, timeout=JOB_SECONDS)
    summary = json.loads((workspace / f"summary-{job}.json").read_text())
    assert (summary["windows"], summary["output"]) == (50, "lorenz96_analysis.nc")
    assert_same_variables(workspace / "lorenz96_analysis.nc", lorenz96_run,
                          ["dacli_converged_windows", "dacli_desroziers_r_ratio"])


def test_single_job_stopped_by_the_early_warning_signal_then_resumed(slurm, lorenz96_run, tmp_path):
    """single.sbatch sent USR1 (as --signal=USR1@300 would, here by scancel while the first chunk
    compiles): the job fails with exit code 143, leaves a checkpoint and no analysis; the same
    script submitted again with --resume completes, and its file equals the direct run's."""
    workspace = copy_workspace(tmp_path)
    # An empty compilation cache: the first chunk compiles for seconds instead of loading at once,
    # so USR1, sent 3 s after the last log line before it, lands in that compilation: after the
    # check before window 1, before window 12 is done.
    cache = {"DACLI_COMPILATION_CACHE": str(workspace / "cache")}
    job = slurm.sbatch(*SMALL, "configs/slurm/single.sbatch", cwd=workspace, **cache)
    log = workspace / f"dacli-4dvar-{job}.log"
    deadline = time.monotonic() + JOB_SECONDS
    while " method strong4dvar" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, job_log(slurm.jobs(job)[0])
        time.sleep(0.1)
    time.sleep(3)
    signalled = slurm.run("scancel", "--signal=USR1", job, cwd=workspace)
    assert signalled.returncode == 0, signalled.stderr
    [record] = slurm.wait(job, timeout=JOB_SECONDS)
    assert (record["JobState"], record["ExitCode"]) == ("FAILED", "143:0"), job_log(record)
    assert "dacli: stopped by SIGUSR1 after window 12 of 50" in log.read_text(), job_log(record)
    assert (workspace / "lorenz96_analysis.nc.checkpoint").is_file()
    assert not (workspace / "lorenz96_analysis.nc").exists()

    resumed = slurm.sbatch(*SMALL, "configs/slurm/single.sbatch", "--resume", cwd=workspace, **cache)
    slurm.wait_ok(resumed, timeout=JOB_SECONDS)
    assert "resuming after window" in (workspace / f"dacli-4dvar-{resumed}.log").read_text()
    assert not (workspace / "lorenz96_analysis.nc.checkpoint").exists()
    assert_same_variables(workspace / "lorenz96_analysis.nc", lorenz96_run,
                          ["dacli_converged_windows", "dacli_desroziers_r_ratio"])


def submit_array_and_merge(slurm, workspace: Path, options, arguments, **env) -> None:
    """array.sbatch over Lorenz-96's 50 windows in two tasks of 25, then the merge job its comment
    shows; wait for both and assert that every task and the merge completed."""
    env = {"DACLI_CONFIG": "configs/lorenz96.toml", "DACLI_WINDOWS_PER_TASK": "25", **env}
    array = slurm.sbatch(*SMALL, *options, "configs/slurm/array.sbatch", *arguments, cwd=workspace, **env)
    merge = slurm.sbatch(*SMALL, f"--dependency=afterok:{array}", "--output=merge-%j.log",
                         "--wrap", "dacli merge -o analysis.nc analysis_*.nc", cwd=workspace)
    records = slurm.wait_ok(array, timeout=JOB_SECONDS)
    assert sorted(r["ArrayTaskId"] for r in records) == ["0", "1"]
    slurm.wait_ok(merge, timeout=JOB_SECONDS)
    assert [p.name for p in sorted(workspace.glob("analysis_*.nc"))] == ["analysis_000.nc", "analysis_001.nc"]


# What a merged file shares with the single run besides its variables.
MERGED_ATTRIBUTES = ["dacli_windows", "dacli_converged_windows", "dacli_observations_used",
                     "dacli_observations_outside_windows"]


def test_job_array_chained_ranges_merge_into_the_single_run(slurm, lorenz96_run, tmp_path):
    """array.sbatch chained (its default; one task at a time: --array=0-1%1): the second range
    starts from the first range's analysis file, and the merge job's file equals the single
    uninterrupted run, variable by variable, with its window and observation counts."""
    workspace = copy_workspace(tmp_path)
    submit_array_and_merge(slurm, workspace, ["--array=0-1%1"], [])
    assert_same_variables(workspace / "analysis.nc", lorenz96_run, MERGED_ATTRIBUTES)


def test_job_array_independent_ranges_merge_into_the_single_run(slurm, lorenz96_run, tmp_path):
    """array.sbatch with independent ranges (DACLI_CHAIN=0, --array=0-1: the tasks may run at
    once), each starting from a background file at its first window: here the uninterrupted run's
    own background trajectory (x_background of its file), so each range starts where the single
    run did and the merge job's file must equal the single run, variable by variable, with its
    window and observation counts."""
    workspace = copy_workspace(tmp_path)
    shutil.copy(lorenz96_run, workspace / "previous.nc")
    background = ["--set", 'background.path="previous.nc"', "--set", 'background.names={x="x_background"}']
    submit_array_and_merge(slurm, workspace, ["--array=0-1"], background, DACLI_CHAIN="0")
    assert_same_variables(workspace / "analysis.nc", lorenz96_run, MERGED_ATTRIBUTES)


def test_srun_two_tasks_forecast_through_jax_distributed_equals_one_process(slurm, lorenz96_run, tmp_path):
    """multigpu.sbatch on CPU (DACLI_DEVICE=cpu) with --ntasks=2: srun starts two dacli processes
    that connect through jax.distributed (Slurm's variables), each forecasts its share, process 0
    writes the file — equal to a one-process forecast — and prints the only JSON document on the
    job's stdout; "wrote" is logged once."""
    workspace = copy_workspace(tmp_path)
    shutil.copy(lorenz96_run, workspace / "analysis.nc")
    sizes = ["--lead-time", "1", "--interval", "0.2", "--members", "3"]
    job = slurm.sbatch("--ntasks=2", *SMALL, "--output=forecast-%j.out", "--error=forecast-%j.err",
                       "configs/slurm/multigpu.sbatch", *sizes, cwd=workspace, DACLI_CONFIG="configs/lorenz96.toml",
                       DACLI_FROM="analysis.nc", DACLI_OUTPUT="two.nc", DACLI_DEVICE="cpu")
    slurm.dacli("forecast", "configs/lorenz96.toml", "--from", "analysis.nc", "--all-windows", "--device", "cpu",
                "--out", "one.nc", *sizes, "-q", cwd=workspace)
    [record] = slurm.wait(job, timeout=JOB_SECONDS)
    stderr = (workspace / f"forecast-{job}.err").read_text()
    assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), stderr[-4000:]
    stdout = (workspace / f"forecast-{job}.out").read_text()
    summary = json.loads(stdout)  # one document: a second process's summary would be "Extra data"
    assert (summary["processes"], summary["output"]) == (2, "two.nc")
    assert stderr.count("wrote two.nc") == 1, stderr[-4000:]
    assert_same_variables(workspace / "two.nc", workspace / "one.nc")


def test_srun_two_tasks_sweep_through_jax_distributed_equals_one_process(slurm, tmp_path):
    """``srun -n 2 dacli sweep``: each task runs its share of the values (jax.distributed from Slurm's
    variables), the results are all-gathered, and only process 0 writes the table and prints the one
    JSON document — the rows of a one-process sweep."""
    workspace = copy_workspace(tmp_path)
    sweep = ["dacli", "sweep", "configs/lorenz96.toml", "--set", "window.count=4", "--values",
             "background.covariance.std=0.5,1.0,2.0", "--json"]
    job = slurm.sbatch("--ntasks=2", *SMALL, "--output=sweep-%j.out", "--error=sweep-%j.err",
                       "--wrap", shlex.join(["srun", *sweep, "--out", "two.csv"]), cwd=workspace)
    alone = json.loads(slurm.dacli(*sweep[1:], "--out", "one.csv", "-q", cwd=workspace).stdout)
    [record] = slurm.wait(job, timeout=JOB_SECONDS)
    stderr = (workspace / f"sweep-{job}.err").read_text()
    assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), stderr[-4000:]
    together = json.loads((workspace / f"sweep-{job}.out").read_text())  # one document, from process 0
    assert together["processes"] == 2 and "process 1 of 2 runs values 3 to 3" in stderr
    for row_two, row_one in zip(together["rows"], alone["rows"], strict=True):  # see test_parallel.py's sweep test
        assert row_two["analysis_rmse"] == pytest.approx(row_one["analysis_rmse"], rel=1e-6)
        assert row_two["cost_final_mean"] == pytest.approx(row_one["cost_final_mean"], rel=1e-6)
    assert (workspace / "two.csv").is_file()
