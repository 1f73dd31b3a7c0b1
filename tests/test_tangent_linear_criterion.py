"""The tangent-linear test's criterion: correct windows pass at their numerical floor (Tsit5,
Dopri8, float32), seeded derivative faults fail and say why (issue 20, item 2)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dacli.diagnostics.adjoint_checks import (
    ALPHAS,
    Tolerances,
    fit_tangent_linear,
    tangent_linear_check,
)
from dacli.models.integrate import integrate
from dacli.models.lorenz import Lorenz96

F64 = Tolerances.for_dtype(jnp.float64).tangent_linear
F32 = Tolerances.for_dtype(jnp.float32).tangent_linear
N = 8
DT = 0.05


def _window(model, steps, solver):
    return jax.jit(
        lambda x: integrate(model, x, 0.0, steps, DT, solver, diffrax.DirectAdjoint())[-1]
    )


@pytest.fixture(scope="module")
def start():
    """A state on the Lorenz-96 attractor (10 model time units of spin-up), a direction, and the
    spin-up's 50-step Tsit5 window (2.5 time units: chaotic growth ~1e3)."""
    model = Lorenz96(n=N)
    window = _window(model, 50, diffrax.Tsit5())
    x = model.default_state(jax.random.PRNGKey(0)).astype(jnp.float64)
    for _ in range(4):
        x = window(x)
    return x, jax.random.normal(jax.random.PRNGKey(2), x.shape, jnp.float64), window


def _step(model):
    """One explicit Euler step of ``model``: a small function for the seeded faults."""
    return jax.jit(lambda x: x + DT * model.vector_field(0.0, x, None))


def _old_criterion_passes(result):
    """The criterion before issue 20: minimum within the tolerance (stalls aside)."""
    return result.value <= result.tolerance


def test_a_correct_tsit5_window_passes_at_its_numerical_floor(start):
    x, dx, window = start
    result = tangent_linear_check(window, x, dx, "window", F64)
    assert result.value > F64 and not _old_criterion_passes(result)  # the reported false alarm
    assert result.passed, result.detail
    assert "within 4x the predicted floor" in result.detail
    assert "predicted floor 2 sqrt(C2 R)" in result.detail and "per decade" in result.detail


def test_a_correct_dopri8_window_passes_at_its_numerical_floor(start):
    x, dx, _ = start
    window = _window(Lorenz96(n=N), 60, diffrax.Dopri8())
    result = tangent_linear_check(window, x, dx, "window", F64)
    assert result.value > F64 and not _old_criterion_passes(result)
    assert result.passed, result.detail


def _scaled_tangent(function, error):
    """``function`` whose jvp rule is off by the relative ``error``."""

    @jax.custom_jvp
    def wrong(x):
        return function(x)

    @wrong.defjvp
    def _(primals, tangents):
        value, tangent = jax.jvp(function, primals, tangents)
        return value, tangent * (1.0 + error)

    return wrong


def test_a_jvp_rule_off_by_1e_4_fails_in_the_window(start):
    x, dx, window = start
    result = tangent_linear_check(_scaled_tangent(window, 1e-4), x, dx, "window", F64)
    assert not result.passed, result.detail
    assert result.value > 1e-5
    assert "the error stalls near" in result.detail and "wrongly linearised" in result.detail


@pytest.mark.parametrize("error", [1e-3, 1e-5])
def test_a_jvp_rule_off_by_a_small_relative_error_fails_in_a_step(start, error):
    x, dx, _ = start
    result = tangent_linear_check(_scaled_tangent(_step(Lorenz96(n=N)), error), x, dx, "step", F64)
    assert not result.passed
    assert result.value == pytest.approx(error, rel=0.2)
    assert "the error stalls near" in result.detail and "wrongly linearised" in result.detail


class Rounded(Lorenz96):
    def vector_field(self, t, x, args):
        return super().vector_field(t, jnp.round(x * 100.0) / 100.0, args)


