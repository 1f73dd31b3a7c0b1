"""Users plug in their own dynamics without editing dacli: by import path and by entry point.

An import path is the one place a config loads code, so it must name a Dynamics subclass or a
factory marked with ``@dacli.models.model_factory``; anything else (``subprocess:run``,
``os:system``) is refused before it is called.
"""

import sys
import textwrap
from pathlib import Path

import pytest

import dacli.config
from dacli.build.dynamics import resolve_model_factory
from dacli.config.registry import model_problem
from dacli.errors import USAGE_ERROR, ConfigError

PLUGINS = Path(__file__).resolve().parent / "plugins"

CONFIG = """
[run]
seed = 3
[model]
name = "{name}"
parameters = {{ n = 32, speed = 1.0, diffusion = 0.1 }}
ode_solver = "RK4"
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

    config = dacli.config.load(write_config(tmp_path, "ring_models:make_ring"))
    simulate(config)
    result = assimilate(config)
    assert result.summary.windows == 5
    assert result.summary.analysis_rmse < 0.8 * result.summary.background_rmse
    first = result.windows
    assert first["analysis_rmse"][0] < 0.5 * first["background_rmse"][0]


def test_model_by_entry_point(tmp_path, plugin_path, monkeypatch):
    dist = tmp_path / "site" / "ring_models-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ring-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [dacli.models]
        ring = ring_models:make_ring
        ring_unmarked = ring_models:unmarked_factory
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert model_problem("ring") is None
    model = resolve_model_factory("ring")(n=16)
    assert model.layout().size == 16
    # An entry point is its package's registration: trusted without the decorator.
    assert resolve_model_factory("ring_unmarked")(n=12).layout().size == 12
    with pytest.raises(ConfigError, match="ring_models:unmarked_factory resolved to function "
                                          "ring_models.unmarked_factory, which is neither"):
        resolve_model_factory("ring_models:unmarked_factory")
    config = dacli.config.load(write_config(tmp_path, "ring"))
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


# --- no code execution from a config ----------------------------------------------------------

REFUSAL = ("which is neither a dacli.models.Dynamics subclass nor a factory marked with "
           "@dacli.models.model_factory; a config calls only those (see README, 'Bring your own model')")


def hostile(target: str, marker: Path) -> tuple[str, str, str]:
    """(model.name, parameters as TOML, what the name resolves to) of a call that would write ``marker``."""
    if target == "subprocess:run":
        return target, f'{{ args = "echo pwned > {marker}", shell = true }}', "function subprocess.run"
    return target, f'{{ command = "echo pwned > {marker}" }}', "built-in function posix.system"


@pytest.mark.parametrize("way", ["file", "set"])
@pytest.mark.parametrize("target", ["subprocess:run", "os:system"])
def test_a_config_cannot_call_an_arbitrary_function(cli, module_workspace, tmp_path, target, way):
    marker = tmp_path / "pwned"
    name, parameters, resolved = hostile(target, marker)
    text = (module_workspace / "configs" / "lorenz96.toml").read_text()
    args = ["validate", "configs/lorenz96.toml"]
    if way == "file":
        text = text.replace('name = "lorenz96"', f'name = "{name}"').replace(
            "parameters = { n = 40, forcing = 8.0 }", f"parameters = {parameters}")
        (module_workspace / "configs" / f"hostile_{tmp_path.name}.toml").write_text(text)
        args = ["validate", f"configs/hostile_{tmp_path.name}.toml"]
    else:
        args += ["--set", f"model.name={name}", "--set", f"model.parameters={parameters}"]
    result = cli(args, module_workspace)
    assert result.exit_code == USAGE_ERROR, result.stderr
    assert result.stdout == ""
    assert result.stderr.endswith(f"dacli: error: invalid configuration (1 problem):\n"
                                  f"  - model.name: {name} resolved to {resolved}, {REFUSAL}\n")
    assert not marker.exists()


def test_a_config_cannot_call_an_arbitrary_function_in_a_real_process(dacli_process, module_workspace, tmp_path):
    marker = tmp_path / "pwned"
    name, parameters, resolved = hostile("subprocess:run", marker)
    done = dacli_process(["assimilate", "configs/lorenz96.toml", "--set", f"model.name={name}",
                          "--set", f"model.parameters={parameters}", "--set", f"output.path={tmp_path / 'a.nc'}"],
                         module_workspace)
    assert done.returncode == USAGE_ERROR, done.stderr
    assert f"model.name: {name} resolved to {resolved}, {REFUSAL}" in done.stderr
    assert not marker.exists() and not (tmp_path / "a.nc").exists()


@pytest.mark.parametrize(("name", "problem"), [
    ("builtins:eval", f"builtins:eval resolved to built-in function builtins.eval, {REFUSAL}"),
    ("os:path", f"os:path resolved to module posixpath, {REFUSAL}"),
    ("unittest.mock:sentinel", f"unittest.mock:sentinel resolved to a unittest.mock._Sentinel object, {REFUSAL}"),
    ("ring_models:unmarked_factory", f"ring_models:unmarked_factory resolved to function "
                                     f"ring_models.unmarked_factory, {REFUSAL}"),
    ("ring_models:forged_mark", f"ring_models:forged_mark resolved to function ring_models.forged_mark, {REFUSAL}"),
    ("dacli.models:model_factory", f"dacli.models:model_factory resolved to function "
                                   f"dacli.models.base.model_factory, {REFUSAL}"),
    ("dacli.models:Dynamics", "dacli.models:Dynamics resolved to abstract class dacli.models.base.Dynamics, which "
                              "does not implement layout, vector_field (a dacli.models.Dynamics subclass must)"),
    (".ring_models:make_ring", "expected 'package.module:factory' (a module path and an attribute name), found "
                               "'.ring_models:make_ring'"),
])
def test_import_paths_to_anything_else_are_refused_before_the_call(plugin_path, monkeypatch, name, problem):
    import ring_models

    def forged_mark(**parameters):
        raise AssertionError("called")

    forged_mark.__dacli_model_factory__ = True  # a look-alike of the mark is not the mark
    forged_mark.__module__, forged_mark.__qualname__ = "ring_models", "forged_mark"
    monkeypatch.setattr(ring_models, "forged_mark", forged_mark, raising=False)
    with pytest.raises(ConfigError) as info:
        resolve_model_factory(name)
    assert info.value.problems == [f"model.name: {problem}"]


def test_a_dynamics_subclass_and_a_marked_factory_are_accepted(plugin_path):
    from dacli.build.problem import build_dynamics
    from dacli.config.schema import ModelConfig
    from dacli.models import model_factory
    from dacli.models.base import is_model_factory

    parameters = {"n": 16, "speed": 1.0, "diffusion": 0.1}
    by_class = build_dynamics(ModelConfig(name="ring_models:AdvectionDiffusionRing", parameters=parameters))
    by_factory = build_dynamics(ModelConfig(name="ring_models:make_ring", parameters=parameters))
    assert by_class == by_factory and by_class.layout().size == 16
    assert build_dynamics(ModelConfig(name="dacli.models.lorenz:Lorenz96", parameters={"n": 8})).layout().size == 8

    from unittest.mock import MagicMock

    assert not is_model_factory(MagicMock())  # answers every attribute: still not marked
    with pytest.raises(TypeError, match="marks a function"):
        model_factory(MagicMock())


def test_a_plugin_module_that_fails_to_import_is_a_config_error(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('the plug-in is broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as info:
        resolve_model_factory("broken_plugin:make")
    assert info.value.problems == ["model.name: importing module 'broken_plugin' failed: RuntimeError: "
                                   "the plug-in is broken"]
