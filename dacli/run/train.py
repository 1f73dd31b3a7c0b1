"""``dacli train``: train 4DVarNet end to end on (observations, truth) windows; returns a summary.

(A configuration with a classical method.kind is tuned instead: :mod:`dacli.run.tune`.)

Data: consecutive windows of ``window.length`` from ``window.start``, cut from (a) the files
``train.observations`` and ``train.truth`` (observations in any layout ``[observations]``
describes: gridded, CF points, IODA), or (b) the twin experiment ``dacli simulate`` would make
(``[simulate]``: gridded, random points or satellite tracks) but seeded with ``train.seed``, by
default run.seed + 1, so the simulated twin stays held out. Observations reach the network as
in ``dacli assimilate`` (:mod:`dacli.learned.data`). The first ``train.windows`` train, the
next ``train.validation_windows`` validate. Each epoch visits the training windows once in a random order (batches of
``batch_size``, one optax step each), then reconstructs the validation windows. After every
epoch ``<directory>/last.eqx`` (network, optimiser state, epoch, step, the batch RNG's state,
history) and ``metrics.json`` are written atomically; an epoch with a better validation RMSE also
writes ``network.checkpoint``. ``resume=True`` continues from ``last.eqx`` and reaches exactly the
parameters of an uninterrupted run. ``loss.png`` shows the curves.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dacli.build.registry import capabilities
from dacli.config.schema import Config
from dacli.errors import ConfigError, DataError, OutputError
from dacli.observations.windows import whole_steps
from dacli.run.stopping import Interrupted, StopSignals

log = logging.getLogger("dacli")


@dataclass
class TrainResult:
    summary: dict
    files: dict[str, str]


def training_seed(config: Config) -> int:
    """The training truth's seed: not dacli simulate's (run.seed), so a simulated twin stays unseen."""
    return config.train.seed if config.train.seed is not None else config.run.seed + 1


def _require(config: Config) -> None:
    problems = [f"{name}: section missing; dacli train needs [{name}] ({why})" for name, why in (
        ("network", "the 4DVarNet architecture and the checkpoint path"), ("train", "the optimisation settings"))
        if getattr(config, name) is None]
    if config.train is not None and config.train.observations is None and config.simulate is None:
        problems.append("simulate: section missing; dacli train needs [simulate] to make its training windows, "
                        "or train.observations and train.truth to read them from files")
    if problems:
        raise ConfigError(problems)


def _identity(config: Config, shape: dict) -> dict:
    """What a checkpoint must share with the configuration to be resumed (known before any data)."""
    return {"network": config.network.model_dump(exclude={"checkpoint"}), "shape": shape,
            "train": config.train.model_dump(exclude={"directory"}), "seed": training_seed(config),
            "model": config.model.model_dump(), "precision": config.run.precision}


def _with_defaults(header: dict) -> dict:
    """A checkpoint header whose [network] and [train] lack keys added since it was written: their defaults."""
    from dacli.config.schema import NetworkConfig, TrainConfig

    header = dict(header)
    for key, section in (("network", NetworkConfig), ("train", TrainConfig)):
        if isinstance(header.get(key), dict):
            defaults = {name: field.default for name, field in section.model_fields.items() if not field.is_required()}
            header[key] = {**{k: v for k, v in defaults.items() if k not in ("checkpoint", "directory")}, **header[key]}
    return header


def _check_resumable(header: dict, expected: dict, path: Path) -> None:
    header = _with_defaults(header)
    different = [key for key in ("network", "shape", "model", "precision") if header.get(key) != expected[key]]
    if different:
        raise ConfigError([f"train: --resume: {path} was written with different {', '.join(different)} "
                           f"({', '.join(f'{k}: {header.get(k)} now {expected[k]}' for k in different)}); "
                           "resume with the same configuration or start afresh with --overwrite"])
    changed = [key for key in ("train", "seed") if header.get(key) != expected[key]]
    if changed:
        log.warning("--resume with different %s than %s was written with: the run goes on, but will not equal an "
                    "uninterrupted one (e.g. more epochs stretch the learning-rate schedule)", " and ".join(changed), path)


@dataclass
class TrainingWindows:
    """Windows in the network layout, the first ``training`` of them for training, the rest for validation."""

    y: np.ndarray
    mask: np.ndarray
    truth: np.ndarray
    initial: np.ndarray  # (count, n): the true state at each window start
    starts: np.ndarray  # (count,): the window start times
    training: int
    observation_error_std: float
    source: str


def training_windows(config: Config, layout, steps: int, dtype) -> TrainingWindows:
    """(observations, truth) windows of ``steps`` model steps from window.start, consecutive.

    From ``train.observations`` and ``train.truth`` (read as ``[observations]`` says), the windows
    the truth covers; otherwise ``train.windows`` (default 200) + ``train.validation_windows`` from
    independent twins of the simulator, each exactly what ``dacli simulate`` makes (``[simulate]``:
    spin-up, then ``simulate.duration``) but seeded :func:`training_seed`, +1, +2, ...: the windows
    then have the statistics of the held-out twin even when the dynamics are not stationary (e.g.
    decaying turbulence), and the validation windows come from runs training never saw.
    The network's observation error is the observations' median error std.
    """
    from dacli.io.observations import read_observations
    from dacli.io.inputs import FileMapping
    from dacli.io.states import read_states
    from dacli.learned.data import window_pairs
    from dacli.run.simulate import make_twin, twin_observations

    settings, dt, start = config.train, config.model.dt, config.window.start
    length, sigmas = steps * dt, []
    if settings.observations is None:
        windows = settings.windows or 200
        count = windows + settings.validation_windows
        per_run = int(np.floor(config.simulate.duration / length + 1e-9))
        if per_run < 1:
            raise ConfigError([f"simulate.duration: {config.simulate.duration} is shorter than one window "
                               f"(window.length = {config.window.length}); dacli train cuts its windows from such runs"])
        runs = -(-count // per_run)
        first = training_seed(config)
        parts = []
        for run in range(runs):
            twin = make_twin(config, first + run, per_run * length)
            name = f"simulated twin, seed {first + run}"
            observations = twin_observations(config, twin, name)
            parts.append(window_pairs(observations, twin.times, twin.truth, layout, start=start, steps=steps, dt=dt,
                                      count=min(per_run, count - run * per_run), source=name, dtype=dtype))
            sigmas.append(float(np.median(observations.std[observations.valid])))
        y, mask, truth, initial, starts = (np.concatenate(arrays) for arrays in zip(*parts))
        source = f"{runs} simulated twin(s) of {per_run} window(s), seeds {first}..{first + runs - 1}"
    else:
        observations = read_observations(config.observations.model_copy(update={"path": settings.observations}),
                                         layout, config.time.axis())
        # the training truth is a state file read like [truth] (its names, dims, select) when that table is given
        mapping = FileMapping.of(config.truth) if config.truth is not None else FileMapping()
        times, states = read_states(settings.truth, layout, "training truth", config.time.axis(), mapping)
        source = f"{settings.observations} and {settings.truth}"
        available = int(np.floor((times.max() - start) / length + 1e-9))
        wanted = (settings.windows or max(available - settings.validation_windows, 0)) + settings.validation_windows
        if available < wanted or wanted <= settings.validation_windows:
            raise DataError(
                f"train.truth: {settings.truth} covers [{times.min():g}, {times.max():g}]: {max(available, 0)} windows of "
                f"{length:g} from window.start = {start:g}; train.windows ({settings.windows or 'all'}) + "
                f"train.validation_windows ({settings.validation_windows}) need {max(wanted, settings.validation_windows + 1)}")
        count, windows = wanted, wanted - settings.validation_windows
        y, mask, truth, initial, starts = window_pairs(observations, times, states, layout, start=start, steps=steps,
                                                       dt=dt, count=count, source=settings.truth, dtype=dtype)
        sigmas.append(float(np.median(observations.std[observations.valid])))
    if settings.batch_size > windows:
        raise ConfigError([f"train.batch_size: {settings.batch_size} exceeds the {windows} training windows"])
    if not np.all(np.isfinite(truth)):
        raise ConfigError(["model.dt: the truth run for the training windows blew up (non-finite values)"])
    return TrainingWindows(y, mask, truth, initial, starts, windows, float(np.median(sigmas)), source)


def background_error_std(config: Config, observation_error_std: float) -> float:
    """The training backgrounds' initial error std: train.background_error_std, else simulate's, else sigma_o."""
    if config.train.background_error_std is not None:
        return config.train.background_error_std
    if config.simulate is not None:
        return config.simulate.background_error_std
    return observation_error_std


def training_backgrounds(config: Config, dynamics, data: TrainingWindows, steps: int, layout):
    """The windows' backgrounds for network.background (forecasts from perturbed true states), or None."""
    if not config.network.background:
        return None, None
    from dacli.build.registry import SOLVERS
    from dacli.learned.data import forecast_backgrounds

    std = background_error_std(config, data.observation_error_std)
    trajectory = forecast_backgrounds(dynamics, SOLVERS.resolve(config.model.solver)(), data.initial, data.starts,
                                      steps=steps, dt=config.model.dt, error_std=std, layout=layout,
                                      seed=training_seed(config) + 7919)  # a stream apart from the batch order's
    if not np.all(np.isfinite(trajectory)):
        raise ConfigError([f"train.background_error_std: the training backgrounds' forecasts (initial error std "
                           f"{std:g}) blew up (non-finite values); lower it"])
    return trajectory, std


