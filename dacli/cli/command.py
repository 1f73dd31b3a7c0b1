"""What every command does around its work: shared options, logging, errors -> exit codes, --json.

A command module writes its own options and two small functions: the work (import the run
module, call it on the loaded config) and the report (log lines, :meth:`CommandOptions.emit`). The
:func:`command` decorator adds the shared options (:mod:`dacli.cli.options`) to its signature;
:func:`run_configured` loads the configuration *before* the work imports the run module, so
``--help`` and configuration errors never import JAX; :func:`run_command` sets up logging, maps
errors to exit codes (:mod:`dacli.errors`) and hands the result to the report.

Not for library code: these functions print, exit and read ``sys.argv``; call the run functions.
"""

from __future__ import annotations

import functools
import inspect
import json
import shlex
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from traceback import print_exc
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from dacli.cli.logs import command_display, setup_logging
from dacli.cli.options import SHARED
from dacli.cli.render import result_json
from dacli.errors import INTERNAL_ERROR, INTERRUPTED_SIGINT, ConfigError, DacliError

if TYPE_CHECKING:  # the config records import pydantic: not at --help time
    from dacli.config import Config

Result = TypeVar("Result")


@dataclass(frozen=True)
class CommandOptions:
    """The shared options of one command line (a field a command does not take keeps its
    default)."""

    overrides: tuple[str, ...] = ()  # --set, in the order given
    overwrite: bool = False
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    traceback: bool = False
    device: str | None = None
    precision: str | None = None

    def load(self, path: Path, extra: Sequence[str] = ()) -> Config:
        """The validated config: ``path`` with --set, then ``extra``, then --device and --precision
        as overrides (:func:`dacli.config.load`)."""
        from dacli.config import load

        items = [*self.overrides, *extra]
        if self.device is not None:
            items.append(f'run.device="{self.device}"')
        if self.precision is not None:
            items.append(f'run.precision="{self.precision}"')
        return load(path, items)

    def emit(self, result: Any) -> None:
        """With --json, print ``result`` (a result record or a dict) as strict JSON on stdout."""
        if not self.json:
            return
        from dacli.io.json_values import json_safe

        payload = result_json(result) if is_dataclass(result) else result
        text = json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False)
        sys.stdout.write(text + "\n")


def command(*order: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared options (keys of :data:`SHARED`) named in ``order``.

    The command declares a keyword-only parameter ``options: CommandOptions`` and receives the
    shared options' values there. Its --help lists first its own parameters that ``order`` does
    not name, in their order, then those ``order`` names: shared options and own parameters
    (``train``'s --resume sits between --set and --overwrite). Register the result with
    ``app.command()``. Not for a function that takes ``**kwargs``.
    """

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        parameters = _signature(function, order)
        shared = [name for name in order if name in SHARED]

        @functools.wraps(function)
        def invoke(**values: Any) -> None:
            given = {name: values.pop(name) for name in shared}
            given["overrides"] = tuple(given.get("overrides") or ())
            function(options=CommandOptions(**given), **values)

        invoke.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        invoke.__annotations__ = {p.name: p.annotation for p in parameters}
        return invoke

    return decorate


def _signature(function: Callable[..., None], order: Sequence[str]) -> list[inspect.Parameter]:
    """The parameters typer reads for ``function`` with the shared options in ``order``."""
    hints = typing.get_type_hints(function, include_extras=True)  # annotations are strings here
    own = {
        name: parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[name])
        for name, parameter in inspect.signature(function).parameters.items()
    }
    missing = [name for name in [*order, "options"] if name not in SHARED and name not in own]
    if missing:
        raise TypeError(f"{function.__name__}: no parameter or shared option {missing}")
    shared = {
        name: inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default
        )
        for name, (kind, default) in SHARED.items()
    }
    first = [parameter for name, parameter in own.items() if name not in (*order, "options")]
    return first + [shared[name] if name in SHARED else own[name] for name in order]


def fail(message: str, code: int) -> typing.NoReturn:
    """Print ``dacli: error: message`` on stderr and exit with ``code``."""
    typer.echo(f"dacli: error: {message}", err=True)
    raise typer.Exit(code)


def guard(traceback: bool, action: Callable[[], Result]) -> Result:
    """Run ``action``; map user errors to their exit codes, never show a traceback unless asked."""
    try:
        return action()
    except typer.Exit:
        raise
    except DacliError as exc:
        if getattr(exc, "signal_number", None) is not None:  # a clean stop on a signal
            typer.echo(f"dacli: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        if traceback:
            print_exc()
        fail(_option_error(exc) or str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", INTERRUPTED_SIGINT)
    except Exception as exc:  # a bug: say so, keep the exit code distinct
        if traceback:
            print_exc()
        fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)",
            INTERNAL_ERROR,
        )


def _option_error(exc: DacliError) -> str | None:
    """A configuration error about command-line options only (``--values``, ``--lead-time``...,
    not ``--set``), said as an option error: one line per problem, no "invalid configuration"."""
    if not isinstance(exc, ConfigError) or not exc.problems:
        return None
    if all(p.startswith("--") and not p.startswith("--set ") for p in exc.problems):
        return "\ndacli: error: ".join(exc.problems)
    return None


def run_command(
    options: CommandOptions, work: Callable[[], Result], report: Callable[[Result], None]
) -> None:
    """Set up logging (-q, -v), run ``work`` under :func:`guard` with the terminal's display
    (:func:`dacli.cli.logs.command_display`, "reading" from the start), hand its result to
    ``report`` once the display is done."""
    console = setup_logging(options.quiet, options.verbose)

    def displayed() -> Result:
        with command_display(None if options.quiet else console):
            return work()

    report(guard(options.traceback, displayed))


def run_configured(
    options: CommandOptions,
    config: Path,
    work: Callable[[Config], Result],
    report: Callable[[Result], None],
    extra: Sequence[str] = (),
) -> None:
    """:func:`run_command` for a command that reads a configuration: ``work`` gets it loaded
    (:meth:`CommandOptions.load`), so it imports the run module (and JAX) only for a valid one."""
    run_command(options, lambda: work(options.load(config, extra)), report)


def command_line() -> str:
    """The command as typed (recorded in the files a command writes)."""
    return "dacli " + " ".join(shlex.quote(a) for a in sys.argv[1:])
