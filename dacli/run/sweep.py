"""``dacli sweep``: the same cycled experiment for several values of an error scale, side by side.

The DAPPER habit of judging a method by a table of RMSE over its parameters: every value of the
swept key is one whole cycled run (its own backgrounds, window after window), and the runs are
independent, so they go through one compiled program — vmapped over the values and sharded over
the local devices (:func:`dacli.parallel.map_sharded`), chunk of windows by chunk of windows;
launched as several processes (``srun -n N``), each runs its share of the values and the results
are all-gathered (:mod:`dacli.parallel.distributed`), process 0 reporting.
A value enters the method as a log factor on the configured scale (the same mechanism as
``dacli train``'s tuning, :class:`dacli.tuning.hyperparameters.Tunable`), so one compilation
serves every value. Swept keys: ``background.covariance.std`` and
``method.model_error.covariance.std`` (weak4dvar), scalar in the configuration. Each row reports
what ``dacli assimilate`` would for that value: background and analysis RMSE against the truth
(when the config has one), mean final cost, windows converged, mean iterations, and the per-window
RMSE averaged after ``[diagnostics] burn_in`` with its confidence interval
(:mod:`dacli.diagnostics.time_average`). Returns the rows; writes nothing but the optional CSV
table (atomically).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import asdict, dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from dacli.config.registry import capabilities
from dacli.config.schema import Config
from dacli.diagnostics.metrics import rmse_per_time, time_mean
from dacli.diagnostics.summary import stored_times
from dacli.diagnostics.time_average import burn_in_windows, time_averages, window_means
from dacli.errors import ConfigError, NumericalError
from dacli.io.atomic import replace_file
from dacli.io.netcdf import check_writable
from dacli.io.states import states_at
from dacli.methods.cycling import chunk_inputs
from dacli.methods.variational import analyse_windows
from dacli.parallel import allgather_shares, initialize_distributed, map_sharded, process_share
from dacli.run.inputs import PreparedInputs, chunk_size, prepare_inputs
from dacli.run.runtime import configure, describe_device, place_work
from dacli.run.stopping import StopSignals
from dacli.tuning.hyperparameters import Tunable

log = logging.getLogger("dacli")

# swept key -> (the Tunable parameter it scales, how to read the configured value)
SWEEPABLE = {
    "background.covariance.std": ("background_std", lambda c: c.background.covariance.std),
    "method.model_error.covariance.std": (
        "model_error_std",
        lambda c: c.method.model_error.covariance.std if c.method.model_error else None,
    ),
}

# A field left out of the JSON summary when it is None (the CLI's dacli.cli.render.result_json).
OPTIONAL = {"json": "optional"}


@dataclass(frozen=True)
class SweepRow:
    """One value's cycled run, as ``dacli assimilate`` would report it. In the table and the JSON
    summary ``value`` is named after the swept key (:meth:`named`)."""

    value: float
    cost_final_mean: float
    converged_windows: int
    windows: int
    iterations_mean: float
    background_rmse: float | None = field(default=None, metadata=OPTIONAL)  # None without a truth
    analysis_rmse: float | None = field(default=None, metadata=OPTIONAL)
    # the per-window RMSE averaged after the burn-in, and its confidence interval (with a truth)
    burn_in_windows: int | None = field(default=None, metadata=OPTIONAL)
    background_rmse_time_mean: float | None = field(default=None, metadata=OPTIONAL)
    background_rmse_low: float | None = field(default=None, metadata=OPTIONAL)
    background_rmse_high: float | None = field(default=None, metadata=OPTIONAL)
    analysis_rmse_time_mean: float | None = field(default=None, metadata=OPTIONAL)
    analysis_rmse_low: float | None = field(default=None, metadata=OPTIONAL)
    analysis_rmse_high: float | None = field(default=None, metadata=OPTIONAL)

    def named(self, key: str) -> dict[str, float | int]:
        """The row as the table writes it: ``key`` first, the RMSE only with a truth."""
        numbers = {
            name: value
            for name, value in asdict(self).items()
            if name != "value" and value is not None
        }
        return {key: self.value, **numbers}


@dataclass(frozen=True)
class SweepResult:
    """The sweep's rows and where it ran (the ``--json`` summary, in this order)."""

    key: str
    values: tuple[float, ...]
    rows: tuple[SweepRow, ...]
    best: SweepRow  # the lowest analysis RMSE (lowest mean final cost without a truth)
    device: str
    devices: int
    processes: int
    precision: str
    table: str | None = field(default=None, metadata=OPTIONAL)  # the CSV written
    process: int = field(default=0, metadata={"json": "skip"})  # this process's index: 0 reports