def _stopped(stop: StopSignals, where: str, checkpoint: Path) -> Interrupted:
    return Interrupted(f"stopped by {stop.name()} after {where}; checkpoint {checkpoint} written; rerun the same "
                       "command with --resume to finish", stop.requested())


def train(config: Config, *, resume: bool = False, overwrite: bool = False, restart: bool = False, on_epoch=None,
          on_batch=None) -> TrainResult:
    """Train (see the module docstring); ``on_epoch(record)`` is called after each epoch's checkpoint,
    ``on_batch(epoch, epochs, batch, batches, loss)`` after each optimiser step (1-based counts).

    A classical method (strong4dvar, weak4dvar, 3dvar) has no network: its hyperparameters are
    tuned instead (:mod:`dacli.run.tune`).
    """
    if not capabilities(config.method.kind).learned:
        from dacli.run.tune import tune

        if resume:
            raise ConfigError(["train: --resume continues a 4DVarNet training (method.kind = '4dvarnet'); tuning "
                               f"{config.method.kind}'s hyperparameters starts afresh (--overwrite replaces its snippet)"])
        return tune(config, overwrite=overwrite)
    _require(config)
    with StopSignals(config.run.stop_signal) as stop:  # from the start: a signal while compiling counts too
        return _train(config, stop, resume=resume, overwrite=overwrite, restart=restart, on_epoch=on_epoch,
                      on_batch=on_batch)


