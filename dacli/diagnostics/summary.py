"""What a cycled run reports, computed from the stacked window analyses (never inside the cycle).

From :class:`dacli.methods.cycling.CycledAnalyses` (and the packed observations, the schedule,
the truth at the stored times): one :class:`WindowRecord` per window (J, Jb, Jo, Jq at the
background and the analysis, iterations, O-B/O-A, RMSE), the analysed trajectory as a cycled run
keeps it, the outer-loop diagnostics of the incremental formulation (JEDI/OOPS's per-iteration
lines) and Desroziers et al. (2005) consistency checks, gathered in a :class:`CycleSummary`.
Plain numpy; no files, no configuration. Not for a single window solved outside a cycle: use
:mod:`dacli.diagnostics.metrics` directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import jax
import numpy as np

from dacli.diagnostics.consistency import Desroziers, desroziers
from dacli.diagnostics.metrics import departure_stats, rmse_per_time, time_mean
from dacli.errors import NumericalError
from dacli.methods.incremental import OuterLoops
from dacli.methods.variational import WindowAnalysis
from dacli.observations.windows import PackedObservations, WindowSchedule

# (J, Jb, Jo, Jq) -> diagnostic names
COST_TERMS = ("cost", "cost_background", "cost_observation", "cost_model_error")


@dataclass(frozen=True)
class WindowRecord:
    """One window's diagnostics, named as the analysis file's per-window variables."""

    window_start: float
    window_end: float
    cost_initial: float
    cost_background_initial: float
    cost_observation_initial: float
    cost_model_error_initial: float
    cost_final: float
    cost_background_final: float
    cost_observation_final: float
    cost_model_error_final: float
    iterations: int
    gradient_norm: float
    converged: bool
    observations_used: int
    observations_rejected: int
    omb_mean: float
    omb_rms: float
    oma_mean: float
    oma_rms: float
    background_rmse: float  # NaN without a truth
    analysis_rmse: float

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


@dataclass(frozen=True)
class OuterLoopSummary:
    """Means over windows of the incremental formulation's outer loops (L of them)."""

    outer_loops: int
    inner_iterations_mean: float  # CG iterations per window, all loops
    outer_cost_mean: tuple[float, ...]  # nonlinear J at each loop's start, then the final J (L + 1)
    inner_iterations_per_loop_mean: tuple[float, ...]  # (L,)


@dataclass(frozen=True)
class CycleSummary:
    """Everything a cycled run reports (see the module docstring)."""

    records: tuple[WindowRecord, ...]
    times: np.ndarray = field(repr=False)  # (T,) stored times: each window's shift, the last whole
    analysis: np.ndarray = field(repr=False)  # (T, n)
    background: np.ndarray = field(repr=False)  # (T, n)
    window_start_states: np.ndarray = field(repr=False)  # (K, n) the analysis at each window start
    window_end_states: np.ndarray = field(repr=False)  # (K, n) ... and end
    background_equivalents: np.ndarray = field(repr=False)  # (K, P) H(xb)
    analysis_equivalents: np.ndarray = field(repr=False)  # (K, P) H(xa)
    # outer_* -> (K, L); empty when L = 0
    outer_loop_table: dict[str, np.ndarray] = field(repr=False)
    outer: OuterLoopSummary | None
    desroziers: Desroziers
    # None without a truth; NaN where the truth reaches no stored time
    background_rmse: float | None
    analysis_rmse: float | None

    def table(self) -> dict[str, np.ndarray]:
        """The per-window records as arrays (K,), one per :class:`WindowRecord` field."""
        rows = [record.as_dict() for record in self.records]
        return {name: np.array([row[name] for row in rows]) for name in rows[0]}


def stored_times(schedule: WindowSchedule) -> np.ndarray:
    """The times a cycled run's trajectory keeps (:meth:`WindowSchedule.stored_steps`), (T,)."""
    return np.concatenate(
        [
            schedule.starts[k] + schedule.dt * np.arange(schedule.stored_steps(k))
            for k in range(schedule.count)
        ]
    )


