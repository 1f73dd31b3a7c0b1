"""Observations of a whole run: re-exported from :mod:`dacli.io.observation_set` and
:mod:`dacli.io.interpolation`, where the file readers (which produce them) find them.

Kept for the callers that import these names from the engine package; new code imports them
from :mod:`dacli.io`.
"""

from dacli.io.interpolation import axis_interpolation, coordinate_period, interpolation_weights
from dacli.io.observation_set import POINTS, ObservationSet

__all__ = [
    "POINTS",
    "ObservationSet",
    "axis_interpolation",
    "coordinate_period",
    "interpolation_weights",
]
