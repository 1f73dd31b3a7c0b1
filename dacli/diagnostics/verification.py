"""Forecast verification against a truth run, per lead time (numpy; no files, no JAX).

Forecasts come as ``(S, L, n)``: S start (reference) times, L lead times, n state elements;
the truth at the same valid times likewise, NaN where the truth file does not reach. Each score
pools every start time and state element at a lead time (a start without truth is left out):

* RMSE(l) = sqrt(mean over (s, i) of (f - t)^2).
* Anomaly correlation (uncentred, WMO's ACC; Jolliffe & Stephenson 2012, ch. 6):
  ACC(l) = sum f' t' / sqrt(sum f'^2 sum t'^2), with anomalies f' = f - c, t' = t - c about a
  climatology c per state element (:func:`climatology`: the truth's time mean). 1 for a perfect
  forecast, 0 for the climatology itself (NaN there: 0/0), -1 for the mirrored anomaly.
* Ensemble spread(l) = sqrt(mean over (s, i) of the members' variance) (unbiased, N - 1), the
  quantity to set against the ensemble mean's RMSE (spread-skill; Fortin et al. 2014, which also
  gives the (N + 1) / N factor a perfect ensemble's RMSE carries).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float, Int


def climatology(truth_states: Float[np.ndarray, "times n"]) -> Float[np.ndarray, " n"]:
    """The time mean of a truth run ``(T, n)`` per state element: the reference for anomalies."""
    return np.mean(np.asarray(truth_states, float), axis=0)


def _covered(truth: Float[np.ndarray, "starts leads n"]) -> Bool[np.ndarray, "starts leads"]:
    """(S, L) mask of (start, lead) pairs the truth reaches (a missing truth is NaN throughout)."""
    return np.all(np.isfinite(truth), axis=-1)


def verified_count(truth: Float[np.ndarray, "starts leads n"]) -> Int[np.ndarray, " leads"]:
    """(L,) number of start times verified at each lead."""
    return _covered(truth).sum(axis=0)


def rmse_by_lead(
    forecasts: Float[np.ndarray, "starts leads n"], truth: Float[np.ndarray, "starts leads n"]
) -> Float[np.ndarray, " leads"]:
    """(L,) RMSE over start times and state elements at each lead; NaN where no truth."""
    covered = _covered(truth)
    error = np.where(covered[..., None], np.asarray(forecasts, float) - np.nan_to_num(truth), 0.0)
    count = covered.sum(axis=0) * error.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            count > 0, np.sqrt(np.sum(error**2, axis=(0, 2)) / np.maximum(count, 1)), np.nan
        )


def anomaly_correlation_by_lead(
    forecasts: Float[np.ndarray, "starts leads n"],
    truth: Float[np.ndarray, "starts leads n"],
    reference: Float[np.ndarray, " n"],
) -> Float[np.ndarray, " leads"]:
    """(L,) uncentred anomaly correlation about ``reference`` (n,) at each lead; NaN where no truth
    or where an anomaly is zero everywhere (the correlation is then undefined)."""
    covered = _covered(truth)[..., None]
    forecast_anomaly = np.where(covered, np.asarray(forecasts, float) - reference, 0.0)
    truth_anomaly = np.where(covered, np.nan_to_num(truth) - reference, 0.0)
    numerator = np.sum(forecast_anomaly * truth_anomaly, axis=(0, 2))
    denominator = np.sqrt(
        np.sum(forecast_anomaly**2, axis=(0, 2)) * np.sum(truth_anomaly**2, axis=(0, 2))
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan
        )


def ensemble_statistics(
    members: Float[np.ndarray, "starts members *rest"],
) -> tuple[Float[np.ndarray, " starts *rest"], Float[np.ndarray, " starts *rest"]]:
    """Mean and spread (standard deviation, N - 1) over the member axis 1 of ``(S, N, ...)``;
    the spread is NaN for a single member."""
    members = np.asarray(members, float)
    if members.shape[1] < 2:
        return members.mean(axis=1), np.full(members.shape[:1] + members.shape[2:], np.nan)
    return members.mean(axis=1), members.std(axis=1, ddof=1)


def ensemble_spread_by_lead(
    members: Float[np.ndarray, "starts members leads n"],
) -> Float[np.ndarray, " leads"]:
    """(L,) spread of an ensemble ``(S, N, L, n)``: sqrt of the mean (over starts and elements)
    of the members' unbiased variance; NaN for a single member."""
    _, spread = ensemble_statistics(members)
    return np.sqrt(np.mean(spread**2, axis=(0, 2)))
