"""Parallel work: independent items over the local devices, and over several processes.

See :mod:`dacli.parallel.sharding` (one process, all its devices) and
:mod:`dacli.parallel.distributed` (several processes, e.g. Slurm tasks). Importing this package
imports JAX but does not start its backend, so :func:`initialize_distributed` may still run after
it (it must run before anything asks JAX for a device).
"""

from dacli.parallel.distributed import (
    allgather_shares,
    initialize_distributed,
    launch_arguments,
    map_over_processes,
    process_share,
)
from dacli.parallel.sharding import (
    BatchLayout,
    batch_layout,
    batch_mesh,
    describe_devices,
    map_sharded,
)

__all__ = [
    "BatchLayout",
    "allgather_shares",
    "batch_layout",
    "batch_mesh",
    "describe_devices",
    "initialize_distributed",
    "launch_arguments",
    "map_over_processes",
    "map_sharded",
    "process_share",
]
