"""dacli check-adjoints against seeded gradient faults and correct controls (issue 20's matrix).

Every correct model exits 0 with no failed check (strategies that cannot differentiate it are
"not applicable", comparisons that mean nothing on it "inconclusive"); every seeded fault exits
1 with the failing checks and components named, with their numbers, on stderr. The models are
small plug-ins (tests/plugins/faulty_models.py, ring_models.py) or the built-in Lorenz-96 on 12
sites; model faults run the ``--quick`` level, strategies only where they are the point.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


RING = """
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
[method]
{method}
[simulate]
spinup = 0.0
duration = 1.0
obs_interval = 0.1
obs_error_std = 0.1
obs_per_time = 6
background_error_std = 0.5
"""

# Lorenz-96 on 12 sites (chaotic at F = 8): windows of 3 and 4 model time units are "long"
# (60-80 steps, an error growth of e^5 and more), 0.5 is short.
LORENZ96 = """
[model]
name = "{name}"
parameters = {{ n = 12, forcing = 8.0 }}
ode_solver = "{solver}"
dt = {dt}
[window]
length = {length}
[observations]
path = "obs.nc"
layout = "gridded"
[background]
path = "background.nc"
covariance = {{ kind = "gaussian", std = 1.0, length_scale = 1.5 }}
[truth]
path = "truth.nc"
[method]
{method}
[simulate]
spinup = 5.0
duration = 5.0
obs_interval = 0.1
obs_error_std = 1.0
observed_fraction = 0.5
background_error_std = 1.0
"""

QUICK_CHECKS = {"dot-product", "tangent-linear", "taylor"}


@dataclass(frozen=True)
class Outcome:
    """One ``check-adjoints --json`` run: exit code, the report's rows, stderr."""

    code: int
    checks: tuple[dict, ...]
    stderr: str

    def pairs(self, status: str) -> set[tuple[str, str]]:
        """(check, component without the model's name) of the rows with this status."""
        return {
            (c["check"], c["component"].split(": ", 1)[1])
            for c in self.checks
            if c["status"] == status
        }

    def row(self, check: str, component: str) -> dict:
        return next(
            c for c in self.checks if c["check"] == check and c["component"].endswith(component)
        )


@pytest.fixture(scope="module")
def dacli(cli, plugins_on_path):
    """``dacli(folder, config_text, *options)``: check-adjoints in this process on a config
    written into ``folder``, with the plug-in models importable (as PYTHONPATH would make them)."""

    def run(folder: Path, config: str, *options: str) -> Outcome:
        (folder / "check.toml").write_text(config)
        result = cli(["check-adjoints", "check.toml", "--json", *options], folder)
        assert result.exit_code in (0, 1), result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        report = json.loads(result.stdout)
        assert report["passed"] == (result.exit_code == 0)
        return Outcome(result.exit_code, tuple(report["checks"]), result.stderr)

    return run


def _simulated(cli, folder: Path, config: str) -> Path:
    (folder / "simulate.toml").write_text(config)
    result = cli(["simulate", "simulate.toml", "-q"], folder)
    assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def ring(tmp_path_factory, cli, dacli):
    """The ring's simulated data (every ring variant shares its state layout)."""
    config = RING.format(name="ring_models:make_ring", extra="", method="")
    return _simulated(cli, tmp_path_factory.mktemp("ring"), config)


@pytest.fixture(scope="module")
def lorenz96(tmp_path_factory, cli, dacli):
    """Lorenz-96 (12 sites) data over 5 time units, simulated with Tsit5 (dacli's default) for
    4-unit windows; a check may use one window of any length up to 5. The numbers quoted in
    this file's tests are measured on these data."""
    config = LORENZ96.format(dt=0.05, name="lorenz96", solver="Tsit5", length=4.0, method="")
    return _simulated(cli, tmp_path_factory.mktemp("lorenz96"), config)


def _assert_named(outcome: Outcome, name: str, failed: set[tuple[str, str]]) -> None:
    """Each failed check has its line on stderr: check, model, component and numbers."""
    lines = [line for line in outcome.stderr.splitlines() if "dacli: check failed: " in line]
    assert len(lines) == len(failed), lines
    for check, component in failed:
        assert any(
            f"check failed: {check} test of {name}: {component}: " in line and "> tolerance" in line
            for line in lines
        ), (check, component, lines)


