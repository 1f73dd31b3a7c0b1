"""``dacli check-adjoints``: prove the gradients right before trusting a configuration.

With a config: the configured model, observation operator (first window's observations),
covariances and method. Without one: every built-in model with every observation operator
(identity on grid points, a subset of variables, linear interpolation) and both analytic B
kinds — the self-test after installing on a new machine or GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from dacli.config.registry import capabilities
from dacli.config.schema import Config
from dacli.covariances.background import background_sqrt_operator
from dacli.diagnostics.adjoint_checks import NOT_APPLICABLE, CheckResult
from dacli.diagnostics.adjoint_suite import (
    Selection,
    SuiteTolerances,
    minimiser_adjoint_label,
    run_suite,
)
from dacli.errors import ConfigError
from dacli.io.interpolation import interpolation_weights
from dacli.io.observation_set import POINTS, ObservationSet
from dacli.io.states import state_at
from dacli.methods.strong4dvar import StrongConstraint4DVar
from dacli.models.integrate import integrate
from dacli.models.lorenz import Lorenz63, Lorenz96
from dacli.models.solvers import RK4
from dacli.observations.windows import make_schedule, pack_observations
from dacli.run.inputs import prepare_inputs
from dacli.run.runtime import configure, describe_device, place_work

log = logging.getLogger("dacli")


@dataclass(frozen=True)
class CheckReport:
    """The suite's verdict and every check's result (the ``--json`` report, in this order)."""

    passed: bool
    precision: str
    device: str
    results: tuple[CheckResult, ...] = field(metadata={"json_name": "checks"})

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]


def _tolerances(config: Config | None, dtype):
    tolerances = SuiteTolerances.for_dtype(dtype)
    if config is None or config.checks is None:
        return tolerances
    given = config.checks.model_dump(exclude_none=True)
    suite_keys = {"exact_strategy", "backsolve", "minimiser_strategy", "configured_gradient"}
    checks = replace(tolerances.checks, **{k: v for k, v in given.items() if k not in suite_keys})
    return replace(tolerances, checks=checks, **{k: v for k, v in given.items() if k in suite_keys})


def _synthetic_observations(truth, layout, variables, kind, dt, nsteps, rng) -> ObservationSet:
    """Noisy observations of ``truth`` (unit error) for a built-in case: every grid point of each
    observed variable (``kind == "grid"``) or 8 random interpolated locations per step; draws from
    ``rng`` in the order the suite has always used. Not for user configs (those read their obs)."""
    time_list: list[float] = []
    row_list: list[list[int]] = []
    weight_list: list[list[float]] = []
    for step in range(1, nsteps + 1):
        for variable in variables:
            if kind == "grid":
                for g in range(layout.grid_size):
                    time_list.append(step * dt)
                    row_list.append([layout.index(variable, g)] * POINTS)
                    weight_list.append([1.0] + [0.0] * (POINTS - 1))
            else:
                index, weight, _ = interpolation_weights(
                    rng.uniform(0, layout.grid_size, 8), layout
                )
                for i, w in zip(index, weight, strict=True):
                    time_list.append(step * dt)
                    row_list.append(list(i + layout.index(variable, 0)))
                    weight_list.append(list(w))
    rows, weights = np.asarray(row_list), np.asarray(weight_list)
    times = np.asarray(time_list)
    slots = np.rint(times / dt).astype(int)
    values = np.sum(truth[slots[:, None], rows] * weights, axis=1) + rng.normal(0, 1.0, len(times))
    return ObservationSet(
        times,
        values,
        np.ones(len(times)),
        rows,
        weights,
        np.full(len(times), variables[0]),
        np.full((len(times), 1), np.nan),
    )


def _builtin_specs():
    """(name, dynamics, solver, dt, steps, observed variables, "grid" | "scattered", B's kind) of
    each built-in check case: the models and observation operators dacli ships."""
    return [
        (
            "lorenz63 (x, z observed; diagonal B)",
            Lorenz63(),
            diffrax.Tsit5(),
            0.01,
            10,
            ("x", "z"),
            "grid",
            "diagonal",
        ),
        (
            "lorenz96 (grid points; gaussian B)",
            Lorenz96(n=20),
            RK4(),
            0.05,
            5,
            ("x",),
            "grid",
            "gaussian",
        ),
        (
            "lorenz96 (interpolated locations; gaussian B)",
            Lorenz96(n=20),
            RK4(),
            0.05,
            5,
            ("x",),
            "scattered",
            "gaussian",
        ),
    ]


def _builtin_cases(dtype):
    """(name, method, background, start time, obs, truth) per built-in model and observation
    operator."""
    rng = np.random.default_rng(0)
    specs = _builtin_specs()
    cases = []
    for name, dynamics, solver, dt, nsteps, variables, kind, covariance in specs:
        layout = dynamics.layout()
        x0 = jnp.asarray(dynamics.default_state(jax.random.PRNGKey(1)), dtype)
        truth = np.asarray(
            integrate(dynamics, x0, 0.0, nsteps, dt, solver, diffrax.DirectAdjoint())
        )
        observations = _synthetic_observations(truth, layout, variables, kind, dt, nsteps, rng)
        schedule = make_schedule(0.0, nsteps * dt, nsteps * dt, dt, "newest", 1, None)
        # One capacity for every case (100 grid, 40 scattered observations): the two Lorenz-96
        # cases then differ only in array values and share every compiled program.
        packed = pack_observations(observations, schedule, None, dtype=np.dtype(dtype), bucket=128)
        sqrt_b = background_sqrt_operator(
            covariance, 1.0, layout, 2.0 if covariance == "gaussian" else None, dtype
        )
        method = StrongConstraint4DVar(
            dynamics=dynamics,
            ode_solver=solver,
            forward_adjoint=diffrax.RecursiveCheckpointAdjoint(),
            background_sqrt=sqrt_b,
            minimiser=optx.LBFGS(rtol=1e-8, atol=1e-8),
            minimiser_adjoint=optx.ImplicitAdjoint(),
            nsteps=nsteps,
            dt=dt,
            max_steps=200,
        )
        background = x0 + jnp.asarray(rng.normal(0, 1.0, x0.shape), dtype)
        cases.append((name, method, background, 0.0, packed.window(0), x0))
    return cases


def _config_case(config: Config, dtype):
    """(name, method, background, start time, obs, truth) of a config's first window; the truth
    (when the config has one) interpolated to the window's start. Not for the built-in suite."""
    inputs = prepare_inputs(config)
    obs = jax.tree_util.tree_map(jnp.asarray, inputs.packed.window(0))
    start = float(inputs.schedule.starts[0])
    truth = None
    if inputs.truth is not None:
        assert config.truth is not None  # the truth was read from config.truth.path
        truth = jnp.asarray(
            state_at(*inputs.truth, start, config.truth.path, "truth", 0.5 * config.model.dt),
            dtype,
        )
    return (
        config.model.name,
        inputs.problem.method,
        jnp.asarray(inputs.background, dtype),
        start,
        obs,
        truth,
    )


def check_adjoints(
    config: Config | None,
    *,
    precision: str = "float64",
    device: str = "auto",
    strategies: bool = True,
    level: str = "full",
    on_result: Callable | None = None,
) -> CheckReport:
    """Run the gradient-check suite at ``level`` ("quick": the dot-product, tangent-linear and
    Taylor tests only; "full": every check); never raises for a failing check (see
    ``report.passed``). Raises :class:`ConfigError` when a strategy the config sets explicitly
    cannot differentiate its model (naming the alternative)."""
    precision, device, dtype = _set_up(config, precision, device)
    tolerances = _tolerances(config, dtype)
    if config is None:
        place_work(device, 0, "the built-in cases' small states")
        cases = _builtin_cases(dtype)
        selection = None
    else:
        cases = [_config_case(config, dtype)]
        place_work(device, cases[0][2].size, "the state")  # before the first check computes
        selection = _selection(config, cases[0][1])
    if level == "quick":
        log.info(
            "quick: the dot-product, tangent-linear and Taylor tests only (linearity, symmetry, "
            "the incremental linearisation, the strategies and the configured gradient through "
            "the analysis are not checked)"
        )
    results, models_checked = [], set()
    for name, method, background, t_start, obs, reference in cases:
        log.info("checking %s", name)
        model_key = (
            repr(method.dynamics),
            type(method.ode_solver).__name__,
            method.dt,
            method.nsteps,
        )
        for result in run_suite(
            method,
            background,
            t_start,
            obs,
            name=name,
            tolerances=tolerances,
            strategies=strategies,
            reference_state=reference,
            model_checks=model_key not in models_checked,
            level=level,
            selection=selection,
        ):
            results.append(result)
            models_checked.add(model_key)
            if on_result is not None:
                on_result(result)
    failed = any(r.failed for r in results)
    if selection is not None and not failed:  # a failure says more
        _refuse_inapplicable_selection(results, selection)
    return CheckReport(not failed, precision, describe_device(), tuple(results))


def _set_up(config: Config | None, precision: str, device: str):
    """Refuse a 4DVarNet config, set the runtime (the config's precision, device and cache, or
    the arguments'); (precision, device, dtype)."""
    cache = "auto"
    if config is not None:
        precision, device, cache = (
            config.run.precision,
            config.run.device,
            config.run.compilation_cache,
        )
        if capabilities(config.method.kind).learned:
            raise ConfigError(
                [
                    "method.kind: check-adjoints checks the variational methods' gradients; "
                    "4DVarNet's (its solver adjoints) are checked by dacli's tests — use a 4DVar "
                    "config of the same model"
                ]
            )
    configure(precision, device, cache)
    jax.config.update("jax_default_matmul_precision", "highest")  # no TF32 on GPUs for the checks
    return precision, device, jnp.float64 if precision == "float64" else jnp.float32


def _selection(config: Config, method) -> Selection:
    """The strategies ``config`` selects (as built into ``method``), and which it sets
    explicitly."""
    explicit = frozenset(
        key
        for key in ("forward_adjoint", "minimiser_adjoint")
        if key in config.method.model_fields_set
    )
    return Selection(
        type(method.forward_adjoint).__name__,
        minimiser_adjoint_label(method.minimiser_adjoint),
        explicit,
    )


# What to select instead of a strategy that cannot differentiate the model (typically a
# custom_vjp model: no forward mode).
ALTERNATIVES = {
    "forward_adjoint": 'forward_adjoint = "RecursiveCheckpointAdjoint" (reverse mode only)',
    "minimiser_adjoint": (
        'minimiser_adjoint = "RecursiveCheckpointAdjoint" (differentiates the iterations '
        "themselves, reverse mode only; no Hessian-vector products)"
    ),
}


def _refuse_inapplicable_selection(results, selection: Selection) -> None:
    """ConfigError when a strategy the config sets explicitly is not applicable to its model."""
    problems = []
    for result in results:
        if result.status != NOT_APPLICABLE:
            continue
        for slot in selection.explicit:
            label = result.component.split(f"{slot} ", 1)[-1].removesuffix(" as configured")
            if f"{slot} " in result.component and label == getattr(selection, slot):
                problems.append(
                    f"method.{slot}: {label} is not applicable to this model and settings "
                    f"({result.detail}); set method.{ALTERNATIVES[slot]}"
                )
    if problems:
        raise ConfigError(sorted(set(problems)))
