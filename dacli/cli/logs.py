"""Logging and progress: rich on a terminal, plain timestamped lines in batch logs (stderr)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when a bar is drawn
    from rich.progress import Progress, TaskID


def is_terminal() -> bool:
    return sys.stderr.isatty()


def setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logger = logging.getLogger("dacli")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(level)
    if is_terminal():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    logger.addHandler(handler)


class _TerminalProgress:
    """A rich progress bar on stderr while in the ``with`` block, only on a terminal and without
    -q."""

    label = ""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.log = logging.getLogger("dacli")

    def __enter__(self):
        if is_terminal() and not self.quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn(self.label),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)


class WindowProgress(_TerminalProgress):
    """Reports each finished window: a rich progress bar on a terminal, a log line otherwise."""

    label = "window"

    def __call__(self, k: int, total: int, record: dict) -> None:
        status = (
            f"J {record['cost_initial']:.4g} -> {record['cost_final']:.4g}, "
            f"{record['iterations']} it" + ("" if record["converged"] else " (not converged)")
        )
        if record.get("analysis_rmse") == record.get("analysis_rmse"):  # not nan
            status += f", rmse b {record['background_rmse']:.3g} a {record['analysis_rmse']:.3g}"
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task("assimilate", total=total, status="")
            self.progress.update(self.task, completed=k + 1, status=status)
        else:
            self.log.info(
                "window %d/%d: %s, %d obs", k + 1, total, status, record["observations_used"]
            )


class TrainingProgress(_TerminalProgress):
    """Reports training batches: a rich progress bar (epoch, batch, loss, validation RMSE) on a
    terminal; in batch logs the per-epoch lines of :mod:`dacli.run.train` suffice."""

    label = "train"

    def __init__(self, quiet: bool):
        super().__init__(quiet)
        self.validation = "-"

    def batch(self, epoch: int, epochs: int, batch: int, batches: int, loss: float) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task(
                "train", total=epochs * batches, completed=(epoch - 1) * batches, status=""
            )
        status = (
            f"epoch {epoch}/{epochs} batch {batch}/{batches} loss {loss:.4g} "
            f"val RMSE {self.validation}"
        )
        self.progress.update(self.task, completed=(epoch - 1) * batches + batch, status=status)

    def epoch(self, record: dict) -> None:
        self.validation = f"{record['validation_rmse']:.4g}"
