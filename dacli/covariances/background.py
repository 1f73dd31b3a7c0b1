"""Background-error covariance B and its square root for the control-variable transform.

The analysis is sought as x0 = xb + B^{1/2} v, so Jb = 1/2 v^T v and the Hessian in v is
I + (GB^{1/2})^T R^{-1} (GB^{1/2}) — well conditioned (Lorenc 1988; Bannister 2008, QJRMS 134).
Forms: diagonal (B = diag(std^2)); correlated, B = D C D with C a Gaussian or Matern-3/2
correlation of distance on the model grid (periodic distance on periodic grids); or a matrix
read from a file.

Correlated B has one implementation, :class:`CorrelatedRoot`, in JAX and differentiable in its
length scale, used by assimilation (:func:`background_sqrt_operator`), twin experiments and
hyperparameter tuning (:mod:`dacli.tuning.hyperparameters`). On 1-D grids C is dense and its
square root the symmetric one, C^{1/2} = V diag(sqrt(lambda)) V^T (:func:`symmetric_sqrt`); on
doubly periodic 2-D grids C is applied by FFT (:mod:`dacli.covariances.spectral`) and never
formed.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from dacli.covariances.spectral import (
    SHAPES,
    correlation_function,
    nonnegative_sqrt,
    spectral_correlation_sqrt,
)
from dacli.models.base import StateLayout


def std_vector(std: float | list[float], layout: StateLayout) -> Float[np.ndarray, " n"]:
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


@jax.custom_jvp
def symmetric_sqrt(matrix: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues,
    rounding errors, clipped at 0). Differentiable: its derivative solves the Sylvester equation
    S dS + dS S = dM, in the eigenbasis dS_ij = dM_ij / (s_i + s_j) (Higham 2008, *Functions of
    Matrices*, 6.1), so no eigenvector is differentiated (infinite at repeated eigenvalues)."""
    eigenvalues, eigenvectors = jnp.linalg.eigh(matrix)
    return (eigenvectors * nonnegative_sqrt(eigenvalues)) @ eigenvectors.T


@symmetric_sqrt.defjvp
def _symmetric_sqrt_jvp(primals, tangents):
    (matrix,), (tangent,) = primals, tangents
    eigenvalues, eigenvectors = jnp.linalg.eigh(matrix)
    roots = nonnegative_sqrt(eigenvalues)
    total = roots[:, None] + roots[None, :]
    inverse = jnp.where(total > 0, 1.0 / jnp.where(total > 0, total, 1.0), 0.0)
    rotated = eigenvectors.T @ tangent @ eigenvectors
    return (eigenvectors * roots) @ eigenvectors.T, eigenvectors @ (
        rotated * inverse
    ) @ eigenvectors.T


def _grid_distances(layout: StateLayout, shape: str) -> np.ndarray:
    """1-D grid: the (g, g) distances (periodic: the shorter way round). 2-D: none (the FFT root
    samples its own), but the grid must be doubly periodic (C is circulant there)."""
    if not layout.axes:
        raise ValueError(f"a {shape} correlation needs a model with a spatial grid")
    if len(layout.axes) == 1:
        axis = layout.axes[0]
        grid = np.asarray(axis.values, dtype=float)
        distance = np.abs(grid[:, None] - grid[None, :])
        if axis.periodic:
            distance = np.minimum(distance, len(grid) * axis.spacing - distance)
        return distance
    if len(layout.axes) > 2:
        raise ValueError(f"a {shape} correlation needs a model on a 1-D or 2-D grid")
    if not all(axis.periodic for axis in layout.axes):
        raise ValueError(
            f"a {shape} correlation on a 2-D grid is applied by FFT and needs a doubly periodic "
            f"grid; the axes {[a.name for a in layout.axes if not a.periodic]} are not periodic"
        )
    return np.zeros(0)


