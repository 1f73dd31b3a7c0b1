"""Benchmark: dacli's strong 4DVar window solve against a minimal hand-written JAX strong 4DVar.

Issue 19 item 1. One process, the same data, interleaved repeats. Per case the windows come
from ``dacli simulate`` (a twin experiment written to a scratch folder) and dacli builds its
method exactly as ``dacli assimilate`` does (``dacli.config.load`` + ``prepare_inputs``, i.e.
``build_problem``). Timed side by side, each as one compiled ``lax.scan`` over the same W
windows, each window started from the truth plus a fixed error (no cycling, so every variant
solves the very same problems):

* ``dacli analyse``: ``method.analyse`` (what dacli's chunk program runs per window: the solve,
  the background/analysis costs, trajectories and observation equivalents, the gradient norm),
  built as ``dacli assimilate`` builds it (Lorenz-96 with its hand-written adjoint);
* ``dacli solve``: ``method.solve_control`` alone (the bare LBFGS solve), through
  :func:`dacli.models.integrate.integrate` (the scan of solver steps, commit 4edea76);
* ``dacli solve (autodiff)``: the same with the model differentiated by JAX
  (``model.adjoint = "autodiff"``; only for a model with a hand-written adjoint);
* ``dacli solve (diffeqsolve)``: the same with ``integrate`` swapped for
  :func:`dacli.models.integrate.solve_with_diffeqsolve` (the path before 4edea76);
* ``hand-written``: ``lax.scan`` of RK4 steps, J(v) = 1/2|v|^2 + 1/2 sum((y - H x)/sigma)^2 with
  x0 = xb + B^{1/2} v (the same B^{1/2}: dense for N <= 400, dacli's operator otherwise), the
  valid observations only (a dense slice when every site of a step is observed, else a gather),
  ``jax.value_and_grad`` through ``optx.minimise`` with the same LBFGS, rtol, atol, max_steps.

Per variant: ms per window, mean iterations, mean final cost (asserted equal to the
hand-written one within ``--cost-rtol``), value-and-gradient / cost time on window 0,
trace + compile seconds of the window program, and its compiled ``memory_analysis()``
(argument + output + temp bytes: XLA's CPU backend has no peak-memory statistics).

    python benchmarks/handwritten_4dvar.py                 # every case (~10 min on 2 busy cores)
    python benchmarks/handwritten_4dvar.py --cases l96_40_lag2 --repeats 3 --windows 16

Writes benchmarks/results/handwritten_4dvar.{json,md}. A benchmark, not a test.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI sets it (see lorenz96_dapper.py)
os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli sets it, before equinox is imported

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from common import log, per_call, timed, write_json_and_markdown
from provenance import ROOT, environment

import dacli.config
import dacli.methods.variational as variational
import dacli.models.fixed_steps as fixed_steps
from dacli.build.dynamics import build_dynamics
from dacli.models.integrate import solve_with_diffeqsolve
from dacli.run.inputs import prepare_inputs
from dacli.run.simulate import simulate


@dataclass(frozen=True)
class Case:
    """One benchmark cell: a shipped config and the overrides that make it."""

    name: str
    config: str
    overrides: tuple[str, ...]
    windows: int
    simulate_config: str | None = None  # the config that makes the data, when not ``config``


def l96_case(n: int, lag: int, windows: int) -> Case:
    """Lorenz-96, RK4 dt = 0.05, every site observed every 4 steps (dto = 0.2, R = I), a window
    of ``lag`` observation intervals shifted by one, its newest observation assimilated
    (DAPPER's Var4D cycling scheme on sakov2008 with dto = 0.2, issue 19)."""
    return Case(
        f"l96_{n}_lag{lag}",
        "lorenz96",
        (
            f"model.parameters.n={n}",
            f"window.length={0.2 * lag!r}",
            "window.shift=0.2",
            'window.assimilate="newest"',
            "simulate.obs_interval=0.2",
            "simulate.missing_fraction=0.0",
            f"simulate.duration={0.2 * (windows + lag + 1)!r}",
            "simulate.background_error_std=0.3",
            "background.covariance.std=0.3",
        ),
        windows,
    )


def qg_case(size: int, windows: int, max_steps: int) -> Case:
    """QG 1.5-layer, the shipped config's 2-day window (8 RK4 steps), nonlinear LBFGS capped at
    ``max_steps`` iterations (the shipped config is incremental; the comparison is the
    nonlinear solve: configs/qg_nonlinear.toml on data that configs/qg.toml simulates)."""
    return Case(
        f"qg_{size}",
        "qg_nonlinear",
        (
            f"model.parameters.nx={size}",
            f"model.parameters.ny={size}",
            f"model.parameters.length_x={1.28e6 * size / 64!r}",
            f"method.max_steps={max_steps}",
            "simulate.spinup=20.0",
            f"simulate.duration={2.0 * windows + 0.25!r}",
        ),
        windows,
        "qg",
    )


def all_cases(quick: bool) -> list[Case]:
    few = 8 if quick else 32
    cases = [l96_case(40, lag, few) for lag in (1, 2, 4, 8)]
    cases += [l96_case(400, 2, 8), l96_case(4000, 2, 4 if quick else 8)]
    cases += [qg_case(64, 2, 10)]
    if not quick:
        cases += [qg_case(256, 1, 5)]
    return cases


# ------------------------------------------------------------------------------------------------
# The data: dacli simulate, dacli's prepared inputs
# ------------------------------------------------------------------------------------------------


def prepared(case: Case, folder: Path):
    """(method, stacked window observations, backgrounds, starts) of ``case``'s first windows."""
    paths = [
        f'observations.path="{folder / "obs.nc"}"',
        f'background.path="{folder / "background.nc"}"',
        f'truth.path="{folder / "truth.nc"}"',
        f'output.path="{folder / "analysis.nc"}"',
        'run.device="cpu"',
        'run.compilation_cache="off"',  # compile times are compilations, not cache loads
    ]
    shared = [item for item in case.overrides if not item.startswith("simulate.")]
    maker = dacli.config.load(
        ROOT / "configs" / f"{case.simulate_config or case.config}.toml",
        [*paths, *case.overrides],
    )
    config = dacli.config.load(ROOT / "configs" / f"{case.config}.toml", [*paths, *shared])
    with contextlib.redirect_stdout(sys.stderr):
        simulate(maker, overwrite=True)
        inputs = prepare_inputs(config, reverse_only=True)  # as dacli assimilate builds it
    count = min(case.windows, inputs.schedule.count)
    times, states = inputs.truth
    rng = np.random.default_rng(19)
    starts = np.asarray(inputs.schedule.starts[:count], float)
    at = [int(np.argmin(np.abs(times - start))) for start in starts]
    error = maker.simulate.background_error_std
    backgrounds = states[at] + error * rng.standard_normal((count, states.shape[1]))
    stacked = inputs.packed.stacked()
    obs = jax.tree_util.tree_map(lambda a: jnp.asarray(a[:count]), stacked)
    dtype = jnp.float64 if config.run.precision == "float64" else jnp.float32
    return config, inputs.problem.method, obs, jnp.asarray(backgrounds, dtype), jnp.asarray(starts)


# ------------------------------------------------------------------------------------------------
# The hand-written 4DVar
# ------------------------------------------------------------------------------------------------


class HandWritten(eqx.Module):
    """Strong 4DVar written for the benchmark: RK4 in a lax.scan, the valid observations only."""

    sqrt_b: jax.Array | None  # dense B^{1/2}, or None: ``operator`` applies it
    operator: object
    vector_field: object
    dt: float = eqx.field(static=True)
    nsteps: int = eqx.field(static=True)
    minimiser: object = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)

    def rk4(self, x, t):
        f, h = self.vector_field, self.dt
        k1 = f(t, x)
        k2 = f(t + h / 2, x + h / 2 * k1)
        k3 = f(t + h / 2, x + h / 2 * k2)
        k4 = f(t + h, x + h * k3)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def cost(self, v, args):
        background, t_start, (values, std, slot, index, weight) = args
        increment = self.sqrt_b @ v if self.sqrt_b is not None else self.operator.mv(v)
        x0 = background + increment

        def step(x, k):
            x = self.rk4(x, t_start + k * self.dt)
            return x, x

        _, states = jax.lax.scan(step, x0, jnp.arange(self.nsteps, dtype=x0.dtype))
        trajectory = jnp.concatenate([x0[None], states])
        if index is None:  # every site of the observed steps: a dense slice
            equivalents = trajectory[slot]
        else:
            equivalents = jnp.sum(weight * trajectory[slot[:, None], index], axis=-1)
        return 0.5 * jnp.sum(v**2) + 0.5 * jnp.sum(((values - equivalents) / std) ** 2)

    def solve(self, background, t_start, obs):
        args = (background, t_start, obs)
        v0 = jnp.zeros_like(background)
        solution = optx.minimise(
            self.cost, self.minimiser, v0, args, max_steps=self.max_steps, throw=False
        )
        return self.cost(solution.value, args), solution.stats["num_steps"]


