"""dacli train on a classical 4DVar config: tuning B's (and R's, Q's) hyperparameters.

The implicit gradient (optimistix ImplicitAdjoint at the converged minimiser) against central
finite differences of the loss; B and R scales whose gradients cancel (only their ratio matters);
a mis-specified B scale pulled back toward the truth with a lower validation RMSE; the snippet,
and the refusals (existing snippet, unknown parameter, unidentifiable or inapplicable choices).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from dacli.build.registry import check_names
from dacli.config.loading import load_config
from dacli.errors import ConfigError

SMALL = """\
[run]
name = "tune-test"
seed = 5

[model]
name = "lorenz96"
parameters = {{ n = 10, forcing = 8.0 }}
solver = "RK4"
dt = 0.05

[window]
length = 0.2

[observations]
path = "unused.nc"
error_std = 1.0

[background]
path = "unused.nc"

[background.covariance]
kind = "diagonal"
std = 3.0

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
output = "{output}"
"""


def small_config(tmp_path: Path, *overrides: str) -> Path:
    path = tmp_path / "tune.toml"
    path.write_text(SMALL.format(output=tmp_path / "out" / "tuned.toml"))
    return path


def test_implicit_gradient_matches_finite_differences():
    """d(loss)/d(log factors) through the converged minimiser, float64, three parameters at once."""
    import diffrax
    import jax
    import jax.numpy as jnp
    import optimistix as optx

    from dacli.covariances.background import background_sqrt_operator, std_vector
    from dacli.methods.strong4dvar import StrongConstraint4DVar
    from dacli.models.lorenz import Lorenz96
    from dacli.models.solvers import RK4
    from dacli.tuning.hyperparameters import CorrelatedRoot, Tunable, loss_and_gradient
    from dacli.tuning.twins import twin_windows

    jax.config.update("jax_enable_x64", True)
    dynamics, nsteps, dt = Lorenz96(n=8), 4, 0.05
    layout = dynamics.layout()
    method = StrongConstraint4DVar(
        dynamics=dynamics, solver=RK4(), forward_adjoint=diffrax.RecursiveCheckpointAdjoint(),
        background_sqrt=background_sqrt_operator("gaussian", 2.0, layout, 2.0, jnp.float64),
        minimiser=optx.GaussNewton(rtol=1e-12, atol=1e-12), minimiser_adjoint=optx.ImplicitAdjoint(),
        nsteps=nsteps, dt=dt, max_steps=100)
    truth_root = np.asarray(background_sqrt_operator("gaussian", 1.0, layout, 1.0, np.float64).as_matrix())
    windows = twin_windows(dynamics, RK4(), dt, 3, nsteps, 2, 1.0, 1.0, truth_root, 7, 100)
    names = ("background_std", "observation_std", "length_scale")
    tunable = Tunable.prepare(method, names, CorrelatedRoot.for_layout(layout, std_vector(2.0, layout), 2.0,
                                                                       "gaussian", jnp.float64))
    theta = {name: jnp.asarray(0.1 * i) for i, name in enumerate(names)}
    (value, converged), gradient = loss_and_gradient(theta, tunable, windows)
    assert float(converged) == 1.0 and float(value) > 0
    h = 1e-4
    for name in names:
        up, down = ({**theta, name: theta[name] + step} for step in (h, -h))
        difference = (float(loss_and_gradient(up, tunable, windows)[0][0])
                      - float(loss_and_gradient(down, tunable, windows)[0][0])) / (2 * h)
        # measured: agreement to 3e-9 relative (the finite difference's own O(h^2) error)
        assert abs(float(gradient[name]) - difference) <= 1e-6 * abs(difference), (name, gradient[name], difference)
    # Only the ratio B/R moves the analysis: scaling both by the same factor changes nothing.
    np.testing.assert_allclose(float(gradient["background_std"]), -float(gradient["observation_std"]), rtol=1e-8)
    assert abs(float(gradient["background_std"])) > 1e-3


def test_tuning_pulls_a_mis_specified_b_back_and_writes_the_snippet(cli, tmp_path):
    """B's std configured 3x the truth: the tuning lowers the validation analysis RMSE and moves the
    std toward 1; the snippet parses and holds it; a second run without --overwrite leaves it alone."""
    config = small_config(tmp_path)
    result = cli(["train", config, "--json"], tmp_path)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["mode"] == "tune" and summary["parameters"] == ["background_std"]
    # measured: 0.80 -> 0.58 (factor 0.35: std 3.0 -> 1.06)
    assert summary["validation_rmse_after"] < 0.9 * summary["validation_rmse_before"]
    tuned = summary["tuned"]["background.covariance.std"]
    assert abs(np.log(tuned)) < 0.5 * np.log(3.0), tuned
    snippet = tmp_path / "out" / "tuned.toml"
    parsed = tomllib.loads(snippet.read_text())
    assert parsed == {"background": {"covariance": {"std": tuned}}}
    assert "step 15/15: loss" in result.stderr
    before = snippet.read_bytes()
    again = cli(["train", config], tmp_path)
    assert again.exit_code == 5 and f"{snippet} exists (tune.output); pass --overwrite" in again.stderr
    assert snippet.read_bytes() == before


def test_unknown_parameter_is_a_config_error(cli, tmp_path):
    config = small_config(tmp_path)
    result = cli(["train", config, "--set", 'tune.parameters=["background_std", "obs_std"]'], tmp_path)
    assert result.exit_code == 2
    assert ("tune.parameters: unknown parameter(s) 'obs_std'; choose from background_std, observation_std, "
            "model_error_std, length_scale") in result.stderr
    assert "Traceback" not in result.stderr


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

    config = load_config(small_config(tmp_path), overrides, [check_names])
    with pytest.raises(ConfigError) as raised:
        train(config)
    assert message in str(raised.value)
    with pytest.raises(ConfigError, match=r"--resume continues a 4DVarNet training"):
        train(load_config(small_config(tmp_path), [], [check_names]), resume=True)