def _offsets(schedule: WindowSchedule) -> np.ndarray:
    return np.cumsum([0] + [schedule.stored_steps(k) for k in range(schedule.count)])


def _select(chunk: WindowAnalysis, offset: int) -> WindowAnalysis:
    """Window ``offset`` of a stacked chunk."""
    return jax.tree_util.tree_map(lambda a: a[offset], chunk)


def check_finite(first: int, chunk: WindowAnalysis, schedule: WindowSchedule) -> None:
    """A NumericalError naming the first window of ``chunk`` (numpy, windows from ``first``) whose
    trajectory, cost or gradient is not finite; padding beyond the schedule is not checked."""
    for offset, k in enumerate(range(first, min(first + len(chunk.iterations), schedule.count))):
        names = [
            name
            for name in chunk.__dataclass_fields__
            if name not in ("outer", "background_spread", "converged")
        ]
        if not (
            all(np.all(np.isfinite(getattr(chunk, name)[offset])) for name in names)
            and np.all(np.isfinite(chunk.outer.cost[offset]))
        ):
            raise NumericalError(
                f"window {k + 1} (start {schedule.starts[k]:g}) produced non-finite values "
                "(NaN/Inf in the trajectory, cost or gradient); no output was written. "
                "Try a smaller model.dt, a smaller background error, or check the observations"
            )


def window_records(
    first: int,
    chunk: WindowAnalysis,
    schedule: WindowSchedule,
    packed: PackedObservations,
    truth: np.ndarray | None,
    ends_early: bool = False,
) -> list[WindowRecord]:
    """The records of ``chunk``'s windows (numpy, from window ``first``; padding dropped).

    ``truth``: the true states at :func:`stored_times` (NaN where unknown), or None. A range that
    stops before the run's end (``ends_early``) stores its last window whole (the next range
    starts from its end) but scores it, like a whole run, over its shift only.
    """
    offsets = _offsets(schedule)
    records = []
    for offset, k in enumerate(range(first, min(first + len(chunk.iterations), schedule.count))):
        last = k == schedule.count - 1
        scored = slice(
            0, schedule.stored_steps(k) if last and not ends_early else schedule.steps_per_shift
        )
        segment = None if truth is None else truth[offsets[k] : offsets[k + 1]][scored]
        records.append(_window_record(k, schedule, packed, _select(chunk, offset), segment, scored))
    return records


def _window_record(
    k, schedule, packed, analysis: WindowAnalysis, truth_segment, scored
) -> WindowRecord:
    mask = packed.mask[k]
    omb = departure_stats(packed.values[k], analysis.background_equivalents, mask)
    oma = departure_stats(packed.values[k], analysis.analysis_equivalents, mask)
    rmse = {"background_rmse": float("nan"), "analysis_rmse": float("nan")}
    if truth_segment is not None:
        rmse = {
            "background_rmse": time_mean(
                rmse_per_time(analysis.background_trajectory[scored], truth_segment)
            ),
            "analysis_rmse": time_mean(
                rmse_per_time(analysis.analysis_trajectory[scored], truth_segment)
            ),
        }
    return WindowRecord(
        window_start=float(schedule.starts[k]),
        window_end=float(schedule.starts[k] + schedule.length),
        **{f"{term}_initial": float(analysis.cost_initial[i]) for i, term in enumerate(COST_TERMS)},
        **{f"{term}_final": float(analysis.cost_final[i]) for i, term in enumerate(COST_TERMS)},
        iterations=int(analysis.iterations),
        gradient_norm=float(analysis.gradient_norm),
        converged=bool(analysis.converged),
        observations_used=int(packed.used[k]),
        observations_rejected=int(packed.rejected[k]),
        omb_mean=omb[0],
        omb_rms=omb[1],
        oma_mean=oma[0],
        oma_rms=oma[1],
        **rmse,
    )