@dataclass(frozen=True)
class _SweptRuns:
    """Every value's windows (values, windows, ...), numpy."""

    analysis_trajectory: np.ndarray
    background_trajectory: np.ndarray
    cost_final: np.ndarray  # J at the analysis
    iterations: np.ndarray
    converged: np.ndarray

    def as_tuple(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)


def parse_values(text: str) -> tuple[str, list[float]]:
    """'key=v1,v2,...' -> (key, values); a ConfigError naming what is wrong."""
    key, equals, values = text.partition("=")
    key = key.strip()
    if not equals or key not in SWEEPABLE:
        raise ConfigError(
            [
                f"--values: expected KEY=v1,v2,... with KEY one of "
                f"{', '.join(SWEEPABLE)}, found {text!r}"
            ]
        )
    try:
        numbers = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            [f"--values {key}: expected comma-separated numbers, found {values!r}"]
        ) from None
    if not numbers or any(not math.isfinite(v) or v <= 0 for v in numbers):
        raise ConfigError([f"--values {key}: expected positive finite numbers, found {values!r}"])
    return key, numbers


def _log_factors(config: Config, key: str, values: list[float]) -> np.ndarray:
    configured = SWEEPABLE[key][1](config)
    if configured is None:
        raise ConfigError(
            [f"--values {key}: the configuration has no {key.rsplit('.', 1)[0]} (weak4dvar's Q)"]
        )
    if not isinstance(configured, (int, float)):
        raise ConfigError(
            [f"--values {key}: sweeps scale a scalar std; the configuration gives a list"]
        )
    return np.log(np.asarray(values) / float(configured))


def sweep(config: Config, key: str, values: list[float]) -> SweepResult:
    """Run the configured cycled experiment once per value of ``key`` (see the module docstring).

    A stop signal ends it before its first chunk of windows or between chunks (exit 143; a sweep
    keeps no checkpoint: rerun it); one during the last chunk lets it finish
    (:mod:`dacli.run.stopping`).
    """
    with StopSignals(config.run.stop_signal) as stop:
        return _sweep(config, stop, key, values)


def _sweep(config: Config, stop: StopSignals, key: str, values: list[float]) -> SweepResult:
    process, processes = initialize_distributed()  # under srun with several tasks: before JAX
    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    if capabilities(config.method.kind).learned:
        raise ConfigError(
            ["dacli sweep: sweeps the error scales of a variational method; 4DVarNet has none"]
        )
    factors = _log_factors(config, key, values)
    inputs = prepare_inputs(config, reverse_only=True)
    count = len(values)
    place_work(config.run.device, inputs.problem.layout.size * count, "state x swept values")
    if count < processes:
        raise ConfigError(
            [
                f"--values: {count} value(s) for {processes} processes; each process "
                "runs at least one value: give more values or launch fewer tasks"
            ]
        )
    share = process_share(count, process, processes)  # this process's values (all in one process)
    log.info(
        "sweep of %s over %s: %d cycled runs of %d windows as one program (%s)%s",
        key,
        ", ".join(f"{v:g}" for v in values),
        count,
        inputs.schedule.count,
        describe_device(),
        f"; process {process} of {processes} runs values {share.start + 1} to {share.stop}"
        if processes > 1
        else "",
    )
    parameter = SWEEPABLE[key][0]
    tunable = Tunable(inputs.problem.method, (parameter,))  # the method as configured, one scale
    step = SweepStep(tunable, parameter, inputs.schedule.steps_per_shift)
    thetas = jnp.asarray(factors[share.start : share.stop], inputs.problem.dtype)
    runs = _cycle_values(config, inputs, step, thetas, stop)
    if processes > 1:  # every process gets every value's results (a collective: all call it)
        runs = _SweptRuns(*allgather_shares(runs.as_tuple(), count))
    finite = np.isfinite(runs.cost_final).all(axis=1) & np.isfinite(
        runs.analysis_trajectory
    ).reshape(count, -1).all(axis=1)
    if not finite.all():
        raise NumericalError(
            f"the run with {key} = {values[int(np.argmin(finite))]:g} produced "
            "non-finite values (NaN/Inf); nothing was written"
        )
    rows = _rows(config, inputs, values, runs)
    best = min(
        rows, key=lambda r: r.cost_final_mean if r.analysis_rmse is None else r.analysis_rmse
    )
    return SweepResult(
        key,
        tuple(values),
        rows,
        best,
        describe_device(),
        len(jax.local_devices()),
        processes,
        config.run.precision,
        process=process,
    )


