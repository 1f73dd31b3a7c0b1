"""dacli train: checkpoints round-trip bit for bit, --resume equals an uninterrupted run, the
command's outputs and its refusals (existing files, missing sections, mismatched resume)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dacli.config
from dacli.errors import ConfigError, DataError, OutputError

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "lorenz63_4dvarnet.toml"
SMALL = ["train.windows=24", "train.validation_windows=8", "train.epochs=3", "train.batch_size=8",
         "network.hidden=6", "network.modulator_hidden=6", "network.kernel=3", "network.iterations=3",
         "window.length=0.32", "simulate.spinup=1.0"]


def small_config(folder: Path, *extra: str):
    return dacli.config.load(CONFIG, [*SMALL, f'train.directory="{folder / "run"}"',
                                f'network.file="{folder / "best.eqx"}"', *extra])


class Interrupt(Exception):
    pass


def test_checkpoint_round_trips_and_resume_equals_an_uninterrupted_run(tmp_path):
    from dacli.run.train import train

    batches = []
    whole = train(small_config(tmp_path / "whole"), on_batch=lambda *counts: batches.append(counts[:4]))
    assert batches == [(e, 3, b, 3) for e in (1, 2, 3) for b in (1, 2, 3)]  # 24 windows in batches of 8, 3 epochs
    assert [row["epoch"] for row in json.loads(Path(whole.files.metrics).read_text())["history"]] == [1, 2, 3]

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupt  # as if the job had been killed right after the epoch-2 checkpoint

    with pytest.raises(Interrupt):
        train(small_config(tmp_path / "parts"), on_epoch=stop_after_two)
    with pytest.raises(OutputError, match=r"run/last.eqx holds a stopped training \(epoch 2 of 3 done\); pass --resume"):
        train(small_config(tmp_path / "parts"), overwrite=True)  # --overwrite alone never drops a checkpoint
    resumed = train(small_config(tmp_path / "parts"), resume=True)
    assert Path(whole.files.last).read_bytes().split(b"\n", 1)[1] == Path(resumed.files.last).read_bytes().split(b"\n", 1)[1]
    assert whole.validation_rmse == resumed.validation_rmse

    # A signal mid-epoch (SIGTERM after epoch 2's first batch): a checkpoint at that batch, exit 143,
    # and --resume redraws epoch 2's batch order and goes on from batch 2 to the same weights.
    import os
    import signal

    from dacli.run.stopping import Interrupted

    def terminate_mid_epoch(epoch, epochs, batch, batches, loss):
        if (epoch, batch) == (2, 1):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Interrupted, match=r"stopped by SIGTERM after batch 1 of 3 in epoch 2 of 3; checkpoint "
                                          r".*last.eqx written") as stop:
        train(small_config(tmp_path / "signal"), on_batch=terminate_mid_epoch)
    assert stop.value.exit_code == 143
    signalled = train(small_config(tmp_path / "signal"), resume=True)
    assert Path(whole.files.last).read_bytes().split(b"\n", 1)[1] == Path(signalled.files.last).read_bytes().split(b"\n", 1)[1]
    assert json.loads(Path(signalled.files.metrics).read_text())["history"][1]["loss"] == pytest.approx(
        json.loads(Path(whole.files.metrics).read_text())["history"][1]["loss"], rel=1e-12)

    # Round trip: what was saved loads back bit for bit into a fresh skeleton.
    import equinox as eqx
    import jax

    from dacli.build.network import build_network
    from dacli.io.saved_trees import load_tree, read_header, save_tree

    header = read_header(whole.files.best)
    skeleton = build_network(small_config(tmp_path).network, header["shape"], header["observation_error_std"],
                             header["offset"], header["scale"], jax.random.PRNGKey(99), np.float32)
    _, network = load_tree(whole.files.best, skeleton)
    save_tree(tmp_path / "again.eqx", header, network)
    assert (tmp_path / "again.eqx").read_bytes() == Path(whole.files.best).read_bytes()
    leaves = jax.tree_util.tree_leaves(eqx.filter(network, eqx.is_array))
    assert not all(np.array_equal(a, b) for a, b in zip(leaves, jax.tree_util.tree_leaves(eqx.filter(skeleton, eqx.is_array))))


def test_refusals(tmp_path):
    from dacli.run.train import train

    with pytest.raises(ConfigError, match=r"network.iteration_adjoint: ImplicitAdjoint differentiates at a fixed point, "
                                          r"and the ConvLSTM solver's normalised updates never settle"):
        small_config(tmp_path, 'network.iteration_adjoint="implicitadjoint"')
    small_config(tmp_path, 'network.iteration_adjoint="ImplicitAdjoint"', 'network.update="gradient"')  # accepted
    config = small_config(tmp_path, "train.epochs=1")
    with pytest.raises(DataError, match=r"--resume: no checkpoint .*run/last.eqx to continue from"):
        train(config, resume=True)
    train(config)
    with pytest.raises(OutputError, match="exist; pass --overwrite to start afresh or --resume to continue"):
        train(config)
    train(config, overwrite=True)  # a finished training's files: --overwrite replaces them
    (tmp_path / "run" / "last.eqx").write_text("a stopped run's checkpoint, damaged\n")
    with pytest.raises(OutputError, match=r"holds a stopped training \(unreadable: network file .*"):
        train(config, overwrite=True)
    with pytest.raises(ConfigError, match="give one"):
        train(config, resume=True, restart=True)
    train(config, overwrite=True, restart=True)
    assert (tmp_path / "run" / "last.eqx").read_bytes().startswith(b"{")
    wider = small_config(tmp_path, "train.epochs=1", "network.hidden=8")
    with pytest.raises(ConfigError, match=r"was written with different network"):
        train(wider, resume=True)
    # A checkpoint written before network.prior / background and train.background_error_std existed
    # resumes (its header lacks them: the defaults were in effect), unless the run now uses them.
    from dacli.run.train import _check_resumable, _identity

    now = _identity(config, {"channels": 3})
    older = {**now, "network": {k: v for k, v in now["network"].items() if k not in ("prior", "background",
                                                                                     "background_weight")},
             "train": {k: v for k, v in now["train"].items() if k != "background_error_std"}}
    _check_resumable(older, now, tmp_path / "older.eqx")
    with pytest.raises(ConfigError, match=r"was written with different network"):
        _check_resumable(older, _identity(small_config(tmp_path, "network.background=true"), {"channels": 3}),
                         tmp_path / "older.eqx")
    with pytest.raises(ConfigError, match=r"train: section missing; dacli train needs \[train\]"):
        train(config.model_copy(update={"train": None}))  # (a classical method.kind is tuned: test_tuning.py)


def test_train_command_writes_curves_and_a_json_summary(cli, tmp_path, monkeypatch):
    import dacli.learned.training as training

    seen = []  # the instability check sees every epoch's history; its warning is logged once
    monkeypatch.setattr(training, "unstable_training", lambda history: seen.append(len(history)) or "loss rose: X")
    args = [a for item in [*SMALL, "train.epochs=2", f'train.directory="{tmp_path / "run"}"',
                           f'network.file="{tmp_path / "best.eqx"}"'] for a in ("--set", item)]
    result = cli(["train", str(CONFIG), "--json", *args], tmp_path)
    assert result.exit_code == 0, result.stderr
    assert seen == [1, 2] and result.stderr.count("loss rose: X") == 1
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 2 and summary["validation_rmse"] < summary["untrained_validation_rmse"]
    png = (tmp_path / "run" / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "epoch 2/2: loss" in result.stderr
    again = cli(["train", str(CONFIG), *args], tmp_path)
    assert again.exit_code == 5 and "--overwrite" in again.stderr


def test_assimilate_with_a_trained_network_and_refuse_one_that_does_not_fit(tmp_path):
    """The trained network cycles over the held-out twin and writes the usual CF file; a checkpoint
    from another architecture or window length is refused, naming what differs. Trained with
    backgrounds (forecasts from perturbed true states, network.background) the same network
    validates better than without (its first iterate is the forecast, not the climatological mean),
    cycles with dacli's background, and its checkpoint is refused by a run without backgrounds."""
    import xarray as xr

    from dacli.run.assimilate import assimilate
    from dacli.run.train import train

    trained = train(small_config(tmp_path, "train.epochs=2"))
    output = tmp_path / "analysis.nc"
    result = assimilate(small_config(tmp_path, f'output.path="{output}"', "window.count=3"))
    s = result.summary
    assert s.method == "4dvarnet" and s.formulation == "learned" and s.windows == 3
    assert s.minimiser == "convlstm x 3" and np.isfinite(s.analysis_rmse)
    with xr.open_dataset(output, decode_times=False) as ds:
        assert ds["x_analysis"].sizes["time"] == 3 * 32 + 1 and int(ds["iterations"][0]) == 3
        assert ds.attrs["dacli_method"] == "4dvarnet"
        # Cycling: each window starts from the previous analysis at its end (shift = length).
        starts, ends = ds["x_analysis_window_start"].values, ds["x_analysis_window_end"].values
        np.testing.assert_allclose(starts[1:], ends[:-1], rtol=1e-6)
    with pytest.raises(ConfigError, match=r"network.hidden is 8 here but 6 in the network file"):
        assimilate(small_config(tmp_path, f'output.path="{tmp_path / "b.nc"}"', "network.hidden=8"))
    with pytest.raises(ConfigError, match=r"reconstructs windows of 3 channels over \[32\]; this run's windows "
                                          r"\(16 model steps of a state of 3\) need 3 over \[16\]"):
        assimilate(small_config(tmp_path, f'output.path="{tmp_path / "c.nc"}"', "window.length=0.16"))
    assert Path(trained.files.best).exists()

    folder = tmp_path / "with_backgrounds"
    informed = train(small_config(folder, "train.epochs=2", "network.background=true"))
    assert informed.background_error_std == 1.0  # simulate.background_error_std
    # Measured: 6.5 with backgrounds vs 16.8 without (2 epochs of 3 Adam steps).
    assert informed.best_validation_rmse < 0.5 * trained.best_validation_rmse
    result = assimilate(small_config(folder, f'output.path="{folder / "a.nc"}"', "window.count=2",
                                     "network.background=true"))
    assert result.summary.windows == 2 and np.isfinite(result.summary.analysis_rmse)
    with pytest.raises(ConfigError, match=r"network.background is False here but True in the network file \(a network "
                                          r"uses the cycled background only if it was trained with backgrounds"):
        assimilate(small_config(folder, f'output.path="{folder / "b.nc"}"'))


