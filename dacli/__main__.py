"""The ``dacli`` entry point (console script and ``python -m dacli``).

Its first act is to install the stop-signal handlers (:mod:`dacli.stop_signals`): a batch
scheduler's signal that arrives while Python imports JAX, or after the output was written, must
not kill the process. Then it sets the process environment the libraries read when they are
imported (:func:`set_process_environment`), so every other dacli module imports JAX, equinox and
numpy at its head. Only then are the command line and its libraries imported; the command line
imports the computing modules inside each command, so ``dacli --help`` loads none of them.
Settings that depend on the configuration (precision, device, compilation cache) are applied
later, once, by :func:`dacli.run.runtime.configure`.

When the command has ended with an exit status, the process ends without Python's interpreter
teardown (:func:`end_without_teardown`): after every ``atexit`` handler (logging's flush, JAX's
distributed shutdown), freeing JAX's and XLA's objects one by one cost 0.45-1.05 s of a 3-4 s
warm ``dacli assimilate`` on 2 cores (benchmarks/warm_start.py), and every file dacli writes is
closed by then.
"""

import atexit
import os
import sys

from dacli import stop_signals

# Read by the libraries at import time; a user's own setting wins.
PROCESS_ENVIRONMENT = {
    # equinox/diffrax/optimistix runtime checks become NaNs instead of host callbacks, which
    # would keep programs out of JAX's persistent compilation cache; every method checks its
    # results for finiteness itself and raises NumericalError (exit 4). Read when equinox is
    # imported.
    "EQX_ON_ERROR": "nan",
    # OpenBLAS's spinning threads (used by jaxlib's LAPACK calls on CPU) fight XLA's own thread
    # pool: measured 15-844 ms per window instead of 5 ms on 2 cores (benchmarks/README.md).
    # Read when numpy is imported.
    "OPENBLAS_NUM_THREADS": "1",
}


def set_process_environment() -> None:
    """Set :data:`PROCESS_ENVIRONMENT` where the user has not; call before numpy or equinox loads.

    Not for library use inside a process that imported them already (the values would be read
    too late); such a caller sets the variables itself before its first import.
    """
    for name, value in PROCESS_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


# The exit status the command ended with, once it has (see end_without_teardown).
_finished: list[int] = []


def exit_status(code: object) -> int:
    """The process exit status Python gives ``SystemExit(code)``: 0 for None, the integer, else 1
    (a message, which Python prints to stderr)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def end_without_teardown() -> None:
    """The last ``atexit`` handler: flush stdout and stderr, then end the process with the
    command's exit status, skipping the interpreter's teardown (see the module docstring).

    Registered by :func:`main` before anything else, so it runs after every other handler. It does
    nothing when the command did not end with an exit status (an exception Python reports itself),
    and it is not for library use: a process that embeds dacli ends as it chooses.
    """
    if not _finished:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written
            pass
    os._exit(_finished[0])


def main() -> None:
    """Install the stop-signal handlers, set the process environment, run the command line."""
    stop_signals.install_for_process()
    set_process_environment()
    atexit.register(end_without_teardown)
    try:
        # Imported here, after the handlers and the environment: see the module docstring.
        from dacli.cli.app import main as run_command_line

        run_command_line()
    except (
        stop_signals.SignalReceived
    ) as received:  # while importing, or in a command with no safe point
        sys.stderr.write(f"dacli: {received}\n")
        _finished.append(received.exit_code)
        sys.exit(received.exit_code)
    except SystemExit as ended:
        _finished.append(exit_status(ended.code))
        raise
    _finished.append(0)


if __name__ == "__main__":
    main()
