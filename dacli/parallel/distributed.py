"""Several processes (Slurm tasks, or processes started by hand): start-up, and who does what.

Launched as several tasks (``srun -n 4 dacli ...``), every process runs the same command.
:func:`initialize_distributed` connects them with ``jax.distributed.initialize()`` — JAX reads
the coordinator, process count and index from Slurm itself — and each process then takes a
contiguous share of the independent items (:func:`process_share`), maps it over its local
devices (:func:`dacli.parallel.sharding.map_sharded`), and either writes its own file (merged
afterwards, :func:`dacli.io.merge.merge_analysis_files`) or hands its results to process 0
(:func:`allgather_shares`).

Outside Slurm, three variables launch the same thing by hand (and let the tests run two
processes on one machine)::

    DACLI_COORDINATOR=127.0.0.1:12345  DACLI_NUM_PROCESSES=2  DACLI_PROCESS_ID=0|1

A single task (plain ``python``, ``sbatch`` without ``srun``, ``srun -n 1``) does not call
``jax.distributed.initialize()`` at all: that call would wait for peers that never come.

Reference: JAX documentation, "Multi-process environments" (``jax.distributed.initialize``,
Slurm auto-detection), https://docs.jax.dev/en/latest/multi_process.html
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

import jax
import numpy as np
from jax.experimental.multihost_utils import process_allgather
from jaxtyping import Array, PyTree, Shaped

from dacli.errors import ConfigError, DeviceError
from dacli.parallel.sharding import map_sharded, pad_batch

ENV_COORDINATOR = "DACLI_COORDINATOR"
ENV_NUM_PROCESSES = "DACLI_NUM_PROCESSES"
ENV_PROCESS_ID = "DACLI_PROCESS_ID"
EXPLICIT_ENV = (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID)


def launch_arguments(env: Mapping[str, str] | None = None) -> dict | None:
    """Keyword arguments for ``jax.distributed.initialize``, or None for a single process.

    * All three ``DACLI_*`` variables set: an explicit launch (they win over Slurm's).
    * Inside a Slurm job step (``SLURM_STEP_ID`` set, i.e. under ``srun``) with more than one
      task (``SLURM_STEP_NUM_TASKS``, else ``SLURM_NTASKS``): ``{}``, JAX detects the rest.
    * Otherwise None. No JAX here.
    """
    env = os.environ if env is None else env
    given = [name for name in EXPLICIT_ENV if env.get(name)]
    if given:
        missing = [name for name in EXPLICIT_ENV if name not in given]
        if missing:
            raise ConfigError(
                [
                    f"{', '.join(given)} set but {', '.join(missing)} not: a multi-process launch "
                    f"by hand needs all of {', '.join(EXPLICIT_ENV)}"
                ]
            )
        try:
            count, index = int(env[ENV_NUM_PROCESSES]), int(env[ENV_PROCESS_ID])
        except ValueError:
            raise ConfigError(
                [
                    f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} must be integers, found "
                    f"{env[ENV_NUM_PROCESSES]!r} and {env[ENV_PROCESS_ID]!r}"
                ]
            ) from None
        if count < 1 or not 0 <= index < count:
            raise ConfigError(
                [f"{ENV_PROCESS_ID}={index} must lie in [0, {ENV_NUM_PROCESSES}={count})"]
            )
        if count == 1:
            return None
        return {
            "coordinator_address": env[ENV_COORDINATOR],
            "num_processes": count,
            "process_id": index,
        }
    tasks = env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or "1"
    if env.get("SLURM_STEP_ID") is not None and int(tasks) > 1:
        return {}
    return None


def results_only_on_stdout() -> None:
    """From now on, what C++ libraries print on file descriptor 1 (gloo's "Rank 0 is connected ...",
    from its own threads, at any time) goes to stderr; Python's ``sys.stdout`` keeps the real
    stdout, which carries results only (``--json``). For multi-process runs."""
    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)


def initialize_distributed(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """Connect the processes of a multi-task launch; return (process_index, process_count).

    Call it first, before anything starts JAX's backend (``jax.devices()``, any computation,
    :func:`dacli.run.runtime.configure`). A single process returns (0, 1) without touching JAX.
    Calling it again is harmless.
    """
    arguments = launch_arguments(env)
    if arguments is None:
        return 0, 1
    if not jax.distributed.is_initialized():
        try:
            results_only_on_stdout()
            jax.distributed.initialize(**arguments)
        except RuntimeError as exc:
            raise DeviceError(
                f"jax.distributed.initialize() failed ({exc}); it must run before JAX starts its "
                "backend, and every process of the launch must reach it"
            ) from None
    return jax.process_index(), jax.process_count()


def process_share(count: int, process_index: int, process_count: int) -> range:
    """The contiguous items ``process_index`` takes of ``count`` independent ones.

    Deterministic and balanced: the first ``count % process_count`` processes take one more.
    Every item is taken exactly once; a process may get none when there are fewer items than
    processes.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} outside [0, {process_count})")
    base, extra = divmod(count, process_count)
    start = process_index * base + min(process_index, extra)
    return range(start, start + base + (process_index < extra))


def allgather_shares(
    local: PyTree[Shaped[Array | np.ndarray, "share ..."]], count: int
) -> PyTree[Shaped[np.ndarray, "count ..."]]:
    """Every process's share of ``count`` items, concatenated in item order, on every process.

    ``local``: a pytree of arrays with leading axis ``len(process_share(count, ...))`` for this
    process (at least one item per process). Shares differ by at most one item; each is padded
    (last item repeated) to the largest, gathered with
    ``jax.experimental.multihost_utils.process_allgather``, and the
    padding dropped. Returns numpy arrays. A collective: every process must call it.
    """
    processes = jax.process_count()
    if count < processes:  # every process raises (none is left waiting in the collective)
        raise ValueError(
            f"{count} items for {processes} processes: some would have no share; use fewer "
            "processes"
        )
    shares = [process_share(count, p, processes) for p in range(processes)]
    largest = max(len(share) for share in shares)
    local = jax.tree_util.tree_map(np.asarray, local)
    gathered = process_allgather(
        pad_batch(local, largest), tiled=False
    )  # (processes, largest, ...)
    return jax.tree_util.tree_map(
        lambda x: np.concatenate([x[p, : len(share)] for p, share in enumerate(shares)]), gathered
    )


def map_over_processes(
    fn: Callable, *batched: PyTree[Shaped[Array | np.ndarray, "batch ..."]]
) -> PyTree[Shaped[np.ndarray, "batch ..."]]:
    """``fn`` on every item of ``batched`` (leading axis B) over every process of the launch: this
    process maps its :func:`process_share` over its local devices
    (:func:`dacli.parallel.map_sharded`)
    and the shares are all-gathered, so every process returns all B results (numpy)."""
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, map_sharded(fn, *batched))
    count = len(jax.tree_util.tree_leaves(batched)[0])
    share = process_share(count, jax.process_index(), jax.process_count())
    local = jax.tree_util.tree_map(lambda a: a[share.start : share.stop], batched)
    return allgather_shares(map_sharded(fn, *local), count)
