"""``dacli tune``: tune a classical variational method's B, R, Q scales and B's length scale.

Data (:mod:`dacli.tuning.twins`): the twin ``dacli simulate`` makes (observed as ``[simulate]``
says: gridded, random points or satellite tracks), seeded with ``tune.seed`` (default run.seed +
1, so ``dacli simulate``'s twin stays unseen), cut into ``tune.windows`` training and
``tune.validation_windows`` validation windows of ``window.length`` as ``dacli train`` cuts its
4DVarNet windows, each with a background drawn from the true background error
(``simulate.background_error_std``, correlated with ``tune.background_error_length_scale`` if
set). Every step is one optax Adam step on the log factors with the gradient of the mean squared
analysis error over all training windows, taken through the converged minimiser
(:mod:`dacli.tuning.hyperparameters`). Before and after, the validation windows' analysis RMSE is
measured. The tuned values are written as a TOML snippet (``tune.output``) in the configuration's
own keys. A method with a network (4DVarNet) is trained instead (:mod:`dacli.run.train`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import DTypeLike

from dacli.build.problem import build_dynamics, build_problem
from dacli.build.traceability import check_forward_mode
from dacli.config.registry import METHOD_CAPABILITIES, capabilities
from dacli.config.schema import CORRELATED_KINDS, Config, CorrelatedCovariance, TuneConfig
from dacli.covariances.background import CorrelatedRoot, background_sqrt_operator
from dacli.errors import ConfigError, NumericalError, OutputError
from dacli.io.atomic import replace_file
from dacli.learned.training import make_optimiser
from dacli.observations.windows import whole_steps
from dacli.run.runtime import configure
from dacli.run.simulate import make_twin, twin_observations
from dacli.tuning.hyperparameters import (
    Tunable,
    analysis_rmse,
    identifiability_problem,
    tuning_step,
)
from dacli.tuning.twins import TwinWindows, twin_windows

log = logging.getLogger("dacli")

Theta = dict[str, jax.Array]  # log factor per tuned parameter (0: as configured)


@dataclass(frozen=True)
class TwinTruth:
    """The twin's true error statistics, which the tuned values should approach."""

    background_error_std: float
    observation_error_std: float
    background_error_length_scale: float | None


@dataclass(frozen=True)
class TuningStep:
    """One optimiser step: the loss before it, the fraction of minimisations converged, the factors
    after."""

    step: int
    loss: float
    converged: float
    factors: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class TuneFiles:
    snippet: str


@dataclass(frozen=True)
class TuneResult:
    """What ``dacli tune`` did: the tuned keys and values, the validation RMSE before and after."""

    method: str
    parameters: tuple[str, ...]
    steps: int
    validation_rmse_before: float
    validation_rmse_after: float
    factors: dict[str, float]  # exp(theta) per parameter
    tuned: dict[str, float | list[float]]  # dotted config key -> tuned value
    truth: TwinTruth
    snippet: str
    history: tuple[TuningStep, ...]
    files: TuneFiles


def default_parameters(config: Config) -> list[str]:
    names = ["background_std"]
    if config.background.covariance.kind in CORRELATED_KINDS:
        names.append("length_scale")
    if capabilities(config.method.kind).model_error:
        names.append("model_error_std")
    return names


def check_tunable(config: Config) -> list[str]:
    """The parameters to tune, or a ConfigError naming every key that stands in the way."""
    names = (config.tune or TuneConfig()).parameters or default_parameters(config)
    problems = []
    method = capabilities(config.method.kind)
    if not method.tunable:
        tunable = ", ".join(kind for kind, record in METHOD_CAPABILITIES.items() if record.tunable)
        problems.append(
            f"method.kind: {config.method.kind!r} has no hyperparameters dacli tune can tune "
            f"(tuning needs one of {tunable}; 3dfgat exists only incrementally)"
        )
    if config.simulate is None:
        problems.append(
            "simulate: section missing; dacli tune needs [simulate] (how the tuning windows are "
            "observed)"
        )
    covariance = config.background.covariance
    if "length_scale" in names and covariance.kind not in CORRELATED_KINDS:
        problems.append(
            f"tune.parameters: length_scale needs a correlated B (background.covariance.kind = "
            f"'gaussian' or 'matern32'), not {covariance.kind!r}"
        )
    if "model_error_std" in names and not method.model_error:
        problems.append(
            "tune.parameters: model_error_std needs method.kind = 'weak4dvar' (Q), not "
            f"{config.method.kind!r}"
        )
    message = identifiability_problem(names, method.model_error)
    if message:
        problems.append(f"tune.parameters: {message}")
    if problems:
        raise ConfigError(problems)
    return names


