"""``dacli train``: train 4DVarNet end to end on (observations, truth) windows; returns a
:class:`TrainResult`.

Not for a method without a network (strong4dvar, weak4dvar, 3dvar): its hyperparameters are
tuned by :mod:`dacli.run.tune` (``dacli tune``; ``dacli train`` on such a configuration
dispatches there in the command line).

Data: consecutive windows of ``window.length`` from ``window.start``, cut from (a) the files
``train.observations`` and ``train.truth`` (observations in any layout ``[observations]``
describes: gridded, CF points, IODA), or (b) the twin experiment ``dacli simulate`` would make
(``[simulate]``: gridded, random points or satellite tracks) but seeded with ``train.seed``, by
default run.seed + 1, so the simulated twin stays held out. Observations reach the network as
in ``dacli assimilate`` (:mod:`dacli.learned.data`). The first ``train.windows`` train, the
next ``train.validation_windows`` validate. Each epoch visits the training windows once in a random
order (batches of
``batch_size``, one optax step each), then reconstructs the validation windows. After every
epoch ``<directory>/last.eqx`` (network, optimiser state, epoch, step, the batch RNG's state,
history) and ``metrics.json`` are written atomically; an epoch with a better validation RMSE also
writes ``network.file``. ``resume=True`` continues from ``last.eqx`` and reaches exactly the
parameters of an uninterrupted run. ``loss.png`` shows the curves.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dacli.build.dynamics import build_dynamics
from dacli.build.factories import build_ode_solver
from dacli.build.network import build_model_prior, build_network, network_shape, time_axis
from dacli.config.registry import capabilities
from dacli.config.schema import Config, NetworkConfig, TrainConfig, with_new_names
from dacli.errors import ConfigError, DataError, OutputError
from dacli.io.atomic import replace_file
from dacli.io.figures import save_figure, training_curves
from dacli.io.inputs import FileMapping
from dacli.io.observations import read_observations
from dacli.io.saved_trees import load_tree, read_header, save_tree
from dacli.io.states import read_states
from dacli.learned import training
from dacli.learned.data import forecast_backgrounds, window_pairs
from dacli.learned.fourdvarnet import FourDVarNet
from dacli.models.base import Dynamics, StateLayout
from dacli.observations.windows import whole_steps
from dacli.run.phases import PhaseCallback, compile_phases
from dacli.run.runtime import configure
from dacli.run.simulate import make_twin, twin_observations
from dacli.run.stopping import Interrupted, StopSignals

log = logging.getLogger("dacli")

EpochCallback = Callable[[dict], None]  # called with the epoch's history record
BatchCallback = Callable[
    [int, int, int, int, float], None
]  # (epoch, epochs, batch, batches, loss), 1-based


@dataclass(frozen=True)
class TrainingFiles:
    """The files a training writes: the run checkpoint, metrics, loss curves and the best
    network."""

    last: str
    metrics: str
    curves: str
    best: str


@dataclass(frozen=True)
class TrainResult:
    """What ``dacli train`` did: epochs and optimiser steps run, losses and validation RMSEs,
    files."""

    epochs: int
    steps: int
    final_loss: float | None
    validation_rmse: float
    best_validation_rmse: float
    observation_error_std: float
    training_windows: int
    validation_windows: int
    data: str  # where the windows came from
    untrained_validation_rmse: float | None  # None on a resumed run
    solver_adjoint: str
    background_error_std: float | None
    files: TrainingFiles


def training_seed(config: Config) -> int:
    """The training truth's seed: not dacli simulate's (run.seed), so a simulated twin stays
    unseen."""
    assert config.train is not None  # sections a training config has (_require)
    return config.train.seed if config.train.seed is not None else config.run.seed + 1


def _require(config: Config, resume: bool) -> None:
    if not capabilities(config.method.kind).learned:
        raise ConfigError(
            [
                f"train: --resume continues a 4DVarNet training (method.kind = '4dvarnet'); tuning "
                f"{config.method.kind}'s hyperparameters starts afresh (--overwrite replaces its "
                "snippet)"
                if resume
                else f"method.kind: {config.method.kind!r} has no network to train; dacli tune "
                "tunes its hyperparameters"
            ]
        )
    problems = [
        f"{name}: section missing; dacli train needs [{name}] ({why})"
        for name, why in (
            ("network", "the 4DVarNet architecture and the checkpoint path"),
            ("train", "the optimisation settings"),
        )
        if getattr(config, name) is None
    ]
    if config.train is not None and config.train.observations is None and config.simulate is None:
        problems.append(
            "simulate: section missing; dacli train needs [simulate] to make its training windows, "
            "or train.observations and train.truth to read them from files"
        )
    if problems:
        raise ConfigError(problems)


def _identity(config: Config, shape: dict) -> dict:
    """What a checkpoint must share with the configuration to be resumed (known before any data)."""
    # sections a training config has (_require)
    assert config.train is not None and config.network is not None
    return {
        "network": config.network.model_dump(exclude={"file"}),
        "shape": shape,
        "train": config.train.model_dump(exclude={"directory"}),
        "seed": training_seed(config),
        "model": config.model.model_dump(),
        "precision": config.run.precision,
    }


def _with_defaults(header: dict) -> dict:
    """A checkpoint header whose [network] and [train] lack keys added since it was written: their
    defaults."""
    header = dict(header)
    for key, section in (("network", NetworkConfig), ("train", TrainConfig)):
        if isinstance(header.get(key), dict):
            defaults = {
                name: info.default
                for name, info in section.model_fields.items()
                if not info.is_required()
            }
            header[key] = {
                **{k: v for k, v in defaults.items() if k not in ("file", "directory")},
                **with_new_names(key, header[key]),
            }
    return header


def _check_resumable(header: dict, expected: dict, path: Path) -> None:
    header = _with_defaults(header)
    different = [
        key
        for key in ("network", "shape", "model", "precision")
        if header.get(key) != expected[key]
    ]
    if different:
        raise ConfigError(
            [
                f"train: --resume: {path} was written with different {', '.join(different)} "
                f"({', '.join(f'{k}: {header.get(k)} now {expected[k]}' for k in different)}); "
                "resume with the same configuration or start afresh with --overwrite"
            ]
        )
    changed = [key for key in ("train", "seed") if header.get(key) != expected[key]]
    if changed:
        log.warning(
            "--resume with different %s than %s was written with: the run goes on, but will not "
            "equal an uninterrupted one (e.g. more epochs stretch the learning-rate schedule)",
            " and ".join(changed),
            path,
        )


@dataclass(frozen=True)
class TrainingWindows:
    """Windows in the network layout, the first ``training`` of them for training, the rest for
    validation."""

    y: np.ndarray
    mask: np.ndarray
    truth: np.ndarray
    initial: np.ndarray  # (count, n): the true state at each window start
    starts: np.ndarray  # (count,): the window start times
    training: int
    observation_error_std: float
    source: str


@dataclass(frozen=True)
class _Cut:
    """Windows cut from one source, before the training/validation split is checked."""

    arrays: tuple[np.ndarray, ...]  # y, mask, truth, initial, starts
    windows: int  # of which training
    sigmas: list[float]  # the median observation error std of each observation set
    source: str


def _simulated_windows(config: Config, layout: StateLayout, steps: int, dtype: np.dtype) -> _Cut:
    """``train.windows`` (default 200) + ``train.validation_windows`` from independent twins."""
    settings, dt, start = config.train, config.model.dt, config.window.start
    # sections a training config has (_require)
    assert settings is not None and config.simulate is not None
    length = steps * dt
    windows = settings.windows or 200
    count = windows + settings.validation_windows
    per_run = int(np.floor(config.simulate.duration / length + 1e-9))
    if per_run < 1:
        raise ConfigError(
            [
                f"simulate.duration: {config.simulate.duration} is shorter than one window "
                f"(window.length = {config.window.length}); dacli train cuts its windows from such "
                "runs"
            ]
        )
    runs = -(-count // per_run)
    first = training_seed(config)
    parts, sigmas = [], []
    for run in range(runs):
        twin = make_twin(config, first + run, per_run * length)
        name = f"simulated twin, seed {first + run}"
        observations = twin_observations(config, twin, name)
        parts.append(
            window_pairs(
                observations,
                twin.times,
                twin.truth,
                layout,
                start=start,
                steps=steps,
                dt=dt,
                count=min(per_run, count - run * per_run),
                source=name,
                dtype=dtype,
            )
        )
        sigmas.append(float(np.median(observations.std[observations.valid])))
    arrays = tuple(np.concatenate(part) for part in zip(*parts, strict=True))
    return _Cut(
        arrays,
        windows,
        sigmas,
        f"{runs} simulated twin(s) of {per_run} window(s), seeds {first}..{first + runs - 1}",
    )


def _file_windows(config: Config, layout: StateLayout, steps: int, dtype: np.dtype) -> _Cut:
    """The windows ``train.truth`` covers, observed as ``train.observations`` says."""
    settings, dt, start = config.train, config.model.dt, config.window.start
    # sections a training config has (_require); train.truth comes with train.observations
    assert settings is not None and settings.truth is not None
    length = steps * dt
    observations = read_observations(
        config.observations.model_copy(update={"path": settings.observations}),
        layout,
        config.time.axis(),
    )
    # the training truth is a state file read like [truth] (its names, dims, select) when that table
    # is given
    mapping = FileMapping.of(config.truth) if config.truth is not None else FileMapping()
    times, states = read_states(
        settings.truth, layout, "training truth", config.time.axis(), mapping
    )
    available = int(np.floor((times.max() - start) / length + 1e-9))
    wanted = (
        settings.windows or max(available - settings.validation_windows, 0)
    ) + settings.validation_windows
    if available < wanted or wanted <= settings.validation_windows:
        raise DataError(
            f"train.truth: {settings.truth} covers [{times.min():g}, {times.max():g}]: "
            f"{max(available, 0)} windows of {length:g} from window.start = {start:g}; "
            f"train.windows ({settings.windows or 'all'}) + train.validation_windows "
            f"({settings.validation_windows}) need {max(wanted, settings.validation_windows + 1)}"
        )
    arrays = window_pairs(
        observations,
        times,
        states,
        layout,
        start=start,
        steps=steps,
        dt=dt,
        count=wanted,
        source=settings.truth,
        dtype=dtype,
    )
    return _Cut(
        tuple(arrays),
        wanted - settings.validation_windows,
        [float(np.median(observations.std[observations.valid]))],
        f"{settings.observations} and {settings.truth}",
    )


def training_windows(
    config: Config, layout: StateLayout, steps: int, dtype: np.dtype
) -> TrainingWindows:
    """(observations, truth) windows of ``steps`` model steps from window.start, consecutive.

    From ``train.observations`` and ``train.truth`` (read as ``[observations]`` says), the windows
    the truth covers; otherwise ``train.windows`` (default 200) + ``train.validation_windows`` from
    independent twins of the simulator, each exactly what ``dacli simulate`` makes (``[simulate]``:
    spin-up, then ``simulate.duration``) but seeded :func:`training_seed`, +1, +2, ...: the windows
    then have the statistics of the held-out twin even when the dynamics are not stationary (e.g.
    decaying turbulence), and the validation windows come from runs training never saw.
    The network's observation error is the observations' median error std.
    """
    assert config.train is not None  # sections a training config has (_require)
    simulated = config.train.observations is None
    cut = (_simulated_windows if simulated else _file_windows)(config, layout, steps, dtype)
    y, mask, truth, initial, starts = cut.arrays
    if config.train.batch_size > cut.windows:
        raise ConfigError(
            [
                f"train.batch_size: {config.train.batch_size} exceeds the {cut.windows} training "
                "windows"
            ]
        )
    if not np.all(np.isfinite(truth)):
        raise ConfigError(
            ["model.dt: the truth run for the training windows blew up (non-finite values)"]
        )
    return TrainingWindows(
        y, mask, truth, initial, starts, cut.windows, float(np.median(cut.sigmas)), cut.source
    )


def background_error_std(config: Config, observation_error_std: float) -> float:
    """The training backgrounds' initial error std: train.background_error_std, else simulate's,
    else sigma_o."""
    assert config.train is not None  # sections a training config has (_require)
    if config.train.background_error_std is not None:
        return config.train.background_error_std
    if config.simulate is not None:
        return config.simulate.background_error_std
    return observation_error_std


def training_backgrounds(
    config: Config, dynamics: Dynamics, data: TrainingWindows, steps: int, layout: StateLayout
) -> tuple[np.ndarray | None, float | None]:
    """The windows' backgrounds for network.background (forecasts from perturbed true states), or
    None."""
    assert config.network is not None  # sections a training config has (_require)
    if not config.network.background:
        return None, None
    std = background_error_std(config, data.observation_error_std)
    trajectory = forecast_backgrounds(
        dynamics,
        build_ode_solver(config.model),
        data.initial,
        data.starts,
        steps=steps,
        dt=config.model.dt,
        error_std=std,
        layout=layout,
        seed=training_seed(config) + 7919,
    )  # a stream apart from the batch order's
    if not np.all(np.isfinite(trajectory)):
        raise ConfigError(
            [
                "train.background_error_std: the training backgrounds' forecasts (initial error "
                f"std {std:g}) blew up (non-finite values); lower it"
            ]
        )
    return trajectory, std


def _stopped(stop: StopSignals, where: str, checkpoint: str) -> Interrupted:
    number = stop.requested()
    assert number is not None  # called on a stop
    return Interrupted(
        f"stopped by {stop.name()} after {where}; checkpoint {checkpoint} written; rerun the same "
        "command with --resume to finish",
        number,
    )


def train(
    config: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    restart: bool = False,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
    on_phase: PhaseCallback | None = None,
) -> TrainResult:
    """Train (see the module docstring); ``on_epoch(record)`` is called after each epoch's
    checkpoint,
    ``on_batch(epoch, epochs, batch, batches, loss)`` after each optimiser step (1-based counts),
    ``on_phase`` hears "reading", "tracing", "compiling" before (:mod:`dacli.run.phases`).

    A method without a network is refused (ConfigError): :func:`dacli.run.tune.tune` tunes it.
    """
    _require(config, resume)
    assert config.train is not None  # sections a training config has (_require)
    with StopSignals(
        config.run.stop_signal
    ) as stop:  # from the start: a signal while compiling counts too
        configure(config.run.precision, config.run.device, config.run.compilation_cache)
        files = _files(config)
        _check_outputs(files, resume=resume, overwrite=overwrite, restart=restart)
        if on_phase is not None:
            on_phase("reading")
        setup = _setup(config, files, resume)
        progress = _start(setup, files, resume)
        where = (
            f"before epoch {progress.epoch + 1}"
            + (f" batch {progress.batch + 1}" if progress.batch else "")
            + f" of {config.train.epochs}"
        )
        stop.raise_if_requested(
            where,
            f"checkpoint {files.last} unchanged; rerun the same command with --resume to finish"
            if resume
            else "nothing trained, nothing to resume: rerun the same command",
        )
        with compile_phases(on_phase):
            untrained = None if resume else float(setup.validate(progress.network))
            _run_epochs(setup, progress, files, stop, on_epoch, on_batch)
        return _result(setup, progress, files, untrained)


def _files(config: Config) -> TrainingFiles:
    # sections a training config has (_require)
    assert config.train is not None and config.network is not None
    directory = Path(config.train.directory)
    return TrainingFiles(
        str(directory / "last.eqx"),
        str(directory / "metrics.json"),
        str(directory / "loss.png"),
        str(Path(config.network.file)),
    )


def _stopped_training(path: Path) -> str | None:
    """'epoch 2 of 3 done' when ``path`` is a stopped training's checkpoint, None when absent or
    finished."""
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
    return f"epoch {done} of {epochs} done" + (
        f" and batch {batch} of epoch {done + 1}" if batch else ""
    )


def _check_outputs(files: TrainingFiles, *, resume: bool, overwrite: bool, restart: bool) -> None:
    """Refuse to replace existing files or a stopped training's checkpoint unless told to."""
    last = Path(files.last)
    if resume and restart:
        raise ConfigError(
            [
                "--resume continues the stopped training from its checkpoint, --restart discards "
                "it: give one"
            ]
        )
    if resume:
        if not last.exists():
            raise DataError(
                f"--resume: no checkpoint {last} to continue from (train.directory = {last.parent})"
            )
        return
    existing = [
        path
        for path in (files.last, files.metrics, files.curves, files.best)
        if Path(path).exists()
    ]
    if existing and not overwrite:
        raise OutputError(
            f"output file(s) {', '.join(existing)} exist; pass --overwrite to start afresh or "
            "--resume to continue the training"
        )
    stopped = _stopped_training(last)
    if stopped is not None and not restart:
        raise OutputError(
            f"{last} holds a stopped training ({stopped}); pass --resume to continue it or "
            "--restart to discard it and start afresh (--overwrite replaces a finished training's "
            "files, not a checkpoint)"
        )
    if stopped is not None:
        log.warning(
            "--restart: discarding the checkpoint %s (%s) and starting afresh", last, stopped
        )


