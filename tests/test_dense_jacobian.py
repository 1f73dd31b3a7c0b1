"""Residuals differentiated through their Jacobian matrix (dacli.methods.dense_jacobian): every
derivative equals plain autodiff's, and Gauss-Newton with ForwardMode takes the same iterates as
optimistix given the plain residuals."""

import dataclasses
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

from dacli.methods.dense_jacobian import with_dense_jacobian


def residuals(v, others):
    scale, shift = others
    return {"a": jnp.sin(v) * scale, "b": jnp.stack([v[0] * v[1] ** 2 + shift, jnp.sum(v**3)])}


def dense(v, others):
    return with_dense_jacobian(residuals, v, others)


V = jnp.array([0.3, -1.2, 2.0])
OTHERS = (jnp.array([1.5, -0.5, 2.0]), jnp.array(0.7))


def close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    "tangents",
    [
        (jnp.array([1.0, 2.0, -1.0]), jax.tree.map(jnp.zeros_like, OTHERS)),  # v only
        (jnp.zeros(3), (jnp.array([0.2, 0.0, 1.0]), jnp.array(-3.0))),  # the others only
        (jnp.array([1.0, 2.0, -1.0]), (jnp.array([0.2, 0.0, 1.0]), jnp.array(-3.0))),
    ],
)
def test_jvp_equals_plain_autodiff(tangents):
    close(jax.jvp(dense, (V, OTHERS), tangents), jax.jvp(residuals, (V, OTHERS), tangents))


def test_reverse_and_second_derivatives_equal_plain_autodiff():
    def cost(function):
        return lambda v, others: 0.5 * sum(jnp.sum(r**2) for r in jax.tree.leaves(function(v, others)))

    close(jax.grad(cost(dense), argnums=(0, 1))(V, OTHERS), jax.grad(cost(residuals), argnums=(0, 1))(V, OTHERS))
    close(jax.hessian(cost(dense))(V, OTHERS), jax.hessian(cost(residuals))(V, OTHERS))
    close(jax.jacfwd(dense)(V, OTHERS), jax.jacrev(residuals)(V, OTHERS))


def test_gauss_newton_takes_the_same_iterates_as_on_the_plain_residuals(tmp_path):
    """A Lorenz-96 strong 4DVar window (the shipped config, Gauss-Newton with ForwardMode): the
    method's solve, which hands optimistix the dense-Jacobian residuals, against optimistix on
    the plain residuals, after 2, 3 and 6 iterations (optimistix's first only evaluates at the
    background: both controls are still 0 after it)."""
    from dacli.config import load
    from dacli.run.inputs import prepare_inputs

    root = Path(__file__).resolve().parents[1]
    config = load(
        root / "configs" / "lorenz96.toml",
        [
            'method.minimiser="GaussNewton"',
            'method.forward_adjoint="ForwardMode"',
            f'output.path="{tmp_path / "out.nc"}"',
            'run.compilation_cache="off"',
        ],
    )
    inputs = prepare_inputs(config)
    method = inputs.problem.method
    assert isinstance(method.forward_adjoint, diffrax.ForwardMode) and method.least_squares
    obs = jax.tree.map(lambda a: jnp.asarray(a[3]), inputs.packed.stacked())
    background = jnp.asarray(inputs.background)
    args = (background + 0.5, jnp.asarray(inputs.schedule.starts[3]), obs)
    v0 = jnp.zeros_like(background)
    for steps in (2, 3, 6):
        capped = dataclasses.replace(method, max_steps=steps)
        ours = capped.solve_control(v0, args).value
        plain = optx.least_squares(
            method.residuals, method.minimiser, v0, args, options={"jac": "fwd"}, max_steps=steps, throw=False
        ).value
        np.testing.assert_allclose(ours, plain, rtol=1e-10, atol=1e-12)
