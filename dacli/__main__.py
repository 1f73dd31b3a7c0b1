"""The ``dacli`` entry point (console script and ``python -m dacli``).

Its first act is to install the stop-signal handlers (:mod:`dacli.stop_signals`): a batch
scheduler's signal that arrives while Python imports JAX, or after the output was written, must
not kill the process. Then it sets the process environment the libraries read when they are
imported (:func:`set_process_environment`), so every other dacli module imports JAX, equinox and
numpy at its head. Only then are the command line and its libraries imported; the command line
imports the computing modules inside each command, so ``dacli --help`` loads none of them.
Settings that depend on the configuration (precision, device, compilation cache) are applied
later, once, by :func:`dacli.run.runtime.configure`.
"""

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


def main() -> None:
    """Install the stop-signal handlers, set the process environment, run the command line."""
    stop_signals.install_for_process()
    set_process_environment()
    try:
        # Imported here, after the handlers and the environment: see the module docstring.
        from dacli.cli.app import main as run_command_line

        run_command_line()
    except (
        stop_signals.SignalReceived
    ) as received:  # while importing, or in a command with no safe point
        sys.stderr.write(f"dacli: {received}\n")
        sys.exit(received.exit_code)


if __name__ == "__main__":
    main()
