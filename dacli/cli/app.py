"""The ``dacli`` command line: one typer app, one module per command (``dacli.cli.<command>``).

Each command parses its options, calls one run function and renders the result; what they all
do around that (shared options, logging, errors -> exit codes, ``--json``) is
:mod:`dacli.cli.command`. Heavy imports (JAX and friends) happen inside the commands, after the
configuration is loaded, so ``dacli --help`` is instant.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dacli import __version__, stop_signals
from dacli.cli.assimilate import assimilate
from dacli.cli.check_adjoints import check_adjoints
from dacli.cli.forecast import forecast
from dacli.cli.merge import merge
from dacli.cli.plot import plot
from dacli.cli.simulate import simulate
from dacli.cli.sweep import sweep
from dacli.cli.train import train
from dacli.cli.tune import tune
from dacli.cli.validate import validate


class DacliGroup(TyperGroup):
    """typer's group, its usage errors said as dacli says every error: one line on stderr,
    ``dacli: error: Invalid value for '--device': 'bogus' is not one of 'auto', 'cpu', 'gpu'. (see
    'dacli assimilate -h')``, exit 2, instead of a boxed panel. Help for no arguments is typer's."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def run() -> Any:  # not standalone: errors and exits come back here
            return super(DacliGroup, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        if not standalone_mode:
            return run()
        try:
            code = run()
        except typer.TyperException as wrong:  # typer's (vendored) click usage errors
            # typer checks a Literal through pydantic, whose message starts "Value error, ".
            message = wrong.format_message().replace("Value error, ", "")
            if message:  # empty: the help for no arguments, shown already
                context = getattr(wrong, "ctx", None)
                hint = f" (see '{context.command_path} -h')" if context is not None else ""
                typer.echo(f"dacli: error: {message}{hint}", err=True)
            sys.exit(getattr(wrong, "exit_code", 2))
        except typer.Abort:
            typer.echo("dacli: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=DacliGroup,
    name="dacli",
    help=(
        "Variational data assimilation from the command line, on JAX: strong-constraint, "
        "weak-constraint and incremental 4DVar, 3DVar, 3D-FGAT and the learned 4DVarNet; twin "
        "experiments, forecasts, training, tuning and gradient checks."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
for _command in (assimilate, simulate, forecast, train, tune, validate, plot, sweep, merge):
    app.command()(_command)
app.command("check-adjoints")(check_adjoints)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dacli {__version__}")
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "-V", "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
]


@app.callback()
def _main(version: VersionOption = False) -> None:
    """Variational data assimilation from the command line, on JAX: strong-constraint,
    weak-constraint and incremental 4DVar, 3DVar, 3D-FGAT and the learned 4DVarNet; twin
    experiments, forecasts, training, tuning and gradient checks."""


def main() -> None:
    """Run the command line; :func:`dacli.__main__.main` installed the stop-signal handlers
    before."""
    try:
        app()
    except SystemExit as finished:
        received = stop_signals.requested()
        if finished.code in (0, None) and received is not None:
            logging.getLogger("dacli").warning(
                "received %s after the work was done: ended normally", signal.Signals(received).name
            )
        raise
