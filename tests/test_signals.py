"""A stop signal at any moment of a real ``dacli`` process ends it cleanly.

The moments: while Python imports (the handlers exist from process start), while the inputs are
read (before anything is compiled), during compilation and between chunks (tests/test_stop_resume.py),
and after the output was written. Before any window: exit 143, nothing to resume, no file. After
writing: exit 0 with the file (a batch scheduler must not report a finished run as failed, and
Python's default action for SIGUSR1 would have ended it with 138).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("signal_child.py")
L96 = ["configs/lorenz96.toml", "--set", "window.count=4"]
FORECAST = ["forecast", "configs/lorenz96.toml", "--from", "sample_data/lorenz96_truth.nc", "--start-time", "1",
            "--lead-time", "0.4", "--interval", "0.2", "--out", "forecast.nc"]
TRAIN_SMALL = ["--set", "train.windows=16", "--set", "train.validation_windows=8", "--set", "train.epochs=1",
               "--set", "train.batch_size=8", "--set", "network.hidden=4", "--set", "network.modulator_hidden=4",
               "--set", "network.kernel=3", "--set", "network.iterations=2", "--set", "window.length=0.16",
               "--set", "simulate.spinup=1.0", "--set", 'train.directory="training"',
               "--set", 'network.file="trained.eqx"']
TRAIN = ["train", "configs/lorenz63_4dvarnet.toml", *TRAIN_SMALL]
SWEEP = ["sweep", *L96, "--values", "background.covariance.std=0.5,1.0", "--out", "sweep.csv"]


def _environment():
    return {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}


def _signalled(cwd, target: str, when: str, arguments: list[str]):
    """Run dacli with ``target`` wrapped to send SIGUSR1 to the process ``when`` it is called."""
    return subprocess.run([sys.executable, str(CHILD), target, when, "SIGUSR1", "--", *arguments], cwd=cwd,
                          env=_environment(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def _catches(pid: int, number: int) -> bool:
    """Whether process ``pid`` has a handler for signal ``number`` (Linux: SigCgt in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    return bool(caught & (1 << (number - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc/PID/status")
def test_a_signal_while_python_imports(workspace):
    """USR1 as soon as the handler exists (the entry point's first act, long before JAX is imported)."""
    process = subprocess.Popen([sys.executable, "-m", "dacli", "assimilate", *L96], cwd=workspace,
                               env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _catches(process.pid, signal.SIGUSR1):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.001)
    process.send_signal(signal.SIGUSR1)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr
    assert "dacli: stopped by SIGUSR1 before" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not (workspace / "lorenz96_analysis.nc").exists()
    assert not (workspace / "lorenz96_analysis.nc.checkpoint").exists()


@pytest.mark.parametrize(("arguments", "target", "message"), [
    (["assimilate", *L96], "dacli.run.inputs:prepare_inputs",
     "dacli: stopped by SIGUSR1 before window 1 of 4; nothing computed, nothing to resume: rerun the same command"),
    (SWEEP, "dacli.run.inputs:prepare_inputs",
     "dacli: stopped by SIGUSR1 before window 1 of 4; a sweep keeps no checkpoint: rerun the same command"),
    (FORECAST, "dacli.run.forecast:choose_starts",
     "dacli: stopped by SIGUSR1 before the forecasts from 1 start time(s); nothing computed, nothing to resume"),
    (TRAIN, "dacli.run.train:training_windows",
     "dacli: stopped by SIGUSR1 before epoch 1 of 1; nothing trained, nothing to resume: rerun the same command"),
], ids=["assimilate", "sweep", "forecast", "train"])
def test_a_signal_while_the_inputs_are_read(workspace, arguments, target, message):
    """Deferred from the command's start: it stops before compiling anything, exit 143, no files."""
    before = set(os.listdir(workspace))
    result = _signalled(workspace, target, "before", arguments)
    assert result.returncode == 143, result.stderr
    assert "received SIGUSR1: stopping at the next safe point" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    new = set(os.listdir(workspace)) - before
    assert new <= {"training"} and not any((workspace / "training").glob("*")), new  # at most train's empty folder


@pytest.mark.parametrize(("arguments", "target", "written"), [
    (["assimilate", *L96], "dacli.run.assimilate:assimilate", "lorenz96_analysis.nc"),
    (SWEEP, "dacli.run.sweep:write_table", "sweep.csv"),
    (FORECAST, "dacli.run.forecast:forecast", "forecast.nc"),
    (TRAIN, "dacli.run.train:train", "trained.eqx"),
], ids=["assimilate", "sweep", "forecast", "train"])
def test_a_signal_after_the_file_was_written(workspace, arguments, target, written):
    """The work is done: the signal changes nothing, exit 0 (not 138, not 143)."""
    result = _signalled(workspace, target, "after", arguments)
    assert result.returncode == 0, result.stderr
    assert "received SIGUSR1 after the work was done: ended normally" in result.stderr
    assert (workspace / written).is_file()


def test_a_signal_in_a_command_without_a_safe_point(workspace):
    """dacli simulate has no checkpoint: a stop ends it at once (exit 143, nothing written, no traceback)."""
    files = lambda: {p: p.stat().st_mtime_ns for p in workspace.rglob("*")}  # noqa: E731
    before = files()
    result = _signalled(workspace, "dacli.run.simulate:simulate", "before",
                        ["simulate", "configs/lorenz96.toml", "--overwrite"])
    assert result.returncode == 143, result.stderr
    assert "dacli: stopped by SIGUSR1 before the command finished (nothing to resume: run it again)" in result.stderr
    assert "Traceback" not in result.stderr
    assert files() == before  # simulate's three files (in sample_data/) untouched, nothing added
