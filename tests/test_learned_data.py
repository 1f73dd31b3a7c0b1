"""4DVarNet's windows: observations on the window grid exactly where and when they were taken;
training from (observations, truth) files; the 2-D network on a QG twin with satellite tracks,
trained from files and cycled by dacli assimilate into a CF lat-lon file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dacli.config
from dacli.errors import DataError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_window_pairs_hold_each_observation_at_its_step_and_variable():
    """Lorenz-63, gridded: y[k, v, j] is the file's observation of variable v at window k's step
    j + 1 (every 8th step), the mask marks exactly those, and the truth windows are the run's states."""
    from dacli.run.simulate import make_twin
    from dacli.run.train import training_windows

    config = dacli.config.load(CONFIGS / "lorenz63_4dvarnet.toml", ["simulate.spinup=1.0", "window.length=0.16", "simulate.duration=0.8"])
    twin = make_twin(config, config.run.seed + 1, 5 * 0.16)
    data = training_windows(config.model_copy(update={"train": config.train.model_copy(
        update={"windows": 3, "validation_windows": 2, "batch_size": 1})}), twin.layout, 16, np.dtype(np.float64))
    assert data.y.shape == (5, 3, 16) and data.training == 3
    assert data.observation_error_std == pytest.approx(np.sqrt(2.0))
    times = np.round(twin.observations["time"].values / 0.01).astype(int)  # model steps of the observations
    for v, name in enumerate(("x", "y", "z")):
        observed = twin.observations[name].values
        for k in range(5):
            for j in range(16):
                step = 16 * k + j + 1
                row = np.flatnonzero(times == step)
                expected = observed[row[0]] if len(row) and np.isfinite(observed[row[0]]) else None
                assert data.mask[k, v, j] == (expected is not None), (k, v, j)
                if expected is not None:
                    assert data.y[k, v, j] == pytest.approx(expected, rel=1e-6)  # float32 config
                assert data.truth[k, v, j] == pytest.approx(twin.truth[step, v], rel=1e-6)
    assert data.mask.sum() == 5 * 3 * 2  # steps 8 and 16 of each window
    # The true window-start states (step 0, the training backgrounds' unperturbed origin) and start times.
    np.testing.assert_allclose(data.initial, twin.truth[0:80:16], rtol=1e-6)
    np.testing.assert_allclose(data.starts - data.starts[0], 0.16 * np.arange(5), atol=1e-6)


QG_SMALL = ["model.parameters={nx = 16, ny = 16, length_x = 3.2e5, deformation_radius = 40e3, viscosity = 20.0, "
            "coordinates = \"latlon\", center_lat = 38.0, center_lon = -60.0}",
            "window.length=1.0", "window.shift=1.0", "simulate.spinup=5.0", "simulate.duration=6.0",
            "simulate.repeat_period=2.0", "network.hidden=4", "network.modulator_hidden=4", "network.iterations=2",
            "train.epochs=2", "train.batch_size=2", "train.windows=4", "train.validation_windows=2",
            "train.learning_rate=1e-2"]


def test_qg_network_trained_from_track_files_cycles_into_a_cf_lat_lon_file(tmp_path):
    """dacli simulate writes a 16x16 QG twin observed along satellite tracks; dacli train reads
    those files (6 one-day windows: 4 train, 2 validate) and improves on the untrained network;
    dacli assimilate cycles the trained network over the twin's windows into a CF (time, lat, lon)
    file. Too short a truth for the asked windows is a DataError naming the counts."""
    import xarray as xr

    from dacli.run.assimilate import assimilate
    from dacli.run.simulate import simulate
    from dacli.run.train import train

    files = [f'observations.path="{tmp_path / "obs.nc"}"', f'truth.path="{tmp_path / "truth.nc"}"',
             f'background.path="{tmp_path / "background.nc"}"']
    own = [*QG_SMALL, *files, f'train.directory="{tmp_path / "run"}"', f'network.file="{tmp_path / "net.eqx"}"',
           f'train.observations="{tmp_path / "obs.nc"}"', f'train.truth="{tmp_path / "truth.nc"}"',
           f'output.path="{tmp_path / "analysis.nc"}"']
    config = dacli.config.load(CONFIGS / "qg_4dvarnet.toml", own)
    simulate(config)
    trained = train(config)
    assert trained.training_windows == 4 and trained.validation_windows == 2
    assert trained.data.endswith("obs.nc and " + str(tmp_path / "truth.nc"))
    assert trained.best_validation_rmse < trained.untrained_validation_rmse
    s = assimilate(config).summary
    assert s.method == "4dvarnet" and s.windows == 6 and np.isfinite(s.analysis_rmse)
    with xr.open_dataset(tmp_path / "analysis.nc", decode_times=False) as ds:
        assert ds["ssh_analysis"].dims == ("time", "lat", "lon") and ds["ssh_analysis"].shape == (6 * 4 + 1, 16, 16)
        assert ds["lat"].attrs["units"] == "degrees_north"
    with pytest.raises(DataError, match=r"train.truth: .*truth.nc covers \[0, 6\]: 6 windows of 1 from window.start = 0; "
                                        r"train.windows \(8\) \+ train.validation_windows \(2\) need 10"):
        train(dacli.config.load(CONFIGS / "qg_4dvarnet.toml", [*own, "train.windows=8"]), overwrite=True)