def hand_written_observations(obs, n: int):
    """Per window, the valid observations of dacli's padded arrays: (values, std, slot, index,
    weight), padded only to the most any of these windows has (value 0, std 1, weight 0: a zero
    departure), or (values (k, n), std (k, n), steps (k,), None, None) when they are every site
    of the same k steps with unit weights (then H is a slice)."""
    mask = np.asarray(obs.mask)
    counts = mask.sum(axis=1)
    most = int(counts.max())
    keep = [np.flatnonzero(m) for m in mask]

    def take(a, fill):
        a = np.asarray(a)
        rows = []
        for w, k in enumerate(keep):
            row = np.full((most, *a.shape[2:]), fill, a.dtype)
            row[: len(k)] = a[w][k]
            rows.append(row)
        return np.stack(rows)

    values, std, slot = take(obs.values, 0), take(obs.std, 1), take(obs.slot, 0)
    index, weight = take(obs.index, 0), take(obs.weight, 0)
    one_hot = (weight[..., 0] == 1).all() and (weight[..., 1:] == 0).all()
    steps = np.unique(slot[0])
    dense = one_hot and (counts == len(steps) * n).all()
    if dense:
        order = np.lexsort((index[..., 0], slot), axis=-1)
        values, std, index = (
            np.take_along_axis(a, order, -1) for a in (values, std, index[..., 0])
        )
        slot = np.take_along_axis(slot, order, -1)
        k = len(steps)
        assert (index.reshape(-1, k, n) == np.arange(n)).all()
        return (
            jnp.asarray(values.reshape(-1, k, n)),
            jnp.asarray(std.reshape(-1, k, n)),
            jnp.asarray(slot.reshape(-1, k, n)[:, :, 0]),
            None,
            None,
        )
    return tuple(jnp.asarray(a) for a in (values, std, slot, index, weight))


