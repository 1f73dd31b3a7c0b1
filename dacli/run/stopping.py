"""Clean stops for batch jobs: signals set a flag, the run stops at its next safe point.

Slurm sends SIGTERM at a job's time limit (after ``--signal=USR1@300``, the chosen signal that
many seconds before), Ctrl-C sends SIGINT. A handler that raised inside a compiled JAX call
would lose the work in flight and could leave half-written files, so the handlers
(:mod:`dacli.stop_signals`, installed when the process starts) only record the signal; the
commands look at :meth:`StopSignals.requested` before their first window and between compiled
chunks (windows, training batches), write a checkpoint and the diagnostics so far atomically when
windows are done, and raise :class:`Interrupted` — exit 130 for SIGINT, 143 otherwise (Slurm's
early-warning signal included: the job is being ended by its scheduler). ``--resume`` continues
from the checkpoint to the same final output as an uninterrupted run. A signal that arrives after
the output was written changes nothing: the run ends normally (exit 0).
"""

from __future__ import annotations

import logging
import signal

from dacli import stop_signals
from dacli.config.schema import signal_number
from dacli.errors import DacliError

log = logging.getLogger("dacli")


class Interrupted(DacliError):
    """The run stopped on a signal: after writing its checkpoint (``--resume`` continues it), or
    before its first window with nothing to resume (run the same command again)."""

    def __init__(self, message: str, number: int):
        super().__init__(message)
        self.signal_number = number
        self.exit_code = stop_signals.exit_code(number)


class StopSignals:
    """For one run: the stop signals (:data:`dacli.stop_signals.STOP_SIGNALS` and ``extra``) are
    recorded.

    Under the ``dacli`` command the handlers were installed at process start and, from the
    ``with`` block on, only record signals until the process exits (a signal after the output
    was written changes nothing). Called as a library, the handlers are installed for the
    ``with`` block only and a request from an earlier run is forgotten. Off the main thread
    (where Python cannot install handlers) nothing is installed and :meth:`requested` stays None.
    """

    def __init__(self, extra: str | None = None):
        self.numbers: list[int] = [*stop_signals.STOP_SIGNALS]
        if extra is not None and signal_number(extra) not in self.numbers:
            self.numbers.append(signal_number(extra))
        self._added: list[int] = []
        self._outermost = False

    def __enter__(self):
        self._added = stop_signals.install(self.numbers)
        self._outermost = (
            signal.SIGTERM in self._added
        )  # a library caller's run (not the dacli process)
        if self._outermost:
            stop_signals.forget()
        stop_signals.defer()
        return self

    def __exit__(self, *exc):
        stop_signals.uninstall(self._added)
        if self._outermost:
            stop_signals.defer(False)
        self._added = []

    def requested(self) -> int | None:
        """The signal number received, or None."""
        return stop_signals.requested()

    def name(self) -> str:
        number = self.requested()
        return signal.Signals(number).name if number is not None else ""

    def raise_if_requested(self, where: str, what_remains: str) -> None:
        """Raise :class:`Interrupted` now if a stop was requested (``where``: "before window 1 of
        50")."""
        number = self.requested()
        if number is not None:
            raise Interrupted(f"stopped by {self.name()} {where}; {what_remains}", number)
