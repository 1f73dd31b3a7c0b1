"""Benchmark (issue 6): training cost of every solver adjoint vs K on the fixed-point solver.

benchmarks/fourdvarnet.py measures the adjoints on the trained ConvLSTM solver, where
ImplicitAdjoint cannot run (the ConvLSTM's updates never settle, GMRES stagnates; dacli refuses
that pair). Here all five run side by side on 4DVarNet's fixed-point solver (``update =
"gradient"``: plain gradient descent on U with a learned step), the one ImplicitAdjoint is
for: one ``train_step`` (loss, gradient, Adam update) on a batch of 8 Lorenz-63 windows of 200
steps (Fablet et al. 2021's setup, made by dacli train's data path), K = 2 ... 64. Reported: the
median time per step after compile, XLA's temporary memory of the compiled step, whether the
iteration has converged (the last step's change) and each gradient's distance from the exact one
(DirectAdjoint's plain unroll). The prior is an untrained network with a non-zero decoder, so
U has curvature everywhere; the step starts at 0.05 (stable); runtime errors become NaN as in the dacli commands (EQX_ON_ERROR).

    python benchmarks/fourdvarnet_solver_adjoints.py     # ~5 min on 2 cores
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli's commands (dacli.run.runtime)
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from provenance import environment  # noqa: E402

STEP = 0.05  # the learned step's initial value
ADJOINTS = ["DirectAdjoint", "RecursiveCheckpointAdjoint", "OneStepAdjoint", "KStepAdjoint", "ImplicitAdjoint"]


def main(ks=(2, 8, 32, 128), repeats: int = 3) -> None:
    from dacli.run.runtime import configure

    configure("float32", "cpu")
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import dacli.config
    from dacli.build.network import build_iteration_adjoint, build_network, network_shape
    from dacli.build.problem import build_dynamics
    from dacli.learned.training import batch_loss, make_optimiser, train_step
    from dacli.run.train import training_windows

    config = dacli.config.load(HERE.parent / "configs" / "lorenz63_4dvarnet.toml", [
        "window.length=2.0", "simulate.duration=20.0", "train.windows=8", "train.validation_windows=1",
        'network.update="gradient"', "network.hidden=16", "network.kernel=5"])
    layout = build_dynamics(config.model).layout()
    data = training_windows(config, layout, 200, np.dtype(np.float32))
    y, mask, truth = (jnp.asarray(a[:8]) for a in (data.y, data.mask, data.truth))
    base = build_network(config.network, network_shape(layout, 200), data.observation_error_std, float(data.truth.mean()),
                         float(data.truth.std()), jax.random.PRNGKey(0), jnp.float32)
    decode = base.prior.decode
    base = eqx.tree_at(lambda n: n.prior.decode.weight, base,
                       0.1 * jax.random.normal(jax.random.PRNGKey(1), decode.weight.shape, jnp.float32))
    # a step that keeps gradient descent stable (the default 0.5 diverges here: x grows without bound)
    base = eqx.tree_at(lambda n: n.modulator.log_step, base, jnp.log(jnp.asarray(STEP, jnp.float32)))
    optimiser = make_optimiser(1e-3, 1000, 0, 1.0)
    flat = lambda tree: jnp.concatenate([jnp.ravel(g) for g in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))])  # noqa: E731
    gradient = eqx.filter_jit(eqx.filter_grad(batch_loss))
    rows = []
    for k in ks:
        with_k = eqx.tree_at(lambda n: n.iterations, base, k)
        exact = flat(gradient(eqx.tree_at(lambda n: n.iteration_adjoint, with_k, build_iteration_adjoint(
            config.network.model_copy(update={"iteration_adjoint": "DirectAdjoint"}))), y, mask, truth, 0.5))
        previous = eqx.tree_at(lambda n: n.iterations, with_k, k - 1)
        change = float(jnp.max(jnp.abs(jax.vmap(with_k)(y, mask) - jax.vmap(previous)(y, mask))) / data.truth.std())
        for name in ADJOINTS:
            spec = build_iteration_adjoint(config.network.model_copy(update={"iteration_adjoint": name, "iteration_adjoint_steps": 2}))
            network = eqx.tree_at(lambda n: n.iteration_adjoint, with_k, spec)
            state = optimiser.init(eqx.filter(network, eqx.is_inexact_array))
            began = time.perf_counter()
            compiled = train_step.lower(network, state, y, mask, truth, optimiser=optimiser, prior_loss_weight=0.5).compile()
            compile_s = time.perf_counter() - began
            times = []
            for _ in range(repeats + 1):
                began = time.perf_counter()
                jax.block_until_ready(compiled(network, state, y, mask, truth, optimiser=optimiser, prior_loss_weight=0.5))
                times.append(time.perf_counter() - began)
            g = flat(gradient(network, y, mask, truth, 0.5))
            error = float(jnp.linalg.norm(g - exact) / jnp.linalg.norm(exact))
            label = name + (" (k=2)" if name == "KStepAdjoint" else "")
            rows.append({"adjoint": label, "K": k, "step_ms": 1e3 * statistics.median(times[1:]), "compile_s": compile_s,
                         "temp_MiB": compiled.compiled.memory_analysis().temp_size_in_bytes / 2**20,
                         "gradient_error": error, "last_step_change": change})
            print(f"K {k:3d} {label:26s} {rows[-1]['step_ms']:9.1f} ms  {rows[-1]['temp_MiB']:8.2f} MiB  "
                  f"gradient error {error:.2e}  (last step changed x by {change:.1e} std)", flush=True)
            jax.clear_caches()
    report = {"rows": rows, "ks": list(ks), "repeats": repeats, "batch": 8, "window_steps": 200,
              "platform": f"jax {jax.__version__} on {jax.devices()[0].platform}", "environment": environment()}
    out = HERE / "results" / "fourdvarnet_solver_adjoints"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=float))
    lines = ["# Solver adjoints on 4DVarNet's fixed-point solver (solver = \"gradient\")", "",
             f"dacli {report['environment']['dacli_commit']}, {report['environment']['cpu']}, {report['platform']}; "
             f"one train_step on 8 Lorenz-63 windows of 200 steps, median of {repeats} after compile.", "",
             "| K | last step's change (/ std) | adjoint | ms / step | XLA temp MiB | gradient vs exact (rel.) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['K']} | {r['last_step_change']:.1e} | {r['adjoint']} | {r['step_ms']:.1f} | {r['temp_MiB']:.2f} | "
              f"{r['gradient_error']:.1e} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