def hand_written(method, n: int, dynamics) -> HandWritten:
    dense = n <= 400
    operator = method.background_sqrt
    scale = jnp.exp(method.log_background_scale)
    sqrt_b = scale * operator.as_matrix() if dense else None
    if not dense:
        assert float(scale) == 1.0
    # dacli's own tendency, for Lorenz-96 as for QG: the model is not the 4DVar. (Lorenz-96's
    # jnp.roll against dacli's halo on CPU: benchmarks/lorenz96_tendency.py.) Differentiated by
    # JAX (``dynamics`` is the model as built, without its hand-written adjoint): the reference
    # is a plain jax.grad program.
    def vector_field(t, x):
        return dynamics.vector_field(t, x, None)

    return HandWritten(
        sqrt_b,
        None if dense else operator,
        vector_field,
        method.dt,
        method.nsteps,
        method.minimiser,
        method.max_steps,
    )


# ------------------------------------------------------------------------------------------------
# The timed programs
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def diffeqsolve_path():
    """dacli's methods integrate through diffeqsolve (the path before 4edea76) while tracing."""
    scan_path = variational.integrate
    variational.integrate = solve_with_diffeqsolve
    try:
        yield
    finally:
        variational.integrate = scan_path


@contextlib.contextmanager
def diffrax_stage_loop():
    """dacli's scan path stepping diffrax's ``solver.step`` (its Runge-Kutta stage loop, a
    nested while loop per step) instead of the stages written out (``unrolls_stages``): the
    path before the stages were unrolled, measured on the whole window solve."""
    unrolled = fixed_steps.unrolls_stages
    fixed_steps.unrolls_stages = lambda solver: False
    try:
        yield
    finally:
        fixed_steps.unrolls_stages = unrolled