@dataclass(frozen=True)
class _Setup:
    """Everything a training run fixes before its first step."""

    config: Config
    data: TrainingWindows
    backgrounds: np.ndarray | None
    background_std: float | None
    header: dict  # the checkpoint header: identity, normalisation, error stds
    network: FourDVarNet
    optimiser: optax.GradientTransformation
    steps_per_epoch: int

    def part(self, chosen) -> np.ndarray | None:
        return None if self.backgrounds is None else self.backgrounds[chosen]

    def validate(self, network: FourDVarNet) -> jax.Array:
        """RMSE of the validation windows' reconstructions."""
        valid = slice(self.data.training, len(self.data.y))
        return training.evaluate(
            network,
            self.data.y[valid],
            self.data.mask[valid],
            self.data.truth[valid],
            self.part(valid),
        )


def _setup(config: Config, files: TrainingFiles, resume: bool) -> _Setup:
    """The windows, backgrounds and untrained network (a mismatched checkpoint refused before any
    data)."""
    settings = config.train
    # sections a training config has (_require)
    assert settings is not None and config.network is not None
    dynamics = build_dynamics(config.model)
    layout = dynamics.layout()
    length = whole_steps(config.window.length, config.model.dt, "window.length")
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    shape = network_shape(layout, length)
    identity = _identity(config, shape)
    if resume:
        _check_resumable(read_header(files.last), identity, Path(files.last))
    started = time.perf_counter()
    data = training_windows(config, layout, length, np.dtype(dtype))
    windows, count = data.training, len(data.y)
    backgrounds, background_std = training_backgrounds(config, dynamics, data, length, layout)
    offset, scale = float(data.truth[:windows].mean()), float(data.truth[:windows].std())
    header = {
        **identity,
        "offset": offset,
        "scale": scale,
        "observation_error_std": data.observation_error_std,
        "background_error_std": background_std,
    }
    log.info(
        "training data (%s): %d + %d windows of %d steps (%s), %.2g%% of the values observed, in "
        "%.1f s",
        data.source,
        windows,
        count - windows,
        length,
        "x".join(map(str, [shape["channels"], *shape["spatial_shape"]])),
        100 * data.mask.mean(),
        time.perf_counter() - started,
    )
    network = build_network(
        config.network,
        shape,
        data.observation_error_std,
        offset,
        scale,
        jax.random.PRNGKey(training_seed(config)),
        dtype,
        build_model_prior(config.network, config.model, layout),
        time_axis(layout),
    )
    steps_per_epoch = windows // settings.batch_size
    optimiser = training.make_optimiser(
        settings.learning_rate,
        settings.epochs * steps_per_epoch,
        settings.warmup_steps,
        settings.clip_norm,
    )
    return _Setup(
        config, data, backgrounds, background_std, header, network, optimiser, steps_per_epoch
    )


