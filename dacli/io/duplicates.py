"""Observations repeated at the same time, place and variable: kept, dropped or refused, never
silently doubled.

Two copies of one observation assimilated as independent give it twice the weight (half the
error variance). Real files hold such repeats (a report received through two channels, a file
concatenated twice), so a repeat of the same (variable, time, location) is resolved as
``observations.duplicates`` says:

- ``"first"`` (default): the first in file order is kept, the others are dropped, counted
  (``rejected_duplicate``) and warned about — the duplicate check of operational QC;
- ``"independent"``: all are kept as independent observations (for files whose repeats are
  truly independent measurements, e.g. two instruments at one site), still counted in the log;
- ``"refuse"``: a :class:`DataError` naming the count and the first repeat.

Times and coordinates are compared after rounding to 1e-9 (relative to their magnitude), so
the same value written twice matches and distinct ones do not. Only valid observations (finite
value and error) are compared: missing values are no observations. Host-side numpy, applied by
the file reader (:func:`dacli.io.observations.read_observations`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from dacli.errors import DataError
from dacli.io.observation_set import ObservationSet

log = logging.getLogger("dacli")


def _rounded(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    scale = np.maximum(1.0, np.abs(values))
    return np.round(values / (1e-9 * scale)) * (1e-9 * scale)


def duplicate_mask(observations: ObservationSet) -> np.ndarray:
    """(P,) True for each valid observation repeating an earlier (variable, time, location)."""
    valid = np.flatnonzero(observations.valid)
    if valid.size < 2:
        return np.zeros(len(observations), bool)
    _, variable_code = np.unique(observations.variable[valid], return_inverse=True)
    columns = [variable_code.astype(float), _rounded(observations.times[valid])]
    columns += [
        _rounded(np.nan_to_num(observations.location[valid, d], nan=0.0))
        for d in range(observations.location.shape[1])
    ]
    keys = np.stack(columns, axis=-1)
    _, first = np.unique(keys, axis=0, return_index=True)
    repeated = np.ones(valid.size, bool)
    repeated[first] = False  # np.unique's index is each key's first occurrence in file order
    mask = np.zeros(len(observations), bool)
    mask[valid[repeated]] = True
    return mask


def resolve_duplicates(observations: ObservationSet, policy: str, source: str) -> ObservationSet:
    """Apply ``policy`` ('first', 'independent' or 'refuse') to the repeats in ``source``'s file."""
    repeated = duplicate_mask(observations)
    count = int(repeated.sum())
    if count == 0:
        return observations
    first = int(np.flatnonzero(repeated)[0])
    where = f"{observations.variable[first]} at time {observations.times[first]:g}" + (
        f", location {tuple(float(v) for v in observations.location[first])}"
        if observations.location.shape[1]
        else ""
    )
    if policy == "refuse":
        raise DataError(
            f"observations file {source}: {count} observation(s) repeat an earlier "
            f"one's time, location and variable (first: {where}); "
            "observations.duplicates = 'refuse'. Use 'first' to keep one "
            "of each, or 'independent' if the repeats are independent measurements"
        )
    if policy == "independent":
        log.info(
            "observations file %s: %d repeated observation(s) (same time, location and "
            "variable) kept as independent (observations.duplicates = 'independent')",
            source,
            count,
        )
        return observations
    log.warning(
        "observations file %s: %d observation(s) repeat an earlier one's time, location "
        "and variable (first: %s); the first of each is kept, the repeats dropped "
        "(observations.duplicates = 'first')",
        source,
        count,
        where,
    )
    keep = ~repeated
    return dataclasses.replace(
        observations,
        times=observations.times[keep],
        values=observations.values[keep],
        std=observations.std[keep],
        index=observations.index[keep],
        weight=observations.weight[keep],
        variable=observations.variable[keep],
        location=observations.location[keep],
        rejected_duplicate=observations.rejected_duplicate + count,
    )
