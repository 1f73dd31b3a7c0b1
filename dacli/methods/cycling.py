"""Cycling: a variational method over consecutive windows, each analysis the next background.

:func:`cycle` runs the windows in compiled chunks
(:func:`dacli.methods.variational.analyse_windows`:
one ``lax.scan`` per chunk, the last chunk padded to full size so one program serves all), or one
window per chunk with its minimiser stepped in bounded compiled calls
(:func:`dacli.methods.chunked.analyse_in_chunks`, ``Chunking.minimiser_steps``). Between two
chunks control is back in Python: ``on_chunk`` sees each finished chunk (progress, a stop, a run
checkpoint), and a run resumes from the chunks it finished (``finished``). Returns every window's
analysis stacked (numpy). Pure engine: no configuration, files or logging; diagnostics are
computed from the result (:mod:`dacli.diagnostics.summary`).

Not for training or tuning (they need gradients through the windows): use
:func:`dacli.methods.variational.analyse_windows` under ``jax.grad`` directly. Cycling as in
DAPPER's Var4D and Bocquet & Sakov (2014).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from dacli.methods.chunked import analyse_in_chunks
from dacli.methods.signatures import State
from dacli.methods.variational import AbstractMethod, WindowAnalysis, analyse_windows
from dacli.observations.operator import WindowObservations
from dacli.observations.windows import WindowSchedule


@dataclass(frozen=True)
class Chunking:
    """How windows are grouped into compiled calls.

    ``windows``: windows per compiled chunk (:func:`dacli.run.inputs.chunk_size`). With
    ``minimiser_steps`` each chunk is one window (``windows`` must be 1), its minimiser run
    ``minimiser_steps`` iterations per compiled call (nonlinear formulation only).
    """

    windows: int
    minimiser_steps: int | None = None

    def __post_init__(self):
        if self.windows < 1:
            raise ValueError(f"Chunking.windows must be at least 1, found {self.windows}")
        if self.minimiser_steps is not None and self.windows != 1:
            raise ValueError("Chunking.minimiser_steps steps one window per chunk: give windows=1")


@dataclass(frozen=True)
class CycledAnalyses:
    """The windows' analyses of one cycled run.

    ``analyses``: every window's :class:`WindowAnalysis` stacked along a leading window axis (K,
    numpy, padding dropped); ``background``: the cycled background after the last window;
    ``chunk_seconds``: wall time of each chunk computed by this call (the first includes
    compilation; chunks loaded from ``finished`` are not timed).
    """

    analyses: WindowAnalysis
    background: np.ndarray
    chunk_seconds: tuple[float, ...]


# on_chunk(first window, the chunk's analyses (numpy, padded to the chunk size), the background
# after it)
ChunkCallback = Callable[[int, WindowAnalysis, np.ndarray], None]
# on_step(window): between two compiled minimiser calls of the stepwise path
StepCallback = Callable[[int], None]


def chunk_inputs(
    schedule: WindowSchedule, observations: WindowObservations, first: int, size: int, dtype
) -> tuple[jax.Array, WindowObservations, jax.Array]:
    """(starts, observations, active) of the chunk of ``size`` windows from ``first``: the last
    chunk is padded by repeating the last window, marked inactive.

    Moved to the device by ``jax.device_put``: ``jnp.asarray`` of a numpy array compiles a copy
    program per shape and dtype (``lax.stage``), six of them here, 9-13 ms each at start-up
    (``JAX_LOG_COMPILES``)."""
    indices = np.minimum(np.arange(first, first + size), schedule.count - 1)
    return (
        jax.device_put(np.asarray(schedule.starts[indices], dtype)),
        jax.tree_util.tree_map(lambda a: jax.device_put(a[indices]), observations),
        jax.device_put(np.arange(first, first + size) < schedule.count),
    )


def chunk_structure(
    method: AbstractMethod,
    background: Float[Array | np.ndarray, " n"],
    schedule: WindowSchedule,
    observations: WindowObservations,
    chunking: Chunking,
) -> WindowAnalysis:
    """Shapes and dtypes of one chunk's analyses (``jax.ShapeDtypeStruct``s): what a run
    checkpoint's chunks are read back as."""
    background = jnp.asarray(background)
    arguments = chunk_inputs(schedule, observations, 0, chunking.windows, background.dtype)
    return jax.eval_shape(
        lambda b, starts, obs, active: analyse_windows(
            method, b, starts, obs, active, schedule.steps_per_shift
        )[1],
        background,
        *arguments,
    )


def _stepwise_chunk(
    method, background, schedule, observations, first, chunking, on_step
) -> tuple[State, WindowAnalysis]:
    """One window, its minimiser in compiled calls of ``chunking.minimiser_steps`` iterations."""
    start, window_obs, _ = chunk_inputs(schedule, observations, first, 1, background.dtype)
    between = None if on_step is None else (lambda: on_step(first))
    single = analyse_in_chunks(
        method,
        background,
        start[0],
        jax.tree_util.tree_map(lambda a: a[0], window_obs),
        chunking.minimiser_steps,
        between=between,
    )
    return (
        single.analysis_trajectory[schedule.steps_per_shift],
        jax.tree_util.tree_map(lambda a: a[None], single),
    )


def cycle(
    method: AbstractMethod,
    background: Float[Array | np.ndarray, " n"],
    schedule: WindowSchedule,
    observations: WindowObservations,
    *,
    chunking: Chunking,
    on_chunk: ChunkCallback | None = None,
    on_step: StepCallback | None = None,
    finished: Sequence[WindowAnalysis] = (),
) -> CycledAnalyses:
    """Cycle ``method`` over every window of ``schedule`` from ``background`` (module docstring).

    ``observations``: every window's packed observations, leading axis K (numpy or JAX).
    ``finished``: chunks already computed (numpy, a stopped run's checkpoint), ``background``
    then being the cycled background after them; computing resumes at the next chunk.
    ``on_chunk`` runs after each computed chunk and may raise to stop the run; ``on_step``
    runs between the stepwise minimiser's compiled calls and may raise to abandon the window.
    """
    background = jnp.asarray(background)
    dtype = background.dtype
    size = chunking.windows
    chunks = list(finished)
    seconds = []
    for first in range(len(chunks) * size, schedule.count, size):
        started = time.perf_counter()
        if chunking.minimiser_steps is None:
            background, results = analyse_windows(
                method,
                background,
                *chunk_inputs(schedule, observations, first, size, dtype),
                schedule.steps_per_shift,
            )
        else:
            background, results = _stepwise_chunk(
                method, background, schedule, observations, first, chunking, on_step
            )
        results = jax.tree_util.tree_map(np.asarray, results)
        seconds.append(time.perf_counter() - started)
        chunks.append(results)
        if on_chunk is not None:
            on_chunk(first, results, np.asarray(background))
    stacked = jax.tree_util.tree_map(
        lambda *parts: np.concatenate(parts)[: schedule.count], *chunks
    )
    return CycledAnalyses(stacked, np.asarray(background), tuple(seconds))
