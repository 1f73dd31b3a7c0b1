"""dacli check-adjoints: correct gradients pass, broken ones fail loudly and say where."""

import json
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pytest

CONFIG = """
[model]
name = "{name}"
parameters = {{ n = 16, speed = 1.0, diffusion = 0.1{extra} }}
ode_solver = "RK4"
dt = 0.1
[window]
length = 0.5
[observations]
path = "obs.nc"
layout = "scattered"
[background]
path = "background.nc"
covariance = {{ kind = "gaussian", std = 0.5, length_scale = 2.0 }}
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


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def dacli_in_process(cli, plugins_on_path):
    """The CLI in this process, with the plug-in models importable (as PYTHONPATH would make them)."""

    def run(*args, cwd):
        result = cli(list(args), cwd)
        return Done(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture(scope="module")
def ring_data(tmp_path_factory, dacli_in_process):
    """Simulated data for the ring model (shared by the plug-in variants: same state layout)."""
    folder = tmp_path_factory.mktemp("ring")
    (folder / "simulate.toml").write_text(CONFIG.format(name="ring_models:make_ring", extra=""))
    done = dacli_in_process("simulate", "simulate.toml", "-q", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder, dacli_in_process


def _check(data, name, extra=""):
    folder, dacli = data
    config = folder / f"{name.split(':')[1]}{abs(hash(extra))}.toml"
    config.write_text(CONFIG.format(name=name, extra=extra))
    return dacli("check-adjoints", config.name, "--no-strategies", "--json", cwd=folder)


def test_wrong_custom_vjp_fails_and_names_the_component(ring_data):
    done = _check(ring_data, "ring_models:make_ring_custom_rule", ", adjoint_scale = 2.0")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    failed = {(c["check"], c["component"].split(": ", 1)[1]) for c in report["checks"] if not c["passed"]}
    assert ("dot-product", "model step") in failed and ("dot-product", "model window") in failed
    assert ("taylor", "cost J (RecursiveCheckpointAdjoint)") in failed
    assert "check failed: dot-product test of ring_models:make_ring_custom_rule: model step" in done.stderr
    assert "Traceback" not in done.stderr
    # The observation operator and covariances are still fine, and reported as such.
    passed = {c["component"].split(": ", 1)[1] for c in report["checks"] if c["passed"]}
    assert {"observation operator", "B^1/2", "B"} <= passed


def test_correct_custom_vjp_passes(ring_data):
    done = _check(ring_data, "ring_models:make_ring_custom_rule", ", adjoint_scale = 1.0")
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["passed"] and not [c for c in report["checks"] if c["status"] == "failed"]
    # Forward mode (Hessian-vector products) cannot go through the custom_vjp: the configured
    # ImplicitAdjoint (not set in the file: the default) is not applicable, not a failure.
    unjudged = {(c["check"], c["component"].split(": ", 1)[1]): c for c in report["checks"] if not c["passed"]}
    assert list(unjudged) == [("configured-gradient", "minimiser_adjoint ImplicitAdjoint as configured")]
    assert unjudged[list(unjudged)[0]]["status"] == "not applicable"
    assert "custom_vjp" in unjudged[list(unjudged)[0]]["detail"]
    # No forward mode through a custom_vjp: the dot-product test says it used finite differences.
    dot = [c for c in report["checks"] if c["check"] == "dot-product" and c["component"].endswith("model step")][0]
    assert "finite differences" in dot["detail"] and dot["value"] < 1e-6


def test_non_differentiable_model_fails_the_tangent_linear_test(ring_data):
    done = _check(ring_data, "ring_models:make_ring_rounded")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    tl = [c for c in report["checks"] if c["check"] == "tangent-linear" and c["component"].endswith("model window")][0]
    assert not tl["passed"]
    assert "the error stalls" in tl["detail"] and "non-differentiable" in tl["detail"]
    assert "tangent-linear test of ring_models:make_ring_rounded: model window" in done.stderr


@pytest.mark.slow
def test_all_builtin_models_and_operators_pass_in_float64():
    from dacli.run.check_adjoints import check_adjoints

    report = check_adjoints(None, precision="float64", strategies=False)
    assert report.passed, [f"{r.check} {r.component}: {r.value:.3g}" for r in report.failures]
    components = {r.component for r in report.results}
    # 3 cases x (H, B^1/2, B, J, departures TL/adjoint of the incremental inner loop, the configured
    # gradient through the analysis) + 2 models x (step, window) + the Lorenz models' hand-written
    # adjoints against their tangent-linear models (2 x (step, window))
    assert len(components) == 26
    rules = [r for r in report.results if "hand-written adjoint" in r.component]
    assert len(rules) == 4 and all(r.passed and r.value < 1e-13 for r in rules), rules
    assert sum(c.endswith("minimiser_adjoint ImplicitAdjoint as configured") for c in components) == 3
    assert sum("incremental tangent-linear vs RecursiveCheckpointAdjoint adjoint" in c for c in components) == 3
    dots = [r.value for r in report.results if r.check == "dot-product" and "finite" not in r.detail]
    assert max(dots) < 1e-12


def _builtin_case(name):
    from dacli.run.check_adjoints import _builtin_cases
    from dacli.run.runtime import configure

    configure("float64", "cpu")  # the runtime a float64 run sets (x64 is on already: conftest.py)
    cases = {case[0].split(" ")[0] + ("-scattered" if "interpolated" in case[0] else ""): case[1:]
             for case in _builtin_cases(jnp.float64)}
    return cases[name]


@pytest.mark.slow
def test_forward_strategies_agree_on_a_short_lorenz96_window():
    """Every forward adjoint's 4DVar gradient against DirectAdjoint: exact ones to round-off."""
    import jax

    from dacli.diagnostics.adjoint_suite import SuiteTolerances, check_forward_strategies

    tolerances = SuiteTolerances.for_dtype(jnp.float64)
    method, background, _, obs, _ = _builtin_case("lorenz96")
    forward = check_forward_strategies(method, background, 0.0, obs, jax.random.PRNGKey(0), tolerances, "l96")
    assert all(r.passed for r in forward), forward
    values = {r.component.split("forward_adjoint ")[1]: r.value for r in forward}
    assert set(values) == {"RecursiveCheckpointAdjoint", "BacksolveAdjoint", "ForwardMode"}
    assert values["RecursiveCheckpointAdjoint"] < 1e-11 and values["ForwardMode"] < 1e-11  # exact: round-off
    assert 1e-8 < values["BacksolveAdjoint"] < tolerances.backsolve  # approximate, reported, within its tolerance


