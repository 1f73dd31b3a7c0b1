"""Covariance matrices from NetCDF (e.g. a climatological or NMC-method B), through the one input
reader."""

from __future__ import annotations

import numpy as np

from dacli.errors import DataError
from dacli.io.inputs import FileMapping, open_input
from dacli.io.times import TimeAxis


def read_covariance_matrix(path, variable: str) -> np.ndarray:
    """The 2-D variable ``variable`` of ``path`` as a float array, finite and square (no time, no
    grid)."""
    file = open_input(path, "covariance", FileMapping(), TimeAxis(), time=False, grid=False)
    dataset = file.dataset
    if variable not in dataset.variables:
        found = ", ".join(sorted(map(str, dataset.data_vars))) or "none"
        raise DataError(
            f"covariance file {path}: no variable {variable!r}; data variables found: {found}"
        )
    matrix = np.asarray(dataset[variable].values, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DataError(
            f"covariance file {path}: {variable!r} has shape {matrix.shape}; expected a square "
            "matrix"
        )
    if not np.all(np.isfinite(matrix)):
        raise DataError(f"covariance file {path}: {variable!r} contains NaN or Inf")
    return matrix
