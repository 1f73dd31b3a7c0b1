"""A plug-in model JAX cannot trace is the user's mistake: exit 2 naming the plug-in, JAX's error
in one line and the usual fix, in every command, before any input is read (issue 20, item 5).

The configs name input files that do not exist: the model is built, and refused, first.
"""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dacli.config
from dacli.build.traceability import (
    check_forward_mode,
    check_traceable,
    forward_mode_problem,
    forward_mode_settings,
)
from dacli.errors import USAGE_ERROR, ConfigError
from dacli.models import Dynamics, StateLayout

PLUGINS = Path(__file__).resolve().parent / "plugins"

CONFIG = """
[model]
name = "untraceable_models:{factory}"
parameters = {{ n = 16, speed = 1.0, diffusion = 0.1 }}
ode_solver = "RK4"
dt = 0.1
[window]
length = 0.5
[observations]
path = "obs.nc"
layout = "scattered"
[background]
path = "background.nc"
covariance = {{ kind = "diagonal", std = 0.5 }}
[truth]
path = "truth.nc"
[simulate]
spinup = 0.0
duration = 1.0
obs_interval = 0.1
obs_error_std = 0.1
obs_per_time = 6
background_error_std = 0.5
"""

# factory -> (JAX's error type, words of its first line, words of the fix)
CASES = {
    "make_branching_ring": (
        "TracerBoolConversionError",
        "Attempted boolean conversion of traced array",
        "use jnp.where or jax.lax.cond instead of a Python if",
    ),
    "make_numpy_ring": (
        "TracerArrayConversionError",
        "The numpy.ndarray conversion method __array__() was called on traced array",
        "use jax.numpy (jnp) instead of numpy inside vector_field",
    ),
    "make_dynamic_loop_ring": (
        "ValueError",
        "Reverse-mode differentiation does not work for lax.while_loop",
        "use jax.lax.scan, or a fori_loop with static (Python int) bounds",
    ),
}


@pytest.fixture
def run_plugin(cli, tmp_path, monkeypatch):
    """``run_plugin(command, factory, *options)``: the CLI on a config naming that plug-in."""
    monkeypatch.syspath_prepend(str(PLUGINS))

    def run(command, factory, *options):
        (tmp_path / "model.toml").write_text(CONFIG.format(factory=factory))
        return cli([command, "model.toml", *options], tmp_path)

    return run


def _assert_refused(result, factory):
    error_type, jax_words, fix = CASES[factory]
    assert result.exit_code == USAGE_ERROR, result.stderr
    problem = f"model.name: untraceable_models:{factory} cannot be traced by JAX: {error_type}: "
    assert problem + jax_words in result.stderr
    assert fix in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "obs.nc" not in result.stderr  # refused before any input is read


@pytest.mark.parametrize("factory", sorted(CASES))
def test_check_adjoints_refuses_an_untraceable_model(run_plugin, factory):
    _assert_refused(run_plugin("check-adjoints", factory), factory)


@pytest.mark.parametrize(
    ("command", "options"),
    [("assimilate", ()), ("simulate", ()), ("forecast", ("--lead-time", "1.0")), ("validate", ())],
)
def test_every_command_refuses_it(run_plugin, command, options):
    # The dynamic loop runs forward (a simulation alone would succeed) but no method could
    # differentiate it: refused up front, as the Dynamics contract requires.
    _assert_refused(
        run_plugin(command, "make_dynamic_loop_ring", *options), "make_dynamic_loop_ring"
    )


def test_the_users_line_is_named(run_plugin):
    result = run_plugin("assimilate", "make_branching_ring")
    assert f"(at {PLUGINS / 'untraceable_models.py'}:" in result.stderr
    assert ", in vector_field); use jnp.where" in result.stderr


class _Ring(Dynamics):
    n: int = 8

    def vector_field(self, t, x, args):
        return -x

    def layout(self) -> StateLayout:
        return StateLayout(variables=("u",), grid_name="s", grid=np.arange(self.n, dtype=float))


class _ShortField(_Ring):
    def vector_field(self, t, x, args):
        return -x[1:]


class _BadReshape(_Ring):
    def vector_field(self, t, x, args):
        return x.reshape(3, -1).sum(0)


class _ArrayBranch(_Ring):
    """Branches on an array field: concrete when closed over, traced under filter_jit."""

    rate: jax.Array = eqx.field(default_factory=lambda: jnp.asarray(1.0))

    def vector_field(self, t, x, args):
        return -x if self.rate > 0 else x


def _problem(model):
    with pytest.raises(ConfigError) as caught:
        check_traceable(model, "plugin:Model")
    (problem,) = caught.value.problems
    return problem


def test_a_correct_model_passes_and_a_custom_vjp_needs_no_forward_mode(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    from ring_models import make_ring, make_ring_custom_rule

    assert check_traceable(make_ring(n=16), "ring_models:make_ring") is None
    assert check_traceable(make_ring_custom_rule(n=16), "ring_models:custom") is None
    assert forward_mode_problem(make_ring(n=16)) is None
    assert forward_mode_problem(make_ring_custom_rule(n=16)) == (
        "TypeError: can't apply forward-mode autodiff (jvp) to a custom_vjp function."
    )


def test_a_field_not_shaped_like_the_state_is_refused():
    assert _problem(_ShortField()) == (
        "model.name: plugin:Model: vector_field returned float64[7] for a state of shape "
        "float64[8] (layout().size); it must return dx/dt, an array shaped like the state"
    )


def test_any_other_failure_while_traced_is_the_models():
    problem = _problem(_BadReshape())
    assert problem.startswith(
        "model.name: plugin:Model: vector_field(t, x, args) failed when traced with an abstract "
        "float64[8] state: TypeError: cannot reshape array of shape (8,)"
    )
    assert f"(at {__file__}:" in problem and "in vector_field)" in problem


def test_the_models_arrays_are_traced_as_in_the_solve():
    assert "TracerBoolConversionError" in _problem(_ArrayBranch())


def test_settings_that_linearise_the_model_forward(tmp_path):
    (tmp_path / "model.toml").write_text(CONFIG.format(factory="make_numpy_ring"))

    def settings(*overrides, probes=0):
        config = dacli.config.load(tmp_path / "model.toml", overrides)
        return [setting for setting, _ in forward_mode_settings(config, probes)]

    assert settings() == []
    assert settings('method.kind="3dfgat"') == []  # its tangent-linear model is the identity
    assert settings(
        'method.formulation="incremental"', 'method.forward_adjoint="forwardmode"', probes=4
    ) == [
        "method.formulation = incremental",
        "method.forward_adjoint = ForwardMode",
        "output.observation_diagnostics",
    ]


def test_a_custom_vjp_model_is_refused_only_where_forward_mode_is_configured(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    from ring_models import make_ring, make_ring_custom_rule

    setting = [("method.forward_adjoint = ForwardMode", 'set method.forward_adjoint = "X"')]
    check_forward_mode(make_ring_custom_rule(n=16), "ring:custom", [])  # nothing needs it
    check_forward_mode(make_ring(n=16), "ring:plain", setting)
    with pytest.raises(ConfigError) as caught:
        check_forward_mode(make_ring_custom_rule(n=16), "ring:custom", setting)
    assert caught.value.problems == [
        "method.forward_adjoint = ForwardMode: linearises the model forward (jax.jvp), which "
        "ring:custom does not support (TypeError: can't apply forward-mode autodiff (jvp) to a "
        'custom_vjp function.); set method.forward_adjoint = "X", or give the model a '
        "jax.custom_jvp rule instead of its custom_vjp (JAX derives reverse mode from a "
        "custom_jvp)"
    ]
