"""The Lorenz models' hand-written adjoints (custom_vjp rules) and where dacli uses them.

The rule must give autodiff's gradients to round-off through every window path (the checkpointed
scan, DirectAdjoint's scan, BacksolveAdjoint's diffeqsolve), the forward values bit for bit, and
be chosen only where nothing linearises the model forward; ``check-adjoints`` must catch a wrong
rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import dacli.models.lorenz as lorenz
from dacli.build.dynamics import build_dynamics
from dacli.build.problem import adjoint_rule_choice
from dacli.config import load
from dacli.diagnostics.adjoint_checks import Tolerances
from dacli.diagnostics.adjoint_suite import RULE_TOLERANCE_FACTOR, check_adjoint_rule
from dacli.models.base import adjoint_rule
from dacli.models.integrate import integrate
from dacli.models.lorenz import Lorenz63, Lorenz63AdjointRule, Lorenz96, Lorenz96AdjointRule
from dacli.models.solvers import RK4
from dacli.run.assimilate import assimilate
from dacli.run.inputs import prepare_inputs

ROOT = Path(__file__).resolve().parents[1]


def state(n, seed=0):
    return 8.0 + jax.random.normal(jax.random.PRNGKey(seed), (n,), jnp.float64)


def field(model):
    return lambda x: model.vector_field(0.0, x, None)


@pytest.mark.parametrize("n", [4, 5, 40])
def test_the_rule_is_the_transposed_jacobian_of_the_tendency(n):
    """Against the dense Jacobian (jax.jacfwd of the plain tendency), both formulations of the
    rule (the CPU halo and the rolls other platforms use), and with a leading batch axis."""
    model = Lorenz96(n=n)
    x, cotangent = state(n), state(n, seed=1) - 8.0
    transposed = jax.jacfwd(field(model))(x).T @ cotangent
    for adjoint in (lorenz._adjoint_from_halo, lorenz._adjoint_from_rolls):
        np.testing.assert_allclose(adjoint(x, cotangent), transposed, rtol=1e-13, atol=1e-12)
    batch, cotangents = jnp.stack([x, x + 1.0]), jnp.stack([cotangent, -2.0 * cotangent])
    np.testing.assert_allclose(
        lorenz._adjoint_from_halo(batch, cotangents),
        lorenz._adjoint_from_rolls(batch, cotangents),
        rtol=1e-13,
        atol=1e-12,
    )
    # the forward values are the plain model's, bit for bit; the rule's pullback is the rule
    rule = model.with_adjoint_rule()
    assert isinstance(rule, Lorenz96AdjointRule) and rule.with_adjoint_rule() is rule
    np.testing.assert_array_equal(field(rule)(x), field(model)(x))
    pulled = jax.vjp(field(rule), x)[1](cotangent)[0]
    np.testing.assert_allclose(pulled, transposed, rtol=1e-13, atol=1e-12)


def test_lorenz63s_rule_is_the_transposed_jacobian():
    model = Lorenz63()
    rule = model.with_adjoint_rule()
    assert isinstance(rule, Lorenz63AdjointRule) and rule.layout().variables == ("x", "y", "z")
    for seed in range(3):
        x = jnp.array([1.5, -2.0, 24.0]) + jax.random.normal(jax.random.PRNGKey(seed), (3,))
        cotangent = jax.random.normal(jax.random.PRNGKey(seed + 10), (3,))
        np.testing.assert_array_equal(field(rule)(x), field(model)(x))
        np.testing.assert_allclose(
            jax.vjp(field(rule), x)[1](cotangent)[0],
            jax.jacfwd(field(model))(x).T @ cotangent,
            rtol=1e-14,
            atol=1e-13,
        )


CHECKPOINT, DIRECT = diffrax.RecursiveCheckpointAdjoint(), diffrax.DirectAdjoint()


@pytest.mark.parametrize(
    ("lorenz", "adjoint"),
    [("96", CHECKPOINT), ("96", DIRECT), ("96", diffrax.BacksolveAdjoint()), ("63", CHECKPOINT),
     ("63", DIRECT)],
    ids=["96-checkpoint", "96-direct", "96-backsolve", "63-checkpoint", "63-direct"],
)
def test_window_gradients_equal_autodiff_through_every_reverse_path(lorenz, adjoint):
    """dJ/dx0 of a 16-step window with the rule against JAX's own, under the scan paths (RK4;
    Tsit5, first-same-as-last, for Lorenz-63 as its shipped config) and BacksolveAdjoint's
    diffeqsolve (whose adjoint ODE calls the field's vjp; one model: 8 s of compiling each)."""
    if lorenz == "96":
        model, x0 = Lorenz96(n=40), state(40)
    else:
        model, x0 = Lorenz63(), jnp.array([1.5, -2.0, 24.0])
    backsolve = isinstance(adjoint, diffrax.BacksolveAdjoint)
    solver = diffrax.Tsit5() if backsolve or lorenz == "63" else RK4()

    def cost(dynamics):
        def value(x):
            trajectory = integrate(dynamics, x, 0.0, 16, 0.05, solver, adjoint)
            return 0.5 * jnp.sum(trajectory**2)

        return jax.jit(jax.grad(value))

    plain, ruled = cost(model)(x0), cost(model.with_adjoint_rule())(x0)
    np.testing.assert_allclose(ruled, plain, rtol=1e-11, atol=1e-9 * float(jnp.max(jnp.abs(plain))))


def test_forward_mode_cannot_go_through_the_rule():
    """Why the choice below matters: jax.jvp refuses a custom_vjp (an error, never a number)."""
    rule = Lorenz96(n=8).with_adjoint_rule()
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(field(rule), (state(8),), (state(8, 1),))


def config(*overrides):
    return load(ROOT / "configs" / "lorenz96.toml", ['run.compilation_cache="off"', *overrides])


@pytest.mark.parametrize(
    ("overrides", "reverse_only", "chosen", "reason"),
    [
        ((), True, "hand-written", "nothing in this run linearises the model forward"),
        (('model.adjoint="autodiff"',), True, "autodiff", "as configured"),
        ((), False, "autodiff", "this command"),
        (
            ('method.formulation="incremental"', 'method.minimiser="auto"'),
            True,
            "autodiff",
            "incremental",
        ),
        (('method.forward_adjoint="ForwardMode"',), True, "autodiff", "ForwardMode"),
        (('method.minimiser_adjoint="OneStepAdjoint"',), True, "autodiff", "OneStepAdjoint"),
    ],
)
def test_the_rule_is_chosen_only_where_nothing_linearises_forward(
    overrides, reverse_only, chosen, reason
):
    settings = config(*overrides)
    dynamics = build_dynamics(settings.model)
    used, choice = adjoint_rule_choice(settings, dynamics, 0, reverse_only)
    assert choice.name == chosen and reason in choice.reason
    assert isinstance(used, Lorenz96AdjointRule) == (chosen == "hand-written")
    # the spread probes of the observation-space diagnostics linearise forward too
    if chosen == "hand-written":
        _, probed = adjoint_rule_choice(settings, dynamics, 8, reverse_only)
        assert probed.name == "autodiff" and "observation_diagnostics" in probed.reason


def test_a_subclass_with_its_own_field_does_not_inherit_the_rule(plugins_on_path):
    """A plug-in deriving from Lorenz96 with another vector field (here the faulty-model
    suite's custom_vjp Lorenz-96) must run its own field: no inherited rule for the parent's."""
    from faulty_models import CustomVjpLorenz96

    model = CustomVjpLorenz96(n=40)
    assert isinstance(model.with_adjoint_rule(), Lorenz96AdjointRule)  # inherited ...
    assert adjoint_rule(model) is None  # ... and not used
    settings = config()
    used, choice = adjoint_rule_choice(settings, model, 0, True)
    assert used is model and choice.name == "autodiff"
    assert isinstance(adjoint_rule(Lorenz96(n=40)), Lorenz96AdjointRule)


def test_a_model_without_a_rule_is_differentiated_by_jax():
    settings = load(ROOT / "configs" / "qg.toml", ['run.compilation_cache="off"'])
    dynamics = build_dynamics(settings.model)
    assert dynamics.with_adjoint_rule() is None and adjoint_rule(dynamics) is None
    used, choice = adjoint_rule_choice(settings, dynamics, 0, True)
    assert used is dynamics and choice == choice.__class__(
        "autodiff", "the model has no hand-written adjoint"
    )


def test_check_adjoints_fails_a_wrong_rule(monkeypatch):
    """The rule against autodiff's tangent-linear model passes; with one term of the rule
    dropped (the -c_j of the damping) the same check fails by far more than its tolerance."""
    inputs = prepare_inputs(config("window.length=0.8"))
    method = inputs.problem.method
    x, t0 = jnp.asarray(inputs.background), jnp.asarray(inputs.schedule.starts[0])
    tolerances = Tolerances.for_dtype(jnp.float64)
    key = jax.random.PRNGKey(3)
    results = check_adjoint_rule(method, x, t0, key, tolerances, "l96")
    assert [r.component for r in results] == [
        "l96: model step (hand-written adjoint, RecursiveCheckpointAdjoint)",
        "l96: model window (hand-written adjoint, RecursiveCheckpointAdjoint)",
    ]
    assert all(r.passed and r.value < 1e-13 for r in results), results

    right = lorenz._adjoint_from_halo
    monkeypatch.setattr(lorenz, "_adjoint_from_halo", lambda x, c: right(x, c) + c)
    wrong = check_adjoint_rule(method, x, t0, jax.random.PRNGKey(4), tolerances, "l96")
    tolerance = RULE_TOLERANCE_FACTOR * tolerances.dot_product
    assert all(not r.passed and r.value > 1e3 * tolerance for r in wrong), wrong


def test_assimilate_with_the_rule_gives_autodiffs_analysis(tmp_path):
    """The shipped Lorenz-96 run, its first 6 windows, with the rule (the default) and with
    model.adjoint = "autodiff": the same iterations and analyses to round-off, and the file
    says which ran."""
    outputs = {}
    for choice in ("auto", "autodiff"):
        path = tmp_path / f"{choice}.nc"
        settings = config(
            f'model.adjoint="{choice}"', "window.count=6", f'output.path="{path}"'
        )
        summary = assimilate(settings).summary
        with xr.open_dataset(path) as ds:
            outputs[choice] = (summary, ds.load())
    (ruled, ruled_ds), (plain, plain_ds) = outputs["auto"], outputs["autodiff"]
    assert ruled.model_adjoint == "hand-written" and plain.model_adjoint == "autodiff"
    assert ruled_ds.attrs["dacli_model_adjoint"] == "hand-written"
    assert "Lorenz96AdjointRule" in ruled_ds.attrs["dacli_model_adjoint_reason"]
    assert plain_ds.attrs["dacli_model_adjoint_reason"] == "as configured"
    assert ruled.iterations_mean == plain.iterations_mean
    for name in ("x_analysis", "cost_final", "gradient_norm"):
        np.testing.assert_allclose(ruled_ds[name], plain_ds[name], rtol=1e-9, atol=1e-10)
    assert json.loads(ruled_ds.attrs["dacli_config"])["model"]["adjoint"] == "auto"


def test_validate_reports_the_choice_assimilate_would_make(tmp_path):
    from dacli.run.validate import validate

    assert validate(config()).model_adjoint == "hand-written"
    probed = config(f'output.observation_diagnostics="{tmp_path / "obs_diag.nc"}"')
    assert validate(probed).model_adjoint == "autodiff"  # the spread probes push forward
    assert validate(config('model.adjoint="autodiff"')).model_adjoint == "autodiff"


def test_a_kstep_minimiser_adjoint_refuses_a_reverse_only_plug_in(plugins_on_path):
    """OneStep/KStep refinement takes Hessian-vector products (forward over reverse): a setting
    that linearises forward, so a custom_vjp plug-in is refused with exit 2's error, not run."""
    from faulty_models import CustomVjpLorenz96

    from dacli.build.traceability import check_forward_mode, forward_mode_settings
    from dacli.errors import ConfigError

    settings = forward_mode_settings(config('method.minimiser_adjoint="OneStepAdjoint"'))
    assert [s for s, _ in settings] == ["method.minimiser_adjoint = OneStepAdjoint"]
    assert forward_mode_settings(config()) == []
    with pytest.raises(ConfigError, match="OneStepAdjoint.*ImplicitAdjoint"):
        check_forward_mode(CustomVjpLorenz96(n=40), "faulty_models:CustomVjpLorenz96", settings)
