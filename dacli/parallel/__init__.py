"""Parallel work: independent items over the local devices, and over several processes.

See :mod:`dacli.parallel.sharding` (one process, all its devices) and
:mod:`dacli.parallel.distributed` (several processes, e.g. Slurm tasks). Importing this package
imports neither JAX nor equinox (``EQX_ON_ERROR`` must be set before equinox is imported, and
``initialize_distributed`` must run before JAX's backend starts); the sharding names load on
first use.
"""

from dacli.parallel.distributed import (allgather_shares, initialize_distributed, launch_arguments, map_over_processes,
                                        process_share)

_SHARDING = ("BatchLayout", "batch_layout", "batch_mesh", "describe_devices", "map_sharded")

__all__ = ["allgather_shares", "initialize_distributed", "launch_arguments", "map_over_processes", "process_share",
           *_SHARDING]


def __getattr__(name: str):
    if name in _SHARDING:
        from dacli.parallel import sharding

        return getattr(sharding, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