@pytest.mark.slow
def test_minimiser_strategies_agree_on_lorenz63():
    """d(analysis)/d(B scale) through the minimisation: the minimiser adjoints against the unrolled solve.

    OneStepAdjoint is KStepAdjoint(k=1), the same program with a shorter loop (18 s more to compile
    here); its gradient is checked exact on a quadratic in test_one_step_gradient_in_float32_is_finite_and_exact
    and against the unrolled solve by ``dacli check-adjoints`` (benchmarks/GPU.md's table)."""
    from dacli.diagnostics.adjoint_suite import SuiteTolerances
    from dacli.diagnostics.analysis_gradient_checks import MINIMISER_ADJOINTS, check_minimiser_strategies

    assert list(MINIMISER_ADJOINTS) == ["ImplicitAdjoint", "OneStepAdjoint", "KStepAdjoint(3)"]
    tolerances = SuiteTolerances.for_dtype(jnp.float64)
    method, background, _, obs, truth = _builtin_case("lorenz63")
    chosen = {label: MINIMISER_ADJOINTS[label] for label in ("ImplicitAdjoint", "KStepAdjoint(3)")}
    minimiser = check_minimiser_strategies(method, background, 0.0, obs, truth, tolerances.minimiser_strategy, "l63",
                                           chosen)
    assert [r.component.split("minimiser_adjoint ")[1] for r in minimiser] == ["ImplicitAdjoint", "KStepAdjoint(3)"]
    assert all(r.passed and r.value < 1e-6 for r in minimiser), minimiser


