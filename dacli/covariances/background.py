"""Background-error covariance B and its square root for the control-variable transform.

The analysis is sought as x0 = xb + B^{1/2} v, so Jb = 1/2 v^T v and the Hessian in v is
I + (GB^{1/2})^T R^{-1} (GB^{1/2}) — well conditioned (Lorenc 1988; Bannister 2008, QJRMS 134).
Two forms: diagonal (B = diag(std^2)) and Gaussian-correlated, B = D C D with
C_ij = exp(-d_ij^2 / (2 L^2)) on the model grid (periodic distance on periodic grids).
The correlated square root is the symmetric one, C^{1/2} = V diag(sqrt(lambda)) V^T.
"""

from __future__ import annotations

import lineax as lx
import numpy as np

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


def gaussian_correlation(layout: StateLayout, length_scale: float) -> np.ndarray:
    """Block-diagonal (one block per variable) Gaussian correlation matrix on the grid."""
    if not layout.grid_name:
        raise ValueError("a Gaussian correlation needs a model with a spatial grid")
    grid = np.asarray(layout.grid, dtype=float)
    distance = np.abs(grid[:, None] - grid[None, :])
    if layout.periodic:
        period = len(grid) * (grid[1] - grid[0]) if len(grid) > 1 else 1.0
        distance = np.minimum(distance, period - distance)
    block = np.exp(-0.5 * (distance / length_scale) ** 2)
    return np.kron(np.eye(len(layout.variables)), block)


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

    ``kind``: "diagonal" (C = I), "gaussian" (C from ``length_scale``) or "matrix" (C =
    ``matrix``, e.g. a climatological or NMC covariance; ``std`` then scales it, e.g. DAPPER's xB).
    The non-diagonal root is D C^{1/2}: (D C^{1/2})(D C^{1/2})^T = D C D.
    """
    sigma = std_vector(std, layout)
    if kind == "diagonal":
        return lx.DiagonalLinearOperator(np.asarray(sigma, dtype=dtype))
    if kind == "gaussian":
        correlation = gaussian_correlation(layout, float(length_scale))
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
