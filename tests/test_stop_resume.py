"""Clean stops and resume: a real dacli process sent SIGTERM, ``--resume``, the early-warning signal.

A stopped run must exit 143 (130 for SIGINT) with a checkpoint and no analysis file, and the
resumed run must write exactly the file an uninterrupted run writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

# The shipped Lorenz-96 run as it is (50 windows in compiled chunks of 12, the programs other tests
# compile too): a stop lands on a chunk boundary well before the end.


def _same_analysis(path_a, path_b):
    with xr.open_dataset(path_a) as a, xr.open_dataset(path_b) as b:
        assert set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        for key in ("dacli_converged_windows", "dacli_desroziers_r_ratio"):
            assert a.attrs[key] == b.attrs[key]


def _stop_a_real_process(cwd, cache):
    """A real ``dacli assimilate`` process sent SIGTERM as its first chunk starts compiling
    (tests/signal_child.py signals it when the chunk program is called)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    env["DACLI_COMPILATION_CACHE"] = str(cache)
    child = Path(__file__).with_name("signal_child.py")
    process = subprocess.run([sys.executable, str(child), "dacli.methods.variational:analyse_windows", "before",
                              "SIGTERM", "--", "assimilate", "configs/lorenz96.toml"], cwd=cwd, env=env,
                             capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=300)
    return process.returncode, process.stderr


def test_sigterm_checkpoint_then_resume_equals_the_uninterrupted_run(workspace, cli):
    code, stderr = _stop_a_real_process(workspace, workspace / "cache")
    assert code == 143, stderr
    # The persistent compilation cache took the diffrax + optimistix window program (EQX_ON_ERROR=nan
    # keeps host callbacks out of it; with them JAX would not cache it).
    assert any((workspace / "cache").iterdir())
    assert "received SIGTERM: stopping at the next safe point" in stderr
    assert ("dacli: stopped by SIGTERM after window 12 of 50; checkpoint lorenz96_analysis.nc.checkpoint written, "
            "no analysis file; rerun the same command with --resume to finish") in stderr
    assert "Traceback" not in stderr
    assert (workspace / "lorenz96_analysis.nc.checkpoint").is_file()
    assert not (workspace / "lorenz96_analysis.nc").exists()
    with open(workspace / "lorenz96_analysis.nc.checkpoint", "rb") as stream:  # the diagnostics so far, readable
        header = json.loads(stream.readline())
    assert (header["windows_done"], header["stopped_by"], len(header["diagnostics"])) == (12, "SIGTERM", 12)

    for fresh_start in ([], ["--overwrite"]):  # would drop the checkpoint (--overwrite is about output files)
        fresh = cli(["assimilate", "configs/lorenz96.toml", *fresh_start], workspace)
        assert fresh.exit_code == 5
        assert ("lorenz96_analysis.nc.checkpoint holds a stopped run's progress (12 of 50 windows done); pass --resume "
                "to continue it or --restart to discard it and start afresh") in fresh.stderr
    both = cli(["assimilate", "configs/lorenz96.toml", "--resume", "--restart"], workspace)
    assert both.exit_code == 2 and "give one" in both.stderr
    other = cli(["assimilate", "configs/lorenz96.toml", "--set", "method.max_steps=7", "--resume"], workspace)
    assert other.exit_code == 2
    assert "was written with a different configuration (method.max_steps: 100 then, 7 now)" in other.stderr

    resumed = cli(["assimilate", "configs/lorenz96.toml", "--resume"], workspace)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming after window 12 of 50" in resumed.stderr
    assert not (workspace / "lorenz96_analysis.nc.checkpoint").exists()
    whole = cli(["assimilate", "configs/lorenz96.toml", "--set", 'output.path="whole.nc"'], workspace)
    assert whole.exit_code == 0, whole.stderr
    _same_analysis(workspace / "lorenz96_analysis.nc", workspace / "whole.nc")
    with xr.open_dataset(workspace / "whole.nc") as whole:  # the checkpoint's diagnostics were the run's
        for name in ("cost_final", "iterations", "analysis_rmse", "oma_rms"):
            np.testing.assert_array_equal([w[name] for w in header["diagnostics"]], whole[name].values[:12])


def test_restart_discards_a_checkpoint_and_says_so(workspace, cli):
    checkpoint = workspace / "lorenz96_analysis.nc.checkpoint"
    checkpoint.write_text("not a checkpoint\n")
    refused = cli(["assimilate", "configs/lorenz96.toml", "--set", "window.count=4", "--overwrite"], workspace)
    assert refused.exit_code == 5 and checkpoint.read_text() == "not a checkpoint\n"
    restarted = cli(["assimilate", "configs/lorenz96.toml", "--set", "window.count=4", "--restart"], workspace)
    assert restarted.exit_code == 0, restarted.stderr
    assert "--restart: discarding the checkpoint lorenz96_analysis.nc.checkpoint (unreadable: " in restarted.stderr
    assert not checkpoint.exists() and (workspace / "lorenz96_analysis.nc").is_file()


