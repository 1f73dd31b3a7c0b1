"""Assimilation windows: their schedule, and each window's observations padded to one shape.

Window k starts at ``start + k * shift`` and covers the half-open interval (begin, begin +
length] (JEDI's convention). With ``assimilate = "newest"`` (the default) and overlapping
windows (shift < length), a window assimilates only the observations in its newest ``shift``
— each observation is used once, in the window where it is newest, as in DAPPER's Var4D and
Bocquet & Sakov's (2014) SDA scheme; ``"all"`` uses every observation in every window.
Observation times are mapped to the nearest model step; farther than the tolerance is a
rejection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int

from dacli.errors import ConfigError, DataError
from dacli.io.observation_set import POINTS, ObservationSet
from dacli.observations.operator import WindowObservations

# The most windows one run schedules. Checked before anything is allocated per window: a count
# beyond it comes from times in the wrong units (seconds read as days) or a mistyped length,
# and would exhaust memory (a CF point file in seconds since 1970 once asked for 1.4e9 windows).
MAX_WINDOWS = 1_000_000


@dataclass(frozen=True)
class WindowSchedule:
    starts: Float[np.ndarray, " windows"]  # window start times
    length: float
    shift: float
    dt: float
    assimilate: str

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def steps(self) -> int:
        return int(round(self.length / self.dt))

    @property
    def steps_per_shift(self) -> int:
        return int(round(self.shift / self.dt))

    def stored_steps(self, k: int) -> int:
        """States of window k that a cycled run's trajectory keeps: its shift, the last window
        whole."""
        return self.steps + 1 if k == self.count - 1 else self.steps_per_shift

    def active_range(self, k: int) -> tuple[float, float]:
        """(begin, end] of the observation times window k assimilates."""
        end = float(self.starts[k] + self.length)
        span = self.shift if self.assimilate == "newest" else self.length
        return end - span, end


def whole_steps(value: float, dt: float, key: str, minimum: int = 1) -> int:
    """``value / dt`` as an int, or a ConfigError naming ``key`` when it is not a whole number >=
    minimum."""
    steps = value / dt
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps) or round(steps) < minimum:
        raise ConfigError(
            [f"{key}: {value} is not a whole number of model steps (model.dt = {dt})"]
        )
    return int(round(steps))


def make_schedule(
    start: float,
    length: float,
    shift: float,
    dt: float,
    assimilate: str,
    count: int | None,
    last_time: float | None,
) -> WindowSchedule:
    """Windows from ``start``; as many as reach ``last_time`` unless ``count`` is given."""
    whole_steps(length, dt, "window.length")
    whole_steps(shift, dt, "window.shift")
    if count is None:
        if last_time is None:
            count = 1
        else:
            count = max(1, math.ceil((last_time - (start + length)) / shift - 1e-9) + 1)
            if count > MAX_WINDOWS:
                raise ConfigError(
                    [
                        f"window: the last observation is at model time {last_time:.6g}; windows "
                        f"of length {length:g} shifted by {shift:g} from window.start = {start:g} "
                        f"would number {count:.4g}, more than {MAX_WINDOWS:,} (dacli's bound). "
                        "Check that the observation times and window.length are in the model's "
                        "time units ([time] units), or set window.count"
                    ]
                )
    if count > MAX_WINDOWS:
        raise ConfigError(
            [f"window.count: {count} windows is more than {MAX_WINDOWS:,} (dacli's bound)"]
        )
    return WindowSchedule(
        np.asarray(start + shift * np.arange(count), float), length, shift, dt, assimilate
    )


def padded_capacity(most: int, bucket: int = 8) -> int:
    """Observation slots per window: the most any window holds, rounded up to a multiple of
    ``bucket``."""
    return max(bucket, int(math.ceil(most / bucket) * bucket))


def observations_per_window(
    observations: ObservationSet, schedule: WindowSchedule
) -> Int[np.ndarray, " windows"]:
    """(K,) valid observations inside each window's active range, without packing (nothing per
    window but the counts).

    What ``dacli validate`` reports; :func:`pack_observations` also drops observations off the
    model's time grid, so its ``used`` can be smaller.
    """
    times = np.sort(observations.times[observations.valid])
    ends = schedule.starts + schedule.length
    begins = ends - (
        schedule.shift if schedule.assimilate == "newest" else schedule.length
    )  # as active_range
    tol = 1e-9 * np.maximum(1.0, np.abs(ends))
    return np.searchsorted(times, ends + tol, side="right") - np.searchsorted(
        times, begins + tol, side="right"
    )


@dataclass(frozen=True)
class PackedObservations:
    """Observations of every window as arrays (K, P, ...) plus host-side bookkeeping."""

    values: Float[np.ndarray, "windows p"]
    std: Float[np.ndarray, "windows p"]
    slot: Int[np.ndarray, "windows p"]
    index: Int[np.ndarray, "windows p points"]
    weight: Float[np.ndarray, "windows p points"]
    mask: Bool[np.ndarray, "windows p"]
    source: Int[np.ndarray, "windows p"]  # index into the ObservationSet, -1 on padding
    used: Int[np.ndarray, " windows"]  # valid observations assimilated per window
    # observations in the window rejected (NaN/Inf value, bad error, off time grid)
    rejected: Int[np.ndarray, " windows"]
    outside: int  # observations in no window's active range
    # per observation of the set: inside some window's active range
    assigned: Bool[np.ndarray, " observations"]

    def stacked(self) -> WindowObservations:
        """All windows as one WindowObservations with a leading window axis (numpy)."""
        return WindowObservations(
            self.values, self.std, self.slot, self.index, self.weight, self.mask
        )

    def window(self, k: int) -> WindowObservations:
        """The padded arrays of window k, as a jax-ready WindowObservations."""
        return WindowObservations(
            self.values[k], self.std[k], self.slot[k], self.index[k], self.weight[k], self.mask[k]
        )


def _in_active_range(times: np.ndarray, schedule: WindowSchedule, k: int) -> np.ndarray:
    """Which ``times`` lie in window k's active range (begin, end] (a round-off tolerance on both
    ends)."""
    begin, end = schedule.active_range(k)
    tol = 1e-9 * max(1.0, abs(end))
    return (times > begin + tol) & (times <= end + tol)


def outside_every_window(observations: ObservationSet, schedule: WindowSchedule) -> int:
    """How many observations lie in no window's active range of ``schedule``.

    A run cut into window ranges (job-array tasks) reports this for the whole schedule, so every
    part states the same number and a merged file keeps it.
    """
    assigned = np.zeros(len(observations), bool)
    for k in range(schedule.count):
        assigned |= _in_active_range(observations.times, schedule, k)
    return int((~assigned).sum())


def pack_observations(
    observations: ObservationSet,
    schedule: WindowSchedule,
    tolerance: float | None,
    dtype=np.float64,
    bucket: int = 8,
) -> PackedObservations:
    """Split observations by window and pad to one capacity (a multiple of ``bucket``)."""
    tolerance = 0.5 * schedule.dt if tolerance is None else tolerance
    valid = observations.valid
    chosen, slots, rejected = [], [], []
    assigned = np.zeros(len(observations), bool)
    for k in range(schedule.count):
        inside = _in_active_range(observations.times, schedule, k)
        assigned |= inside
        tol = 1e-9 * max(1.0, abs(schedule.active_range(k)[1]))  # as _in_active_range's
        relative = (observations.times - schedule.starts[k]) / schedule.dt
        slot = np.rint(relative).astype(int)
        on_grid = np.abs(relative - slot) * schedule.dt <= tolerance + tol
        keep = inside & valid & on_grid
        chosen.append(np.flatnonzero(keep))
        slots.append(slot[keep])
        rejected.append(int((inside & ~keep).sum()))
    used = np.array([len(c) for c in chosen])
    if used.sum() == 0:
        times = observations.times
        span = f"[{times.min():g}, {times.max():g}]" if len(times) else "(no observations at all)"
        first, last = schedule.active_range(0)[0], schedule.active_range(schedule.count - 1)[1]
        raise DataError(
            f"no usable observation inside any assimilation window: observation times span {span}, "
            f"the {schedule.count} window(s) cover ({first:g}, {last:g}]; "
            f"{int((~valid).sum())} observation(s) were NaN/Inf or had a non-positive error"
        )
    capacity = padded_capacity(int(used.max()), bucket)
    shape = (schedule.count, capacity)
    packed = dict(
        values=np.zeros(shape, dtype),
        std=np.ones(shape, dtype),
        slot=np.zeros(shape, np.int32),
        index=np.zeros(shape + (POINTS,), np.int32),
        weight=np.zeros(shape + (POINTS,), dtype),
        mask=np.zeros(shape, bool),
        source=np.full(shape, -1, np.int64),
    )
    for k, (rows, slot) in enumerate(zip(chosen, slots, strict=True)):
        n = len(rows)
        packed["values"][k, :n] = observations.values[rows]
        packed["std"][k, :n] = observations.std[rows]
        packed["slot"][k, :n] = slot
        packed["index"][k, :n] = observations.index[rows]
        packed["weight"][k, :n] = observations.weight[rows]
        packed["mask"][k, :n] = True
        packed["source"][k, :n] = rows
    return PackedObservations(
        **packed,
        used=used,
        rejected=np.array(rejected),
        outside=int((~assigned).sum()),
        assigned=assigned,
    )