def test_validate_needs_the_trained_network(tmp_path):
    from dacli.run.validate import validate

    with pytest.raises(DataError, match=r"network file .*best.eqx: no such file"):
        validate(small_config(tmp_path))


def test_training_progress_bar_on_a_terminal(monkeypatch, capsys):
    from dacli.cli import logs

    monkeypatch.setattr(logs, "is_terminal", lambda: True)
    with logs.TrainingProgress(quiet=False) as progress:
        progress.batch(1, 2, 3, 3, 0.25)
        progress.epoch({"validation_rmse": 0.125})
        progress.batch(2, 2, 1, 3, 0.2)
    shown = capsys.readouterr().err
    assert "epoch 2/2 batch 1/3 loss 0.2 val RMSE 0.125" in shown and "4/6" in shown
    with logs.TrainingProgress(quiet=True) as progress:  # -q: nothing on the terminal
        progress.batch(1, 1, 1, 1, 0.5)
    assert capsys.readouterr().err == ""


def test_unstable_training_is_told_from_a_falling_or_noisy_loss():
    from dacli.learned.training import unstable_training

    def history(losses):
        return [{"epoch": i + 1, "loss": loss} for i, loss in enumerate(losses)]

    diverging = history([0.2647, 0.3463, 0.698, 1.086])  # batch 8, lr 1e-2, 3840 Lorenz-96 windows
    assert unstable_training(diverging[:2]) is None and unstable_training(diverging[:3]) is None  # one bad epoch
    assert unstable_training(diverging) == (
        "the training loss rose from 0.265 (epoch 1) to 1.09 (epoch 4): the optimisation is unstable; lower "
        "train.learning_rate or raise train.batch_size (the best network so far is kept)")
    assert unstable_training(history([0.433, 0.237, 0.193, 0.188, 0.176, 0.163])) is None  # converging
    assert unstable_training(history([0.30, 0.20, 0.26, 0.28, 0.19])) is None  # noisy, below 1.5x the lowest
