"""``dacli merge``: the analysis files of a run's window ranges put back together as one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, command_line, fail, run_command
from dacli.cli.options import OUTPUT
from dacli.errors import USAGE_ERROR

PartPaths = Annotated[
    list[Path],
    typer.Argument(
        help=(
            "Analysis files of consecutive window ranges of one run (dacli assimilate --windows "
            "A:B), any order; at least two."
        ),
        show_default=False,
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="The merged analysis file to write.", show_default=False),
]


@command("overwrite", *OUTPUT)
def merge(inputs: PartPaths, output: OutputOption = None, *, options: CommandOptions) -> None:
    """Put the analysis files of a run's window ranges (job-array tasks) back together as one file:
    dacli merge -o OUT PART PART..."""
    if output is None:  # never from the positional arguments: neither order can then replace a part
        fail(
            f"merge: give the merged file with -o/--output: dacli merge -o OUT PART PART... (found "
            f"no -o; the arguments {' '.join(map(str, inputs))} are all taken as parts)",
            USAGE_ERROR,
        )

    def work():
        from dacli.run.merge import merge as run_merge

        parts: list[str | Path] = [*inputs]
        return run_merge(output, parts, overwrite=options.overwrite, command=command_line())

    def report(merged) -> None:
        logging.getLogger("dacli").info(
            "wrote %s: %d windows from %d files", merged.output, merged.windows, len(merged.parts)
        )
        options.emit(merged)

    run_command(options, work, report)