def _cycle_values(
    config: Config, inputs: PreparedInputs, step: SweepStep, thetas: jax.Array, stop: StopSignals
) -> _SweptRuns:
    """This process's values cycled over every window, chunk by chunk (one compiled program)."""
    schedule, local, dtype = inputs.schedule, len(thetas), inputs.problem.dtype
    chunk = chunk_size(schedule.count, config.run.windows_per_chunk)
    backgrounds = jnp.tile(jnp.asarray(inputs.background, dtype), (local, 1))
    stacked = inputs.packed.stacked()
    parts = []
    for first in range(0, schedule.count, chunk):
        stop.raise_if_requested(
            f"before window {first + 1} of {schedule.count}",
            "a sweep keeps no checkpoint: rerun the same command",
        )
        windows = chunk_inputs(schedule, stacked, first, chunk, dtype)  # (starts, obs, active)
        per_value = jax.tree_util.tree_map(
            lambda a: jnp.broadcast_to(a, (local, *a.shape)), windows
        )
        backgrounds, results = map_sharded(step, backgrounds, thetas, *per_value)
        kept = slice(0, min(chunk, schedule.count - first))
        # (values, windows, ...), the padding dropped
        results = jax.tree_util.tree_map(lambda a, kept=kept: np.asarray(a)[:, kept], results)
        parts.append(
            (
                results.analysis_trajectory,
                results.background_trajectory,
                results.cost_final[..., 0],
                results.iterations,
                results.converged,
            )
        )
    return _SweptRuns(*(np.concatenate(arrays, 1) for arrays in zip(*parts, strict=True)))


def _rows(
    config: Config, inputs: PreparedInputs, values: list[float], runs: _SweptRuns
) -> tuple[SweepRow, ...]:
    """One row per value: what ``dacli assimilate`` reports for the trajectory it would write."""
    schedule = inputs.schedule
    kept = [schedule.stored_steps(k) for k in range(schedule.count)]  # WindowSchedule.stored_steps

    def joined(windows):  # (windows, steps + 1, n) -> (times, n)
        return np.concatenate([windows[k, :n] for k, n in enumerate(kept)])

    truth = None
    if inputs.truth is not None:
        assert config.truth is not None  # the truth was read from config.truth.path
        truth = states_at(
            *inputs.truth,
            stored_times(schedule),
            config.truth.path,
            "truth",
            0.5 * config.model.dt,
            missing="nan",
        )
    burn_in = burn_in_windows(
        schedule.starts, config.window.start, config.diagnostics.burn_in, schedule.dt
    )
    rows = []
    for i, value in enumerate(values):
        rmse: dict[str, float] = {}
        if truth is not None:
            background, analysis = (
                rmse_per_time(joined(runs.background_trajectory[i]), truth),
                rmse_per_time(joined(runs.analysis_trajectory[i]), truth),
            )
            rmse = {
                "background_rmse": time_mean(background),
                "analysis_rmse": time_mean(analysis),
            }
            averages = time_averages(  # as dacli assimilate averages its per-window RMSE
                {
                    "background_rmse": window_means(background, kept),
                    "analysis_rmse": window_means(analysis, kept),
                },
                burn_in,
                config.diagnostics.confidence,
            )
            for name, averaged in (averages.statistics() if averages else {}).items():
                rmse[f"{name}_time_mean"] = averaged.mean
                rmse[f"{name}_low"] = averaged.low
                rmse[f"{name}_high"] = averaged.high
        rows.append(
            SweepRow(
                value,
                float(runs.cost_final[i].mean()),
                int(runs.converged[i].sum()),
                schedule.count,
                float(runs.iterations[i].mean()),
                burn_in_windows=None if truth is None else burn_in,
                **rmse,
            )
        )
    return tuple(rows)


def write_table(result: SweepResult, path, overwrite: bool) -> None:
    """The rows as CSV, written atomically (refused if it exists without ``overwrite``)."""
    check_writable(path, overwrite)
    rows = [row.named(result.key) for row in result.rows]
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    replace_file(path, stream.getvalue().encode())


class SweepStep(eqx.Module):
    """One chunk of cycled windows for one value: the per-item function :func:`map_sharded` vmaps
    (an equinox module: its arrays are inputs of the compiled program, which every chunk reuses)."""

    tunable: Tunable
    parameter: str = eqx.field(static=True)
    steps_per_shift: int = eqx.field(static=True)

    def __call__(self, background, theta, starts, obs, active):
        method, _ = self.tunable.configured({self.parameter: theta}, obs)
        return analyse_windows(method, background, starts, obs, active, self.steps_per_shift)
