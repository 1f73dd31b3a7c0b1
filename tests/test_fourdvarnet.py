"""4DVarNet's solver adjoints and training on small problems (float64 where exactness is claimed).

Every solver adjoint gives the same forward reconstruction; KStepAdjoint(k=1) is OneStepAdjoint,
KStepAdjoint(k=K) and checkpointed unrolling equal the plain unroll's gradient; ImplicitAdjoint
equals the unrolled gradient once the (gradient-descent) iteration has converged; one training
step reduces the loss on a fixed batch.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dacli.adjoints.unroll import Checkpointed, Implicit, KStep, Unrolled
from dacli.config.registry import ITERATION_ADJOINTS
from dacli.learned.fourdvarnet import FourDVarNet
from dacli.learned.training import batch_loss, make_optimiser, train_step

K = 4
ADJOINTS = {
    "DirectAdjoint": Unrolled(),
    "RecursiveCheckpointAdjoint": Checkpointed(checkpoints=2),
    "OneStepAdjoint": KStep(k=1),
    "KStepAdjoint(1)": KStep(k=1),
    "KStepAdjoint(K)": KStep(k=K),
    "KStepAdjoint(2)": KStep(k=2),
    "ImplicitAdjoint": Implicit(),
}


def test_every_registered_solver_adjoint_is_tested():
    """ADJOINTS holds every registered solver adjoint, by its config name (KStepAdjoint at several
    k): a new registry entry fails here until the tests below compare it with the others."""
    assert {name.split("(")[0] for name in ADJOINTS} == set(ITERATION_ADJOINTS.names)


def with_adjoint(network, adjoint):
    return eqx.tree_at(lambda n: n.iteration_adjoint, network, adjoint)


@pytest.fixture(scope="module")
def problem():
    """A random 1-D problem: 3 channels (Lorenz-63 variables) over 24 time steps, a third observed."""
    key = jax.random.PRNGKey(0)
    network = FourDVarNet(3, 1, periodic=False, hidden=6, modulator_hidden=6, iterations=K,
                          observation_error_std=0.5, prior_weight=0.3, key=key, dtype=jnp.float64)
    # A non-trivial prior (its residual decoder starts at zero).
    decode = network.prior.decode
    network = eqx.tree_at(lambda n: n.prior.decode.weight, network,
                          0.1 * jax.random.normal(jax.random.PRNGKey(1), decode.weight.shape))
    truth = jnp.sin(jnp.linspace(0, 6, 24))[None, :] * jnp.array([1.0, -0.5, 2.0])[:, None]
    mask = jax.random.uniform(jax.random.PRNGKey(2), (4, 3, 24)) < 0.35
    y = truth + 0.3 * jax.random.normal(jax.random.PRNGKey(3), (4, 3, 24))
    return network, jnp.where(mask, y, jnp.nan), mask, jnp.broadcast_to(truth, (4, 3, 24))


@eqx.filter_jit
def loss_gradient(network, y, mask, truth):
    grads = eqx.filter_grad(batch_loss)(network, y, mask, truth, 0.0)
    return jnp.concatenate([jnp.ravel(g) for g in jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))])


def test_every_solver_adjoint_gives_the_same_forward_reconstruction(problem):
    network, y, mask, _ = problem
    reference = jax.vmap(with_adjoint(network, ADJOINTS["DirectAdjoint"]))(y, mask)
    assert np.all(np.isfinite(reference))  # NaN observations never reach the arithmetic
    for name, adjoint in ADJOINTS.items():
        x = jax.vmap(with_adjoint(network, adjoint))(y, mask)
        np.testing.assert_allclose(x, reference, rtol=0, atol=1e-13, err_msg=name)


def test_k_step_adjoints_against_the_full_unroll(problem):
    network, y, mask, truth = problem
    grads = {name: loss_gradient(with_adjoint(network, a), y, mask, truth) for name, a in ADJOINTS.items()
             if name != "ImplicitAdjoint"}
    full = grads["DirectAdjoint"]
    np.testing.assert_allclose(grads["RecursiveCheckpointAdjoint"], full, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grads["KStepAdjoint(K)"], full, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(grads["KStepAdjoint(1)"], grads["OneStepAdjoint"])
    # Truncation really truncates: one live step is not the full gradient (the LSTM never converges).
    assert np.linalg.norm(grads["OneStepAdjoint"] - full) > 1e-3 * np.linalg.norm(full)
    assert np.linalg.norm(grads["KStepAdjoint(2)"] - full) < np.linalg.norm(grads["OneStepAdjoint"] - full)


def test_implicit_adjoint_equals_the_unrolled_gradient_at_a_converged_fixed_point(problem):
    """Gradient descent on U (strongly convex: everything observed) converges; then IFT = unroll."""
    network, y, mask, truth = problem
    iterations = 150
    solver = FourDVarNet(3, 1, periodic=False, hidden=6, iterations=iterations, observation_error_std=1.0,
                         prior_weight=0.3, update="gradient", key=jax.random.PRNGKey(0), dtype=jnp.float64)
    solver = eqx.tree_at(lambda n: n.prior, solver, network.prior)
    full = jnp.ones_like(mask)
    y = jnp.nan_to_num(y) + truth * (~mask)
    converged = with_adjoint(solver, Unrolled())
    step_change = jnp.max(jnp.abs(converged(y[0], full[0]) - eqx.tree_at(
        lambda n: n.iterations, converged, iterations - 1)(y[0], full[0])))
    assert step_change < 1e-12  # the iteration has converged
    unrolled = loss_gradient(converged, y, full, truth)
    implicit = loss_gradient(with_adjoint(solver, Implicit()), y, full, truth)
    np.testing.assert_allclose(implicit, unrolled, rtol=1e-6, atol=1e-10)


def test_one_training_step_reduces_the_loss_on_a_fixed_batch(problem):
    network, y, mask, truth = problem
    optimiser = make_optimiser(1e-2, total_steps=10)
    state = optimiser.init(eqx.filter(network, eqx.is_inexact_array))
    before = batch_loss(network, y, mask, truth, 0.5)
    trained, state, reported = train_step(network, state, y, mask, truth, optimiser=optimiser, prior_loss_weight=0.5)
    assert reported == pytest.approx(float(before))
    assert batch_loss(trained, y, mask, truth, 0.5) < before


@pytest.mark.slow
def test_trained_on_lorenz63_the_analysis_beats_the_observation_error():
    """Fablet et al. (2021)'s Lorenz-63 setup, shortened: dt 0.01, all variables observed every
    8 steps with noise variance 2; here 64-step windows (8 observation times) and 300 steps of
    Adam on 184 training windows; 16 held-out windows are reconstructed. The windows come from
    the shipped config's twin simulator, as dacli train makes them."""
    from pathlib import Path

    import dacli.config
    from dacli.learned.training import evaluate
    from dacli.models.lorenz import Lorenz63
    from dacli.run.train import training_windows

    config = dacli.config.load(Path(__file__).resolve().parents[1] / "configs" / "lorenz63_4dvarnet.toml",
                         ["train.seed=0"])
    data = training_windows(config, Lorenz63().layout(), 64, np.dtype(np.float32))
    y, mask, truth = data.y, data.mask, data.truth
    noise = data.observation_error_std
    assert noise == pytest.approx(np.sqrt(2.0)) and data.training == 184 and len(y) == 200
    assert mask.mean() == pytest.approx(1 / 8)  # every variable, every 8th step
    train, test = slice(0, 184), slice(184, 200)
    network = FourDVarNet(3, 1, periodic=False, hidden=16, modulator_hidden=16, kernel=5, iterations=8,
                          observation_error_std=noise, prior_weight=2.0, iteration_adjoint=Unrolled(),
                          offset=float(truth[train].mean()), scale=float(truth[train].std()),
                          key=jax.random.PRNGKey(0), dtype=jnp.float32)
    steps, batch = 300, 8
    optimiser = make_optimiser(2e-2, total_steps=steps, warmup_steps=20)
    state = optimiser.init(eqx.filter(network, eqx.is_inexact_array))
    rng = np.random.default_rng(0)
    before = float(evaluate(network, y[test], mask[test], truth[test]))
    for _ in range(steps):
        chosen = rng.choice(184, batch, replace=False)
        network, state, _ = train_step(network, state, y[chosen], mask[chosen], truth[chosen],
                                       optimiser=optimiser, prior_loss_weight=0.5)
    after = float(evaluate(network, y[test], mask[test], truth[test]))
    # Measured: 1.11 (the observation error is 1.41, and only every 8th step is observed).
    assert after < 0.9 * noise, (before, after)


