"""The options several commands share, defined once: typer ``Annotated`` aliases and their defaults.

A command takes the shared options it needs by name (:data:`SHARED`) through
:func:`dacli.cli.command.command`, which adds them to its signature and hands their values over as
one :class:`dacli.cli.command.CommandOptions`. Options of one command only are written in that
command's module. Importing this module imports typer and nothing heavy (``dacli --help``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

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
# The choices of run.device and run.precision (dacli.config.schema.RunConfig; a test checks they
# agree), spelled here so that --help does not import the schema (pydantic).
Device = Literal["auto", "cpu", "gpu"]
Precision = Literal["float32", "float64"]
DeviceOption = Annotated[
    Device | None,
    typer.Option(
        "--device",
        help="Where to compute; overrides run.device.",
        show_default="run.device",
    ),
]
PrecisionOption = Annotated[
    Precision | None,
    typer.Option(
        "--precision",
        help="Floating-point precision; overrides run.precision.",
        show_default="run.precision",
    ),
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


# --out, the spelling before -o/--output (forecast, sweep): hidden, same meaning, warned once.
DeprecatedOutOption = Annotated[Path | None, typer.Option("--out", hidden=True)]


def chosen_output(output: Path | None, out: Path | None) -> Path | None:
    """-o/--output, or the deprecated --out; both given: a usage error (exit 2). Call it in the
    command's body (click reports the error); :func:`warn_deprecated_out` once logging is set."""
    if out is not None and output is not None:
        raise typer.BadParameter(
            "give -o/--output only (--out is its old spelling)", param_hint="'--out'"
        )
    return out if output is None else output


def warn_deprecated_out(out: Path | None) -> None:
    """Log, once per command, that --out was used instead of -o/--output."""
    if out is not None:
        logging.getLogger("dacli").warning("--out is deprecated: use -o/--output")