RING_FAULTS = [
    # (id, factory, parameters, failing (check, component) pairs, pairs that may also fail)
    pytest.param(
        "ring_models:make_ring_custom_rule",
        ", adjoint_scale = 2.0",
        {
            ("dot-product", "model step"),
            ("dot-product", "model window"),
            # without forward mode the tangent-linear model is the Jacobian built from the rule
            ("tangent-linear", "model step"),
            ("tangent-linear", "model window"),
            ("taylor", "cost J (RecursiveCheckpointAdjoint)"),
        },
        set(),
        id="wrong-custom-vjp",
    ),
    pytest.param(
        "ring_models:make_ring_rounded",
        "",
        {("tangent-linear", "model step"), ("tangent-linear", "model window")},
        {("taylor", "cost J (RecursiveCheckpointAdjoint)")},
        id="rounding",
    ),
    pytest.param(
        "faulty_models:make_ring_stop_gradient",
        "",
        {
            ("tangent-linear", "model step"),
            ("tangent-linear", "model window"),
            ("taylor", "cost J (RecursiveCheckpointAdjoint)"),
        },
        set(),
        id="stop-gradient",
    ),
    pytest.param(
        "faulty_models:make_ring_custom_jvp",
        ", tangent_scale = 2.0",
        {
            ("tangent-linear", "model step"),
            ("tangent-linear", "model window"),
            ("taylor", "cost J (RecursiveCheckpointAdjoint)"),
        },
        set(),
        id="wrong-custom-jvp",
    ),
    pytest.param(
        "faulty_models:make_ring_float32",
        "",
        {("dot-product", "model step"), ("dot-product", "model window")},
        # round-off 1e-7 in a float64 model: the tangent-linear criterion may name it too
        {("tangent-linear", "model step"), ("tangent-linear", "model window")},
        id="float32-downcast",
    ),
    pytest.param(
        "faulty_models:make_ring_sqrt_trap",
        "",
        {
            ("dot-product", "model step"),
            ("dot-product", "model window"),
            ("taylor", "cost J (RecursiveCheckpointAdjoint)"),
        },
        set(),
        id="where-sqrt-nan",
    ),
]


@pytest.mark.parametrize(("name", "extra", "failing", "also"), RING_FAULTS)
def test_a_seeded_model_fault_fails_naming_check_and_component(
    ring, dacli, name, extra, failing, also
):
    outcome = dacli(ring, RING.format(name=name, extra=extra, method=""), "--quick")
    assert outcome.code == 1
    failed = outcome.pairs("failed")
    assert failing <= failed <= failing | also, failed
    _assert_named(outcome, name, failed)
    # The fault is in the model: the observation operator and B^1/2 still pass.
    assert {("dot-product", "observation operator"), ("dot-product", "B^1/2")} <= outcome.pairs(
        "passed"
    )


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        pytest.param("ring_models:make_ring", "", id="ring"),
        pytest.param("ring_models:make_ring_custom_rule", ", adjoint_scale = 1.0", id="custom-vjp"),
        pytest.param(
            "faulty_models:make_ring_custom_jvp", ", tangent_scale = 1.0", id="custom-jvp"
        ),
    ],
)
def test_a_correct_ring_passes_the_quick_level(ring, dacli, name, extra):
    outcome = dacli(ring, RING.format(name=name, extra=extra, method=""), "--quick")
    assert outcome.code == 0, outcome.stderr
    assert {c["status"] for c in outcome.checks} == {"passed"}
    # --quick: the dot-product, tangent-linear and Taylor tests, of the model, H, B and J.
    assert {c["check"] for c in outcome.checks} == QUICK_CHECKS
    assert "quick: the dot-product, tangent-linear and Taylor tests only" in outcome.stderr
    assert ("taylor", "cost J (RecursiveCheckpointAdjoint)") in outcome.pairs("passed")


def test_an_implicit_adjoint_on_a_solve_that_stops_short_fails(ring, dacli):
    """LBFGS stopped at max_steps = 2: the implicit-function gradient holds at a minimum the
    solve never reaches; only the check of the configured settings sees it (the agreement
    checks solve tightly). LBFGS, not the default Gauss-Newton: on the linear ring that one
    reaches the minimum in one step."""
    method = 'minimiser = "LBFGS"\nmax_steps = 2\nminimiser_adjoint = "ImplicitAdjoint"'
    config = RING.format(name="ring_models:make_ring", extra="", method=method)
    # --no-strategies: the configured settings are still checked (the strategies' agreement is not)
    outcome = dacli(ring, config, "--no-strategies")
    assert outcome.code == 1
    component = "minimiser_adjoint ImplicitAdjoint as configured"
    assert outcome.pairs("failed") == {("configured-gradient", component)}
    _assert_named(outcome, "ring_models:make_ring", {("configured-gradient", component)})
    detail = outcome.row("configured-gradient", component)["detail"]
    assert "max_steps=2" in detail and "raise method.max_steps" in detail
    assert "stopped unconverged after 2 steps" in detail


