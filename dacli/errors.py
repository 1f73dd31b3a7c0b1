"""Errors users can cause, each tied to one documented exit code.

The CLI maps these to exit codes and prints their message without a traceback; anything
else is an internal error (exit 70). See README "Exit codes".
"""

from __future__ import annotations

SUCCESS = 0
CHECK_FAILED = 1
USAGE_ERROR = 2
DATA_ERROR = 3
NUMERICAL_ERROR = 4
OUTPUT_ERROR = 5
INTERNAL_ERROR = 70
INTERRUPTED_SIGINT = 130
INTERRUPTED_SIGTERM = 143


class DacliError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    exit_code = INTERNAL_ERROR


class ConfigError(DacliError):
    """The configuration (file, overrides or options) is invalid. Holds every problem found."""

    exit_code = USAGE_ERROR

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration {source}" if source else "invalid configuration"
        lines = [f"{head} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class DataError(DacliError):
    """An input file is missing, unreadable, or does not hold what the config says."""

    exit_code = DATA_ERROR


class NumericalError(DacliError):
    """The computation produced non-finite values; no output file was written."""

    exit_code = NUMERICAL_ERROR


class OutputError(DacliError):
    """The output cannot be written (exists without --overwrite, unwritable folder)."""

    exit_code = OUTPUT_ERROR


class DeviceError(DacliError):
    """The requested device (e.g. a GPU) is not available."""

    exit_code = USAGE_ERROR
