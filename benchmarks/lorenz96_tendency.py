"""Benchmark: Lorenz-96's tendency with jnp.roll against a materialised halo, on XLA's CPU backend.

The same RK4 window (``--steps`` steps of dt = 0.05 from a fixed state, in a ``lax.scan``) is
built with each tendency dacli has (``dacli.models.lorenz``): three ``jnp.roll`` calls, one
halo ``concatenate`` kept as an array by ``lax.optimization_barrier``, or the halo differentiated
by Lorenz-96's hand-written adjoint (a ``jax.custom_vjp``, reverse mode only). For each and for n = 40,
400, 4000 it times, side by side and interleaved in one process, the window (forward), its
gradient (reverse mode of a sum of squares), the same gradient with each step under
``jax.checkpoint`` (dacli's RecursiveCheckpointAdjoint path) and the full Jacobian by forward mode
(n tangents: what Gauss-Newton with ``ForwardMode`` computes every iteration; up to n = 400), and
reports how far apart the tendencies' numbers are (the forward and the Jacobian: 0, bit for
bit) and how many kernels each program runs per step (``kernels_per_step``): at n = 40 the kernel
count, not the arithmetic, is what a reverse pass pays for.

    python benchmarks/lorenz96_tendency.py            # n = 40, 400, 4000; 16 steps
    python benchmarks/lorenz96_tendency.py --sizes 40 --steps 16

Writes benchmarks/results/lorenz96_tendency.{json,md}. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import jax
import jax.numpy as jnp
from common import log, machine_line, per_call, write_json_and_markdown
from provenance import ROOT, environment

from dacli.models.lorenz import (
    _tendency_from_halo,
    _tendency_from_rolls,
    _tendency_with_adjoint_rule,
)

jax.config.update("jax_enable_x64", True)
# The last differentiates the halo tendency by Lorenz-96's hand-written adjoint (a custom_vjp:
# no forward mode, so no Jacobian by jacfwd), what dacli assimilate runs where it can.
RULE = "halo + adjoint rule"
TENDENCIES = {
    "jnp.roll": _tendency_from_rolls,
    "halo": _tendency_from_halo,
    RULE: _tendency_with_adjoint_rule,
}
DT = 0.05


def window(tendency, steps: int, checkpointed: bool = False):
    """x0 -> the state after ``steps`` RK4 steps of Lorenz-96 (F = 8) with this tendency; with
    ``checkpointed`` each step under ``jax.checkpoint`` (what dacli's RecursiveCheckpointAdjoint
    path does: one state stored per step, the stages recomputed in the reverse pass)."""

    def step(x, _):
        k1 = tendency(x, 8.0)
        k2 = tendency(x + DT / 2 * k1, 8.0)
        k3 = tendency(x + DT / 2 * k2, 8.0)
        k4 = tendency(x + DT * k3, 8.0)
        return x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

    return lambda x0: jax.lax.scan(jax.checkpoint(step) if checkpointed else step, x0, None, length=steps)[0]


def programs(tendency, steps: int, jacobian: bool) -> dict:
    run, checkpointed = window(tendency, steps), window(tendency, steps, checkpointed=True)
    built = {
        "forward": jax.jit(run),
        "gradient": jax.jit(jax.grad(lambda x0: 0.5 * jnp.sum(run(x0) ** 2))),
        "checkpointed gradient": jax.jit(jax.grad(lambda x0: 0.5 * jnp.sum(checkpointed(x0) ** 2))),
    }
    if jacobian and tendency is not _tendency_with_adjoint_rule:
        built["jacobian"] = jax.jit(jax.jacfwd(run))
    return built


# Instructions of an optimised HLO computation that do no work of their own.
PLUMBING = ("parameter", "get-tuple-element", "tuple", "constant", "bitcast")


def kernels_per_step(compiled) -> list[int]:
    """Instructions that run per step in each while loop of the ``compiled`` program, in program
    order (forward first): on XLA's CPU backend each is a kernel (a fusion, a copy, a
    dynamic-update-slice), so at small n their count, not the arithmetic, sets the time."""
    text = compiled.as_text()
    bodies = re.findall(r"while\(.*?body=%([\w.\-]+)", text)
    counts = []
    for body in bodies:
        block = re.search(rf"^%{re.escape(body)} .*?\n}}", text, re.M | re.S).group(0)
        ops = re.findall(r"^\s+(?:ROOT )?%\S+ = (?:\([^=]*?\)|\S+) ([\w\-]+)\(", block, re.M)
        counts.append(sum(op not in PLUMBING for op in ops))
    return counts


def measure(n: int, steps: int, rounds: int, budget: float, jacobian: bool) -> dict:
    x0 = 8.0 + jax.random.normal(jax.random.PRNGKey(n), (n,), jnp.float64)
    # Compiled once: timed, compared and counted from the same executables.
    built = {
        name: {kind: program.lower(x0).compile() for kind, program in programs(tendency, steps, jacobian).items()}
        for name, tendency in TENDENCIES.items()
    }
    # The largest difference relative to the largest value: 0 where the two are equal bit for
    # bit (the forward and the Jacobian are; a gradient sums the cotangents of the three
    # neighbours in another order).
    difference, rule_difference = {}, {}
    for kind in built["halo"]:
        roll, halo = built["jnp.roll"][kind](x0), built["halo"][kind](x0)
        difference[kind] = float(jnp.max(jnp.abs(roll - halo)) / jnp.max(jnp.abs(roll)))
    for kind in built[RULE]:
        rule, halo = built[RULE][kind](x0), built["halo"][kind](x0)
        rule_difference[kind] = float(jnp.max(jnp.abs(rule - halo)) / jnp.max(jnp.abs(halo)))
    kernels = {name: {kind: kernels_per_step(call) for kind, call in built[name].items()} for name in built}
    times: dict = {name: {kind: [] for kind in built[name]} for name in built}
    for _ in range(rounds):  # interleaved: the machine's load drifts alike for both
        for name in built:
            for kind, call in built[name].items():
                times[name][kind].append(per_call(call, x0, budget=budget))
    medians = {name: {kind: statistics.median(v) for kind, v in kinds.items()} for name, kinds in times.items()}
    return {"n": n, "steps": steps, "relative_difference": difference,
            "rule_relative_difference": rule_difference, "seconds": medians,
            "seconds_rounds": times, "kernels_per_step": kernels}


def markdown(report: dict) -> str:
    lines = [
        f"Lorenz-96 RK4 window of {report['steps']} steps (dt = {DT}), float64, XLA CPU; median of "
        f"{report['rounds']} interleaved rounds, each the median of 5 batches.",
        "",
        "| n | forward roll / halo [µs] | gradient roll / halo [µs] | checkpointed gradient roll / halo [µs] "
        "| Jacobian (jacfwd) roll / halo [µs] | roll ÷ halo: forward, gradient, checkpointed, Jacobian "
        "| largest difference / largest value: forward, gradient, checkpointed, Jacobian |",
        "|---|---|---|---|---|---|---|",
    ]
    kinds = ("forward", "gradient", "checkpointed gradient", "jacobian")
    for row in report["rows"]:
        roll, halo, diff = row["seconds"]["jnp.roll"], row["seconds"]["halo"], row["relative_difference"]
        cells = [f"{1e6 * roll[k]:.0f} / {1e6 * halo[k]:.0f}" if k in roll else "–" for k in kinds]
        ratios = ", ".join(f"{roll[k] / halo[k]:.2f}" if k in roll else "–" for k in kinds)
        diffs = ", ".join(f"{diff[k]:.1e}" if k in diff else "–" for k in kinds)
        lines.append(f"| {row['n']} | {' | '.join(cells)} | {ratios} | {diffs} |")
    lines += ["", "Kernels per step (instructions that run in each while-loop body of the compiled program, "
              "`kernels_per_step`; a gradient has a forward and a reverse loop) and the gradient's time over "
              "the forward's:", "",
              "| n | tendency | forward | gradient: forward + reverse loop | checkpointed gradient "
              "| gradient ÷ forward | checkpointed ÷ forward |", "|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        for name, kernels in row["kernels_per_step"].items():
            seconds = row["seconds"][name]
            loops = [" + ".join(map(str, kernels[k])) for k in ("forward", "gradient", "checkpointed gradient")]
            lines.append(f"| {row['n']} | {name} | {' | '.join(loops)} | "
                         f"{seconds['gradient'] / seconds['forward']:.1f} | "
                         f"{seconds['checkpointed gradient'] / seconds['forward']:.1f} |")
    lines += ["", "The halo's gradients by JAX's transpose against Lorenz-96's hand-written adjoint (the same "
              "forward values; gradients to round-off):", "",
              "| n | gradient halo / rule [µs] | checkpointed gradient halo / rule [µs] "
              "| halo ÷ rule: gradient, checkpointed | largest difference / largest value: gradient, "
              "checkpointed |", "|---|---|---|---|---|"]
    for row in report["rows"]:
        halo, rule, diff = row["seconds"]["halo"], row["seconds"][RULE], row["rule_relative_difference"]
        kinds = ("gradient", "checkpointed gradient")
        cells = " | ".join(f"{1e6 * halo[k]:.0f} / {1e6 * rule[k]:.0f}" for k in kinds)
        lines.append(f"| {row['n']} | {cells} | {', '.join(f'{halo[k] / rule[k]:.2f}' for k in kinds)} | "
                     f"{', '.join(f'{diff[k]:.1e}' for k in kinds)} |")
    lines += ["", machine_line(report)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="40,400,4000", help="comma-separated ring sizes n")
    parser.add_argument("--steps", type=int, default=16, help="RK4 steps per window (16: Lag 4, dto = 0.2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--jacobian-max", type=int, default=400,
                        help="time the n-column Jacobian up to this n (at 4000 one takes seconds)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per timing")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lorenz96_tendency"))
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        rows.append(measure(n, args.steps, args.rounds, args.budget, n <= args.jacobian_max))
        roll, halo = rows[-1]["seconds"]["jnp.roll"], rows[-1]["seconds"]["halo"]
        log(f"n = {n}: forward roll {1e6 * roll['forward']:.0f} µs, halo {1e6 * halo['forward']:.0f} µs")
    report = {"steps": args.steps, "rounds": args.rounds, "rows": rows, "environment": environment(),
              "seconds_total": time.perf_counter() - began}
    text = markdown(report)
    write_json_and_markdown(args.out, report, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
