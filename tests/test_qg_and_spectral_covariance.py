"""The quasi-geostrophic model and the FFT correlation operators against closed forms.

PV inversion of an analytic Fourier mode; westward Rossby-wave propagation at the analytic phase
speed; energy (and, without beta, enstrophy) conserved by the inviscid unforced model; adjoint
of the discrete model; the FFT correlation equals the dense periodic correlation matrix and its
square root squares to it.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dacli.covariances.spectral import (
    correlation_function,
    periodic_distances,
    spectral_correlation_sqrt,
)
from dacli.diagnostics.adjoint_checks import Tolerances, dot_product_check
from dacli.models.integrate import integrate
from dacli.models.qg import QuasiGeostrophic
from dacli.models.solvers import RK4

LENGTH = 1.0e6


def grid(model):
    x = np.arange(model.nx) * model.length_x / model.nx
    y = np.arange(model.ny) * model.length_y / model.ny
    return np.meshgrid(x, y)  # (ny, nx) each


def mode(model, mx, my, phase=0.0):
    x, y = grid(model)
    kx, ky = 2 * np.pi * mx / model.length_x, 2 * np.pi * my / model.length_y
    return np.sin(kx * x + phase) * np.cos(ky * y), kx**2 + ky**2, kx


def test_pv_inversion_of_an_analytic_mode():
    model = QuasiGeostrophic(nx=32, ny=24, length_x=LENGTH, length_y=0.75 * LENGTH, deformation_radius=40e3)
    psi, k2, _ = mode(model, 3, 2)
    q = np.asarray(model.pv_from_streamfunction(jnp.asarray(psi)))
    expected = -(k2 + 1.0 / model.deformation_radius**2) * psi
    np.testing.assert_allclose(q, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(model.streamfunction_from_pv(jnp.asarray(expected)), psi, rtol=0, atol=1e-12)


def test_rossby_wave_travels_west_at_the_analytic_phase_speed():
    """One Fourier mode is an exact solution (J(psi, q) = 0): omega = -beta kx / (k^2 + 1/Ld^2)."""
    model = QuasiGeostrophic(nx=32, length_x=LENGTH, deformation_radius=50e3, beta=2e-11, viscosity=0.0)
    eta, k2, kx = mode(model, 2, 1)
    days, dt = 20.0, 0.25
    trajectory = integrate(model, jnp.asarray(0.05 * eta.reshape(-1)), 0.0, int(days / dt), dt, RK4(),
                           diffrax.DirectAdjoint())
    omega = -model.beta * kx / (k2 + 1.0 / model.deformation_radius**2)  # rad / s
    expected, _, _ = mode(model, 2, 1, phase=-omega * days * 86400.0)
    westward = -omega * days * 86400.0 / kx  # sin(kx (x + c t)): the crests move towards -x by c t
    assert westward > 5e4  # more than 50 km (1.6 grid spacings): a wrong speed or direction shows
    np.testing.assert_allclose(np.asarray(trajectory[-1]).reshape(model.ny, model.nx), 0.05 * expected,
                               rtol=0, atol=1e-6 * 0.05)


@pytest.mark.parametrize("beta", [0.0, 1.6e-11])
def test_inviscid_unforced_model_conserves_energy_and_enstrophy(beta):
    """Spectral Galerkin truncation (2/3 rule) conserves both exactly in space; RK4 errors remain."""
    model = QuasiGeostrophic(nx=32, length_x=LENGTH, deformation_radius=30e3, beta=beta, viscosity=0.0)
    x0 = model.default_state(jax.random.PRNGKey(3))
    trajectory = integrate(model, x0, 0.0, 160, 0.05, RK4(), diffrax.DirectAdjoint())
    energy = np.array([model.energy(state) for state in trajectory[::40]])
    enstrophy = np.array([model.enstrophy(state) for state in trajectory[::40]])
    moved = float(jnp.linalg.norm(trajectory[-1] - x0) / jnp.linalg.norm(x0))
    assert moved > 0.2  # the flow really evolved (nonlinear advection is active)
    # On a doubly periodic domain the beta term conserves both (the integrals of psi psi_x and of
    # lap(psi) psi_x vanish), so both hold with and without beta.
    assert np.max(np.abs(energy / energy[0] - 1)) < 1e-6, energy
    assert np.max(np.abs(enstrophy / enstrophy[0] - 1)) < 1e-6, enstrophy


def test_viscosity_and_drag_dissipate_energy():
    model = QuasiGeostrophic(nx=32, length_x=LENGTH, viscosity=200.0, drag=1e-7)
    x0 = model.default_state(jax.random.PRNGKey(0))
    trajectory = integrate(model, x0, 0.0, 40, 0.1, RK4(), diffrax.DirectAdjoint())
    energy = np.array([model.energy(state) for state in trajectory[::10]])
    assert np.all(np.diff(energy) < 0), energy


def test_qg_tangent_linear_and_adjoint_agree():
    model = QuasiGeostrophic(nx=16, length_x=LENGTH)
    x0 = model.default_state(jax.random.PRNGKey(1))
    step = lambda x: integrate(model, x, 0.0, 4, 0.1, RK4(), diffrax.DirectAdjoint())[-1]  # noqa: E731
    dx, dy = jax.random.normal(jax.random.PRNGKey(2), (2, x0.size))
    result = dot_product_check(step, x0, dx, dy, "qg", Tolerances(1e-12, 1e-6, 1e-4, 1e-12, 1e-6), forward=True)
    assert result.passed and result.value < 1e-12, result


def test_bad_qg_parameters_are_refused():
    with pytest.raises(ValueError, match="nx must be an even integer >= 8, found 7"):
        QuasiGeostrophic(nx=7)


@pytest.mark.parametrize("shape", ["gaussian", "matern32"])
def test_fft_correlation_equals_the_dense_periodic_matrix(shape):
    ny, nx, dy, dx, length = 10, 12, 1.0, 1.0, 1.2  # a grid where the sampled spectrum is all positive
    root = spectral_correlation_sqrt(ny, nx, dy, dx, length, shape)
    root_matrix = np.asarray(jax.vmap(root.mv)(jnp.eye(ny * nx))).T
    y, x = np.meshgrid(np.arange(ny) * dy, np.arange(nx) * dx, indexing="ij")
    points = np.stack([y.ravel(), x.ravel()], axis=1)
    separation = np.abs(points[:, None, :] - points[None, :, :])
    separation = np.minimum(separation, np.array([ny * dy, nx * dx]) - separation)  # periodic
    dense = correlation_function(np.hypot(separation[..., 0], separation[..., 1]), length, shape)
    np.testing.assert_allclose(root_matrix, root_matrix.T, atol=1e-14)  # symmetric square root
    np.testing.assert_allclose(root_matrix @ root_matrix, dense, atol=1e-10)
    np.testing.assert_allclose(np.diag(root_matrix @ root_matrix), 1.0, atol=1e-10)  # unit variance
    assert periodic_distances(ny, nx, dy, dx)[0, nx - 1] == dx  # neighbours across the boundary


def test_slightly_negative_spectra_are_clipped_keeping_unit_variance():
    """Sampling a Gaussian on a small torus gives eigenvalues down to -5e-5 of the largest: clipped, rescaled."""
    ny, nx, length = 12, 16, 1.5
    root = spectral_correlation_sqrt(ny, nx, 1.0, 1.0, length, "gaussian")
    root_matrix = np.asarray(jax.vmap(root.mv)(jnp.eye(ny * nx))).T
    covariance = root_matrix @ root_matrix
    assert np.linalg.eigvalsh(covariance).min() > -1e-12  # positive semi-definite
    np.testing.assert_allclose(np.diag(covariance), 1.0, atol=1e-12)
    dense_row = correlation_function(periodic_distances(ny, nx, 1.0, 1.0), length, "gaussian").ravel()
    assert np.max(np.abs(covariance[0] - dense_row)) < 1e-3  # close to the sampled function
