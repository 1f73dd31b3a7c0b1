"""Clean stops for batch jobs: signals set a flag, the run stops at its next chunk boundary.

Slurm sends SIGTERM at a job's time limit (after ``--signal=USR1@300``, the chosen signal that
many seconds before), Ctrl-C sends SIGINT. A handler that raised inside a compiled JAX call
would lose the work in flight and could leave half-written files, so :class:`StopSignals` only
records the signal; ``dacli assimilate`` and ``dacli train`` look at :meth:`StopSignals.requested`
between compiled chunks (windows, training batches), write a checkpoint and the diagnostics so
far atomically, and raise :class:`Interrupted` — exit 130 for SIGINT, 143 otherwise (Slurm's
early-warning signal included: the job is being ended by its scheduler). ``--resume`` continues
from the checkpoint to the same final output as an uninterrupted run.

A second SIGINT while a stop is pending restores Python's default behaviour (KeyboardInterrupt),
so an impatient Ctrl-C Ctrl-C still ends a run stuck in one long compiled call.
"""

from __future__ import annotations

import logging
import signal
import threading

from dacli.config.schema import signal_number
from dacli.errors import INTERRUPTED_SIGINT, INTERRUPTED_SIGTERM, DacliError

log = logging.getLogger("dacli")

# Signals that always request a clean stop; run.stop_signal adds one (e.g. "USR1" for Slurm's --signal).
DEFAULT_SIGNALS = ("SIGTERM", "SIGINT")


class Interrupted(DacliError):
    """The run stopped on a signal after writing its checkpoint; ``--resume`` continues it."""

    def __init__(self, message: str, number: int):
        super().__init__(message)
        self.signal_number = number
        self.exit_code = INTERRUPTED_SIGINT if number == signal.SIGINT else INTERRUPTED_SIGTERM


class StopSignals:
    """While in the ``with`` block, SIGTERM, SIGINT and ``extra`` signals request a stop.

    Outside the main thread (where Python cannot install handlers, e.g. under some test runners)
    nothing is installed and :meth:`requested` stays None.
    """

    def __init__(self, extra: str | None = None):
        self.numbers = [int(getattr(signal.Signals, name)) for name in DEFAULT_SIGNALS]
        if extra is not None and signal_number(extra) not in self.numbers:
            self.numbers.append(signal_number(extra))
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, number, frame):
        if self.received is not None and number == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.received = number
        log.warning("received %s: stopping at the next chunk boundary (checkpoint, then exit %d); send SIGINT again "
                    "to abort at once", signal.Signals(number).name,
                    INTERRUPTED_SIGINT if number == signal.SIGINT else INTERRUPTED_SIGTERM)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in self.numbers:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def requested(self) -> int | None:
        """The signal number received, or None."""
        return self.received

    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""
