"""Checkpoints of a cycling run, so a stopped ``dacli assimilate`` resumes to the same output.

A checkpoint (``<output.path>.checkpoint``, one file written atomically) holds the cycled
background after the last finished chunk and every finished chunk's window results — the
arrays the analysis file and its diagnostics are made of — with a JSON header line: the
configuration (a resumed run must use the same one), the window count, the windows per chunk,
the signal that stopped the run and the finished windows' diagnostics so far. Resuming reloads the
chunks, rebuilds their diagnostics and
computes the remaining chunks from the saved background, so the final file equals that of an
uninterrupted run (same compiled programs, same chunking, same arithmetic).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jax
import numpy as np

from dacli.config.schema import Config
from dacli.errors import ConfigError, DataError, OutputError
from dacli.io.merge import NEUTRAL_KEYS, flat_keys  # keys a resumption may change
from dacli.io.saved_trees import load_tree, read_header, save_tree

FORMAT = "dacli-assimilation-checkpoint"

log = logging.getLogger("dacli")


def checkpoint_path(config: Config) -> Path:
    return Path(f"{config.output.path}.checkpoint")


def check_resume(path: Path, resume: bool, restart: bool) -> None:
    """Before any work: --resume needs a checkpoint; a fresh start never drops one silently.

    A checkpoint is kept unless ``restart`` (``--restart``) asks to discard it, which is logged;
    ``--overwrite`` replaces output files, never a checkpoint (a batch script with ``--overwrite``
    resubmitted after a stop would otherwise lose the stopped run's windows).
    """
    if resume and restart:
        raise ConfigError(
            [
                "--resume continues the stopped run from its checkpoint, --restart discards it: "
                "give one"
            ]
        )
    if resume and not path.is_file():
        raise DataError(
            f"--resume: no checkpoint {path} to continue from (a stopped run writes it beside "
            "output.path)"
        )
    if resume or not path.exists():
        return
    if not restart:
        raise OutputError(
            f"{path} holds a stopped run's progress ({_progress(path)}); pass --resume to continue "
            "it or --restart to discard it and start afresh (--overwrite replaces output files, "
            "not a checkpoint)"
        )
    log.warning(
        "--restart: discarding the checkpoint %s (%s) and starting afresh", path, _progress(path)
    )
    path.unlink()


def _progress(path: Path) -> str:
    """'12 of 50 windows done' from a checkpoint's header, or why it cannot be read."""
    try:
        header = read_header(path, FORMAT)
        return f"{header['windows_done']} of {header['windows']} windows done"
    except (DataError, OSError, KeyError, TypeError) as exc:
        return f"unreadable: {exc}"


def _comparable(config: Config) -> dict:
    return {
        k: v
        for k, v in flat_keys(json.loads(config.model_dump_json())).items()
        if k not in NEUTRAL_KEYS
    }


class ResumeFile:
    """Save and load one cycling run's checkpoint (see the module docstring)."""

    def __init__(self, path: Path, config: Config, windows: int, chunk: int):
        self.path, self.config, self.windows, self.chunk = path, config, windows, chunk

    def save(
        self, background: np.ndarray, finished: list, signal_name: str, diagnostics: list[dict]
    ) -> Path:
        """``diagnostics``: the finished windows' records (costs, iterations, O-B/O-A, RMSE), kept
        readable in the header line (``head -1 <checkpoint>``) for a look at a stopped run."""
        header = {
            "config": _comparable(self.config),
            "windows": self.windows,
            "windows_per_chunk": self.chunk,
            "chunks_done": len(finished),
            "windows_done": min(len(finished) * self.chunk, self.windows),
            "stopped_by": signal_name,
            "diagnostics": diagnostics,
        }
        return save_tree(self.path, header, {"background": background, "chunks": finished}, FORMAT)

    def load(self, background_like, chunk_like) -> tuple[np.ndarray, list]:
        """(background, finished chunks); refuses a checkpoint of another configuration or
        chunking."""
        header = read_header(self.path, FORMAT)
        saved, now = header["config"], _comparable(self.config)
        different = sorted(
            key for key in saved.keys() | now.keys() if saved.get(key) != now.get(key)
        )
        if different:
            raise ConfigError(
                [
                    f"--resume: {self.path} was written with a different configuration ({key}: "
                    f"{saved.get(key)!r} then, {now.get(key)!r} now)"
                    for key in different[:5]
                ]
                + ([f"... and {len(different) - 5} more keys"] if len(different) > 5 else [])
                + [
                    "resume with the configuration of the stopped run, or start afresh with "
                    "--overwrite"
                ]
            )
        if (header["windows"], header["windows_per_chunk"]) != (self.windows, self.chunk):
            raise DataError(
                f"--resume: {self.path} holds {header['windows']} windows in chunks of "
                f"{header['windows_per_chunk']}, this run schedules {self.windows} in chunks of "
                f"{self.chunk}"
            )
        zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), chunk_like)
        like = {
            "background": np.zeros(np.shape(background_like), np.asarray(background_like).dtype),
            "chunks": [zeros] * header["chunks_done"],
        }
        _, tree = load_tree(self.path, like, FORMAT)
        return tree["background"], list(tree["chunks"])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
