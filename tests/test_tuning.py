"""dacli train on a classical 4DVar config: tuning B's (and R's, Q's) hyperparameters.

A mis-specified B (std and length scale) pulled back toward the truth with a lower validation
RMSE; the implicit gradient (optimistix ImplicitAdjoint at the converged minimiser) against
central finite differences of the loss; B and R scaled together leave the loss unchanged (only
their ratio matters); the snippet, and the refusals (existing snippet, unknown parameter,
unidentifiable or inapplicable choices).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

import dacli.config
from dacli.errors import ConfigError

SMALL = """\
[run]
name = "tune-test"
seed = 5

[model]
name = "lorenz96"
parameters = {{ n = 10, forcing = 8.0 }}
ode_solver = "RK4"
dt = 0.05

[window]
length = 0.2

[observations]
path = "unused.nc"
error_std = 1.0

[background]
path = "unused.nc"

[background.covariance]
{covariance}

[method]
kind = "strong4dvar"
rtol = 1e-8
atol = 1e-8

[simulate]
spinup = 2.0
duration = 1.0
obs_interval = 0.1
obs_error_std = 1.0
background_error_std = 1.0

[tune]
windows = 8
validation_windows = 8
steps = 15
learning_rate = 0.2
background_error_length_scale = 1.5
output = "{output}"
"""


GAUSSIAN = 'kind = "gaussian"\nstd = 3.0\nlength_scale = 3.0'  # the truth: std 1.0, length scale 1.5


def small_config(tmp_path: Path, covariance: str = GAUSSIAN) -> Path:
    path = tmp_path / "tune.toml"
    path.write_text(SMALL.format(output=tmp_path / "out" / "tuned.toml", covariance=covariance))
    return path


@pytest.mark.slow
def test_tuning_recovers_b_and_its_gradient_is_the_implicit_one(cli, tmp_path):
    """B's std configured 3x and its length scale 2x the truth: the tuning lowers the validation
    analysis RMSE and moves both toward the truth; the snippet parses and holds them; a second run
    without --overwrite leaves it alone. Then, on the same windows (one test: the compiled loss and
    gradient are reused — compilation is most of the cost), the implicit gradient matches central
    differences of the loss, and scaling B and R by one factor leaves the loss unchanged."""
    config = small_config(tmp_path)
    result = cli(["train", config, "--json"], tmp_path)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["mode"] == "tune" and summary["parameters"] == ["background_std", "length_scale"]
    # measured: 0.596 -> 0.420 (the true B: 0.428); std 3.0 -> 0.906, length_scale 3.0 -> 1.535
    assert summary["validation_rmse_after"] < 0.85 * summary["validation_rmse_before"]
    std, length = summary["tuned"]["background.covariance.std"], summary["tuned"]["background.covariance.length_scale"]
    assert abs(np.log(std)) < 0.5 * np.log(3.0) and abs(np.log(length / 1.5)) < 0.5 * np.log(2.0), (std, length)
    snippet = tmp_path / "out" / "tuned.toml"
    assert tomllib.loads(snippet.read_text()) == {"background": {"covariance": {"std": std, "length_scale": length}}}
    assert "step 15/15: loss" in result.stderr and result.stderr.count("100% converged") >= 15
    before = snippet.read_bytes()
    again = cli(["train", config], tmp_path)
    assert again.exit_code == 5 and f"{snippet} exists (tune.output); pass --overwrite" in again.stderr
    assert snippet.read_bytes() == before

    import equinox as eqx
    import jax.numpy as jnp

    from dacli.run.tune import prepare
    from dacli.tuning.hyperparameters import loss_and_gradient

    prepared = prepare(dacli.config.load(config, []))
    tunable, windows = prepared.tunable, prepared.training
    theta = {"background_std": jnp.asarray(-0.6, prepared.dtype), "length_scale": jnp.asarray(-0.3, prepared.dtype)}
    (value, converged), gradient = loss_and_gradient(theta, tunable, windows)
    assert float(converged) == 1.0 and float(value) > 0
    h = 1e-4
    for name in theta:
        up, down = ({**theta, name: theta[name] + step} for step in (h, -h))
        difference = (float(loss_and_gradient(up, tunable, windows)[0][0])
                      - float(loss_and_gradient(down, tunable, windows)[0][0])) / (2 * h)
        # measured: 8.2e-9 (std) and 1.3e-6 (length scale) relative. The implicit gradient is exact only
        # at the minimum, and Gauss-Newton stops at rtol = atol = 1e-8; the difference's own O(h^2) ~ 1e-8.
        assert abs(float(gradient[name]) - difference) <= 1e-5 * abs(difference), (name, gradient[name], difference)
        assert abs(difference) > 1e-4
    # Only B/R moves the analysis: B and R scaled by one factor give the same loss.
    scaled = eqx.tree_at(lambda w: w.obs.std, windows, windows.obs.std * np.exp(0.4))
    same = loss_and_gradient({**theta, "background_std": theta["background_std"] + 0.4}, tunable, scaled)[0][0]
    np.testing.assert_allclose(float(same), float(value), rtol=1e-8)  # measured: 2e-10


def test_unknown_parameter_is_a_config_error(cli, tmp_path):
    config = small_config(tmp_path)
    result = cli(["train", config, "--set", 'tune.parameters=["background_std", "obs_std"]'], tmp_path)
    assert result.exit_code == 2
    assert ("tune.parameters: unknown parameter(s) 'obs_std'; choose from background_std, observation_std, "
            "model_error_std, length_scale") in result.stderr
    assert "Traceback" not in result.stderr


def test_tune_is_its_own_command_and_train_refuses_a_method_without_a_network(cli, tmp_path):
    """dacli tune checks the tuning settings as dacli train does on the same file; the run layer's
    train refuses a method without a network (the command line dispatches it to tune)."""
    from dacli.run.train import train

    config = small_config(tmp_path)
    result = cli(["tune", config, "--set", 'tune.parameters=["background_std", "obs_std"]'], tmp_path)
    assert result.exit_code == 2 and "tune.parameters: unknown parameter(s) 'obs_std'" in result.stderr
    with pytest.raises(ConfigError, match=r"method.kind: 'strong4dvar' has no network to train; dacli tune tunes"):
        train(dacli.config.load(config, []))


@pytest.mark.parametrize("overrides, message", [
    (['tune.parameters=["length_scale"]'],
     "tune.parameters: length_scale needs a correlated B (background.covariance.kind = 'gaussian' or 'matern32'), "
     "not 'diagonal'"),
    (['tune.parameters=["model_error_std"]'],
     "tune.parameters: model_error_std needs method.kind = 'weak4dvar' (Q), not 'strong4dvar'"),
    (['tune.parameters=["observation_std", "background_std"]'],
     "tune.parameters: background_std, observation_std are all tuned, but the analysis depends on them only "
     "through their ratios"),
])
def test_inapplicable_or_unidentifiable_choices_are_refused(tmp_path, overrides, message):
    from dacli.run.train import train
    from dacli.run.tune import tune

    diagonal = "length_scale" in overrides[0]
    config = dacli.config.load(small_config(tmp_path, 'kind = "diagonal"\nstd = 3.0' if diagonal else GAUSSIAN),
                         overrides)
    with pytest.raises(ConfigError) as raised:
        tune(config)
    assert message in str(raised.value)
    with pytest.raises(ConfigError, match=r"--resume continues a 4DVarNet training"):
        train(dacli.config.load(small_config(tmp_path), []), resume=True)


@pytest.mark.parametrize("overrides", [
    ["simulate.observed_fraction=0.5", "simulate.missing_fraction=0.2"],
    ['observations.layout="scattered"', "simulate.obs_per_time=6"],
    ['observations.layout="ioda"', "simulate.obs_per_time=6"],
])
def test_tuning_windows_are_the_simulated_twin_in_every_layout(tmp_path, overrides):
    """The tuning windows come from dacli simulate's twin (gridded with holes, random points, IODA's
    CF points) packed as dacli assimilate packs them: consecutive truth windows, observations that
    are H(truth) plus noise of simulate.obs_error_std carrying the assumed std, backgrounds with the
    true background error. No minimisation (cheap)."""
    from dacli.run.tune import prepare

    config = dacli.config.load(small_config(tmp_path), ["observations.error_std=2.0", *overrides])
    prepared = prepare(config)
    windows = prepared.training
    obs, truths = windows.obs, np.asarray(windows.truths)
    assert truths.shape == (8, 5, 10) and np.allclose(np.asarray(windows.starts), 0.2 * np.arange(8))
    np.testing.assert_array_equal(truths[1:, 0], truths[:-1, -1])  # window k holds its steps 0..4
    mask = np.asarray(obs.mask)
    assert np.all(np.asarray(obs.std)[mask] == 2.0)  # the assumed R, not the true 1.0
    assert set(np.asarray(obs.slot)[mask]) == {2, 4}  # every obs_interval = 2 steps, in (start, start + 4]
    states = truths[np.arange(8)[:, None], np.asarray(obs.slot)]  # (W, P, n)
    simulated = np.sum(np.take_along_axis(states, np.asarray(obs.index), axis=-1) * np.asarray(obs.weight), axis=-1)
    noise = (np.asarray(obs.values) - simulated)[mask]
    assert noise.size >= 40 and 0.7 < noise.std() < 1.3 and abs(noise.mean()) < 0.4
    error = np.asarray(windows.backgrounds) - truths[:, 0]
    assert 0.7 < error.std() < 1.3
