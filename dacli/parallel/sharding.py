"""Independent work mapped over every local device: vmapped, padded, sharded along one mesh axis.

Windows of separate experiments, ensemble members, the configs of a ``--set`` sweep: items that
do not talk to each other are stacked along a leading batch axis B, padded up to a multiple of
the device count, placed with ``NamedSharding(mesh, P("batch"))`` on a 1-D mesh, and run through
one compiled ``vmap`` of the per-item function. XLA splits the program along the batch axis
(computation follows data), so each device solves B / devices items; the only traffic between
devices is the loops' stop flags (below). With one device it is plain ``jit(vmap(fn))``.

Cost of letting XLA split the program: a minimiser or an ODE solve is a ``while_loop``, and a
batched ``while_loop`` runs while *any* item is still running, so its predicate becomes a
cross-device reduction at every iteration (diffrax's fixed-step loops hold none). That is cheap
next to an iteration on a GPU but dominates small batches on fake CPU devices.
``jax.shard_map`` (or ``pmap``) would keep each device's loops local, but fails inside equinox's
checkpointed while loop (diffrax's ``RecursiveCheckpointAdjoint``, dacli's default); per-device
dispatch of one ``jit`` compiles once per device. Measurements and the shard_map error:
benchmarks/BATCH.md.

Padding repeats the last item (never zeros, which could be an invalid state or a zero
observation error and turn into NaN); the padded results are dropped before returning.

Under several processes (:mod:`dacli.parallel.distributed`), the mesh is the process's
*local* devices: each process maps its own share of the items (:func:`process_share`) and the
shares are gathered or written per process. A global mesh would make every process hold the
whole batch.

When not to use it: for work that *is* coupled (the windows of one cycled experiment, where
window k's analysis is window k+1's background) — that is a ``lax.scan``
(:func:`dacli.methods.variational.analyse_windows`), not a ``vmap``.

Reference: JAX documentation, "Distributed arrays and automatic parallelization" and
``jax.sharding`` (``Mesh``, ``NamedSharding``, ``PartitionSpec``),
https://docs.jax.dev/en/latest/notebooks/Distributed_arrays_and_automatic_parallelization.html
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PyTree, Shaped

log = logging.getLogger("dacli")

BATCH_AXIS = "batch"


@dataclass(frozen=True)
class BatchLayout:
    """How B items are laid out over the devices."""

    items: int  # B, what the caller asked for
    padded: int  # B rounded up to a multiple of the device count
    devices: int

    @property
    def padding(self) -> int:
        return self.padded - self.items

    def describe(self) -> str:
        return (
            f"{self.items} independent item(s) over {self.devices} device(s): "
            f"{self.padded // self.devices} per "
            f"device, {self.padding} padding item(s) (copies of the last)"
        )


def batch_layout(items: int, devices: int) -> BatchLayout:
    """B items padded up to a multiple of ``devices``."""
    if items < 1:
        raise ValueError(f"a batch needs at least one item, got {items}")
    return BatchLayout(items, -(-items // devices) * devices, devices)


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"`` over ``devices`` (default: this process's local devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def describe_devices(devices: Sequence[jax.Device] | None = None) -> str:
    """One line: how many devices this process maps over, of which kind, and which process it is."""
    devices = jax.local_devices() if devices is None else list(devices)
    kinds = sorted({getattr(d, "device_kind", d.platform) for d in devices})
    line = f"{len(devices)} {devices[0].platform} device(s) ({', '.join(kinds)})"
    if jax.process_count() > 1:
        line += f" in process {jax.process_index()} of {jax.process_count()}"
    return line


def batch_size(batched_args: PyTree[Shaped[Array | np.ndarray, "batch ..."]]) -> int:
    """The common leading axis B of every leaf; ValueError if a leaf has none or another one."""
    leaves = jax.tree_util.tree_leaves(batched_args)
    if not leaves:
        raise ValueError("map_sharded needs at least one batched array")
    sizes: set[int | None] = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        shapes = sorted({str(np.shape(leaf)) for leaf in leaves})
        raise ValueError(
            "every leaf of the batched arguments needs the same leading batch axis; "
            f"found shapes {', '.join(shapes)}"
        )
    (size,) = sizes
    assert size is not None  # checked above
    return size


def pad_batch(
    tree: PyTree[Shaped[Array | np.ndarray, "batch ..."]], padded: int
) -> PyTree[Shaped[Array | np.ndarray, "padded ..."]]:
    """Every leaf extended along axis 0 to ``padded`` by repeating its last item."""

    def pad(leaf):
        extra = padded - np.shape(leaf)[0]
        if extra == 0:
            return leaf
        xp = np if isinstance(leaf, np.ndarray) else jnp
        return xp.concatenate([leaf, xp.repeat(leaf[-1:], extra, axis=0)])

    return jax.tree_util.tree_map(pad, tree)


@eqx.filter_jit
def _vmapped(fn, sharding, batched_args):
    """jit(vmap(fn)); compiled once per fn (its static part) and argument shapes and shardings."""
    outputs = eqx.filter_vmap(fn)(*batched_args)
    return jax.tree_util.tree_map(
        lambda x: jax.lax.with_sharding_constraint(x, sharding) if eqx.is_array(x) else x, outputs
    )


@functools.lru_cache(maxsize=64)
def _log_layout(layout: BatchLayout, devices: str) -> None:
    log.info("map_sharded: %s; %s", layout.describe(), devices)  # once per layout


def map_sharded(
    fn: Callable,
    *batched_args: PyTree[Shaped[Array | np.ndarray, "batch ..."]],
    devices: Sequence[jax.Device] | None = None,
) -> PyTree[Shaped[Array, "batch ..."]]:
    """``fn`` applied to each item of ``batched_args``, the items spread over ``devices``.

    ``batched_args``: pytrees whose leaves are arrays with one leading batch axis B (numpy or
    JAX). ``fn``: the per-item function; a plain function, an ``eqx.Module`` or a bound method
    of one (``method.analyse``). Its arrays are closed over (the same for every item), its
    static part is part of the compilation key, so pass the *same* function object each call:
    a fresh ``lambda`` per call compiles per call.

    Returns ``fn``'s outputs stacked along axis 0, exactly B of them. Without padding they keep
    their ``NamedSharding`` over the devices; stripping the padding gathers them onto every
    device (bring large outputs to the host, ``np.asarray``, when done).
    """
    mesh = batch_mesh(devices)
    layout = batch_layout(batch_size(batched_args), mesh.size)
    _log_layout(layout, describe_devices(list(mesh.devices.ravel())))
    sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
    placed = jax.device_put(pad_batch(batched_args, layout.padded), sharding)
    outputs = _vmapped(fn, sharding, placed)
    if layout.padding:
        outputs = jax.tree_util.tree_map(
            lambda x: x[: layout.items] if eqx.is_array(x) else x, outputs
        )
    return outputs
