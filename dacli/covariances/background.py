"""Background-error covariance B and its square root for the control-variable transform.

The analysis is sought as x0 = xb + B^{1/2} v, so Jb = 1/2 v^T v and the Hessian in v is
I + (GB^{1/2})^T R^{-1} (GB^{1/2}) — well conditioned (Lorenc 1988; Bannister 2008, QJRMS 134).
Forms: diagonal (B = diag(std^2)); correlated, B = D C D with C a Gaussian or Matern-3/2
correlation of distance on the model grid (periodic distance on periodic grids); or a matrix
read from a file. On 1-D grids C is dense and its square root the symmetric one,
C^{1/2} = V diag(sqrt(lambda)) V^T; on doubly periodic 2-D grids C is applied by FFT
(:mod:`dacli.covariances.spectral`) and never formed.
"""

from __future__ import annotations

import lineax as lx
import numpy as np

from dacli.covariances.spectral import SHAPES
from dacli.models.base import StateLayout


def std_vector(std: float | list[float], layout: StateLayout) -> np.ndarray:
    """Expand a scalar, per-variable, or per-element std to the flat state size."""
    values = np.atleast_1d(np.asarray(std, dtype=float))
    if values.size == 1:
        return np.full(layout.size, float(values[0]))
    if values.size == len(layout.variables):
        return np.repeat(values, layout.grid_size)
    if values.size == layout.size:
        return values
    raise ValueError(
        f"std has {values.size} values; expected 1, one per variable ({len(layout.variables)}), "
        f"or one per state element ({layout.size})"
    )


def grid_correlation(layout: StateLayout, length_scale: float, shape: str = "gaussian") -> np.ndarray:
    """Block-diagonal (one block per variable) dense correlation matrix on a 1-D grid."""
    from dacli.covariances.spectral import correlation_function

    if len(layout.axes) != 1:
        raise ValueError("a dense correlation matrix needs a model on a 1-D grid")
    grid = np.asarray(layout.axes[0].values, dtype=float)
    distance = np.abs(grid[:, None] - grid[None, :])
    if layout.axes[0].periodic:
        period = len(grid) * layout.axes[0].spacing
        distance = np.minimum(distance, period - distance)
    block = correlation_function(distance, length_scale, shape)
    return np.kron(np.eye(len(layout.variables)), block)


def _spectral_sqrt(layout: StateLayout, length_scale: float, shape: str, sigma: np.ndarray, dtype):
    """D C^{1/2} on a doubly periodic 2-D grid, matrix-free."""
    from dacli.covariances.spectral import spectral_correlation_sqrt

    if not all(axis.periodic for axis in layout.axes):
        raise ValueError(f"a {shape} correlation on a 2-D grid is applied by FFT and needs a doubly periodic grid; "
                         f"the axes {[a.name for a in layout.axes if not a.periodic]} are not periodic")
    (ny, nx), (y_axis, x_axis) = layout.shape, layout.axes
    root = spectral_correlation_sqrt(ny, nx, abs(y_axis.spacing), abs(x_axis.spacing), length_scale, shape,
                                     dtype, fields=len(layout.variables))
    return lx.DiagonalLinearOperator(np.asarray(sigma, dtype=dtype)) @ root


def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    return (eigenvectors * np.sqrt(eigenvalues)) @ eigenvectors.T


def background_sqrt_operator(
    kind: str, std: float | list[float], layout: StateLayout, length_scale: float | None, dtype,
    matrix: np.ndarray | None = None,
) -> lx.AbstractLinearOperator:
    """B^{1/2} as a lineax operator, for B = D C D with D = diag(std).

    ``kind``: "diagonal" (C = I), "gaussian" or "matern32" (C from ``length_scale``, in the grid
    coordinates' units) or "matrix" (C = ``matrix``, e.g. a climatological or NMC covariance;
    ``std`` then scales it, e.g. DAPPER's xB). The non-diagonal root is D C^{1/2}:
    (D C^{1/2})(D C^{1/2})^T = D C D.
    """
    sigma = std_vector(std, layout)
    if kind == "diagonal":
        return lx.DiagonalLinearOperator(np.asarray(sigma, dtype=dtype))
    if kind in SHAPES:
        if len(layout.axes) == 2:
            return _spectral_sqrt(layout, float(length_scale), kind, sigma, dtype)
        if not layout.axes:
            raise ValueError(f"a {kind} correlation needs a model with a spatial grid")
        correlation = grid_correlation(layout, float(length_scale), kind)
    elif kind == "matrix":
        correlation = np.asarray(matrix, dtype=float)
        if correlation.shape != (layout.size, layout.size):
            raise ValueError(f"the matrix has shape {correlation.shape}; expected ({layout.size}, {layout.size})")
        if not np.allclose(correlation, correlation.T, rtol=1e-8, atol=1e-12 * np.abs(correlation).max()):
            raise ValueError("the matrix is not symmetric")
        if np.linalg.eigvalsh(correlation).min() < -1e-8 * np.abs(correlation).max():
            raise ValueError("the matrix is not positive semi-definite")
    else:
        raise ValueError(f"unknown covariance kind {kind!r}")
    root = symmetric_sqrt(correlation)
    return lx.MatrixLinearOperator(np.asarray(sigma[:, None] * root, dtype=dtype))


def covariance_matrix(sqrt_operator: lx.AbstractLinearOperator) -> np.ndarray:
    """Dense B = B^{1/2} B^{1/2}^T, for tests and small diagnostics only."""
    root = np.asarray(sqrt_operator.as_matrix())
    return root @ root.T