def _scaled(value, factor: float):
    if isinstance(value, list):
        return [_round(v * factor) for v in value]
    return _round(value * factor)


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def tuned_values(
    config: Config, theta: Theta, assumed_obs_std: float
) -> dict[str, float | list[float]]:
    """{dotted config key: tuned value} for every tuned parameter."""
    factor = {name: float(np.exp(value)) for name, value in theta.items()}
    values = {}
    if "background_std" in factor:
        values["background.covariance.std"] = _scaled(
            config.background.covariance.std, factor["background_std"]
        )
    if "length_scale" in factor:
        covariance = config.background.covariance
        assert isinstance(covariance, CorrelatedCovariance)  # check_tunable: a correlated B
        values["background.covariance.length_scale"] = _scaled(
            covariance.length_scale, factor["length_scale"]
        )
    if "observation_std" in factor:
        values["observations.error_std"] = _scaled(assumed_obs_std, factor["observation_std"])
    if "model_error_std" in factor:
        assert config.method.model_error is not None  # check_tunable: weak4dvar, which has Q
        values["method.model_error.covariance.std"] = _scaled(
            config.method.model_error.covariance.std, factor["model_error_std"]
        )
    return values


def snippet(
    values: dict[str, float | list[float]], before: float, after: float, windows: int
) -> str:
    """TOML text: the tuned keys under their tables, with a comment saying where they came from."""
    tables: dict[str, list[str]] = {}
    for dotted, value in values.items():
        table, key = dotted.rsplit(".", 1)
        tables.setdefault(table, []).append(f"{key} = {value!r}")
    lines = [
        f"# dacli train (tuning): validation analysis RMSE {before:.4g} -> {after:.4g} over "
        f"{windows} windows.",
        "# Replace these keys in the configuration (or pass them as --set overrides).",
    ]
    for table, keys in tables.items():
        lines += ["", f"[{table}]", *keys]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Prepared:
    """What a tuning run optimises: the parameters, the method set up for them, the twin windows."""

    names: list[str]
    tunable: Tunable
    training: TwinWindows
    validation: TwinWindows
    assumed_obs_std: float
    dtype: DTypeLike


def _nonlinear(config: Config) -> Config:
    """The configuration with the nonlinear formulation (the one whose minimiser is
    differentiated)."""
    if config.method.effective_formulation != "incremental":
        return config
    log.info(
        "tuning minimises the nonlinear formulation (the incremental one's CG inner loops are not "
        "differentiated implicitly); the tuned values apply to both"
    )
    method = config.method.model_copy(update={"formulation": "nonlinear", "minimiser": "auto"})
    return config.model_copy(update={"method": method})


def _tuning_windows(
    config: Config, nsteps: int, assumed_obs_std: float, layout, dtype
) -> TwinWindows:
    """The twin's windows, backgrounds drawn from the true B (correlated as
    tune.background_error_length_scale)."""
    settings, sim, covariance = (
        config.tune or TuneConfig(),
        config.simulate,
        config.background.covariance,
    )
    assert sim is not None  # check_tunable: the config has [simulate]
    # the twin's true B: uncorrelated, or correlated with B's shape (gaussian by default)
    true_kind = "diagonal"
    if settings.background_error_length_scale is not None:
        true_kind = covariance.kind if covariance.kind in CORRELATED_KINDS else "gaussian"
    true_root = np.asarray(
        background_sqrt_operator(
            true_kind,
            sim.background_error_std,
            layout,
            settings.background_error_length_scale,
            np.float64,
        ).as_matrix()
    )
    seed = settings.seed if settings.seed is not None else config.run.seed + 1
    count = settings.windows + settings.validation_windows
    twin = make_twin(config, seed, count * nsteps * config.model.dt)
    observations = twin_observations(config, twin, f"tuning twin, seed {seed}")
    return twin_windows(
        observations,
        twin.truth,
        start=config.window.start,
        dt=config.model.dt,
        count=count,
        nsteps=nsteps,
        assumed_std=assumed_obs_std,
        background_error_sqrt=true_root,
        seed=seed,
        dtype=dtype,
    )


# What tuning linearises forward (for check_forward_mode): a custom_vjp plug-in cannot be tuned.
TUNING_NEEDS_FORWARD_MODE = [
    (
        "dacli tune",
        "its gradient through the analysis is ImplicitAdjoint's (Hessian-vector products), with "
        "no reverse-only alternative",
    )
]