def test_resume_without_a_checkpoint(workspace, cli):
    result = cli(["assimilate", "configs/lorenz96.toml", "--resume"], workspace)
    assert result.exit_code == 3
    assert ("--resume: no checkpoint lorenz96_analysis.nc.checkpoint to continue from (a stopped run writes it "
            "beside output.path)") in result.stderr


def test_the_early_warning_signal_stops_in_process(workspace):
    """run.stop_signal = USR1 (Slurm's --signal=USR1@300): stop after the chunk it arrived in, exit 143."""
    import dacli.config
    from dacli.run.assimilate import assimilate
    from dacli.run.stopping import Interrupted

    config = dacli.config.load(workspace / "configs/lorenz96.toml",
                         ['run.stop_signal="USR1"'])

    def on_window(k, total, record):
        if k == 4:
            os.kill(os.getpid(), signal.SIGUSR1)

    with pytest.raises(Interrupted) as stop:
        assimilate(config, on_window=on_window)
    assert stop.value.exit_code == 143
    assert str(stop.value).startswith("stopped by SIGUSR1 after window 12 of 50")
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the handler is gone after the run


@pytest.mark.parametrize(("override", "message"), [
    ('run.stop_signal="USR9"', "unknown or uncatchable signal 'USR9'"),
    ('run.stop_signal="KILL"', "unknown or uncatchable signal 'KILL'"),
    ('window.select="5:3"', "expected 0 <= A < B in 'A:B', found '5:3'"),
    ('window.select="five"', "expected 'A:B' (windows A <= k < B, from 0), found 'five'"),
])
def test_bad_stop_signal_and_window_range(workspace, cli, override, message):
    result = cli(["validate", "configs/lorenz96.toml", "--set", override], workspace)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_stop_inside_a_long_window_and_its_resume(workspace, monkeypatch):
    """run.minimiser_steps_per_chunk: the minimiser runs 10 iterations per compiled call and a stop is
    honoured inside a window; the window starts again on --resume, and the file equals an
    uninterrupted run's (which equals the one-program solve to round-off)."""
    import xarray as xr

    import dacli.config
    from dacli.run.assimilate import assimilate
    from dacli.run.stopping import Interrupted

    stepwise = ["window.count=6", "run.minimiser_steps_per_chunk=10", 'run.stop_signal="USR1"']
    config = dacli.config.load(workspace / "configs/lorenz96.toml", stepwise)

    import dacli.methods.chunked as chunked

    armed, advance = [], chunked.advance

    def signal_inside_window_3(*args, **kwargs):  # the signal arrives while window 3 iterates
        if armed:
            armed.clear()
            os.kill(os.getpid(), signal.SIGUSR1)
        return advance(*args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(Interrupted) as stop:
        patch.setattr(chunked, "advance", signal_inside_window_3)
        assimilate(config, on_window=lambda k, total, record: armed.append(True) if k == 1 else None)
    assert str(stop.value).startswith("stopped by SIGUSR1 during window 3 of 6; checkpoint "
                                      "lorenz96_analysis.nc.checkpoint written (windows 1 to 2)")
    assimilate(config, resume=True)
    whole = dacli.config.load(workspace / "configs/lorenz96.toml", [*stepwise, 'output.path="whole.nc"'])
    assimilate(whole)
    _same_analysis(workspace / "lorenz96_analysis.nc", workspace / "whole.nc")
    one_program = dacli.config.load(workspace / "configs/lorenz96.toml", ["window.count=6", 'output.path="one.nc"'])
    assimilate(one_program)
    with xr.open_dataset(workspace / "whole.nc") as a, xr.open_dataset(workspace / "one.nc") as b:
        np.testing.assert_allclose(a.x_analysis.values, b.x_analysis.values, atol=1e-10)
        np.testing.assert_array_equal(a.iterations.values, b.iterations.values)


def test_stepwise_minimisation_needs_the_nonlinear_formulation(workspace, cli):
    result = cli(["assimilate", "configs/lorenz96_incremental.toml", "--set", "run.minimiser_steps_per_chunk=5"],
                 workspace)
    assert result.exit_code == 2
    assert ("run.minimiser_steps_per_chunk: steps an optimistix minimisation (the nonlinear formulation); the "
            "incremental formulation runs each window in one compiled program") in result.stderr


def test_a_second_ctrl_c_aborts_at_once():
    """The first SIGINT only asks for a stop; a second one while it is pending raises at once (the
    docs/hpc.md: "a second Ctrl-C aborts at once"), and the handlers are restored afterwards."""
    from dacli.run.stopping import StopSignals

    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested() == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
