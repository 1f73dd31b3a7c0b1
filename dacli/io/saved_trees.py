"""Saved trees: one file, a JSON header line then the arrays (equinox serialisation).

Two kinds of file share the layout, told apart by the header's ``format``:

* a **network file** (``dacli train``'s ``best.eqx``, and ``last.eqx``, its run checkpoint,
  which adds the training position; read through ``network.file``): the header holds everything
  needed to rebuild the skeleton the arrays load into and to refuse a mismatched file: the
  architecture ([network] keys), the window layout (channels, spatial shape), the normalisation,
  the training position (epoch, optimiser step, the batch RNG's state) and the metrics history.
  Its format identifier, ``dacli-4dvarnet-checkpoint``, is kept from earlier versions so that
  trained networks stay readable;
* a stopped cycling run's **run checkpoint** (``dacli assimilate``, :mod:`dacli.run.resume`):
  its configuration and position.

Written through :mod:`dacli.io.atomic` (a temporary file beside the target, renamed into place),
so a failed or interrupted write never leaves a partial file nor a temporary one (equinox's
documented pattern for hyperparameters + ``tree_serialise_leaves``). Not for outputs other tools
read: those are NetCDF.
"""

from __future__ import annotations

import json
from pathlib import Path

import equinox as eqx

from dacli.errors import DataError
from dacli.io import atomic

NETWORK_FORMAT = "dacli-4dvarnet-checkpoint"  # identifier kept: trained networks stay readable
VERSION = 1


def _describe(kind: str) -> str:
    return "network file" if kind == NETWORK_FORMAT else "run checkpoint"


def save_tree(path: str | Path, header: dict, tree, kind: str = NETWORK_FORMAT) -> Path:
    """The header line and the arrays of ``tree`` to ``path``, replacing it, whole or not at all."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as stream:
            stream.write(
                (json.dumps({"format": kind, "version": VERSION, **header}) + "\n").encode()
            )
            eqx.tree_serialise_leaves(stream, eqx.filter(tree, eqx.is_array))

    return atomic.write_atomically(path, write, overwrite=True, make_folder=True)


def read_header(path: str | Path, kind: str = NETWORK_FORMAT) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{_describe(kind)} {path}: no such file")
    try:
        with open(path, "rb") as stream:
            header = json.loads(stream.readline().decode())
    except (ValueError, UnicodeDecodeError):
        raise DataError(
            f"{_describe(kind)} {path}: not a dacli {_describe(kind)} (no JSON header line)"
        ) from None
    if not isinstance(header, dict) or header.get("format") != kind:
        raise DataError(
            f"{_describe(kind)} {path}: not a dacli {_describe(kind)} (no {kind!r} header)"
        )
    if header.get("version") != VERSION:
        raise DataError(
            f"{_describe(kind)} {path}: format version {header.get('version')}; "
            f"this dacli reads {VERSION}"
        )
    return header


def load_tree(path: str | Path, like, kind: str = NETWORK_FORMAT):
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
            f"{_describe(kind)} {path}: its arrays do not match what the header describes ({exc})"
        ) from None
    return header, eqx.combine(arrays, static)