def prepare(config: Config) -> Prepared:
    """Check the configuration, build the method and make the twin windows (JAX configured by the
    caller)."""
    names = check_tunable(config)
    settings, sim, dt = config.tune or TuneConfig(), config.simulate, config.model.dt
    assert sim is not None  # check_tunable (above): the config has [simulate]
    nsteps = whole_steps(config.window.length, dt, "window.length")
    obs_every = whole_steps(sim.obs_interval, dt, "simulate.obs_interval")
    if obs_every > nsteps:
        raise ConfigError(
            [
                f"simulate.obs_interval: {sim.obs_interval} is longer than window.length "
                f"({config.window.length}): the tuning windows would hold no observations"
            ]
        )
    config = _nonlinear(config)
    assumed_obs_std = config.observations.error_std or sim.obs_error_std
    if config.observations.error_std is None:
        log.info(
            "observations.error_std is unset: the tuning starts from simulate.obs_error_std = %g",
            assumed_obs_std,
        )

    layout = build_dynamics(config.model).layout()
    dtype = np.float64 if config.run.precision == "float64" else np.float32
    covariance = config.background.covariance
    correlated = None
    if "length_scale" in names:
        assert isinstance(covariance, CorrelatedCovariance)  # check_tunable: a correlated B
        try:
            correlated = CorrelatedRoot.for_layout(
                layout, covariance.std, covariance.length_scale, covariance.kind, dtype
            )
        except ValueError as exc:
            raise ConfigError([f"tune.parameters: {exc}"]) from None
    started = time.perf_counter()
    windows = _tuning_windows(config, nsteps, assumed_obs_std, layout, dtype)
    made = time.perf_counter() - started

    capacity = windows.obs.values.shape[-1]  # sizes the auto minimiser
    problem = build_problem(config, nsteps, observation_capacity=capacity)
    check_forward_mode(problem.dynamics, config.model.name, TUNING_NEEDS_FORWARD_MODE)
    tunable = Tunable.prepare(problem.method, names, correlated)
    training, validation = windows[: settings.windows], windows[settings.windows :]
    log.info(
        "tuning data (%s observations): %d + %d windows of %d steps, up to %d observations each, "
        "made in %.1f s; tuning %s",
        config.observations.layout,
        settings.windows,
        settings.validation_windows,
        nsteps,
        capacity,
        made,
        ", ".join(names),
    )
    return Prepared(names, tunable, training, validation, assumed_obs_std, problem.dtype)


def _optimise(
    prepared: Prepared,
    optimiser: optax.GradientTransformation,
    steps: int,
) -> tuple[Theta, list[TuningStep]]:
    """``steps`` optimiser steps on the training windows from theta = 0; the tuned theta and the
    history."""
    theta = prepared.tunable.initial(prepared.dtype)
    state = optimiser.init(theta)
    history = []
    for step in range(steps):
        began = time.perf_counter()
        theta, state, loss, converged = tuning_step(
            theta, state, prepared.tunable, prepared.training, optimiser=optimiser
        )
        factors = {name: float(jnp.exp(value)) for name, value in theta.items()}
        if not np.isfinite(float(loss)) or not all(np.isfinite(list(factors.values()))):
            raise NumericalError(
                f"tuning step {step + 1}: the loss or the parameters became non-finite; "
                "lower tune.learning_rate or tighten method.rtol/atol"
            )
        history.append(
            TuningStep(
                step + 1, float(loss), float(converged), factors, time.perf_counter() - began
            )
        )
        log.info(
            "step %d/%d: loss %.4g (RMSE %.4g), factors %s, %.0f%% converged, %.1f s",
            step + 1,
            steps,
            float(loss),
            float(np.sqrt(loss)),
            ", ".join(f"{k} x{v:.3g}" for k, v in factors.items()),
            100 * float(converged),
            history[-1].seconds,
        )
    return theta, history


def tune(config: Config, *, overwrite: bool = False) -> TuneResult:
    """Tune (see the module docstring). Not for a method with a network:
    :func:`dacli.run.train.train`."""
    check_tunable(config)
    settings, sim = config.tune or TuneConfig(), config.simulate
    assert sim is not None  # check_tunable (above): the config has [simulate]
    output = Path(settings.output)
    if output.exists() and not overwrite:
        raise OutputError(
            f"output file {output} exists (tune.output); pass --overwrite to replace it"
        )
    configure(config.run.precision, config.run.device, config.run.compilation_cache)

    prepared = prepare(config)
    before, converged = map(
        float,
        analysis_rmse(
            prepared.tunable.initial(prepared.dtype), prepared.tunable, prepared.validation
        ),
    )
    log.info(
        "before: validation analysis RMSE %.4g (%.0f%% of the minimisations converged)",
        before,
        100 * converged,
    )
    theta, history = _optimise(
        prepared, make_optimiser(settings.learning_rate, settings.steps), settings.steps
    )
    after, converged = map(float, analysis_rmse(theta, prepared.tunable, prepared.validation))
    log.info("after: validation analysis RMSE %.4g (%.0f%% converged)", after, 100 * converged)
    if not np.isfinite(after):
        raise NumericalError(
            f"the validation analyses with the tuned values are non-finite; nothing written to "
            f"{output} (tighten method.rtol/atol, raise method.max_steps or lower "
            "tune.learning_rate)"
        )

    values = tuned_values(config, theta, prepared.assumed_obs_std)
    text = snippet(values, before, after, settings.validation_windows)
    replace_file(output, text.encode())
    return TuneResult(
        method=config.method.kind,
        parameters=tuple(prepared.names),
        steps=settings.steps,
        validation_rmse_before=before,
        validation_rmse_after=after,
        factors={name: float(np.exp(float(v))) for name, v in theta.items()},
        tuned=values,
        truth=TwinTruth(
            sim.background_error_std, sim.obs_error_std, settings.background_error_length_scale
        ),
        snippet=text,
        history=tuple(history),
        files=TuneFiles(str(output)),
    )