@pytest.mark.parametrize("spatial_dims, periodic", [(1, False), (2, True), (2, False)])
def test_channels_last_conv_equals_equinox_conv(spatial_dims, periodic):
    """dacli's Conv (a matrix product over shifted copies, fast inside loops on CPU) computes what
    equinox.nn.Conv computes with the same weights: zero or circular padding, 1-D and 2-D."""
    from dacli.learned.networks import Conv

    ours = Conv(spatial_dims, 3, 5, 3, periodic, key=jax.random.PRNGKey(0), dtype=jnp.float64)
    theirs = eqx.nn.Conv(spatial_dims, 3, 5, 3, padding=1, padding_mode="CIRCULAR" if periodic else "ZEROS",
                         key=jax.random.PRNGKey(1), dtype=jnp.float64)
    theirs = eqx.tree_at(lambda c: (c.weight, c.bias), theirs, (ours.weight, ours.bias.reshape(theirs.bias.shape)))
    x = jax.random.normal(jax.random.PRNGKey(2), (3,) + (7,) * spatial_dims, jnp.float64)
    np.testing.assert_allclose(ours(x), theirs(x), rtol=0, atol=1e-13)




@eqx.filter_jit
def _model_prior_checks(network, x0, mask):
    """(a model trajectory x, Phi(x), Phi(x + small) - (x + small), first iterate, U with and without background)."""
    from dacli.models.integrate import integrate

    prior = network.prior
    x = prior.unflat(integrate(prior.dynamics, x0, 0.0, 12, prior.dt, prior.ode_solver, diffrax.DirectAdjoint())[1:])
    perturbed = x + 0.01 * jnp.sin(x)
    y = jnp.where(mask, x + 1.0, jnp.nan)
    later = jnp.expand_dims(jnp.arange(12) > 0, 1 - network.time_axis)  # steps 2..12: not in the background term
    costs = jnp.stack([network.cost(x, y, mask, x - 0.5), network.cost(x, y, mask, jnp.where(later, x + 7.0, x - 0.5))])
    return (x, network.project(x), network.project(perturbed) - perturbed,
            network.initial_iterate(y, mask, x - 0.5)[0], costs)


