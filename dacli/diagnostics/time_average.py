"""Time averages of a cycled run's per-window statistics after a burn-in, with a confidence
interval corrected for autocorrelation.

DAPPER's habit (Raanes et al., nansencenter/DAPPER, ``tools/series.py::series_mean_with_conf``
and ``Chronology.BurnIn``): a method is judged by the time mean of its RMSE over the analysis
times after a burn-in, the spin-up from the first background left out, and the mean comes with
its uncertainty. Successive windows' errors are correlated (each window starts from the last
analysis), so the plain t-interval is too narrow; the series is modelled as an AR(1) process
with the lag-1 autocorrelation ``phi`` of the data, which inflates the variance of the mean by

    1 + (2 / N) sum_{k=1}^{N-1} (N - k) phi^k
      = 1 + (2 / N) [(N - 1) phi - N phi^2 + phi^(N + 1)] / (1 - phi)^2

(the exact finite-N sum; N (1 - phi) / (1 + phi) effective samples for large N). The interval
is the Student t interval with the effective sample size: mean +/- t_{(1 + c) / 2, N_eff - 1}
s / sqrt(N_eff), with s the sample standard deviation; i.i.d. data (phi <= 0) give the usual
t-interval. A negative lag-1 autocorrelation is taken as 0 (conservative, as DAPPER truncates
the autocorrelation function at its first non-positive value). With fewer than
:data:`MINIMUM_SAMPLES` values there is no interval (NaN), as in DAPPER.

The series here is one value per window (its RMSE over the states it keeps), one "analysis
time" per cycle. Plain numpy and scipy.special; no configuration, no files. Not for one window's
statistics (:mod:`dacli.diagnostics.metrics`) nor for forecast verification per lead time
(:mod:`dacli.diagnostics.verification`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float
from scipy import special

# Fewer values than this: no interval (DAPPER's series_mean_with_conf: N <= 5 gives NaN).
MINIMUM_SAMPLES = 6
# A field left out of the JSON summary when it is None (the CLI's dacli.cli.render.result_json).
OPTIONAL = {"json": "optional"}


@dataclass(frozen=True)
class MeanWithConfidence:
    """The mean of a series and its confidence interval (``low``, ``high``), AR(1)-corrected."""

    mean: float
    low: float  # NaN: too few values for an interval
    high: float
    samples: int  # values averaged
    lag1_autocorrelation: float  # as estimated, before clipping at 0
    effective_samples: float

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def describe(self) -> str:
        """``"0.396 ± 0.012"``, or the mean alone without an interval."""
        if math.isnan(self.half_width):
            return f"{self.mean:.4g}"
        return f"{self.mean:.4g} ± {self.half_width:.2g}"


def variance_inflation(samples: int, phi: float) -> float:
    """The factor the variance of the mean of ``samples`` values of an AR(1) series with lag-1
    autocorrelation ``phi`` (0 <= phi < 1) exceeds the i.i.d. variance by (module docstring)."""
    n = samples
    if phi == 0.0 or n < 2:
        return 1.0
    correlated = ((n - 1) * phi - n * phi**2 + phi ** (n + 1)) / (1.0 - phi) ** 2
    return 1.0 + 2.0 / n * correlated


def effective_sample_size(samples: int, phi: float) -> float:
    """``samples`` / :func:`variance_inflation`: as many independent values give the same
    variance of the mean."""
    return samples / variance_inflation(samples, phi)


def lag1_autocorrelation(values: Float[np.ndarray, " n"]) -> float:
    """sum (x_t - m)(x_{t+1} - m) / sum (x_t - m)^2, the usual (biased) estimate; NaN for a
    constant series or fewer than 2 values."""
    centred = np.asarray(values, float) - np.mean(values)
    denominator = float(np.sum(centred**2))
    if len(centred) < 2 or denominator == 0.0:
        return float("nan")
    return float(np.sum(centred[:-1] * centred[1:]) / denominator)


def series_mean_with_confidence(
    values: Float[np.ndarray, " n"], confidence: float = 0.95
) -> MeanWithConfidence:
    """The mean of the finite ``values`` with its AR(1)-corrected ``confidence`` interval
    (module docstring); NaN mean without finite values."""
    series = np.asarray(values, float)
    series = series[np.isfinite(series)]
    n = len(series)
    if n == 0:
        nan = float("nan")
        return MeanWithConfidence(nan, nan, nan, 0, nan, nan)
    mean = float(np.mean(series))
    phi = lag1_autocorrelation(series)
    if n < MINIMUM_SAMPLES:
        return MeanWithConfidence(mean, float("nan"), float("nan"), n, phi, float("nan"))
    if math.isnan(phi):  # a constant series: its mean is exact
        return MeanWithConfidence(mean, mean, mean, n, phi, float(n))
    effective = effective_sample_size(n, min(max(phi, 0.0), 1.0 - 1e-12))
    standard_error = float(np.std(series, ddof=1)) / math.sqrt(effective)
    # at least one degree of freedom: a very wide interval rather than none
    # Student t quantile: scipy.special's inverse t CDF is what scipy.stats.t.ppf computes, without
    # importing scipy.stats (~0.9 s of every start, python -X importtime).
    quantile = float(special.stdtrit(max(effective - 1.0, 1.0), 0.5 + 0.5 * confidence))
    return MeanWithConfidence(
        mean, mean - quantile * standard_error, mean + quantile * standard_error, n, phi, effective
    )


def burn_in_windows(
    starts: Float[np.ndarray, " windows"], first_start: float, burn_in: float | None, dt: float
) -> int:
    """How many of the windows starting at ``starts`` (sorted) are the burn-in: those starting
    before ``first_start + burn_in`` (half a model step ``dt`` of tolerance); ``burn_in`` None:
    the first tenth of them (rounded down)."""
    if burn_in is None:
        return len(starts) // 10
    return int(np.sum(np.asarray(starts) < first_start + burn_in - 0.5 * dt))


def window_means(
    per_time: Float[np.ndarray, " times"], counts: list[int]
) -> Float[np.ndarray, " windows"]:
    """One value per window: the mean of the finite ``per_time`` values of each window's
    ``counts[k]`` consecutive times (NaN where it has none)."""
    offsets = np.cumsum([0, *counts])
    means = []
    for begin, end in zip(offsets[:-1], offsets[1:], strict=True):
        part = np.asarray(per_time[begin:end], float)
        part = part[np.isfinite(part)]
        means.append(float(np.mean(part)) if len(part) else float("nan"))
    return np.asarray(means)


@dataclass(frozen=True)
class TimeAverages:
    """A cycled run's per-window statistics averaged after the burn-in (module docstring)."""

    burn_in_windows: int  # the first windows, left out
    windows: int  # averaged
    confidence: float
    analysis_rmse: MeanWithConfidence | None = field(default=None, metadata=OPTIONAL)
    background_rmse: MeanWithConfidence | None = field(default=None, metadata=OPTIONAL)
    # sqrt(tr(H B H^T) / p) per window, when the run estimated it (method.spread_probes)
    background_spread: MeanWithConfidence | None = field(default=None, metadata=OPTIONAL)

    def statistics(self) -> dict[str, MeanWithConfidence]:
        """The averaged statistics present, by name."""
        named = {
            "analysis_rmse": self.analysis_rmse,
            "background_rmse": self.background_rmse,
            "background_spread": self.background_spread,
        }
        return {name: value for name, value in named.items() if value is not None}

    def describe(self) -> str:
        """One log line: what was averaged, each statistic with its interval."""
        parts = ", ".join(
            f"{name.replace('_rmse', ' RMSE').replace('_', ' ')} {value.describe()}"
            for name, value in self.statistics().items()
        )
        return (
            f"time averages over {self.windows} window(s) after a burn-in of "
            f"{self.burn_in_windows}: {parts} ({self.confidence:.0%} intervals, corrected for "
            "autocorrelation)"
        )

    def attributes(self) -> dict[str, int | float]:
        """Flat ``time_average_*`` items for a file's global attributes."""
        items: dict[str, int | float] = {
            "time_average_burn_in_windows": self.burn_in_windows,
            "time_average_windows": self.windows,
            "time_average_confidence": self.confidence,
        }
        for name, value in self.statistics().items():
            items[f"time_average_{name}"] = value.mean
            items[f"time_average_{name}_low"] = value.low
            items[f"time_average_{name}_high"] = value.high
            items[f"time_average_{name}_effective_samples"] = value.effective_samples
        return items


def time_averages(
    series: dict[str, Float[np.ndarray, " windows"] | None],
    burn_in: int,
    confidence: float,
) -> TimeAverages | None:
    """Each named per-window series (``analysis_rmse``, ``background_rmse``,
    ``background_spread``; None or all-NaN: absent) averaged over the windows after the first
    ``burn_in``; None when no series has a value."""
    present = {
        name: np.asarray(values, float)
        for name, values in series.items()
        if values is not None and np.isfinite(values).any()
    }
    if not present:
        return None
    count = len(next(iter(present.values())))
    return TimeAverages(
        burn_in_windows=min(burn_in, count),
        windows=max(count - burn_in, 0),
        confidence=confidence,
        **{
            name: series_mean_with_confidence(values[burn_in:], confidence)
            for name, values in present.items()
        },
    )
