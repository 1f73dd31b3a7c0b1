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
(when the config has one), mean final cost, windows converged, mean iterations. Returns the rows;
writes nothing but the optional CSV table (atomically).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from dacli.build.registry import capabilities
from dacli.config.schema import Config
from dacli.errors import ConfigError, NumericalError

log = logging.getLogger("dacli")

# swept key -> (the Tunable parameter it scales, how to read the configured value)
SWEEPABLE = {
    "background.covariance.std": ("background_std", lambda c: c.background.covariance.std),
    "method.model_error.covariance.std": ("model_error_std",
                                          lambda c: c.method.model_error.covariance.std if c.method.model_error else None),
}


@dataclass
class SweepResult:
    key: str
    rows: list[dict]
    summary: dict
    process: int = 0  # this process's index in a multi-process launch; process 0 reports and writes the table


def parse_values(text: str) -> tuple[str, list[float]]:
    """'key=v1,v2,...' -> (key, values); a ConfigError naming what is wrong."""
    key, equals, values = text.partition("=")
    key = key.strip()
    if not equals or key not in SWEEPABLE:
        raise ConfigError([f"--values: expected KEY=v1,v2,... with KEY one of {', '.join(SWEEPABLE)}, found {text!r}"])
    try:
        numbers = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigError([f"--values {key}: expected comma-separated numbers, found {values!r}"]) from None
    if not numbers or any(not math.isfinite(v) or v <= 0 for v in numbers):
        raise ConfigError([f"--values {key}: expected positive finite numbers, found {values!r}"])
    return key, numbers


def _log_factors(config: Config, key: str, values: list[float]) -> np.ndarray:
    configured = SWEEPABLE[key][1](config)
    if configured is None:
        raise ConfigError([f"--values {key}: the configuration has no {key.rsplit('.', 1)[0]} (weak4dvar's Q)"])
    if not isinstance(configured, (int, float)):
        raise ConfigError([f"--values {key}: sweeps scale a scalar std; the configuration gives a list"])
    return np.log(np.asarray(values) / float(configured))


def sweep(config: Config, key: str, values: list[float]) -> SweepResult:
    """Run the configured cycled experiment once per value of ``key`` (see the module docstring).

    A stop signal ends it before its first chunk of windows or between chunks (exit 143; a sweep
    keeps no checkpoint: rerun it); one during the last chunk lets it finish (:mod:`dacli.run.stopping`).
    """
    from dacli.run.stopping import StopSignals

    with StopSignals(config.run.stop_signal) as stop:
        return _sweep(config, stop, key, values)