def test_the_suite_checks_every_registered_adjoint():
    """Every registered forward adjoint is held to DirectAdjoint (the reference, not checked against
    itself) and every minimiser adjoint to unrolling (optimistix's RecursiveCheckpointAdjoint, the
    reference): a new registry entry is checked by the suite, or this fails."""
    from dacli.config import registry
    from dacli.diagnostics.adjoint_suite import FORWARD_ADJOINTS
    from dacli.diagnostics.analysis_gradient_checks import MINIMISER_ADJOINTS

    assert set(FORWARD_ADJOINTS) == set(registry.FORWARD_ADJOINTS.names) - {"DirectAdjoint"}
    assert {label.split("(")[0] for label in MINIMISER_ADJOINTS} == (
        set(registry.MINIMISER_ADJOINTS.names) - {"RecursiveCheckpointAdjoint"})


def test_minimiser_adjoints_are_selectable_by_name():
    from dacli.adjoints import KStepAdjoint
    from dacli.build.problem import build_minimiser_adjoint
    from dacli.config.schema import MethodConfig

    chosen = build_minimiser_adjoint(MethodConfig(minimiser_adjoint="kstepadjoint", minimiser_adjoint_steps=4))
    assert isinstance(chosen, KStepAdjoint) and chosen.k == 4
    assert build_minimiser_adjoint(MethodConfig(minimiser_adjoint="OneStepAdjoint")).k == 1


def test_one_step_gradient_in_float32_is_finite_and_exact():
    """KStepAdjoint's CG tolerance is floored at the precision's round-off: asked for 1e-10 in
    float32, CG ran to its step cap and the transposed solve turned the gradient into NaN (seen in
    ``dacli check-adjoints --precision float32``). On a quadratic the one-step gradient is exact."""
    import jax
    import jax.numpy as jnp

    from dacli.adjoints.stepping import KStepAdjoint

    rng = np.random.default_rng(0)
    m = rng.normal(size=(40, 40))
    a = jnp.asarray(m @ m.T / 40 + np.eye(40), jnp.float32)
    b = jnp.asarray(rng.normal(size=40), jnp.float32)

    def one_step(scale):
        solution = jnp.linalg.solve(scale * a, b)
        return jnp.sum(KStepAdjoint(k=1).refine(lambda v, s: s * (a @ v) - b, solution, scale) ** 2)

    value, gradient = jax.value_and_grad(one_step)(jnp.float32(1.3))
    exact = jax.grad(lambda s: jnp.sum(jnp.linalg.solve(s * a, b) ** 2))(jnp.float32(1.3))
    assert np.isfinite(gradient)
    np.testing.assert_allclose(gradient, exact, rtol=1e-5)


def test_only_a_failed_check_fails_the_report():
    """The statuses and the exit code: not applicable, inconclusive and not recommended are
    warnings (exit 0); failed is exit 1; an unknown status is refused."""
    from dacli.diagnostics.adjoint_checks import STATUSES, CheckResult

    results = {status: CheckResult("agreement", "c", 1.0, 0.1, False, "why", status=status) for status in STATUSES}
    assert [s for s, r in results.items() if r.failed] == ["failed"]
    assert [s for s, r in results.items() if r.passed] == ["passed"]
    assert CheckResult("taylor", "c", 0.0, 0.1, True).status == "passed"
    assert CheckResult("taylor", "c", 1.0, 0.1, False).status == "failed"
    with pytest.raises(ValueError, match="unknown check status 'maybe'"):
        CheckResult("taylor", "c", 1.0, 0.1, False, status="maybe")
    noted = results["failed"].with_status("not recommended", "not the configured one")
    assert noted.status == "not recommended" and noted.detail == "why; not the configured one"