@dataclass
class _Progress:
    """The training's moving state: network, optimiser state, batch RNG, position, history."""

    network: FourDVarNet
    state: optax.OptState
    rng: np.random.Generator
    epoch: int = 0  # epochs done
    batch: int = 0  # batches done in the next epoch (a run resumed mid-epoch)
    losses: list[float] = field(default_factory=list)  # their losses
    history: list[dict] = field(default_factory=list)
    best: float = float("inf")
    warned: bool = False  # one instability warning per run


def _start(setup: _Setup, files: TrainingFiles, resume: bool) -> _Progress:
    assert setup.config.train is not None  # sections a training config has (_require)
    network = setup.network
    state = setup.optimiser.init(eqx.filter(network, eqx.is_inexact_array))
    progress = _Progress(network, state, np.random.default_rng(training_seed(setup.config)))
    if not resume:
        return progress
    saved, (progress.network, progress.state) = load_tree(files.last, (network, state))
    progress.rng.bit_generator.state = saved[
        "rng"
    ]  # the batch RNG at the start of epoch saved["epoch"] + 1
    progress.history, progress.epoch, progress.best = (
        saved["history"],
        saved["epoch"],
        saved["best_validation_rmse"],
    )
    progress.batch, progress.losses = saved.get("batch", 0), saved.get("losses", [])
    log.info(
        "resuming after epoch %d%s of %d from %s",
        progress.epoch,
        f" and batch {progress.batch} of epoch {progress.epoch + 1}" if progress.batch else "",
        setup.config.train.epochs,
        files.last,
    )
    return progress


