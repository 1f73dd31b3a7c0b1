"""``dacli sweep``: the cycled experiment once per value of an error scale, as one program."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, run_configured
from dacli.cli.logs import compile_display
from dacli.cli.options import (
    CONFIGURED,
    ConfigPath,
    DeprecatedOutOption,
    chosen_output,
    warn_deprecated_out,
)
from dacli.cli.render import result_json, rmse_change

ValuesOption = Annotated[
    str,
    typer.Option(
        "--values",
        help=(
            "KEY=v1,v2,...: the error scale to sweep (background.covariance.std, "
            "method.model_error.covariance.std) and its values; each is one whole cycled run."
        ),
        show_default=False,
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="Also write the table to this CSV file.",
        show_default=False,
    ),
]


@command("output", *CONFIGURED)
def sweep(
    config: ConfigPath,
    values: ValuesOption,
    output: OutputOption = None,
    out: DeprecatedOutOption = None,
    *,
    options: CommandOptions,
) -> None:
    """The cycled experiment once per value of an error scale, all values in one program over the
    devices."""
    table = chosen_output(output, out)

    def work(cfg):
        from dacli.io.netcdf import check_writable
        from dacli.run.sweep import parse_values, write_table
        from dacli.run.sweep import sweep as run_sweep

        warn_deprecated_out(out)
        key, numbers = parse_values(values)
        if table is not None:
            check_writable(table, options.overwrite)
        with compile_display():
            result = run_sweep(cfg, key, numbers)
        if table is not None and result.process == 0:  # multi-process: process 0 writes it
            write_table(result, table, options.overwrite)
            result = dataclasses.replace(result, table=str(table))
        return result

    run_configured(options, config, work, lambda result: _report(result, options))


def _report(result, options: CommandOptions) -> None:
    """One log line per value and the JSON summary, on process 0."""
    log = logging.getLogger("dacli")
    if result.process != 0:  # a multi-process launch: process 0 reports
        log.debug(
            "process %d of %d: ran its share of the values; process 0 reports",
            result.process,
            result.processes,
        )
        return
    for row in result.rows:
        log.info(
            "%s = %g: mean J %.6g, %d/%d converged, %.1f iterations%s",
            result.key,
            row.value,
            row.cost_final_mean,
            row.converged_windows,
            row.windows,
            row.iterations_mean,
            rmse_change(row.background_rmse, row.analysis_rmse),
        )
    if options.json:  # each row's value named after the swept key, as in the table
        options.emit(
            {
                **result_json(result),
                "rows": [row.named(result.key) for row in result.rows],
                "best": result.best.named(result.key),
            }
        )
