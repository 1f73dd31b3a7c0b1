"""``dacli validate``: check a configuration and open its input files, computing nothing."""

from __future__ import annotations

import logging

from dacli.cli.command import CommandOptions, command, run_configured
from dacli.cli.options import OUTPUT, ConfigPath
from dacli.cli.render import result_json


@command("overrides", *OUTPUT)
def validate(config: ConfigPath, *, options: CommandOptions) -> None:
    """Check the config and open every input file, without computing anything."""

    def work(cfg):
        from dacli.run.validate import validate as run_validate

        return run_validate(cfg)

    def report(result) -> None:
        summary = result_json(result)
        logging.getLogger("dacli").info(
            "%s is valid: %s",
            config,
            ", ".join(f"{k} {v}" for k, v in summary.items() if k != "config"),
        )
        options.emit(summary)

    run_configured(options, config, work, report)
