"""Per-window diagnostics computed from what a method returns (never inside its loops).

O-B and O-A are the observation-minus-background and observation-minus-analysis departures
over the observations actually assimilated (the statistics JEDI/OOPS reports per window).
Host-side (numpy) arithmetic on a finished run's arrays: not for use inside compiled code.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Array, Bool, Float


def departure_stats(
    values: Float[np.ndarray, "*windows p"],
    equivalents: Float[np.ndarray | Array, "*windows p"],
    mask: Bool[np.ndarray, "*windows p"],
) -> tuple[float, float]:
    """(mean, RMS) of y - H(x) over the masked observations; nan when there are none."""
    departures = (values - equivalents)[mask]
    if departures.size == 0:
        return float("nan"), float("nan")
    return float(departures.mean()), float(np.sqrt(np.mean(departures**2)))


def rmse_per_time(
    states: Float[np.ndarray | Array, "times n"], truth: Float[np.ndarray, "times n"]
) -> Float[np.ndarray, " times"]:
    """Spatial RMSE at each time: sqrt(mean over state elements of (x - x_true)^2); NaN where no
    truth."""
    return np.sqrt(np.mean((np.asarray(states) - np.asarray(truth)) ** 2, axis=-1))


def time_mean(values: Float[np.ndarray, " times"]) -> float:
    """Mean over the times that have a value (NaN where the truth does not reach), NaN if none."""
    values = np.asarray(values, float)
    return (
        float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else float("nan")
    )
