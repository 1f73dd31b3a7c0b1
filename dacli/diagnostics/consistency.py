"""Observation-space consistency diagnostics: QC flags, and the Desroziers et al. (2005) checks.

Desroziers, Berre, Chapnik & Poli (2005), QJRMS 131: with departures d_ob = y - H(xb),
d_oa = y - H(xa) and d_ab = H(xa) - H(xb), an optimal analysis with correct statistics satisfies

    E[d_oa d_ob^T] = R,    E[d_ab d_ob^T] = H B H^T,

and Talagrand's criterion E[2 J_min] = p (the number of observations). dacli reports the ratios
of the traces (1 when consistent): ``r_ratio`` > 1 says R is too small, < 1 too large;
``b_ratio`` likewise for B (H B H^T is the linearised observed prior, its trace estimated with
random probes: :meth:`dacli.methods.variational.AbstractVariationalMethod.background_spread`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from jaxtyping import Array, Bool, Float

from dacli.io.observation_set import QC_FLAGS, ObservationSet
from dacli.observations.windows import PackedObservations

__all__ = ["QC_FLAGS", "Desroziers", "desroziers", "qc_flags"]


def qc_flags(observations: ObservationSet, packed: PackedObservations) -> np.ndarray:
    """One flag per observation of the set (see :data:`QC_FLAGS`)."""
    used = np.zeros(len(observations), bool)
    used[packed.source[packed.mask]] = True
    flags = np.full(
        len(observations), 2, np.int8
    )  # in a window, valid, yet not used: off the time grid
    flags[~packed.assigned] = 3
    flags[~observations.valid] = 1
    flags[used] = 0
    return flags


@dataclass(frozen=True)
class Desroziers:
    observations: int
    r_ratio: float  # sum d_oa d_ob / sum sigma_o^2
    b_ratio: float  # sum d_ab d_ob / tr(H B H^T)
    chi2_ratio: float  # 2 J_min / p
    background_spread_in_obs_space: (
        float  # sqrt(tr(H B H^T) / p): the prior's std seen by the observations
    )
    background_error_estimated: float  # sqrt(sum d_ab d_ob / p): Desroziers' estimate of the same

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        background = (
            f"E[d_ab d_ob]/HBH^T = {self.b_ratio:.3g} (background std in observation space: "
            f"estimated {self.background_error_estimated:.3g}, configured "
            f"{self.background_spread_in_obs_space:.3g})"
            if np.isfinite(self.b_ratio)
            else "B check not computed (it comes with output.observation_diagnostics)"
        )
        return (
            f"Desroziers checks over {self.observations} observations: E[d_oa d_ob]/R = "
            f"{self.r_ratio:.3g} (1 = consistent; > 1: R too small, < 1: R too large); "
            f"{background}; 2 J_min / p = {self.chi2_ratio:.3g}"
        )


def desroziers(
    values: Float[np.ndarray | Array, "windows p"],
    std: Float[np.ndarray | Array, "windows p"],
    background_equivalents: Float[np.ndarray | Array, "windows p"],
    analysis_equivalents: Float[np.ndarray | Array, "windows p"],
    mask: Bool[np.ndarray | Array, "windows p"],
    spread: Float[np.ndarray | Array, " windows"],
    cost_final: Float[np.ndarray | Array, " windows"],
) -> Desroziers:
    """Ratios over every window: arrays (K, P) masked by ``mask``; ``spread`` and ``cost_final``
    (K,)."""
    mask = np.asarray(mask, bool)
    d_ob = np.where(mask, values - background_equivalents, 0.0)
    d_oa = np.where(mask, values - analysis_equivalents, 0.0)
    d_ab = np.where(mask, analysis_equivalents - background_equivalents, 0.0)
    p = int(mask.sum())
    r_variance = float(np.sum(np.where(mask, std, 0.0) ** 2))
    spread_total = float(np.sum(spread))  # NaN when the spread was not estimated
    oa_ob, ab_ob = float(np.sum(d_oa * d_ob)), float(np.sum(d_ab * d_ob))
    nan = float("nan")
    return Desroziers(
        observations=p,
        r_ratio=oa_ob / r_variance if r_variance > 0 else nan,
        b_ratio=ab_ob / spread_total if spread_total > 0 else nan,  # NaN > 0 is False
        chi2_ratio=2.0 * float(np.sum(cost_final)) / p if p else nan,
        background_spread_in_obs_space=float(np.sqrt(spread_total / p)) if p else nan,
        background_error_estimated=float(np.sqrt(max(ab_ob, 0.0) / p)) if p else nan,
    )