def path_context(path):
    """True: the diffeqsolve path; "stages": diffrax's stage loop; else dacli as it is.

    Clears JAX's caches first: optimistix's ``minimise`` is a filter_jit whose trace of the same
    cost function would otherwise be reused across paths (before this, the "diffeqsolve" rows
    ran the scan path inside the minimiser's loop)."""
    jax.clear_caches()
    if path == "stages":
        return diffrax_stage_loop()
    return diffeqsolve_path() if path else contextlib.nullcontext()


def dacli_analyse(method, backgrounds, starts, obs):
    def one(_, window):
        background, start, window_obs = window
        result = method.analyse(background, start, window_obs)
        return None, (result.cost_final[0], result.iterations)

    return jax.lax.scan(one, None, (backgrounds, starts, obs))[1]


def dacli_solve(method, backgrounds, starts, obs):
    def one(_, window):
        background, start, window_obs = window
        args = (background, start, window_obs)
        solution = method.solve_control(jnp.zeros_like(background), args)
        return None, (method.cost(solution.value, args), solution.stats["num_steps"])

    return jax.lax.scan(one, None, (backgrounds, starts, obs))[1]


def hand_solve(model, backgrounds, starts, obs):
    def one(_, window):
        background, start, window_obs = window
        return None, model.solve(background, start, window_obs)

    return jax.lax.scan(one, None, (backgrounds, starts, obs))[1]


def compile_program(function, static, dynamic, *args, old_path=False):
    """(compiled, trace seconds, compile seconds, memory bytes) of ``function(static +
    dynamic, *args)`` with the arrays of the method/model as arguments (not constants)."""

    def program(dynamic, *args):
        return function(eqx.combine(dynamic, static), *args)

    began = time.perf_counter()
    with path_context(old_path):
        lowered = jax.jit(program).lower(dynamic, *args)
    traced = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    memory = compiled.memory_analysis()
    bytes_ = None
    if memory is not None:
        bytes_ = {
            "argument": int(memory.argument_size_in_bytes),
            "output": int(memory.output_size_in_bytes),
            "temp": int(memory.temp_size_in_bytes),
        }
    return (lambda *a: compiled(dynamic, *a)), traced - began, done - traced, bytes_


def gradient_ratio(cost, static, dynamic, v, args, old_path=False) -> dict:
    """Microseconds of one cost and of one value-and-gradient on window 0, and their ratio: each
    evaluated ``loops`` times inside one compiled scan (a perturbed control each time), so the
    call's dispatch (a µs-scale cost per argument leaf) is not what is measured."""
    loops = max(4, int(2e5 / v.size))

    def repeated(evaluate):
        def program(dynamic, v, args):
            def body(total, i):
                value, gradient = evaluate(dynamic, v + 1e-9 * i, args)
                return total + value + gradient.ravel()[0], None

            return jax.lax.scan(body, jnp.zeros((), v.dtype), jnp.arange(loops, dtype=v.dtype))[0]

        return program

    def value(dynamic, v, args):
        return cost(eqx.combine(dynamic, static), v, args)

    def forward(dynamic, v, args):
        return value(dynamic, v, args), jnp.zeros(1, v.dtype)

    both = jax.value_and_grad(value, argnums=1)
    with path_context(old_path):
        programs = [jax.jit(repeated(f)).lower(dynamic, v, args).compile() for f in (forward, both)]
    t_forward, t_both = (per_call(p, dynamic, v, args) / loops for p in programs)
    return {
        "cost_us": 1e6 * t_forward,
        "value_and_grad_us": 1e6 * t_both,
        "ratio": t_both / t_forward,
        "loops": loops,
    }


