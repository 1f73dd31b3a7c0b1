"""``dacli simulate``: a twin experiment's truth, observations and background files."""

from __future__ import annotations

from dacli.cli.command import CommandOptions, command, run_configured
from dacli.cli.logs import compile_display
from dacli.cli.options import CONFIGURED, ConfigPath
from dacli.cli.render import log_written, result_json


@command(*CONFIGURED)
def simulate(config: ConfigPath, *, options: CommandOptions) -> None:
    """Make a twin experiment: truth run, synthetic observations and a background (NetCDF).

    Writes three files, where the config's truth.path, observations.path and background.path say
    (change them with --set), so it takes no -o.
    """

    def work(cfg):
        from dacli.run.simulate import simulate as run_simulate

        with compile_display():
            return run_simulate(cfg, overwrite=options.overwrite)

    def report(result) -> None:
        summary = result_json(result)
        log_written(summary["files"])
        options.emit(summary)

    run_configured(options, config, work, report)
