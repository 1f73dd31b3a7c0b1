"""Homogeneous correlations on a doubly periodic 2-D grid, applied by FFT: never an N x N matrix.

A homogeneous, isotropic correlation on a periodic grid is a circulant operator: it is
diagonalised by the Fourier transform, C = F^* diag(S) F with S the transform of the correlation
function sampled on the grid (periodic distances). Its symmetric square root is
C^{1/2} = F^* diag(sqrt(S)) F, so C^{1/2} C^{1/2} = C (exactly, where the sampled spectrum is
non-negative; see :func:`correlation_spectrum`), and both cost two FFTs
(Weaver & Courtier 2001, QJRMS 127, on correlation operators; Gaspari & Cohn 1999 on shapes).

Shapes (:data:`SHAPES`): "gaussian", c(r) = exp(-r^2 / 2L^2), and "matern32" (Matern,
nu = 3/2), c(r) = (1 + sqrt(3) r / L) exp(-sqrt(3) r / L), with rougher fields than the
Gaussian's. Everything here is JAX and differentiable in the length scale L (tuning it:
:mod:`dacli.tuning.hyperparameters`); the grid is static.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from dacli.covariances.shapes import SHAPES


def correlation_function(distance: ArrayLike, length_scale: ArrayLike, shape: str) -> Array:
    """c(distance / length_scale) for one of :data:`SHAPES`; differentiable in ``length_scale``."""
    r = jnp.asarray(distance) / length_scale
    if shape == "gaussian":
        return jnp.exp(-0.5 * r**2)
    if shape == "matern32":
        return (1.0 + jnp.sqrt(3.0) * r) * jnp.exp(-jnp.sqrt(3.0) * r)
    raise ValueError(f"unknown correlation shape {shape!r} (choose from: {', '.join(SHAPES)})")


def nonnegative_sqrt(values: Array) -> Array:
    """sqrt(max(values, 0)) with a finite derivative (0) where a value is clipped."""
    positive = values > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, values, 1.0)), 0.0)


def periodic_distances(ny: int, nx: int, dy: float, dx: float) -> Float[np.ndarray, "ny nx"]:
    """Distance from grid point (0, 0) to every grid point, shortest way round the torus, shape (ny,
    nx)."""
    iy, ix = np.arange(ny), np.arange(nx)
    y = np.minimum(iy, ny - iy) * dy
    x = np.minimum(ix, nx - ix) * dx
    return np.hypot(y[:, None], x[None, :])


def correlation_spectrum(
    ny: int, nx: int, dy: float, dx: float, length_scale: ArrayLike, shape: str, dtype=None
) -> Float[Array, "ny nx_half"]:
    """Eigenvalues S of the circulant correlation in rfft2 layout (ny, nx//2 + 1).

    Sampled on a finite torus, a correlation function's circulant can have slightly negative
    eigenvalues (measured: -5e-5 of the largest for a Gaussian, L = 1.5 spacings, 12 x 16 grid).
    They are clipped at 0 and the spectrum rescaled so that the variance stays exactly 1.
    """
    first_row = correlation_function(
        jnp.asarray(periodic_distances(ny, nx, dy, dx), dtype), length_scale, shape
    )
    spectrum = jnp.maximum(
        jnp.fft.fft2(first_row).real, 0.0
    )  # c is real and even: its transform is real
    spectrum = spectrum * (spectrum.size / jnp.sum(spectrum))  # c(0) = mean of the eigenvalues = 1
    return spectrum[:, : nx // 2 + 1]


def spectral_correlation_sqrt(
    ny: int,
    nx: int,
    dy: float,
    dx: float,
    length_scale: ArrayLike,
    shape: str,
    dtype=jnp.float64,
    fields: int = 1,
) -> lx.FunctionLinearOperator:
    """C^{1/2} for ``fields`` flat fields over (ny, nx) (C order, concatenated): matrix-free,
    symmetric.

    With several fields (model variables) the correlation is block diagonal: each field is
    correlated with itself only. Not for a grid that is not periodic both ways (the circulant
    would wrap correlations round the edges).
    """
    root = nonnegative_sqrt(
        correlation_spectrum(ny, nx, dy, dx, length_scale, shape, dtype)
    ).astype(dtype)

    def apply(vector):
        field = vector.reshape(fields, ny, nx)
        return (
            jnp.fft.irfft2(root * jnp.fft.rfft2(field), s=(ny, nx)).reshape(-1).astype(vector.dtype)
        )

    structure = jax.ShapeDtypeStruct((fields * ny * nx,), dtype)
    return lx.FunctionLinearOperator(
        apply, structure, tags=(lx.symmetric_tag, lx.positive_semidefinite_tag)
    )