def test_a_tsit5_window_passes_the_tangent_linear_test(lorenz96, dacli):
    """A correct Tsit5 window whose TL minimum (2.4e-6 measured) is above the fixed 1e-6 that
    used to fail it (issue 20): the criterion judges the convergence and the round-off floor."""
    method = "adjoint_checkpoints = 13"
    config = LORENZ96.format(dt=0.05, name="lorenz96", solver="Tsit5", length=4.0, method=method)
    outcome = dacli(lorenz96, config, "--quick")
    assert outcome.code == 0, outcome.stderr
    assert {c["status"] for c in outcome.checks} == {"passed"}
    window = outcome.row("tangent-linear", "model window")
    assert window["value"] > window["tolerance"]


@pytest.mark.slow
def test_a_correct_custom_vjp_lorenz96_passes_with_strategies_not_applicable(lorenz96, dacli):
    """No forward mode through a custom_vjp: ForwardMode and the minimiser adjoints that need
    Hessian-vector products cannot differentiate it, which is not a wrong gradient. (The full
    check: 31 s alone, 62 s on 2 busy cores.)"""
    name = "faulty_models:make_lorenz96_custom_vjp"
    config = LORENZ96.format(dt=0.05, name=name, solver="RK4", length=0.5, method="")
    outcome = dacli(lorenz96, config)
    assert outcome.code == 0, outcome.stderr
    assert outcome.pairs("failed") == set()
    assert outcome.pairs("not applicable") == {
        ("agreement", "forward_adjoint ForwardMode"),
        ("agreement", "minimiser_adjoint ImplicitAdjoint"),
        ("agreement", "minimiser_adjoint OneStepAdjoint"),
        ("agreement", "minimiser_adjoint KStepAdjoint(3)"),
        ("configured-gradient", "minimiser_adjoint ImplicitAdjoint as configured"),
    }
    assert {
        ("agreement", "forward_adjoint RecursiveCheckpointAdjoint"),
        ("agreement", "forward_adjoint BacksolveAdjoint"),
        ("taylor", "cost J (RecursiveCheckpointAdjoint)"),
        ("dot-product", "model window"),
    } <= outcome.pairs("passed")
    assert "not applicable: agreement test of" in outcome.stderr  # a warning, with its reason


def test_a_long_chaotic_window_is_inconclusive_not_failed(lorenz96):
    """Lorenz-96 over 3 time units with the default strategies: the minimiser-adjoint
    comparison means nothing where the solves do not converge to one minimum (issue 20 measured
    a false alarm of 1.41 here), and neither do finite differences of the configured solve.
    Through the suite's functions, with ImplicitAdjoint only: the full CLI check of this window
    compiles a dozen programs (110 s); how a status maps to the exit code is tested above."""
    import jax.numpy as jnp

    import dacli.config
    from dacli.diagnostics.adjoint_suite import SuiteTolerances, minimiser_adjoint_label
    from dacli.diagnostics.analysis_gradient_checks import (
        MINIMISER_ADJOINTS,
        check_configured_gradient,
        check_minimiser_strategies,
    )
    from dacli.run.check_adjoints import _config_case
    from dacli.run.runtime import configure

    configure("float64", "cpu")
    (lorenz96 / "long.toml").write_text(
        LORENZ96.format(dt=0.05, name="lorenz96", solver="RK4", length=3.0, method="")
    )
    config = dacli.config.load(lorenz96 / "long.toml")
    name, method, background, start, obs, truth = _config_case(config, jnp.float64)
    tolerances = SuiteTolerances.for_dtype(jnp.float64)
    implicit = {"ImplicitAdjoint": MINIMISER_ADJOINTS["ImplicitAdjoint"]}
    [agreement] = check_minimiser_strategies(
        method, background, start, obs, truth, tolerances.minimiser_strategy, name, implicit
    )
    assert agreement.status == "inconclusive", agreement
    assert "did not converge" in agreement.detail or "different minima" in agreement.detail
    configured = check_configured_gradient(
        method,
        background,
        start,
        obs,
        truth,
        tolerances.configured_gradient,
        name,
        minimiser_adjoint_label(method.minimiser_adjoint),
    )
    # measured: the solves at log B-scale +-h land on other minima (controls 2.5 to 13.7 apart)
    assert configured.status in ("passed", "inconclusive"), configured
    if configured.status == "inconclusive":
        assert "land on other minima" in configured.detail