def run_case(case: Case, args) -> dict:
    log(f"== {case.name}")
    with tempfile.TemporaryDirectory() as scratch:
        config, method, obs, backgrounds, starts = prepared(case, Path(scratch))
    n = backgrounds.shape[1]
    windows = backgrounds.shape[0]
    plain = build_dynamics(config.model)
    model = hand_written(method, n, plain)
    # dacli with the model differentiated by JAX (model.adjoint = "autodiff"), beside the run's
    # own choice (the model's hand-written adjoint where it has one)
    autodiff = eqx.tree_at(lambda m: m.dynamics, method, plain)
    autodiff_dynamic, autodiff_static = eqx.partition(autodiff, eqx.is_array)
    hw_obs = hand_written_observations(obs, n)
    method_dynamic, method_static = eqx.partition(method, eqx.is_array)
    model_dynamic, model_static = eqx.partition(model, eqx.is_array)
    variants = {
        "dacli analyse": (dacli_analyse, method_static, method_dynamic, obs, False),
        "dacli solve": (dacli_solve, method_static, method_dynamic, obs, False),
        "dacli solve (autodiff)": (dacli_solve, autodiff_static, autodiff_dynamic, obs, False),
        "dacli solve (diffeqsolve)": (dacli_solve, method_static, method_dynamic, obs, True),
        "dacli solve (diffrax stage loop)": (
            dacli_solve,
            method_static,
            method_dynamic,
            obs,
            "stages",
        ),
        "hand-written": (hand_solve, model_static, model_dynamic, hw_obs, False),
    }
    if args.skip_old:
        variants.pop("dacli solve (diffeqsolve)")
    if type(plain) is type(method.dynamics):  # no hand-written adjoint: the same program
        variants.pop("dacli solve (autodiff)")
    if not args.stage_variant:
        variants.pop("dacli solve (diffrax stage loop)")
    rows = {}
    programs = {}
    for name, (function, static, dynamic, window_obs, old) in variants.items():
        call, trace, compile_s, memory = compile_program(
            function, static, dynamic, backgrounds, starts, window_obs, old_path=old
        )
        first = timed(call, backgrounds, starts, window_obs)
        costs, iterations = jax.block_until_ready(call(backgrounds, starts, window_obs))
        programs[name] = (call, window_obs)
        rows[name] = {
            "trace_s": trace,
            "compile_s": compile_s,
            "first_call_s": first,
            "memory": memory,
            "cost_mean": float(jnp.mean(costs)),
            "costs": np.asarray(costs).tolist(),
            "iterations": np.asarray(iterations).tolist(),
            "iterations_mean": float(jnp.mean(iterations)),
            "times_s": [],
        }
        log(
            f"   {name}: trace {trace:.1f} s, compile {compile_s:.1f} s, "
            f"cost {rows[name]['cost_mean']:.6g}, iterations {rows[name]['iterations_mean']:.1f}"
        )
    for _ in range(args.repeats):  # interleaved
        for name, (call, window_obs) in programs.items():
            rows[name]["times_s"].append(timed(call, backgrounds, starts, window_obs))
    for row in rows.values():
        row["ms_per_window"] = 1e3 * statistics.median(row["times_s"]) / windows
    # Final costs must agree wherever both solves converged (hit fewer than max_steps): an
    # unconverged iterate of a chaotic window depends on round-off.
    reference = np.asarray(rows["hand-written"]["costs"])
    for name, row in rows.items():
        converged = (np.asarray(row["iterations"]) < method.max_steps) & (
            np.asarray(rows["hand-written"]["iterations"]) < method.max_steps
        )
        err = np.abs(np.asarray(row["costs"]) - reference) / np.abs(reference)
        row["windows_compared"] = int(converged.sum())
        row["cost_max_rel_diff"] = float(err[converged].max()) if converged.any() else None
        assert not converged.any() or err[converged].max() <= args.cost_rtol, (case.name, name)
    # value-and-gradient / cost on window 0
    args0 = (backgrounds[0], starts[0], jax.tree_util.tree_map(lambda a: a[0], obs))
    v0 = jnp.zeros_like(backgrounds[0])
    rows["dacli solve"]["gradient"] = gradient_ratio(
        lambda m, v, a: m.cost(v, a), method_static, method_dynamic, v0, args0
    )
    if "dacli solve (autodiff)" in rows:
        rows["dacli solve (autodiff)"]["gradient"] = gradient_ratio(
            lambda m, v, a: m.cost(v, a), autodiff_static, autodiff_dynamic, v0, args0
        )
    if not args.skip_old:
        rows["dacli solve (diffeqsolve)"]["gradient"] = gradient_ratio(
            lambda m, v, a: m.cost(v, a), method_static, method_dynamic, v0, args0, old_path=True
        )
    if args.stage_variant:
        rows["dacli solve (diffrax stage loop)"]["gradient"] = gradient_ratio(
            lambda m, v, a: m.cost(v, a),
            method_static,
            method_dynamic,
            v0,
            args0,
            old_path="stages",
        )
    hw_args0 = (
        backgrounds[0],
        starts[0],
        jax.tree_util.tree_map(lambda a: None if a is None else a[0], hw_obs),
    )
    rows["hand-written"]["gradient"] = gradient_ratio(
        lambda m, v, a: m.cost(v, a), model_static, model_dynamic, v0, hw_args0
    )
    return {
        "case": case.name,
        "config": f"configs/{case.config}.toml",
        "overrides": list(case.overrides),
        "n": n,
        "windows": windows,
        "nsteps": method.nsteps,
        "minimiser": repr(method.minimiser),
        "max_steps": method.max_steps,
        "forward_adjoint": repr(method.forward_adjoint),
        "observations_per_window": int(np.asarray(obs.mask).sum(axis=1)[0]),
        "observation_capacity": int(obs.mask.shape[1]),
        "variants": rows,
    }