def summarise(
    analyses: WindowAnalysis,
    schedule: WindowSchedule,
    packed: PackedObservations,
    truth: np.ndarray | None,
    ends_early: bool = False,
) -> CycleSummary:
    """The run's :class:`CycleSummary` from every window's analysis (numpy, leading axis K).

    ``truth``: the true states at :func:`stored_times` (NaN where unknown), or None.
    """
    records = tuple(window_records(0, analyses, schedule, packed, truth, ends_early))
    kept = [schedule.stored_steps(k) for k in range(schedule.count)]
    analysis = np.concatenate([analyses.analysis_trajectory[k, :n] for k, n in enumerate(kept)])
    background = np.concatenate([analyses.background_trajectory[k, :n] for k, n in enumerate(kept)])
    cost_final = np.array([record.cost_final for record in records])
    consistency = desroziers(
        packed.values,
        packed.std,
        analyses.background_equivalents,
        analyses.analysis_equivalents,
        packed.mask,
        np.asarray([float(s) for s in analyses.background_spread]),
        cost_final,
    )
    background_rmse = analysis_rmse = None
    if truth is not None:
        background_rmse = time_mean(rmse_per_time(background, truth))
        analysis_rmse = time_mean(rmse_per_time(analysis, truth))
    return CycleSummary(
        records=records,
        times=stored_times(schedule),
        analysis=analysis,
        background=background,
        # numpy already (the cycle brings every window's analysis to the host): asarray only types
        window_start_states=np.asarray(analyses.analysis_initial),
        window_end_states=np.asarray(analyses.analysis_trajectory[:, -1]),
        background_equivalents=np.asarray(analyses.background_equivalents),
        analysis_equivalents=np.asarray(analyses.analysis_equivalents),
        outer_loop_table=outer_loop_diagnostics(analyses.outer),
        outer=_outer_summary(analyses.outer, cost_final),
        desroziers=consistency,
        background_rmse=background_rmse,
        analysis_rmse=analysis_rmse,
    )


def _outer_summary(outer: OuterLoops, cost_final: np.ndarray) -> OuterLoopSummary | None:
    if not outer.cost.shape[1]:
        return None
    return OuterLoopSummary(
        outer_loops=outer.cost.shape[1],
        inner_iterations_mean=float(outer.inner_iterations.sum(axis=1).mean()),
        outer_cost_mean=(*outer.cost[..., 0].mean(axis=0).tolist(), float(cost_final.mean())),
        inner_iterations_per_loop_mean=tuple(outer.inner_iterations.mean(axis=0).tolist()),
    )


def outer_loop_diagnostics(outer: OuterLoops) -> dict[str, np.ndarray]:
    """Per window and outer loop (K, L) arrays named as in the analysis file; empty when L = 0."""
    if not outer.cost.shape[1]:
        return {}
    named = {f"outer_{term}": np.asarray(outer.cost[..., i]) for i, term in enumerate(COST_TERMS)}
    named.update(  # numpy already (host arrays): asarray only types
        outer_quadratic_cost_initial=np.asarray(outer.quadratic_initial),
        outer_quadratic_cost_final=np.asarray(outer.quadratic_final),
        outer_inner_iterations=np.asarray(outer.inner_iterations),
        outer_gradient_reduction=np.asarray(outer.gradient_reduction),
        outer_inner_converged=np.asarray(outer.inner_converged),
    )
    return named


def describe_outer_loops(outer: OuterLoops) -> str:
    """One line per outer loop of one window, JEDI/OOPS style: J, Jb, Jo, Jq, quadratic cost,
    inner iterations, gradient reduction."""
    return "; ".join(
        f"outer {i + 1}: J {cost[0]:.6g} (Jb {cost[1]:.4g}, Jo {cost[2]:.4g}, Jq {cost[3]:.4g}), "
        f"quadratic {start:.6g} -> {end:.6g} in {iterations} CG iterations, |grad| reduced to "
        f"{reduction:.2g}"
        for i, (cost, start, end, iterations, reduction) in enumerate(
            zip(
                outer.cost,
                outer.quadratic_initial,
                outer.quadratic_final,
                outer.inner_iterations,
                outer.gradient_reduction,
                strict=True,
            )
        )
    )
