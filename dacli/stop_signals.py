"""Stop requests by signal, handled from process start to exit (standard library only).

A batch scheduler may signal a job at any moment: while Python imports JAX, while XLA compiles,
between windows, or after the output file was written. Python's default action for SIGUSR1,
SIGUSR2 and SIGTERM ends the process at once (exit 138 or 143, no message, a finished run reported
as failed), so the ``dacli`` entry point calls :func:`install_for_process` before it imports
anything heavy, and the handlers stay until the process exits. They act in one of two modes:

- *at once* (from process start until a command can stop cleanly, and throughout commands that
  have no safe point): the handler raises :class:`SignalReceived`, which the command line turns
  into exit 143 (130 for SIGINT) — nothing was computed, nothing to resume, no file touched
  (writers remove their temporary files);
- *deferred* (``assimilate``, ``train``, ``forecast``, ``sweep`` from their start to process exit,
  :func:`defer`): the handler only records the signal; the command looks at :func:`requested`
  where stopping is safe (before the first window, between compiled chunks) and a run that
  already wrote its file ends normally.

Library callers (tests, notebooks) get deferred handlers for the length of a run from
:class:`dacli.run.stopping.StopSignals`, which restores the previous ones afterwards.

A second SIGINT while a stop is pending raises ``KeyboardInterrupt``, so an impatient Ctrl-C
Ctrl-C still ends a run stuck in one long compiled call.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from dacli.errors import INTERRUPTED_SIGINT, INTERRUPTED_SIGTERM

# Always a request to stop: the scheduler's end (TERM), Ctrl-C (INT), and the early-warning
# signals batch scripts choose (Slurm's --signal=USR1@300, PBS/LSF scripts' USR2).
# run.stop_signal adds any other catchable signal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)

_received: int | None = None
# What signal.signal returns and accepts: a handler, SIG_DFL/SIG_IGN, or None (not set from Python).
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
_installed: dict[int, _Handler] = {}  # signal number -> the handler it replaced
_for_process = False
_deferred = False


class SignalReceived(BaseException):
    """A stop signal arrived while nothing could stop cleanly: end now (exit 130 / 143).

    A ``BaseException`` like ``KeyboardInterrupt``: ``except Exception`` blocks do not swallow it.
    """

    def __init__(self, number: int):
        super().__init__(
            f"stopped by {signal.Signals(number).name} before the command finished (nothing to "
            "resume: run it again)"
        )
        self.signal_number = number
        self.exit_code = exit_code(number)


def exit_code(number: int) -> int:
    """130 for SIGINT, 143 for any other stop signal (a scheduler ending the job)."""
    return INTERRUPTED_SIGINT if number == signal.SIGINT else INTERRUPTED_SIGTERM


def _record(number, frame) -> None:
    global _received
    if not _deferred:
        raise SignalReceived(number)
    if _received is not None and number == signal.SIGINT:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt
    _received = number
    logging.getLogger("dacli").warning(
        "received %s: stopping at the next safe point (before the first window or between "
        "compiled chunks; a checkpoint if windows are done); send SIGINT again to abort at once",
        signal.Signals(number).name,
    )


def install(numbers=STOP_SIGNALS) -> list[int]:
    """Handle ``numbers`` from now on; returns those newly installed (nothing off the main
    thread)."""
    if threading.current_thread() is not threading.main_thread():
        return []
    added = [int(n) for n in numbers if int(n) not in _installed]
    for number in added:
        _installed[number] = signal.signal(number, _record)
    return added


def install_for_process() -> None:
    """Install the handlers, acting at once, for the rest of the process (the entry point's first
    act)."""
    global _for_process
    install()
    _for_process = True


def defer(on: bool = True) -> None:
    """From now on, only record stop signals (``on=False``: act at once again; library use)."""
    global _deferred
    _deferred = on


def for_process() -> bool:
    """True when the handlers were installed at process start and stay until exit."""
    return _for_process


def uninstall(numbers) -> None:
    """Give ``numbers`` their previous handlers back (library use; never after
    :func:`install_for_process`)."""
    if _for_process:
        return
    for number in numbers:
        if number in _installed:
            signal.signal(number, _installed.pop(number))


def requested() -> int | None:
    """The first stop signal received (its number), or None."""
    return _received


def forget() -> None:
    """Clear a recorded request (a library caller starting a new run)."""
    global _received
    _received = None