def _stopped_training(path: Path) -> str | None:
    """'epoch 2 of 3 done' when ``path`` is a stopped training's checkpoint, None when absent or finished."""
    from dacli.io.checkpoints import read_header

    if not path.exists():
        return None
    try:
        header = read_header(path)
        epochs = header["train"]["epochs"]
        done, batch = header["epoch"], header.get("batch", 0)
    except (DataError, KeyError, TypeError) as exc:
        return f"unreadable: {exc}"
    if done >= epochs and not batch:
        return None
    return f"epoch {done} of {epochs} done" + (f" and batch {batch} of epoch {done + 1}" if batch else "")


def _train(config: Config, stop: StopSignals, *, resume: bool, overwrite: bool, restart: bool, on_epoch,
           on_batch) -> TrainResult:
    from dacli.run.runtime import configure

    configure(config.run.precision, config.run.device, config.run.compilation_cache)
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from dacli.build.network import build_model_prior, build_network, network_shape, time_axis
    from dacli.build.problem import build_dynamics
    from dacli.io.checkpoints import load_checkpoint, read_header, save_checkpoint, write_atomically
    from dacli.io.figures import save_figure, training_curves
    from dacli.learned.training import evaluate, make_optimiser, train_step, unstable_training

    settings, dt = config.train, config.model.dt
    directory = Path(settings.directory)
    files = {"last": directory / "last.eqx", "metrics": directory / "metrics.json", "curves": directory / "loss.png",
             "best": Path(config.network.checkpoint)}
    if resume and restart:
        raise ConfigError(["--resume continues the stopped training from its checkpoint, --restart discards it: give one"])
    if not resume:
        existing = [str(p) for p in files.values() if p.exists()]
        if existing and not overwrite:
            raise OutputError(f"output file(s) {', '.join(existing)} exist; pass --overwrite to start afresh or "
                              "--resume to continue the training")
        stopped = _stopped_training(files["last"])
        if stopped is not None and not restart:
            raise OutputError(f"{files['last']} holds a stopped training ({stopped}); pass --resume to continue it or "
                              "--restart to discard it and start afresh (--overwrite replaces a finished training's "
                              "files, not a checkpoint)")
        if stopped is not None:
            log.warning("--restart: discarding the checkpoint %s (%s) and starting afresh", files["last"], stopped)
    elif not files["last"].exists():
        raise DataError(f"--resume: no checkpoint {files['last']} to continue from (train.directory = {directory})")

    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    length = whole_steps(config.window.length, dt, "window.length")
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    shape = network_shape(layout, length)
    identity = _identity(config, shape)
    if resume:  # refuse a mismatched checkpoint before making any data
        _check_resumable(read_header(files["last"]), identity, files["last"])
    started = time.perf_counter()
    data = training_windows(config, layout, length, np.dtype(dtype))
    y, mask, truth, windows = data.y, data.mask, data.truth, data.training
    count = len(y)
    train_part, valid_part = slice(0, windows), slice(windows, count)
    backgrounds, background_std = training_backgrounds(config, dynamics, data, length, layout)
    part = lambda chosen: None if backgrounds is None else backgrounds[chosen]  # noqa: E731
    offset, scale = float(truth[train_part].mean()), float(truth[train_part].std())
    header = {**identity, "offset": offset, "scale": scale, "observation_error_std": data.observation_error_std,
              "background_error_std": background_std}
    log.info("training data (%s): %d + %d windows of %d steps (%s), %.2g%% of the values observed, in %.1f s",
             data.source, windows, count - windows, length,
             "x".join(map(str, [shape["channels"], *shape["spatial_shape"]])), 100 * mask.mean(),
             time.perf_counter() - started)

    network = build_network(config.network, shape, data.observation_error_std, offset, scale,
                            jax.random.PRNGKey(training_seed(config)), dtype,
                            build_model_prior(config.network, config.model, layout), time_axis(layout))
    steps_per_epoch = windows // settings.batch_size
    optimiser = make_optimiser(settings.learning_rate, settings.epochs * steps_per_epoch, settings.warmup_steps,
                               settings.clip_norm)
    state = optimiser.init(eqx.filter(network, eqx.is_inexact_array))
    rng = np.random.default_rng(training_seed(config))
    history, start_epoch, best = [], 0, float("inf")
    start_batch, resumed_losses = 0, []
    if resume:
        saved, (network, state) = load_checkpoint(files["last"], (network, state))
        rng.bit_generator.state = saved["rng"]  # the batch RNG at the start of epoch saved["epoch"] + 1
        history, start_epoch, best = saved["history"], saved["epoch"], saved["best_validation_rmse"]
        start_batch, resumed_losses = saved.get("batch", 0), saved.get("losses", [])
        log.info("resuming after epoch %d%s of %d from %s", start_epoch,
                 f" and batch {start_batch} of epoch {start_epoch + 1}" if start_batch else "", settings.epochs,
                 files["last"])

    where = (f"before epoch {start_epoch + 1}" + (f" batch {start_batch + 1}" if start_batch else "")
             + f" of {settings.epochs}")
    stop.raise_if_requested(where, f"checkpoint {files['last']} unchanged; rerun the same command with --resume to "
                                   "finish" if resume else "nothing trained, nothing to resume: rerun the same command")
    untrained = None if resume else float(evaluate(network, y[valid_part], mask[valid_part], truth[valid_part],
                                                    part(valid_part)))
    warned = False  # one instability warning per run
    for epoch in range(start_epoch, settings.epochs):
        began = time.perf_counter()
        epoch_rng = rng.bit_generator.state  # what a mid-epoch checkpoint stores: the order is drawn again
        order = rng.permutation(windows)
        losses = list(resumed_losses) if epoch == start_epoch else []
        for batch in range(start_batch if epoch == start_epoch else 0, steps_per_epoch):
            chosen = order[batch * settings.batch_size:(batch + 1) * settings.batch_size]
            network, state, loss = train_step(network, state, y[chosen], mask[chosen], truth[chosen], part(chosen),
                                              optimiser=optimiser, prior_loss_weight=settings.prior_loss_weight)
            losses.append(float(loss))
            if on_batch is not None:
                on_batch(epoch + 1, settings.epochs, batch + 1, steps_per_epoch, losses[-1])
            if stop.requested() is not None and batch + 1 < steps_per_epoch:
                save_checkpoint(files["last"], {**header, "epoch": epoch, "step": epoch * steps_per_epoch + batch + 1,
                                                "batch": batch + 1, "losses": losses, "history": history,
                                                "best_validation_rmse": best, "rng": epoch_rng}, (network, state))
                raise _stopped(stop, f"batch {batch + 1} of {steps_per_epoch} in epoch {epoch + 1} of "
                                     f"{settings.epochs}", files["last"])
        rmse = float(evaluate(network, y[valid_part], mask[valid_part], truth[valid_part], part(valid_part)))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "validation_rmse": rmse,
                        "seconds": time.perf_counter() - began})
        position = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "history": history}
        if rmse < best:
            best = rmse
            save_checkpoint(files["best"], {**header, **position, "best_validation_rmse": best, "rng": None},
                            network)
        save_checkpoint(files["last"], {**header, **position, "best_validation_rmse": best,
                                        "rng": rng.bit_generator.state}, (network, state))
        write_atomically(files["metrics"], json.dumps({"observation_error_std": data.observation_error_std,
                                                       "history": history}, indent=1).encode())
        log.info("epoch %d/%d: loss %.4g, validation RMSE %.4g (best %.4g), %.1f s", epoch + 1, settings.epochs,
                 history[-1]["loss"], rmse, best, history[-1]["seconds"])
        unstable = unstable_training(history)
        if unstable and not warned:
            log.warning("%s", unstable)
            warned = True
        if on_epoch is not None:
            on_epoch(history[-1])
        if stop.requested() is not None and epoch + 1 < settings.epochs:
            raise _stopped(stop, f"epoch {epoch + 1} of {settings.epochs}", files["last"])

    save_figure(training_curves(history, data.observation_error_std, f"4DVarNet training: {config.run.name}"),
                files["curves"], overwrite=True)
    summary = {"epochs": settings.epochs, "steps": settings.epochs * steps_per_epoch,
               "final_loss": history[-1]["loss"] if history else None, "validation_rmse": history[-1]["validation_rmse"],
               "best_validation_rmse": best, "observation_error_std": data.observation_error_std,
               "training_windows": windows, "validation_windows": count - windows, "data": data.source,
               "untrained_validation_rmse": untrained, "solver_adjoint": config.network.solver_adjoint,
               "background_error_std": background_std,
               "files": {k: str(v) for k, v in files.items()}}
    return TrainResult(summary=summary, files={k: str(v) for k, v in files.items()})

