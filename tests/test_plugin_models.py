"""Users plug in their own dynamics without editing dacli: by import path and by entry point."""

import sys
import textwrap
from pathlib import Path

import pytest

from dacli.build.registry import check_names, model_problem, resolve_model_factory
from dacli.config.loading import load_config
from dacli.errors import ConfigError

PLUGINS = Path(__file__).resolve().parent / "plugins"

CONFIG = """
[run]
seed = 3
[model]
name = "{name}"
parameters = {{ n = 32, speed = 1.0, diffusion = 0.1 }}
solver = "RK4"
dt = 0.1
[window]
length = 1.0
[observations]
path = "obs.nc"
layout = "scattered"
[background]
path = "background.nc"
covariance = {{ kind = "diagonal", std = 0.5 }}
[output]
path = "{output}"
[truth]
path = "truth.nc"
[simulate]
spinup = 0.0
duration = 5.0
obs_interval = 0.5
obs_error_std = 0.1
obs_per_time = 24
background_error_std = 0.5
"""


@pytest.fixture
def plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    yield
    sys.modules.pop("ring_models", None)


def write_config(tmp_path, name):
    path = tmp_path / "ring.toml"
    path.write_text(CONFIG.format(name=name, output=tmp_path / "analysis.nc"))
    return path


def test_model_by_import_path_runs_end_to_end(tmp_path, plugin_path):
    from dacli.run.assimilate import assimilate
    from dacli.run.simulate import simulate

    config = load_config(write_config(tmp_path, "ring_models:make_ring"), extra_checks=[check_names])
    simulate(config)
    result = assimilate(config)
    assert result.summary["windows"] == 5
    assert result.summary["analysis_rmse"] < 0.8 * result.summary["background_rmse"]
    first = result.windows
    assert first["analysis_rmse"][0] < 0.5 * first["background_rmse"][0]


def test_model_by_entry_point(tmp_path, plugin_path, monkeypatch):
    dist = tmp_path / "site" / "ring_models-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ring-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [dacli.models]
        ring = ring_models:make_ring
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert model_problem("ring") is None
    model = resolve_model_factory("ring")(n=16)
    assert model.layout().size == 16
    config = load_config(write_config(tmp_path, "ring"), extra_checks=[check_names])
    assert config.model.name == "ring"


def test_unknown_model_suggests_and_lists_choices():
    assert "did you mean 'lorenz96'" in model_problem("lorenz69")
    assert "package.module:factory" in model_problem("nonsense")


def test_factory_returning_something_else_is_a_config_error(plugin_path):
    from dacli.build.problem import build_dynamics
    from dacli.config.schema import ModelConfig

    with pytest.raises(ConfigError, match="returned dict, not a dacli.models.Dynamics"):
        build_dynamics(ModelConfig(name="ring_models:not_a_model"))
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        build_dynamics(ModelConfig(name="no_such_module:factory"))
    with pytest.raises(ConfigError, match="rejected its parameters"):
        build_dynamics(ModelConfig(name="ring_models:make_ring", parameters={"colour": 3}))
