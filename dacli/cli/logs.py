"""Logging and progress on stderr: rich on a terminal, plain timestamped lines in batch logs.

On a terminal one rich ``Console`` serves the log lines (``RichHandler``) and the command's live
display (:class:`PhaseDisplay`: a spinner with the phase, "reading", "tracing", "compiling",
then a bar "window k/n" or "epoch e/E"), so log lines print above the display instead of through
it. The display starts with the command (:func:`command_display`), before the configuration is
read and JAX imported. Not on a terminal, or with ``-q``, there is no display and the lines are
``2026-01-01T12:00:00 INFO message``. Python warnings (xarray's ``SerializationWarning``...) go
through the same handler, each distinct one once (:func:`setup_logging`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only on a terminal
    from rich.console import Console
    from rich.progress import TaskID

# The display of the command running in this context (None: batch logs, -q, or no command).
_DISPLAY: ContextVar[PhaseDisplay | None] = ContextVar("dacli_display", default=None)


def is_terminal() -> bool:
    return sys.stderr.isatty()


def terminal_console() -> Console:
    """The rich console on stderr that a command's log lines and display share."""
    from rich.console import Console

    return Console(stderr=True)


def setup_logging(quiet: bool, verbose: bool) -> Console | None:
    """The "dacli" logger's handler (and Python warnings routed to it); returns the terminal's
    console, or None for plain lines."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    console = terminal_console() if is_terminal() else None
    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=console, show_path=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    for name, name_level in (("dacli", level), ("py.warnings", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = False
        logger.setLevel(name_level)
        logger.addHandler(handler)
    warnings.showwarning = _WarningLog()
    return console


class _WarningLog:
    """``warnings.showwarning`` replaced: one log line per distinct warning, never Python's
    two-line block with the source line (what :func:`logging.captureWarnings` would print)."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        key = (category.__name__, str(message))
        if key in self.seen:
            return
        self.seen.add(key)
        logging.getLogger("py.warnings").warning(
            "%s: %s (%s:%d)", category.__name__, message, Path(filename).name, lineno
        )


class PhaseDisplay:
    """A command's live line on a terminal: spinner, phase or count, bar, status, times."""

    def __init__(self, console: Console):
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID = self.progress.add_task("reading", total=None, status="")
        self.counted = False  # a count was shown: the final line stays on the terminal

    def phase(self, name: str) -> None:
        """Show ``name`` ("reading", "tracing", "compiling") until a count replaces it."""
        if not self.counted:
            self.progress.update(self.task, description=name, refresh=True)

    def count(self, label: str, done: int, total: int, status: str) -> None:
        """Show ``label`` (e.g. "window 3/50") with a bar at ``done`` of ``total``."""
        self.counted = True
        self.progress.update(
            self.task, description=label, completed=done, total=total, status=status, refresh=True
        )


@contextlib.contextmanager
def command_display(console: Console | None) -> Iterator[PhaseDisplay | None]:
    """The command's display while in the block (none without a console); removed from the
    terminal on an error or when nothing was counted, so an error message stands alone."""
    if console is None:
        yield None
        return
    display = PhaseDisplay(console)
    token = _DISPLAY.set(display)
    display.progress.start()
    try:
        yield display
    except BaseException:
        display.counted = False
        raise
    finally:
        display.progress.live.transient = not display.counted
        display.progress.stop()
        _DISPLAY.reset(token)


def phase_callback() -> Callable[[str], None] | None:
    """The run layer's ``on_phase`` for the command's display, or None (batch logs, -q)."""
    display = _DISPLAY.get()
    return None if display is None else display.phase


def compile_display() -> contextlib.AbstractContextManager[None]:
    """While in the block, JAX's tracing and compiling shown on the display
    (:func:`dacli.run.phases.compile_phases`), for a run function that reports no phases itself."""
    from dacli.run.phases import compile_phases  # imports JAX: only inside a running command

    return compile_phases(phase_callback())


class _TerminalProgress:
    """A command's reports on its display (the command's own, or one of its own on a terminal when
    called outside a command), only on a terminal and without -q."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.display: PhaseDisplay | None = None
        self.log = logging.getLogger("dacli")
        self._own: contextlib.ExitStack | None = None

    def __enter__(self):
        if not self.quiet:
            self.display = _DISPLAY.get()
            if self.display is None and is_terminal():
                self._own = contextlib.ExitStack()
                self.display = self._own.enter_context(command_display(terminal_console()))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._own is not None:
            self._own.__exit__(*exc)

    def phase(self, name: str) -> None:
        """The run layer's ``on_phase``: the phase on the display (nothing in batch logs)."""
        if self.display is not None:
            self.display.phase(name)


class WindowProgress(_TerminalProgress):
    """Reports each finished window: "window k/n" on the display, a log line otherwise."""

    def __call__(self, k: int, total: int, record: dict) -> None:
        status = (
            f"J {record['cost_initial']:.4g} -> {record['cost_final']:.4g}, "
            f"{record['iterations']} it" + ("" if record["converged"] else " (not converged)")
        )
        if record.get("analysis_rmse") == record.get("analysis_rmse"):  # not nan
            status += f", rmse b {record['background_rmse']:.3g} a {record['analysis_rmse']:.3g}"
        if self.display is not None:
            self.display.count(f"window {k + 1}/{total}", k + 1, total, status)
        else:
            self.log.info(
                "window %d/%d: %s, %d obs", k + 1, total, status, record["observations_used"]
            )


class TrainingProgress(_TerminalProgress):
    """Reports training batches: "epoch e/E" and a bar (batch, loss, validation RMSE) on the
    display; in batch logs the per-epoch lines of :mod:`dacli.run.train` suffice."""

    def __init__(self, quiet: bool):
        super().__init__(quiet)
        self.validation = "-"

    def batch(self, epoch: int, epochs: int, batch: int, batches: int, loss: float) -> None:
        if self.display is None:
            return
        status = (
            f"epoch {epoch}/{epochs} batch {batch}/{batches} loss {loss:.4g} "
            f"val RMSE {self.validation}"
        )
        done, total = (epoch - 1) * batches + batch, epochs * batches
        self.display.count(f"epoch {epoch}/{epochs} {done}/{total}", done, total, status)

    def epoch(self, record: dict) -> None:
        self.validation = f"{record['validation_rmse']:.4g}"
