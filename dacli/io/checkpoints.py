"""Checkpoints: one file, a JSON header line then the arrays (equinox serialisation).

Two formats share it. 4DVarNet's (``dacli train``): the header holds everything needed to
rebuild the skeleton the arrays load into and to refuse a mismatched file: the architecture
([network] keys), the window layout (channels, spatial shape), the normalisation, the training
position (epoch, optimiser step, the batch RNG's state) and the metrics history. A stopped
cycling run's (``dacli assimilate``, :mod:`dacli.run.resume`): its configuration and position. Written to a temporary file beside the target and renamed into place, so an
interrupted write never leaves a partial checkpoint (equinox's documented pattern for
hyperparameters + ``tree_serialise_leaves``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import equinox as eqx

from dacli.errors import DataError, OutputError

FORMAT = "dacli-4dvarnet-checkpoint"
VERSION = 1


def json_safe(value):
    """Strict JSON: NaN/Inf (not JSON) become null; numpy scalars become Python numbers (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomically(path: str | Path, content: bytes | None = None, write=None) -> Path:
    """``content`` (or what ``write(stream)`` writes) to a temporary file beside ``path``, renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content) if write is None else write(stream)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None
    return path


def _describe(kind: str) -> str:
    return "4DVarNet checkpoint" if kind == FORMAT else "checkpoint of a stopped assimilation"


def save_checkpoint(path: str | Path, header: dict, tree, kind: str = FORMAT) -> Path:
    def write(stream):
        stream.write((json.dumps({"format": kind, "version": VERSION, **header}) + "\n").encode())
        eqx.tree_serialise_leaves(stream, eqx.filter(tree, eqx.is_array))

    return write_atomically(path, write=write)


def read_header(path: str | Path, kind: str = FORMAT) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path}: no such file")
    try:
        with open(path, "rb") as stream:
            header = json.loads(stream.readline().decode())
    except (ValueError, UnicodeDecodeError):
        raise DataError(f"checkpoint {path}: not a dacli {_describe(kind)} (no JSON header line)") from None
    if not isinstance(header, dict) or header.get("format") != kind:
        raise DataError(f"checkpoint {path}: not a dacli {_describe(kind)} (no {kind!r} header)")
    if header.get("version") != VERSION:
        raise DataError(f"checkpoint {path}: format version {header.get('version')}; this dacli reads {VERSION}")
    return header


def load_checkpoint(path: str | Path, like, kind: str = FORMAT):
    """The arrays of ``path`` loaded into ``like`` (a tree of the same structure): (header, tree)."""
    header = read_header(path, kind)
    arrays, static = eqx.partition(like, eqx.is_array)
    try:
        with open(path, "rb") as stream:
            stream.readline()
            arrays = eqx.tree_deserialise_leaves(stream, arrays)
    except (ValueError, RuntimeError, EOFError, OSError) as exc:
        raise DataError(f"checkpoint {path}: its arrays do not match what the header describes ({exc})") from None
    return header, eqx.combine(arrays, static)