def profile_case(case: Case) -> dict:
    """Where dacli's cost and gradient spend their time beyond the hand-written ones (window 0):
    one ingredient of dacli's cost swapped into the hand-written one at a time."""
    log(f"== profile {case.name}")
    with tempfile.TemporaryDirectory() as scratch:
        config, method, obs, backgrounds, starts = prepared(case, Path(scratch))
    n = backgrounds.shape[1]
    model = hand_written(method, n, build_dynamics(config.model))
    hw_obs = hand_written_observations(obs, n)
    obs0 = jax.tree_util.tree_map(lambda a: a[0], obs)
    hw0 = jax.tree_util.tree_map(lambda a: None if a is None else a[0], hw_obs)
    v0 = jnp.zeros_like(backgrounds[0])
    both = (model, method)

    def dense_jo(trajectory, hw):
        values, std, slot, _, _ = hw
        return 0.5 * jnp.sum(((values - trajectory[slot]) / std) ** 2)

    def hand_trajectory(m, x0, t_start):
        def step(x, k):
            x = m.rk4(x, t_start + k * m.dt)
            return x, x

        return jnp.concatenate(
            [x0[None], jax.lax.scan(step, x0, jnp.arange(m.nsteps, dtype=x0.dtype))[1]]
        )

    def with_parts(trajectory, observe):
        def cost(pair, v, a):
            hand, dacli_method = pair
            background, t_start, window_obs = a
            x0 = (
                background + hand.sqrt_b @ v
                if hand.sqrt_b is not None
                else background + hand.operator.mv(v)
            )
            return 0.5 * jnp.sum(v**2) + observe(
                trajectory(hand, dacli_method, x0, t_start), window_obs
            )

        return cost

    def with_operator(trajectory, observe):
        def cost(pair, v, a):
            hand, dacli_method = pair
            background, t_start, window_obs = a
            x0 = dacli_method.initial_state(v, background)
            return 0.5 * jnp.sum(v**2) + observe(
                trajectory(hand, dacli_method, x0, t_start), window_obs
            )

        return cost

    def padded_jo(trajectory, window_obs):
        return 0.5 * jnp.sum(variational.whitened_departures(trajectory, window_obs) ** 2)

    def diffrax_steps(adjoint):
        def trajectory(hand, dacli_method, x0, t_start):
            return variational.integrate(
                dacli_method.dynamics,
                x0,
                t_start,
                dacli_method.nsteps,
                dacli_method.dt,
                dacli_method.ode_solver,
                adjoint,
            )

        return trajectory

    def default_stages(checkpoint):
        """fixed_step_trajectory's scan without with_plain_stages (diffrax's default, checkpointed
        Runge-Kutta stage loop instead of scan_kind="bounded")."""

        def trajectory(hand, dacli_method, x0, t_start):
            solver, term = dacli_method.ode_solver, fixed_steps.TERM
            args = (dacli_method.dynamics, jnp.asarray(t_start, x0.dtype))
            h = jnp.asarray(dacli_method.dt, x0.dtype)
            state = solver.init(term, jnp.zeros((), x0.dtype), h, x0, args)

            def advance(carry, k):
                y, solver_state = carry
                y, _, _, solver_state, _ = solver.step(
                    term, k * h, (k + 1) * h, y, args, solver_state, False
                )
                return (y, solver_state), y

            if checkpoint:
                advance = jax.checkpoint(advance)
            steps = jnp.arange(dacli_method.nsteps, dtype=x0.dtype)
            return jnp.concatenate([x0[None], jax.lax.scan(advance, (x0, state), steps)[1]])

        return trajectory

    def plain(hand, _, x0, t_start):
        return hand_trajectory(hand, x0, t_start)

    variants = {
        "hand-written (RK4 scan, dense H)": (with_parts(plain, dense_jo), hw0, False),
        "hand RK4 + dacli padded H (gather + mask)": (with_parts(plain, padded_jo), obs0, False),
        "hand RK4 + dacli's B^{1/2} (method.initial_state) + dense H": (
            with_operator(plain, dense_jo),
            hw0,
            False,
        ),
        "diffrax steps in scan, DirectAdjoint (no checkpoint) + dense H": (
            with_parts(diffrax_steps(diffrax.DirectAdjoint()), dense_jo),
            hw0,
            False,
        ),
        "diffrax steps in scan, jax.checkpoint per step (RecursiveCheckpoint) + dense H": (
            with_parts(diffrax_steps(diffrax.RecursiveCheckpointAdjoint()), dense_jo),
            hw0,
            False,
        ),
        "diffrax steps, default stage loop (not bounded), no checkpoint + dense H": (
            with_parts(default_stages(False), dense_jo),
            hw0,
            False,
        ),
        "diffrax steps, default stage loop (not bounded), jax.checkpoint per step + dense H": (
            with_parts(default_stages(True), dense_jo),
            hw0,
            False,
        ),
        "dacli method.cost (scan path)": (lambda pair, v, a: pair[1].cost(v, a), obs0, False),
        "dacli method.cost (diffeqsolve)": (lambda pair, v, a: pair[1].cost(v, a), obs0, True),
    }
    dynamic, static = eqx.partition(both, eqx.is_array)
    rows = {}
    for name, (cost, window_obs, old) in variants.items():
        args0 = (backgrounds[0], starts[0], window_obs)
        try:
            rows[name] = gradient_ratio(cost, static, dynamic, v0, args0, old_path=old)
        except Exception as error:  # a variant that cannot be differentiated: say so, go on
            rows[name] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
        log(f"   {name}: {rows[name]}")
    return {"case": case.name, "n": n, "nsteps": method.nsteps, "rows": rows}


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def mib(memory) -> str:
    if memory is None:
        return "n/a"
    return f"{sum(memory.values()) / 2**20:.2f} ({memory['temp'] / 2**20:.2f})"


