"""``dacli train``: train 4DVarNet; a method without a network is tuned instead (``dacli tune``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from dacli.cli.command import CommandOptions, command, run_configured
from dacli.cli.logs import TrainingProgress
from dacli.cli.options import CONFIGURED, ConfigPath
from dacli.cli.tune import report_tuning

ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Continue from <train.directory>/last.eqx.")
]
RestartOption = Annotated[
    bool,
    typer.Option(
        "--restart",
        help=(
            "Discard a stopped training's checkpoint (<train.directory>/last.eqx) and start afresh."
        ),
    ),
]


@command("overrides", "resume", "restart", *CONFIGURED[1:])
def train(
    config: ConfigPath,
    resume: ResumeOption = False,
    restart: RestartOption = False,
    *,
    options: CommandOptions,
) -> None:
    """Train 4DVarNet (config sections network and train) on twin windows; checkpoint every epoch.

    With a method without a network (strong4dvar, weak4dvar, 3dvar, 3dfgat) tune its
    hyperparameters instead, as dacli tune does. Writes several files (train.directory), so it
    takes no -o.
    """

    def work(cfg):
        from dacli.config.registry import capabilities
        from dacli.run.train import train as run_train
        from dacli.run.tune import tune as run_tune

        if not capabilities(cfg.method.kind).learned and not resume:  # --resume: run_train refuses
            logging.getLogger("dacli").info(
                "method.kind = %r has no network: dacli train tunes its hyperparameters, "
                "as dacli tune does",
                cfg.method.kind,
            )
            return run_tune(cfg, overwrite=options.overwrite)
        with TrainingProgress(options.quiet) as progress:
            return run_train(
                cfg,
                resume=resume,
                overwrite=options.overwrite,
                restart=restart,
                on_batch=progress.batch,
                on_epoch=progress.epoch,
                on_phase=progress.phase,
            )

    def report(result) -> None:
        from dacli.run.tune import TuneResult

        if isinstance(result, TuneResult):
            report_tuning(result, options)
            return
        logging.getLogger("dacli").info(
            "trained %d epoch(s): validation RMSE %.4g (best %.4g; observation error %.4g); "
            "best model %s",
            result.epochs,
            result.validation_rmse,
            result.best_validation_rmse,
            result.observation_error_std,
            result.files.best,
        )
        options.emit(result)

    run_configured(options, config, work, report)