class CorrelatedRoot(eqx.Module):
    """B^{1/2} = D C(L)^{1/2}, D = diag(std), C a correlation of
    :data:`~dacli.covariances.spectral.SHAPES`
    on the model grid, as a function of log(L / configured L): differentiable in L.

    1-D grid: the dense symmetric root (:func:`symmetric_sqrt`), one block per variable. Doubly
    periodic 2-D grid: the FFT root, matrix-free. Not for a grid without axes, a 2-D grid that
    is not periodic both ways, or more than two axes (ValueError from :meth:`for_layout`).
    """

    sigma: Float[Array, " n"]  # the std per state element
    distance: Float[Array, "..."]  # noqa: UP037 (a jaxtyping shape); 1-D: (g, g) distances
    length_scale: float = eqx.field(static=True)
    shape: str = eqx.field(static=True)
    variables: int = eqx.field(static=True)
    grid_shape: tuple[int, ...] = eqx.field(static=True)
    spacing: tuple[float, ...] = eqx.field(static=True)

    @classmethod
    def for_layout(
        cls, layout: StateLayout, std: float | list[float], length_scale: float, shape: str, dtype
    ) -> CorrelatedRoot:
        if shape not in SHAPES:
            raise ValueError(
                f"unknown correlation shape {shape!r} (choose from: {', '.join(SHAPES)})"
            )
        distance = _grid_distances(layout, shape)
        return cls(
            jnp.asarray(std_vector(std, layout), dtype),
            jnp.asarray(distance, dtype),
            float(length_scale),
            shape,
            len(layout.variables),
            tuple(layout.shape),
            tuple(abs(a.spacing) for a in layout.axes),
        )

    def correlation_root(self, length_scale: ArrayLike) -> Float[Array, "g g"]:
        """C^{1/2} of one variable's block on a 1-D grid, (g, g)."""
        return symmetric_sqrt(correlation_function(self.distance, length_scale, self.shape))

    def __call__(self, log_factor: ArrayLike = 0.0) -> lx.AbstractLinearOperator:
        """B^{1/2} with the length scale times exp(``log_factor``)."""
        length_scale = self.length_scale * jnp.exp(log_factor)
        dtype = self.sigma.dtype
        if len(self.grid_shape) == 1:
            root = jnp.kron(
                jnp.eye(self.variables, dtype=dtype), self.correlation_root(length_scale)
            )
            return lx.MatrixLinearOperator(self.sigma[:, None] * root)
        (ny, nx), (dy, dx) = self.grid_shape, self.spacing
        root = spectral_correlation_sqrt(
            ny, nx, dy, dx, length_scale, self.shape, dtype, fields=self.variables
        )
        return lx.DiagonalLinearOperator(self.sigma) @ root


def _matrix_sqrt(
    matrix: np.ndarray, sigma: np.ndarray, size: int, dtype
) -> lx.MatrixLinearOperator:
    """D M^{1/2} for a covariance matrix M read from a file, checked symmetric positive
    semi-definite."""
    correlation = np.asarray(matrix, dtype=float)
    if correlation.shape != (size, size):
        raise ValueError(f"the matrix has shape {correlation.shape}; expected ({size}, {size})")
    if not np.allclose(
        correlation, correlation.T, rtol=1e-8, atol=1e-12 * np.abs(correlation).max()
    ):
        raise ValueError("the matrix is not symmetric")
    if np.linalg.eigvalsh(correlation).min() < -1e-8 * np.abs(correlation).max():
        raise ValueError("the matrix is not positive semi-definite")
    root = symmetric_sqrt(jnp.asarray(correlation, dtype))
    return lx.MatrixLinearOperator(jnp.asarray(sigma, dtype)[:, None] * root)


@eqx.filter_jit
def correlated_sqrt(root: CorrelatedRoot) -> lx.AbstractLinearOperator:
    """``root()`` as one compiled program, for building a 1-D grid's dense B^1/2 once (eigh,
    kron). Called eagerly, its jnp operations compile one by one: measured 0.9-1.0 s of every
    ``dacli assimilate`` start on the shipped Lorenz-96 config, against 0.29 s compiled (0.18 s
    from the compilation cache). Not for 2-D grids: their spectral root is a few operations
    built eagerly, and compiled its rounding differs (2e-9), so the shipped QG sample files would
    no longer be remade bit for bit. Inside traced programs (``dacli tune`` differentiates the
    length scale) call ``root``."""
    return root()


def background_sqrt_operator(
    kind: str,
    std: float | list[float],
    layout: StateLayout,
    length_scale: float | None,
    dtype,
    matrix: Float[np.ndarray, "n n"] | None = None,
) -> lx.AbstractLinearOperator:
    """B^{1/2} as a lineax operator, for B = D C D with D = diag(std).

    ``kind``: "diagonal" (C = I), "gaussian" or "matern32" (C from ``length_scale``, in the grid
    coordinates' units: :class:`CorrelatedRoot`) or "matrix" (C = ``matrix``, e.g. a
    climatological or NMC covariance; ``std`` then scales it, e.g. DAPPER's xB). The
    non-diagonal root is D C^{1/2}: (D C^{1/2})(D C^{1/2})^T = D C D.
    """
    if kind == "diagonal":
        return lx.DiagonalLinearOperator(np.asarray(std_vector(std, layout), dtype=dtype))
    if kind in SHAPES:
        assert length_scale is not None  # the covariance config requires it for these kinds
        root = CorrelatedRoot.for_layout(layout, std, float(length_scale), kind, dtype)
        return correlated_sqrt(root) if len(root.grid_shape) == 1 else root()
    if kind == "matrix":
        assert matrix is not None  # the covariance config requires its file for this kind
        return _matrix_sqrt(matrix, std_vector(std, layout), layout.size, dtype)
    raise ValueError(f"unknown covariance kind {kind!r}")


def covariance_matrix(sqrt_operator: lx.AbstractLinearOperator) -> Float[np.ndarray, "n n"]:
    """Dense B = B^{1/2} B^{1/2}^T, for tests and small diagnostics only."""
    root = np.asarray(sqrt_operator.as_matrix())
    return root @ root.T