@pytest.mark.slow
def test_backsolve_on_a_long_chaotic_window_fails_the_taylor_test(lorenz96, dacli):
    """BacksolveAdjoint re-integrates Lorenz-96 backwards over 2 time units with RK4 at dt = 0.1:
    RK4 run backwards does not undo RK4 run forwards, and the contracting directions amplify each
    step's difference, so the gradient of J no longer matches J's finite differences. Under the
    full check (what a user runs first; --quick runs the same Taylor test): exit 1 with the Taylor
    test named, not an internal error from a strategy that cannot differentiate the model.

    Measured (--quick, 2026-12-08): |ratio - 1| = 0.10, 0.15, 0.16 over 2, 3, 4 time units at
    dt = 0.1, against the tolerance 1e-4. At dt = 0.05 it ranged from 2.6e-4 to 0.12 over 2 to 5
    units, not growing with the length, and 3 units gave 4.1e-4 on one CPU, above 1e-3 on another:
    too close to the tolerance for a test."""
    method = 'forward_adjoint = "BacksolveAdjoint"'
    config = LORENZ96.format(dt=0.1, name="lorenz96", solver="RK4", length=2.0, method=method)
    outcome = dacli(lorenz96, config)
    assert outcome.code == 1
    failed = outcome.pairs("failed")
    backsolve = {
        ("taylor", "cost J (BacksolveAdjoint)"),
        ("agreement", "forward_adjoint BacksolveAdjoint"),
        ("dot-product", "departures, incremental tangent-linear vs BacksolveAdjoint adjoint"),
        ("configured-gradient", "minimiser_adjoint ImplicitAdjoint as configured"),
        # the implicit derivative through the solve takes the same wrong gradient (measured:
        # 5e-4 against the tolerance 1e-4 at dt = 0.1)
        ("agreement", "minimiser_adjoint ImplicitAdjoint"),
    }
    assert ("taylor", "cost J (BacksolveAdjoint)") in failed and failed <= backsolve, failed
    _assert_named(outcome, "lorenz96", failed)
    taylor = outcome.row("taylor", "cost J (BacksolveAdjoint)")
    assert taylor["value"] > 100 * taylor["tolerance"], taylor


def test_a_wrong_observation_operator_adjoint_fails_the_dot_product_test():
    """dacli's observation operators are built in (no plug-in H), so the seeded fault is H with a
    hand-written adjoint that drops the interpolation weights' transpose: the suite's
    observation-operator checks (tangent-linear and dot-product) must fail on it, and pass on the
    true adjoint."""
    import jax
    import jax.numpy as jnp

    from dacli.diagnostics.adjoint_checks import Tolerances, dot_product_check, tangent_linear_check
    from dacli.observations.operator import WindowObservations, apply_observation_operator

    rng = np.random.default_rng(3)
    steps, n, p = 5, 12, 9
    obs = WindowObservations(
        values=jnp.asarray(rng.normal(size=p)), std=jnp.ones(p),
        slot=jnp.asarray(rng.integers(0, steps, p)), index=jnp.asarray(rng.integers(0, n, (p, 2))),
        weight=jnp.asarray(rng.uniform(size=(p, 2))), mask=jnp.ones(p, bool))

    def with_adjoint(wrong: bool):
        @jax.custom_vjp
        def operator(trajectory):
            return apply_observation_operator(trajectory, obs)

        def backward(_, cotangent):
            weight = jnp.ones_like(obs.weight) if wrong else obs.weight  # the seeded fault
            adjoint = jnp.zeros((steps, n)).at[obs.slot[:, None], obs.index].add(weight * cotangent[:, None])
            return (adjoint,)

        operator.defvjp(lambda trajectory: (operator(trajectory), None), backward)
        return operator

    x = jnp.asarray(rng.normal(size=(steps, n)))
    dx, dy = jnp.asarray(rng.normal(size=(steps, n))), jnp.asarray(rng.normal(size=p))
    tolerances = Tolerances.for_dtype(jnp.float64)
    right = dot_product_check(with_adjoint(False), x, dx, dy, "H", tolerances, forward=False)
    wrong = dot_product_check(with_adjoint(True), x, dx, dy, "H", tolerances, forward=False)
    assert right.passed and right.value < 1e-9, right
    assert wrong.status == "failed" and wrong.value > 1e-2, wrong
    # The tangent-linear model built from the wrong rule does not match the operator either.
    assert tangent_linear_check(with_adjoint(True), x, dx, "H", 1e-6, forward=False).status == "failed"