def converged(row: dict, case: dict) -> int:
    return sum(i < case["max_steps"] for i in row["iterations"])


def markdown(report: dict) -> str:
    lines = [
        "# dacli strong 4DVar vs a minimal hand-written JAX 4DVar (issue 19)",
        "",
        f"Command: `{report['command']}`. Machine: {report['machine']}.",
        "",
        "| case | N | steps | obs / window | variant | ms / window | x hand-written "
        "| iterations (windows under max_steps) "
        "| final cost | cost / value-and-grad [µs] | grad / forward | trace + compile [s] "
        "| memory MiB (temp) |",
        "|" + "---|" * 13,
    ]
    for case in report["cases"]:
        hand = case["variants"]["hand-written"]["ms_per_window"]
        for name, row in case["variants"].items():
            gradient = row.get("gradient")
            grad_text = ratio_text = "–"
            if gradient:
                grad_text = f"{gradient['cost_us']:.1f} / {gradient['value_and_grad_us']:.1f}"
                ratio_text = f"{gradient['ratio']:.2f}"
            lines.append(
                f"| {case['case']} | {case['n']} | {case['nsteps']} | "
                f"{case['observations_per_window']} of {case['observation_capacity']} | {name} | "
                f"{row['ms_per_window']:.3g} | {row['ms_per_window'] / hand:.2f}x | "
                f"{row['iterations_mean']:.1f} ({converged(row, case)}/{case['windows']}) | "
                f"{row['cost_mean']:.6g} | {grad_text} | "
                f"{ratio_text} | {row['trace_s']:.1f} + {row['compile_s']:.1f} | "
                f"{mib(row['memory'])} |"
            )
    lines += [
        "",
        "ms / window: the median over repeats of one compiled scan over the case's windows, "
        "divided by the windows. Final costs agree with the hand-written ones within "
        f"{report['settings']['cost_rtol']:g} (relative, per window; asserted) on every window "
        "where both solves stopped before max_steps. Memory: the "
        "compiled window program's `memory_analysis()`, argument + output + temp bytes (XLA's "
        "CPU backend keeps no peak statistics).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer windows, no QG 256²")
    parser.add_argument(
        "--stage-variant",
        action="store_true",
        help="also dacli's solve stepping diffrax's solver.step (its stage loop) in the scan",
    )
    parser.add_argument("--skip-old", action="store_true", help="no diffeqsolve variant")
    parser.add_argument(
        "--profile", default=None, help="a case name: its cost/gradient profile only"
    )
    parser.add_argument("--cost-rtol", type=float, default=1e-3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "handwritten_4dvar"))
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    cases = all_cases(args.quick)
    if args.cases:
        wanted = args.cases.split(",")
        cases = [c for c in cases if c.name in wanted]
    if args.profile:
        report = profile_case(next(c for c in cases if c.name == args.profile))
        lines = [
            f"# profile {report['case']} (N = {report['n']}, {report['nsteps']} steps)",
            "",
            f"Command: `python benchmarks/handwritten_4dvar.py --profile {args.profile}`; load "
            f"{os.getloadavg()[0]:.1f}.",
            "",
            "| cost | cost µs | value-and-grad µs | grad / forward |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {r['cost_us']:.1f} | {r['value_and_grad_us']:.1f} | {r['ratio']:.2f} |"
            if "error" not in r
            else f"| {k} | {r['error']} | | |"
            for k, r in report["rows"].items()
        ]
        write_json_and_markdown(f"{args.out}_profile", report, "\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    began = time.perf_counter()
    env = environment()
    report = {
        "benchmark": "dacli strong 4DVar vs hand-written JAX 4DVar (issue 19 item 1)",
        "command": "python " + " ".join(["benchmarks/handwritten_4dvar.py", *sys.argv[1:]]),
        "settings": {"repeats": args.repeats, "cost_rtol": args.cost_rtol, "quick": args.quick},
        "environment": env,
        "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the start",
        "cases": [],
    }
    for case in cases:
        report["cases"].append(run_case(case, args))
        report["seconds_total"] = time.perf_counter() - began
        report["load_at_end"] = os.getloadavg()
        write_json_and_markdown(args.out, report, markdown(report), quiet=True)
    report["machine"] += f", {os.getloadavg()[0]:.1f} at the end"
    table = markdown(report)
    write_json_and_markdown(args.out, report, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
