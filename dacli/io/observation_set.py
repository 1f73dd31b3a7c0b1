"""Observations of a whole run, as read from a file, before they are split into windows.

Plain numpy records, no JAX: each observation is a time, a value, an error std and a sparse row
of H over the flat state (``index``/``weight``, :data:`POINTS` = 4 entries: a grid point uses one,
linear interpolation on a 1-D grid two, bilinear interpolation on a 2-D grid four; unused entries
have weight 0; see :mod:`dacli.io.interpolation`). The readers (:mod:`dacli.io.observations`)
produce an :class:`ObservationSet`; the engine packs it into padded windows
(:func:`dacli.observations.windows.pack_observations`). :data:`QC_FLAGS` names the fate of each
observation, as written to the observation-space diagnostics files.

Not for the observations of one window inside JAX: that is
:class:`dacli.observations.operator.WindowObservations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POINTS = 4  # interpolation points per observation (bilinear on 2-D grids)

# qc_flag values of the observation-space diagnostics files (dacli.io.feedback,
# dacli.io.ioda_feedback), computed by dacli.diagnostics.consistency.qc_flags
QC_FLAGS = {
    0: "assimilated",
    1: "missing_value_or_invalid_error",
    2: "off_model_time_grid",
    3: "outside_every_window",
}


@dataclass(frozen=True)
class ObservationSet:
    """Every observation of a run (P of them), with its row of H and what the reader dropped."""

    times: np.ndarray  # (P,)
    values: np.ndarray  # (P,)
    std: np.ndarray  # (P,)
    index: np.ndarray  # (P, K) int
    weight: np.ndarray  # (P, K)
    variable: np.ndarray  # (P,) str, the model variable observed
    location: (
        np.ndarray
    )  # (P, D) coordinates along the D grid axes (NaN: on a grid point read directly)
    rejected_outside_domain: int = 0
    rejected_preqc: int = 0  # dropped by the file's own quality control (IODA PreQC)
    rejected_duplicate: int = (
        0  # dropped as repeats of an earlier observation (dacli.io.duplicates)
    )

    @property
    def valid(self) -> np.ndarray:
        """Finite value, finite positive error: the only ones that reach the arithmetic."""
        return np.isfinite(self.values) & np.isfinite(self.std) & (self.std > 0)

    def __len__(self) -> int:
        return len(self.times)