def _sweep(config: Config, stop, key: str, values: list[float]) -> SweepResult:
    from dacli.parallel import allgather_shares, initialize_distributed, map_sharded, process_share
    from dacli.run.runtime import configure, describe_device

    process, processes = initialize_distributed()  # under srun with several tasks: before JAX starts
    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    import jax
    import jax.numpy as jnp

    from dacli.diagnostics.metrics import rmse_per_time, time_mean
    from dacli.io.states import states_at
    from dacli.run.assimilate import chunk_size, prepare_inputs
    from dacli.tuning.hyperparameters import Tunable

    if capabilities(config.method.kind).learned:
        raise ConfigError(["dacli sweep: sweeps the error scales of a variational method; 4DVarNet has none"])
    factors = _log_factors(config, key, values)
    inputs = prepare_inputs(config)
    schedule, packed, problem = inputs.schedule, inputs.packed, inputs.problem
    dtype = problem.dtype
    parameter = SWEEPABLE[key][0]
    tunable = Tunable(problem.method, (parameter,))  # the method as configured, one scale exposed
    step = sweep_step(tunable, parameter, schedule.steps_per_shift)
    count = len(values)
    if count < processes:
        raise ConfigError([f"--values: {count} value(s) for {processes} processes; each process runs at least one "
                           "value: give more values or launch fewer tasks"])
    share = process_share(count, process, processes)  # this process's values (all of them in one process)
    chunk = chunk_size(schedule.count, config.run.windows_per_chunk)
    log.info("sweep of %s over %s: %d cycled runs of %d windows as one program (%s)%s", key,
             ", ".join(f"{v:g}" for v in values), count, schedule.count, describe_device(),
             f"; process {process} of {processes} runs values {share.start + 1} to {share.stop}" if processes > 1 else "")

    local = len(share)
    backgrounds = jnp.tile(jnp.asarray(inputs.background, dtype), (local, 1))
    thetas = jnp.asarray(factors[share.start:share.stop], dtype)
    trajectories, background_trajectories, costs, iterations, converged = [], [], [], [], []
    stacked = packed.stacked()
    for first in range(0, schedule.count, chunk):
        stop.raise_if_requested(f"before window {first + 1} of {schedule.count}",
                                "a sweep keeps no checkpoint: rerun the same command")
        indices = np.minimum(np.arange(first, first + chunk), schedule.count - 1)
        starts = np.broadcast_to(schedule.starts[indices], (local, chunk))
        obs = jax.tree_util.tree_map(lambda a: np.broadcast_to(a[indices], (local, *a[indices].shape)), stacked)
        active = np.broadcast_to(np.arange(first, first + chunk) < schedule.count, (local, chunk))
        backgrounds, results = map_sharded(step, backgrounds, thetas, jnp.asarray(starts, dtype),
                                           jax.tree_util.tree_map(jnp.asarray, obs), jnp.asarray(active))
        kept = slice(0, min(chunk, schedule.count - first))
        results = jax.tree_util.tree_map(lambda a: np.asarray(a)[:, kept], results)  # (values, windows, ...)
        trajectories.append(results.analysis_trajectory)
        background_trajectories.append(results.background_trajectory)
        costs.append(results.cost_final[..., 0])
        iterations.append(results.iterations)
        converged.append(results.converged)
    trajectories, background_trajectories = np.concatenate(trajectories, 1), np.concatenate(background_trajectories, 1)
    costs, iterations, converged = (np.concatenate(a, 1) for a in (costs, iterations, converged))
    if processes > 1:  # every process gets every value's results (a collective: all processes call it)
        trajectories, background_trajectories, costs, iterations, converged = allgather_shares(
            (trajectories, background_trajectories, costs, iterations, converged), count)
    if not (np.all(np.isfinite(trajectories)) and np.all(np.isfinite(costs))):
        bad = int(np.argwhere(~np.isfinite(costs).all(axis=1) | ~np.isfinite(trajectories).reshape(count, -1).all(1))[0, 0])
        raise NumericalError(f"the run with {key} = {values[bad]:g} produced non-finite values (NaN/Inf); "
                             "nothing was written")

    # The analysed trajectory as dacli assimilate writes it (WindowSchedule.stored_steps).
    kept = [schedule.stored_steps(k) for k in range(schedule.count)]
    times = np.concatenate([schedule.starts[k] + config.model.dt * np.arange(n) for k, n in enumerate(kept)])

    def joined(windows):  # (windows, steps + 1, n) -> (times, n)
        return np.concatenate([windows[k, :n] for k, n in enumerate(kept)])

    truth = None
    if inputs.truth is not None:
        truth = states_at(*inputs.truth, times, config.truth.path, "truth", 0.5 * config.model.dt, missing="nan")
    rows = []
    for i, value in enumerate(values):
        row = {key: value, "cost_final_mean": float(costs[i].mean()), "converged_windows": int(converged[i].sum()),
               "windows": schedule.count, "iterations_mean": float(iterations[i].mean())}
        if truth is not None:
            row["background_rmse"] = time_mean(rmse_per_time(joined(background_trajectories[i]), truth))
            row["analysis_rmse"] = time_mean(rmse_per_time(joined(trajectories[i]), truth))
        rows.append(row)
    best = min(rows, key=lambda r: r.get("analysis_rmse", r["cost_final_mean"]))
    summary = {"key": key, "values": values, "rows": rows, "best": best, "device": describe_device(),
               "devices": len(jax.local_devices()), "processes": processes, "precision": config.run.precision}
    return SweepResult(key, rows, summary, process)


def write_table(result: SweepResult, path, overwrite: bool) -> None:
    """The rows as CSV, written atomically (refused if it exists without ``overwrite``)."""
    import csv
    import io

    from dacli.io.checkpoints import write_atomically
    from dacli.io.netcdf import check_writable

    check_writable(path, overwrite)
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(result.rows[0]))
    writer.writeheader()
    writer.writerows(result.rows)
    write_atomically(path, stream.getvalue().encode())


def sweep_step(tunable, parameter: str, steps_per_shift: int):
    """One chunk of cycled windows for one value: the per-item function :func:`map_sharded` vmaps
    (an equinox module: its arrays are inputs of the compiled program, which every chunk reuses)."""
    import equinox as eqx

    from dacli.methods.variational import analyse_windows

    class SweepStep(eqx.Module):
        tunable: Tunable
        parameter: str = eqx.field(static=True)
        steps_per_shift: int = eqx.field(static=True)

        def __call__(self, background, theta, starts, obs, active):
            method, _ = self.tunable.configured({self.parameter: theta}, obs)
            return analyse_windows(method, background, starts, obs, active, self.steps_per_shift)

    from dacli.tuning.hyperparameters import Tunable

    return SweepStep(tunable, parameter, steps_per_shift)