def _run_epochs(
    setup: _Setup,
    progress: _Progress,
    files: TrainingFiles,
    stop: StopSignals,
    on_epoch: EpochCallback | None,
    on_batch: BatchCallback | None,
) -> None:
    """The remaining epochs, a checkpoint after each (and at a stop within one)."""
    assert setup.config.train is not None  # sections a training config has (_require)
    epochs = setup.config.train.epochs
    for epoch in range(progress.epoch, epochs):
        began = time.perf_counter()
        _run_batches(setup, progress, epoch, files, stop, on_batch)
        rmse = float(setup.validate(progress.network))
        progress.history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(progress.losses)),
                "validation_rmse": rmse,
                "seconds": time.perf_counter() - began,
            }
        )
        progress.epoch, progress.batch, progress.losses = epoch + 1, 0, []
        _end_of_epoch(setup, progress, files, rmse)
        if on_epoch is not None:
            on_epoch(progress.history[-1])
        if stop.requested() is not None and epoch + 1 < epochs:
            raise _stopped(stop, f"epoch {epoch + 1} of {epochs}", files.last)


def _run_batches(
    setup: _Setup,
    progress: _Progress,
    epoch: int,
    files: TrainingFiles,
    stop: StopSignals,
    on_batch: BatchCallback | None,
) -> None:
    """One epoch's optimiser steps from ``progress.batch``; a stop saves a mid-epoch checkpoint."""
    settings, data, batches = setup.config.train, setup.data, setup.steps_per_epoch
    assert settings is not None  # sections a training config has (_require)
    epoch_rng = (
        progress.rng.bit_generator.state
    )  # what a mid-epoch checkpoint stores: the order is drawn again
    order = progress.rng.permutation(data.training)
    losses = progress.losses
    for batch in range(progress.batch, batches):
        chosen = order[batch * settings.batch_size : (batch + 1) * settings.batch_size]
        progress.network, progress.state, loss = training.train_step(
            progress.network,
            progress.state,
            data.y[chosen],
            data.mask[chosen],
            data.truth[chosen],
            setup.part(chosen),
            optimiser=setup.optimiser,
            prior_loss_weight=settings.prior_loss_weight,
        )
        losses.append(float(loss))
        if on_batch is not None:
            on_batch(epoch + 1, settings.epochs, batch + 1, batches, losses[-1])
        if stop.requested() is not None and batch + 1 < batches:
            save_tree(
                files.last,
                {
                    **setup.header,
                    "epoch": epoch,
                    "step": epoch * batches + batch + 1,
                    "batch": batch + 1,
                    "losses": losses,
                    "history": progress.history,
                    "best_validation_rmse": progress.best,
                    "rng": epoch_rng,
                },
                (progress.network, progress.state),
            )
            raise _stopped(
                stop,
                f"batch {batch + 1} of {batches} in epoch {epoch + 1} of {settings.epochs}",
                files.last,
            )


