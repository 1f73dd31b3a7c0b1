"""Checkpoints: one file, a JSON header line then the arrays (equinox serialisation).

Two formats share it. 4DVarNet's (``dacli train``): the header holds everything needed to
rebuild the skeleton the arrays load into and to refuse a mismatched file: the architecture
([network] keys), the window layout (channels, spatial shape), the normalisation, the training
position (epoch, optimiser step, the batch RNG's state) and the metrics history. A stopped
cycling run's (``dacli assimilate``, :mod:`dacli.run.resume`): its configuration and position.
Written
through :mod:`dacli.io.atomic` (a temporary file beside the target, renamed into place), so a failed
or interrupted write never leaves a partial checkpoint nor a temporary file (equinox's documented
pattern for hyperparameters + ``tree_serialise_leaves``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import equinox as eqx

from dacli.errors import DataError
from dacli.io import atomic

FORMAT = "dacli-4dvarnet-checkpoint"
VERSION = 1


def json_safe(value):
    """Strict JSON: NaN/Inf (not JSON) become null; numpy scalars become Python numbers
    (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomically(path: str | Path, content: bytes) -> Path:
    """``content`` to ``path`` whole or not at all, replacing it, its folder made if missing
    (metrics, snippets,
    tables: their callers refuse an existing file before computing). See
    :func:`dacli.io.atomic.write_atomically`."""
    return atomic.write_atomically(path, content, overwrite=True, make_folder=True)


def _describe(kind: str) -> str:
    return "4DVarNet checkpoint" if kind == FORMAT else "checkpoint of a stopped assimilation"


def save_checkpoint(path: str | Path, header: dict, tree, kind: str = FORMAT) -> Path:
    """The header line and the arrays of ``tree`` to ``path``, replacing it, whole or not at all."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as stream:
            stream.write(
                (json.dumps({"format": kind, "version": VERSION, **header}) + "\n").encode()
            )
            eqx.tree_serialise_leaves(stream, eqx.filter(tree, eqx.is_array))

    return atomic.write_atomically(path, write, overwrite=True, make_folder=True)


def read_header(path: str | Path, kind: str = FORMAT) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path}: no such file")
    try:
        with open(path, "rb") as stream:
            header = json.loads(stream.readline().decode())
    except (ValueError, UnicodeDecodeError):
        raise DataError(
            f"checkpoint {path}: not a dacli {_describe(kind)} (no JSON header line)"
        ) from None
    if not isinstance(header, dict) or header.get("format") != kind:
        raise DataError(f"checkpoint {path}: not a dacli {_describe(kind)} (no {kind!r} header)")
    if header.get("version") != VERSION:
        raise DataError(
            f"checkpoint {path}: format version {header.get('version')}; this dacli reads {VERSION}"
        )
    return header


def load_checkpoint(path: str | Path, like, kind: str = FORMAT):
    """The arrays of ``path`` loaded into ``like`` (a tree of the same structure): (header,
    tree)."""
    header = read_header(path, kind)
    arrays, static = eqx.partition(like, eqx.is_array)
    try:
        with open(path, "rb") as stream:
            stream.readline()
            arrays = eqx.tree_deserialise_leaves(stream, arrays)
    except (ValueError, RuntimeError, EOFError, OSError) as exc:
        raise DataError(
            f"checkpoint {path}: its arrays do not match what the header describes ({exc})"
        ) from None
    return header, eqx.combine(arrays, static)
