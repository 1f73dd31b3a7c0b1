"""The ``dacli`` entry point (console script and ``python -m dacli``).

Its first act is to install the stop-signal handlers (:mod:`dacli.stop_signals`): a batch
scheduler's signal that arrives while Python imports JAX, or after the output was written, must
not kill the process. Only then are the command line and its libraries imported.
"""

import os
import sys


def main() -> None:
    from dacli import stop_signals

    stop_signals.install_for_process()
    # OpenBLAS's spinning threads (used by jaxlib's LAPACK calls on CPU) fight XLA's own thread
    # pool: measured 15-844 ms per window instead of 5 ms on 2 cores (benchmarks/README.md).
    # Must be set before numpy loads; a user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        from dacli.cli.app import main as run_command_line

        run_command_line()
    except stop_signals.SignalReceived as received:  # while importing, or in a command with no safe point
        sys.stderr.write(f"dacli: {received}\n")
        sys.exit(received.exit_code)


if __name__ == "__main__":
    main()