def _end_of_epoch(setup: _Setup, progress: _Progress, files: TrainingFiles, rmse: float) -> None:
    """The epoch's checkpoints (the best network when it improved), metrics and log line."""
    assert setup.config.train is not None  # sections a training config has (_require)
    epochs, history = setup.config.train.epochs, progress.history
    position = {
        "epoch": progress.epoch,
        "step": progress.epoch * setup.steps_per_epoch,
        "history": history,
    }
    if rmse < progress.best:
        progress.best = rmse
        save_tree(
            files.best,
            {**setup.header, **position, "best_validation_rmse": progress.best, "rng": None},
            progress.network,
        )
    save_tree(
        files.last,
        {
            **setup.header,
            **position,
            "best_validation_rmse": progress.best,
            "rng": progress.rng.bit_generator.state,
        },
        (progress.network, progress.state),
    )
    replace_file(
        files.metrics,
        json.dumps(
            {"observation_error_std": setup.data.observation_error_std, "history": history},
            indent=1,
        ).encode(),
    )
    log.info(
        "epoch %d/%d: loss %.4g, validation RMSE %.4g (best %.4g), %.1f s",
        progress.epoch,
        epochs,
        history[-1]["loss"],
        rmse,
        progress.best,
        history[-1]["seconds"],
    )
    unstable = training.unstable_training(history)
    if unstable and not progress.warned:
        log.warning("%s", unstable)
        progress.warned = True


def _result(
    setup: _Setup, progress: _Progress, files: TrainingFiles, untrained: float | None
) -> TrainResult:
    """The loss curves figure, and the result record."""
    config, history, data = setup.config, progress.history, setup.data
    # sections a training config has (_require)
    assert config.train is not None and config.network is not None
    save_figure(
        training_curves(
            history, data.observation_error_std, f"4DVarNet training: {config.run.name}"
        ),
        Path(files.curves),
        overwrite=True,
    )
    return TrainResult(
        epochs=config.train.epochs,
        steps=config.train.epochs * setup.steps_per_epoch,
        final_loss=history[-1]["loss"] if history else None,
        validation_rmse=history[-1]["validation_rmse"],
        best_validation_rmse=progress.best,
        observation_error_std=data.observation_error_std,
        training_windows=data.training,
        validation_windows=len(data.y) - data.training,
        data=data.source,
        untrained_validation_rmse=untrained,
        solver_adjoint=config.network.iteration_adjoint,
        background_error_std=setup.background_std,
        files=files,
    )