def test_model_prior_is_exact_on_a_model_trajectory_and_the_background_fills_the_first_iterate():
    """network.prior = "model": |x - Phi(x)| vanishes on a true model trajectory (Phi(x)_t is one
    model step from x_{t-1}), in both layouts (variables x time for Lorenz-63, time x grid for
    Lorenz-96), and not on a perturbed one. network.background: the first iterate is the
    observation where observed, the background's forecast elsewhere; the background term is
    w_b |x_1 - x^b_1|^2 / (2 sigma_o^2) on the first step; a network trained with backgrounds refuses
    to run without one, one trained without ignores it; one training step with the model prior
    (differentiating through the model step twice) reduces the loss."""
    from dacli.build.network import build_model_prior, time_axis
    from dacli.build.problem import build_dynamics
    from dacli.config.schema import ModelConfig, NetworkConfig

    for name, parameters, grid in (("lorenz63", {}, False), ("lorenz96", {"n": 8}, True)):
        model = ModelConfig(name=name, parameters=parameters, ode_solver="RK4", dt=0.01)
        layout = build_dynamics(model).layout()
        prior = build_model_prior(NetworkConfig(file="unused", prior="model", background=True), model, layout)
        shape = (12, layout.size) if grid else (layout.size, 12)
        network = FourDVarNet(shape[0], 1, periodic=grid, modulator_hidden=2, iterations=2, model_prior=prior,
                              background=True, background_weight=3.0, observation_error_std=0.5,
                              time_axis=time_axis(layout), key=jax.random.PRNGKey(0), dtype=jnp.float64)
        mask = np.random.default_rng(1).uniform(size=shape) < 0.3
        x, phi, perturbed, first, costs = _model_prior_checks(network, jnp.linspace(1.0, 2.0, layout.size), mask)
        assert x.shape == shape
        np.testing.assert_allclose(phi, x, rtol=0, atol=1e-12)
        assert np.abs(perturbed).max() > 1e-4
        np.testing.assert_array_equal(first, jnp.where(mask, x + 1.0, x - 0.5))
        # U(x) = |m (x - y)|^2 / (2 sigma_o^2) + w_b |x_1 - x^b_1|^2 / (2 sigma_o^2), x^b = x - 0.5 (Phi(x) = x)
        expected = (mask.sum() + 3.0 * 0.25 * layout.size) / (2 * 0.25)
        np.testing.assert_allclose(costs, expected, rtol=1e-12)
        with pytest.raises(ValueError, match=r"trained with backgrounds \(network.background = true\): pass"):
            network.initial_iterate(x, mask)
        if grid:  # training differentiates through grad U, so through the model step twice: it must trace
            optimiser = make_optimiser(1e-2, total_steps=10)
            state = optimiser.init(eqx.filter(network, eqx.is_inexact_array))
            batch = (jnp.where(mask, x, jnp.nan)[None], mask[None], x[None], (x - 0.5)[None])
            trained, _, loss = train_step(network, state, *batch, optimiser=optimiser, prior_loss_weight=0.5)
            assert np.isfinite(loss) and batch_loss(trained, *batch[:3], 0.5, batch[3]) < loss
    plain = FourDVarNet(3, 1, periodic=False, hidden=2, modulator_hidden=2, iterations=2, key=jax.random.PRNGKey(0),
                        dtype=jnp.float64)
    y, mask = jnp.zeros((3, 12)), jnp.zeros((3, 12), bool)
    np.testing.assert_array_equal(plain.initial_iterate(y, mask, jnp.ones((3, 12)))[0], jnp.full((3, 12), plain.offset))
