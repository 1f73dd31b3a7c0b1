"""The options several commands share, defined once: typer ``Annotated`` aliases and their defaults.

A command takes the shared options it needs by name (:data:`SHARED`) through
:func:`dacli.cli.command.command`, which adds them to its signature and hands their values over as
one :class:`dacli.cli.command.CommandOptions`. Options of one command only are written in that
command's module. Importing this module imports typer and nothing heavy (``dacli --help``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ConfigPath = Annotated[Path, typer.Argument(help="TOML configuration file.", show_default=False)]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key: --set method.max_steps=50 (repeatable)."),
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing output files.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
QuietOption = Annotated[
    bool, typer.Option("-q", "--quiet", help="Only warnings and errors on stderr.")
]
VerboseOption = Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")]
TracebackOption = Annotated[
    bool, typer.Option("--traceback", help="Show the Python traceback on errors.")
]
DeviceOption = Annotated[
    str | None, typer.Option("--device", help="auto | cpu | gpu (overrides run.device).")
]
PrecisionOption = Annotated[
    str | None,
    typer.Option("--precision", help="float32 | float64 (overrides run.precision)."),
]

# Shared option -> (annotation, default), under the name of the CommandOptions field it fills.
SHARED: dict[str, tuple[Any, Any]] = {
    "overrides": (SetOption, None),
    "overwrite": (OverwriteOption, False),
    "json": (JsonOption, False),
    "quiet": (QuietOption, False),
    "verbose": (VerboseOption, False),
    "traceback": (TracebackOption, False),
    "device": (DeviceOption, None),
    "precision": (PrecisionOption, None),
}

# The shared options of the commands that only read and report (validate, plot, merge), ...
OUTPUT = ("json", "quiet", "verbose", "traceback")
# ... and of those that run a configured computation and write its files, in --help order.
CONFIGURED = ("overrides", "overwrite", *OUTPUT, "device", "precision")
