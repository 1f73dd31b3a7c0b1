"""Bilinear interpolation (the 2-D observation operator's rows): exact on bilinear fields, adjoint-consistent."""

import jax
import jax.numpy as jnp
import numpy as np

from dacli.io.interpolation import bilinear_weights
from dacli.observations.operator import WindowObservations, apply_observation_operator

Y = np.linspace(0.0, 70.0, 8)  # spacing 10
X = np.linspace(-5.0, 85.0, 10)  # spacing 10


def test_exact_on_bilinear_fields_inside_a_non_periodic_grid():
    rng = np.random.default_rng(0)
    y, x = rng.uniform(Y[0], Y[-1], 50), rng.uniform(X[0], X[-1], 50)
    yy, xx = np.meshgrid(Y, X, indexing="ij")
    field = lambda y, x: 1.5 - 0.2 * x + 0.7 * y + 0.03 * x * y  # noqa: E731
    index, weight, inside = bilinear_weights(y, x, Y, X, wraps=(False, False))
    assert inside.all()
    np.testing.assert_allclose(weight.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.sum(field(yy, xx).ravel()[index] * weight, axis=1), field(y, x), rtol=1e-12)


def test_grid_points_are_read_exactly_and_outside_is_flagged():
    index, weight, inside = bilinear_weights(np.array([20.0, 75.0]), np.array([35.0, 0.0]), Y, X, wraps=(False, False))
    assert inside.tolist() == [True, False]  # y = 75 is beyond the last row (70)
    assert index[0, np.argmax(weight[0])] == 2 * len(X) + 4 and weight[0].max() == 1.0


def test_periodic_axes_wrap_between_the_last_and_first_points():
    index, weight, inside = bilinear_weights(np.array([75.0]), np.array([90.0]), Y, X, wraps=(True, True))
    assert inside.all()
    corners = {int(i): float(w) for i, w in zip(index[0], weight[0])}
    # y = 75: halfway between row 7 (70) and row 0 (80 = 0); x = 90: halfway between column 9 (85) and 0.
    assert corners == {7 * 10 + 9: 0.25, 7 * 10 + 0: 0.25, 0 * 10 + 9: 0.25, 0: 0.25}


def test_interpolation_operator_passes_the_dot_product_test():
    rng = np.random.default_rng(1)
    p, steps = 30, 3
    index, weight, _ = bilinear_weights(rng.uniform(0, 80, p), rng.uniform(-5, 95, p), Y, X)
    obs = WindowObservations(values=jnp.zeros(p), std=jnp.ones(p), slot=jnp.asarray(rng.integers(0, steps, p)),
                             index=jnp.asarray(index), weight=jnp.asarray(weight), mask=jnp.ones(p, bool))
    dx = jnp.asarray(rng.normal(size=(steps, Y.size * X.size)))
    dy = jnp.asarray(rng.normal(size=p))
    operator = lambda trajectory: apply_observation_operator(trajectory, obs)  # noqa: E731
    _, pullback = jax.vjp(operator, jnp.zeros_like(dx))
    left, right = float(jnp.vdot(operator(dx), dy)), float(jnp.vdot(dx, pullback(dy)[0]))
    assert abs(left - right) <= 1e-13 * abs(left)