class HalfFrozen(Lorenz96):
    def vector_field(self, t, x, args):
        frozen = jnp.concatenate([jax.lax.stop_gradient(x[: N // 2]), x[N // 2 :]])
        return super().vector_field(t, frozen, args)


class Downcast(Lorenz96):
    def vector_field(self, t, x, args):
        return super().vector_field(t, x.astype(jnp.float32), args).astype(x.dtype)


class WrongAdjointRule(Lorenz96):
    """The advection term through a custom_vjp whose rule is twice the true adjoint."""

    def vector_field(self, t, x, args):
        @jax.custom_vjp
        def advect(u):
            return (jnp.roll(u, -1) - jnp.roll(u, 2)) * jnp.roll(u, 1)

        def forward(u):
            return advect(u), u

        def backward(u, cotangent):
            return (2.0 * jax.vjp(lambda v: advect.fun(v), u)[1](cotangent)[0],)

        advect.defvjp(forward, backward)
        return advect(x) - x + self.forcing


class SqrtTrap(Lorenz96):
    """jnp.where around a sqrt: its reverse-mode derivative is NaN where the state is negative."""

    def vector_field(self, t, x, args):
        return super().vector_field(t, x, args) + 0.1 * jnp.where(x > 0, jnp.sqrt(x), 0.0)


@pytest.mark.parametrize(
    ("model", "forward", "words"),
    [
        (Rounded, True, ["the error stalls", "then drops", "non-differentiable"]),
        (HalfFrozen, True, ["the error stalls", "wrongly linearised"]),
        (Downcast, True, ["round-off", "lower precision"]),
        (WrongAdjointRule, False, ["the error stalls", "wrongly linearised"]),
        (SqrtTrap, False, ["NaN or inf"]),
    ],
    ids=["rounding", "stop_gradient", "float32-downcast", "wrong-custom_vjp", "where-sqrt"],
)
def test_a_seeded_derivative_fault_fails_and_says_which_signature(start, model, forward, words):
    x, dx, _ = start
    result = tangent_linear_check(_step(model(n=N)), x, dx, "step", F64, forward=forward)
    assert not result.passed, result.detail
    for word in words:
        assert word in result.detail


def test_float32_correct_window_passes_under_the_float32_tolerance(start):
    x, dx = (v.astype(jnp.float32) for v in start[:2])
    result = tangent_linear_check(_window(Lorenz96(n=N), 20, diffrax.Tsit5()), x, dx, "window", F32)
    assert result.passed, result.detail
    assert 1e-5 < result.value <= F32  # float32 round-off: far above float64's tolerance


def _curve(curvature, roundoff, offset=0.0):
    return curvature * ALPHAS + roundoff / ALPHAS + offset


def test_the_fit_reads_truncation_and_round_off_from_a_synthetic_curve():
    fit = fit_tangent_linear(_curve(1e3, 1e-15), ALPHAS, 1e-15, F64)
    assert fit.curvature == pytest.approx(1e3, rel=0.01)
    assert fit.roundoff == pytest.approx(1e-15, rel=0.01)
    assert fit.floor == pytest.approx(2e-6, rel=0.01) and fit.rate == pytest.approx(10, rel=0.01)
    assert fit.cliff == -1 and fit.stalls == ()
    # A constant rule error of 1e-4 stops the decrease: a stall at that level.
    wrong = fit_tangent_linear(_curve(1e3, 1e-15, 1e-4), ALPHAS, 1e-15, F64)
    assert wrong.minimum > 4 * wrong.floor and wrong.stalls


def test_a_rounding_cliff_is_found_even_below_the_tolerance():
    errors = np.r_[np.full(5, 0.6), _curve(1e-2, 1e-15)[5:]]
    fit = fit_tangent_linear(errors, ALPHAS, 1e-15, F64)
    assert fit.minimum < F64 and fit.cliff == 4 and fit.stalls == (0, 1, 2, 3)
