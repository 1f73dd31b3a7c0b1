"""Benchmark: value-and-gradient over cost of every built-in model at its shipped window.

Issue 19's target ("value-and-gradient <= 4x the cost for every built-in model at its shipped
window"), measured on the shipped configs and sample files: ``configs/lorenz63.toml``,
``lorenz96.toml`` and ``qg.toml``, each built as ``dacli assimilate`` builds it
(``prepare_inputs(config, reverse_only=True)``), on its first window, the control 0. For a model
with a hand-written adjoint (the Lorenz models) the same method with the model differentiated by
JAX (``model.adjoint = "autodiff"``) is timed beside it. Each of J and (J, dJ/dv) is evaluated
``loops`` times inside one compiled scan (a perturbed control each time), so call dispatch is
not what is measured; the variants are interleaved over ``--rounds`` rounds (median).

    python benchmarks/gradient_cost.py
    python benchmarks/gradient_cost.py --configs lorenz96 --rounds 5

Writes benchmarks/results/gradient_cost.{json,md}. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
from common import log, machine_line, per_call, write_json_and_markdown
from provenance import ROOT, environment

import dacli.config
from dacli.models.base import AbstractAdjointRule
from dacli.run.inputs import prepare_inputs

jax.config.update("jax_enable_x64", True)


def programs(method, v, args, loops: int) -> dict:
    """The cost and the value-and-gradient of ``method``, each ``loops`` times in one scan."""
    dynamic, static = eqx.partition(method, eqx.is_array)

    def cost(dynamic, v, args):
        return eqx.combine(dynamic, static).cost(v, args)

    def repeated(evaluate):
        def program(dynamic, v, args):
            def body(total, i):
                value, gradient = evaluate(dynamic, v + 1e-9 * i, args)
                return total + value + gradient.ravel()[0], None

            steps = jnp.arange(loops, dtype=v.dtype)
            return jax.lax.scan(body, jnp.zeros((), v.dtype), steps)[0]

        return jax.jit(program).lower(dynamic, v, args).compile()

    both = jax.value_and_grad(cost, argnums=1)
    compiled = {
        "cost": repeated(lambda d, v, a: (cost(d, v, a), jnp.zeros(1, v.dtype))),
        "value_and_grad": repeated(both),
    }
    return {kind: (lambda c=c: c(dynamic, v, args)) for kind, c in compiled.items()}


def measure(name: str, rounds: int, budget: float) -> list[dict]:
    config = dacli.config.load(ROOT / "configs" / f"{name}.toml", ['run.compilation_cache="off"'])
    inputs = prepare_inputs(config, reverse_only=True)
    method = inputs.problem.method
    obs = jax.tree_util.tree_map(lambda a: jnp.asarray(a[0]), inputs.packed.stacked())
    background = jnp.asarray(inputs.background)
    args = (background, jnp.asarray(inputs.schedule.starts[0]), obs)
    v = method.zero_control(background)
    loops = max(4, int(2e5 / v.size))
    variants = {inputs.problem.model_adjoint.name: method}
    if isinstance(method.dynamics, AbstractAdjointRule):
        variants["autodiff"] = eqx.tree_at(lambda m: m.dynamics, method, method.dynamics.model)
    built = {label: programs(m, v, args, loops) for label, m in variants.items()}
    times: dict = {label: {kind: [] for kind in calls} for label, calls in built.items()}
    for _ in range(rounds):  # interleaved
        for label, calls in built.items():
            for kind, call in calls.items():
                times[label][kind].append(per_call(call, budget=budget) / loops)
    rows = []
    for label, kinds in times.items():
        cost, both = (statistics.median(kinds[k]) for k in ("cost", "value_and_grad"))
        rows.append({
            "config": name, "model": config.model.name, "state_size": int(background.size),
            "window_steps": int(method.nsteps), "ode_solver": config.model.ode_solver,
            "formulation": inputs.problem.formulation.name, "model_adjoint": label,
            "cost_us": 1e6 * cost, "value_and_grad_us": 1e6 * both, "ratio": both / cost,
            "loops": loops, "rounds_us": {k: [1e6 * t for t in v] for k, v in kinds.items()},
        })
        log(f"{name} ({label}): cost {1e6 * cost:.1f} µs, value-and-grad {1e6 * both:.1f} µs, "
            f"ratio {both / cost:.2f}")
    return rows


def markdown(report: dict) -> str:
    lines = [
        "Value-and-gradient over cost at each shipped config's first window (control 0), each "
        f"evaluated `loops` times in one compiled scan; median of {report['rounds']} interleaved "
        "rounds. `hand-written`: the model's own adjoint (what `dacli assimilate` runs here); "
        "`autodiff`: JAX's transpose of the same model.",
        "",
        "| config | model, solver | state, steps | formulation | model adjoint | cost [µs] "
        "| value-and-grad [µs] | value-and-grad ÷ cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['config']} | {r['model']}, {r['ode_solver']} | {r['state_size']}, "
            f"{r['window_steps']} | {r['formulation']} | {r['model_adjoint']} | {r['cost_us']:.1f} "
            f"| {r['value_and_grad_us']:.1f} | {r['ratio']:.2f} |"
        )
    lines += ["", machine_line(report)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="lorenz63,lorenz96,qg")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per timing")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gradient_cost"))
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rows = [row for name in args.configs.split(",") for row in measure(name, args.rounds, args.budget)]
    report = {"rounds": args.rounds, "rows": rows, "environment": environment(),
              "seconds_total": time.perf_counter() - began}
    text = markdown(report)
    write_json_and_markdown(args.out, report, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
