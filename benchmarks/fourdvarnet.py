"""Benchmark (issue 6): 4DVarNet vs strong and weak 4DVar; training cost per solver adjoint vs K.

All in one process, every compared method side by side (the machine is shared: read ratios):

1. **Accuracy and time per window.** For each setup (Lorenz-63 in Fablet et al. 2021's setup,
   Lorenz-96 N = 40 with half the sites observed every 4 steps: ``benchmarks/fourdvarnet_*.toml``)
   ``dacli simulate`` makes a held-out twin (run.seed); ``dacli train`` trains 4DVarNet on its own
   twin (run.seed + 1), once per variant (``VARIANTS``: observations only, + the cycled background,
   + the model as prior); then ``dacli assimilate`` cycles each variant, strong4dvar and weak4dvar
   over the same held-out windows and observations. Analysis RMSE against the truth
   (every step of every window), and the time per window after the first compiled chunk.
2. **Training cost per solver adjoint vs K** on the trained Lorenz-63 network (batch 8 windows of
   200 steps): median time of one ``train_step`` after compile, and XLA's temporary memory from
   the compiled program's memory analysis.
3. **Convolutions inside a scan**: ``equinox.nn.Conv`` vs dacli's channels-last ``Conv``
   (``dacli/learned/networks.py``) in a ``lax.scan``, forward and gradient.

    python benchmarks/fourdvarnet.py            # full run, 13 min on 2 shared cores
    python benchmarks/fourdvarnet.py --quick    # smoke run, ~5 min there (compilation dominates)
    python benchmarks/fourdvarnet.py --accuracy-only   # section 1 only; 2 and 3 kept from the existing JSON

The script puts this checkout first on ``sys.path``, so it benchmarks the dacli beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the dacli command does
os.environ.setdefault("EQX_ON_ERROR", "nan")  # as the dacli command does, before equinox loads

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # this checkout's dacli, not an installed copy
sys.path.insert(1, str(HERE))
from provenance import environment  # noqa: E402

RESULTS = HERE / "results"

WEAK_Q = {"lorenz63": 0.1, "lorenz96": 0.05}  # Q std per sub-window (perfect model: small)

# name: config, held-out twin duration (full, quick), training overrides (full, quick)
SETUPS = {
    "lorenz63": {
        "config": HERE / "fourdvarnet_lorenz63.toml",
        "title": "Lorenz-63 (Fablet et al. 2021): dt 0.01, windows of 200 steps, x, y, z every 8 steps, noise variance 2",
        "duration": (40.0, 20.0),
        "train": (["train.windows=160", "train.validation_windows=16", "train.epochs=20"],
                  ["train.windows=32", "train.validation_windows=8", "train.epochs=2"]),
    },
    "lorenz96": {
        "config": HERE / "fourdvarnet_lorenz96.toml",
        "title": "Lorenz-96 N = 40: dt 0.05, windows of 20 steps, a random half of the sites every 4 steps, error std 1",
        "duration": (20.0, 10.0),
        # 8000 + 16 training windows cut from 21 twins of 400 windows (the held-out twin's 20-window length
        # would take 401 runs), batch 32: at 240 windows the networks were data-starved (cycled RMSE 1.10
        # vs 0.75 at 8000), and
        # batch 8 at learning rate 1e-2 diverged on 3840 windows (FOURDVARNET.md, "Training data")
        "train": (["train.windows=8000", "simulate.duration=400", "train.batch_size=32",
                   "train.validation_windows=16", "train.epochs=20"],
                  ["train.windows=32", "train.validation_windows=8", "train.epochs=2", "train.batch_size=8"]),
    },
}

METHODS = {
    "4dvarnet": [],  # the network's float32
    "strong4dvar": ['method.kind="strong4dvar"', 'run.precision="float64"'],
    "weak4dvar": ['method.kind="weak4dvar"', 'run.precision="float64"'],
}

# 4DVarNet variants, each trained (same data, same budget) and assimilated on the same windows. The
# plain one reconstructs a window from its observations alone; "+background" uses the cycled
# background (forecast as first iterate where unobserved, Jb on the first step with B = sigma_o^2,
# trained on forecasts from true states + N(0, 1)); "model prior" replaces the learned bilinear
# prior by one model step (weak-constraint 4DVar's cost, Q = sigma_o^2 / 20 per step).
BACKGROUND = ["network.background=true", "network.background_weight=1.0"]
VARIANTS = {
    "4dvarnet": [],
    "4dvarnet+background": BACKGROUND,
    "4dvarnet+model prior+background": ['network.prior="model"', "network.prior_weight=20.0", *BACKGROUND],
}

ADJOINTS = ["RecursiveCheckpointAdjoint", "DirectAdjoint", "OneStepAdjoint", "KStepAdjoint", "ImplicitAdjoint"]


def config_for(setup: str, folder: Path, extra: list[str], variant: str = "4dvarnet"):
    import dacli.config

    tag = "" if variant == "4dvarnet" else "_" + "".join(c if c.isalnum() else "_" for c in variant)
    paths = [f'observations.path="{folder / "obs.nc"}"', f'background.path="{folder / "background.nc"}"',
             f'truth.path="{folder / "truth.nc"}"', f'output.path="{folder / "analysis.nc"}"', "output.overwrite=true",
             f'network.file="{folder / f"network{tag}.eqx"}"', f'train.directory="{folder / f"training{tag}"}"']
    items = [*paths, *VARIANTS[variant], *extra]
    return dacli.config.load(SETUPS[setup]["config"], items), items


def method_overrides(setup: str, kind: str) -> list[str]:
    items = list(METHODS[kind])
    if kind == "weak4dvar":
        items.append(f'method.model_error={{subwindows=10, covariance={{kind="diagonal", std={WEAK_Q[setup]}}}}}')
    return items


def accuracy(setup: str, folder: Path, quick: bool, variants: list[str] | None = None,
             train_extra: list[str] = (), fourdvar_extra: list[str] = ()) -> dict:
    """Simulate the held-out twin, train each 4DVarNet variant, assimilate with each on the same files, then 4DVar.

    ``variants``: a subset of VARIANTS (default all); ``train_extra``: overrides appended to the
    setup's training ones (e.g. more windows, epochs, a larger batch); ``fourdvar_extra``: overrides
    for the strong and weak 4DVar rows (e.g. method.max_steps)."""
    from dacli.run.simulate import simulate
    from dacli.run.train import train

    spec = SETUPS[setup]
    duration = spec["duration"][quick]
    config, _ = config_for(setup, folder, [f"simulate.duration={duration}"])
    simulated = simulate(config)
    train_items = [*spec["train"][quick], *train_extra]
    trainings, rows = {}, []
    for variant in VARIANTS if variants is None else variants:
        config, _ = config_for(setup, folder, train_items, variant)
        started = time.perf_counter()
        trained = train(config, overwrite=True)
        trainings[variant] = {
            "wall_s": time.perf_counter() - started, "overrides": [*VARIANTS[variant], *train_items],
            **{k: getattr(trained, k) for k in ("epochs", "steps", "training_windows", "validation_windows",
                                               "untrained_validation_rmse", "validation_rmse", "best_validation_rmse",
                                               "observation_error_std", "background_error_std", "data")},
            "history": json.loads(Path(trained.files.metrics).read_text())["history"]}
        t = trainings[variant]
        print(f"{setup} {variant}: trained {t['steps']} steps in {t['wall_s']:.0f} s, validation RMSE "
              f"{t['untrained_validation_rmse']:.3f} -> {t['best_validation_rmse']:.3f}", flush=True)
        rows.append(assimilated(setup, folder, variant, []))
    for kind in METHODS:
        if kind != "4dvarnet":
            rows.append(assimilated(setup, folder, kind, [*method_overrides(setup, kind), *fourdvar_extra]))
    return {"setup": setup, "title": spec["title"], "held_out_twin": {"duration": duration, **dataclasses.asdict(simulated)},
            "training": trainings, "rows": rows}


def assimilated(setup: str, folder: Path, label: str, overrides: list[str]) -> dict:
    """One dacli assimilate over the held-out twin: a 4DVarNet variant (label in VARIANTS) or a 4DVar."""
    from dacli.cli.render import result_json
    from dacli.run.assimilate import assimilate

    variant = label if label in VARIANTS else "4dvarnet"
    config, _ = config_for(setup, folder, overrides, variant)
    started = time.perf_counter()
    s = result_json(assimilate(config).summary)
    total = time.perf_counter() - started
    r = {"setup": setup, "method": label, "overrides": [*VARIANTS[variant], *overrides] if label in VARIANTS else overrides,
         "precision": s["precision"], "minimiser": s["minimiser"],
         "analysis_rmse": s["analysis_rmse"], "background_rmse": s["background_rmse"],
         "windows": s["windows"], "converged_windows": s["converged_windows"],
         "iterations_mean": s["iterations_mean"], "windows_per_chunk": s["windows_per_compiled_chunk"],
         "ms_per_window": 1e3 * s["seconds_per_window_after_first_chunk"],
         "compile_and_first_chunk_s": s["compile_and_first_chunk_seconds"], "total_s": total}
    print(f"{setup} {label:32s} RMSE {r['analysis_rmse']:.3f} (background {r['background_rmse']:.3f}), "
          f"{r['ms_per_window']:.2f} ms/window, compile+1st chunk {r['compile_and_first_chunk_s']:.1f} s", flush=True)
    return r


def adjoint_costs(folder: Path, ks: list[int], repeats: int, quick: bool = False) -> dict:
    """Time per training step and XLA temporary memory for each solver adjoint and K (Lorenz-63 network)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dacli.build.network import build_iteration_adjoint, build_network, load_trained_network
    from dacli.build.problem import build_dynamics
    from dacli.learned.training import make_optimiser, train_step
    from dacli.run.runtime import configure
    from dacli.run.train import training_windows

    configure("float32")  # as dacli train does (the float64 4DVar runs above switched jax_enable_x64 on)
    batch = 8
    config, _ = config_for("lorenz63", folder, ["train.windows=8", "train.validation_windows=1",
                                                 "train.seed=12345"])
    layout = build_dynamics(config.model).layout()
    steps = 200
    data = training_windows(config, layout, steps, np.dtype(np.float32))
    y, mask, truth = (jnp.asarray(a[:batch]) for a in (data.y, data.mask, data.truth))
    trained = load_trained_network(config, layout, steps, jnp.float32)
    header_network = config.network
    gradient_net = build_network(header_network.model_copy(update={"update": "gradient"}),
                                 {"channels": 3, "spatial_shape": [steps], "spatial_dims": 1, "periodic": False},
                                 data.observation_error_std, trained.offset, trained.scale, jax.random.PRNGKey(0),
                                 jnp.float32)
    gradient_net = eqx.tree_at(lambda n: n.prior, gradient_net, trained.prior)  # the trained prior, learned-step solver
    optimiser = make_optimiser(1e-3, 1000, 0, 1.0)
    cases = [(name, "convlstm", trained) for name in ADJOINTS]
    if not quick:
        cases.append(("ImplicitAdjoint", "gradient", gradient_net))
    rows = []
    for name, solver, base in cases:
        for k in ks:
            spec = build_iteration_adjoint(header_network.model_copy(update={"iteration_adjoint": name,
                                                                          "iteration_adjoint_steps": 2}))
            network = eqx.tree_at(lambda n: (n.iterations, n.iteration_adjoint), base, (k, spec))
            state = optimiser.init(eqx.filter(network, eqx.is_inexact_array))
            label = name + (" (k=2)" if name == "KStepAdjoint" else "")
            try:
                began = time.perf_counter()
                compiled = train_step.lower(network, state, y, mask, truth, optimiser=optimiser,
                                            prior_loss_weight=0.5).compile()
                compile_s = time.perf_counter() - began
                memory = compiled.compiled.memory_analysis()
                times = []
                for _ in range(repeats + 1):
                    began = time.perf_counter()
                    out = compiled(network, state, y, mask, truth, optimiser=optimiser, prior_loss_weight=0.5)
                    jax.block_until_ready(out)
                    times.append(time.perf_counter() - began)
            except Exception as error:  # e.g. ImplicitAdjoint's GMRES stagnating on the ConvLSTM, which never settles
                message = str(error).strip().splitlines()
                reason = next((line for line in message if "Error" in line and "Traceback" not in line), message[-1])
                rows.append({"adjoint": label, "solver": solver, "K": k, "failed": reason[:300]})
                print(f"adjoint {label:26s} {solver:8s} K {k:2d}: FAILED: {reason[:200]}", flush=True)
                jax.clear_caches()
                continue
            rows.append({"adjoint": label, "solver": solver, "K": k,
                         "step_ms": 1e3 * statistics.median(times[1:]), "compile_s": compile_s,
                         "temp_MiB": memory.temp_size_in_bytes / 2**20,
                         "argument_MiB": memory.argument_size_in_bytes / 2**20,
                         "output_MiB": memory.output_size_in_bytes / 2**20,
                         "loss": float(out[2]), "finite_loss": bool(np.isfinite(float(out[2])))})
            r = rows[-1]
            print(f"adjoint {r['adjoint']:26s} {solver:8s} K {k:2d}: {r['step_ms']:8.1f} ms/step, temp "
                  f"{r['temp_MiB']:7.2f} MiB (compile {compile_s:.1f} s)", flush=True)
            jax.clear_caches()
    return {"batch": batch, "window_steps": steps, "network": header_network.model_dump(),
            "repeats": repeats, "rows": rows}


def convolutions(repeats: int, size: int = 64, maps: int = 4, hidden: int = 16, steps: int = 5) -> dict:
    """equinox.nn.Conv vs dacli's Conv: ConvLSTM gate convolutions (2 hidden -> 4 hidden channels,
    3 x 3) on ``maps`` maps of size x size, ``steps`` of them inside one lax.scan; forward and gradient."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from dacli.learned.networks import Conv

    key = jax.random.PRNGKey(0)
    ours = Conv(2, 2 * hidden, 4 * hidden, 3, False, key=key)
    theirs = eqx.nn.Conv(2, 2 * hidden, 4 * hidden, 3, padding=1, key=key)
    theirs = eqx.tree_at(lambda c: (c.weight, c.bias), theirs, (ours.weight, ours.bias.reshape(-1, 1, 1)))
    forcing = jax.random.normal(jax.random.PRNGKey(1), (maps, hidden, size, size))

    def run(conv):
        def cell(carry, _):
            h, c = carry
            gates = jax.vmap(conv)(jnp.concatenate([forcing, h], axis=1))
            i, f, o, u = jnp.split(gates, 4, axis=1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(u)
            return (jax.nn.sigmoid(o) * jnp.tanh(c), c), None

        zeros = jnp.zeros((maps, hidden, size, size))
        return jnp.sum(jax.lax.scan(cell, (zeros, zeros), None, length=steps)[0][0] ** 2)

    forward = eqx.filter_jit(run)
    gradient = eqx.filter_jit(eqx.filter_grad(run))
    result = {"maps": maps, "size": size, "channels_in": 2 * hidden, "channels_out": 4 * hidden, "kernel": 3,
              "scan_length": steps, "repeats": repeats}
    values = {}
    for label, conv in (("equinox", theirs), ("dacli", ours)):
        for what, f in (("forward", forward), ("gradient", gradient)):
            out = jax.block_until_ready(f(conv))  # compile
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                jax.block_until_ready(f(conv))
                times.append(time.perf_counter() - began)
            result[f"{label}_{what}_s"] = statistics.median(times)
            if what == "forward":
                values[label] = float(out)
    result["forward_relative_difference"] = abs(values["equinox"] - values["dacli"]) / abs(values["equinox"])
    for what in ("forward", "gradient"):
        result[f"{what}_ratio"] = result[f"equinox_{what}_s"] / result[f"dacli_{what}_s"]
    print(f"conv in scan: forward {result['equinox_forward_s']:.3f} s (equinox) vs {result['dacli_forward_s']:.3f} s "
          f"(dacli), gradient {result['equinox_gradient_s']:.3f} vs {result['dacli_gradient_s']:.3f} s", flush=True)
    return result


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [f"# 4DVarNet benchmark{' (quick)' if report['quick'] else ''}", "",
             f"dacli {env['dacli_commit']} ({report['dacli_source']}), {env['cpu']}, {env['cpus_usable']} cores, "
             f"equinox {env['versions']['equinox']}, {report['platform']}. "
             f"Whole run {report['total_s']:.0f} s.", ""]
    if report.get("composed_from"):
        lines.append("Composed from separate runs (each row's time ratio is against strong 4DVar in its own run):")
    for part in report.get("composed_from", []):
        lines.append(f"- {part['what']}: `{part['command']}` (dacli {part['dacli_commit']}, {part['platform']}, "
                     f"{part['total_s']:.0f} s)")
    lines += ["", "## Accuracy and time per window (same held-out windows and observations)", ""]
    for part in report["accuracy"]:
        lines += [f"### {part['title']}", ""]
        plain = next(iter(part["training"].values()), None)
        if plain is not None:
            lines += [f"Held-out twin: {part['rows'][0]['windows']} windows (seed run.seed). Each 4DVarNet variant trained on "
                      f"{plain['training_windows']} windows of its own twin ({plain['data']}; observation error std "
                      f"{plain['observation_error_std']:.3g}), then validated on {plain['validation_windows']}:", ""]
        for variant, t in part["training"].items():
            backgrounds = (f", backgrounds from true states + N(0, {t['background_error_std']:g}^2)"
                           if t.get("background_error_std") else "")
            lines.append(f"- {variant}: {t['epochs']} epochs, {t['steps']} Adam steps in {t['wall_s']:.0f} s{backgrounds}; "
                         f"validation RMSE {t['untrained_validation_rmse']:.3f} untrained -> {t['best_validation_rmse']:.3f}")
        lines += ["", "| method | precision | minimiser | analysis RMSE | background RMSE | "
                      "converged | iterations / window | ms / window | time vs strong4dvar | compile + 1st chunk [s] |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        strong = next(r for r in part["rows"] if r["method"] == "strong4dvar")
        for r in part["rows"]:
            lines.append(f"| {r['method']} | {r['precision']} | {r['minimiser']} | {r['analysis_rmse']:.3f} | "
                         f"{r['background_rmse']:.3f} | {r['converged_windows']}/{r['windows']} | "
                         f"{r['iterations_mean']:.1f} | {r['ms_per_window']:.2f} | "
                         f"{r['ms_per_window'] / r.get('strong_ms_per_window_same_run', strong['ms_per_window']):.3f} | "
                         f"{r['compile_and_first_chunk_s']:.1f} |")
        lines.append("")
    a = report["adjoints"]
    ks = sorted({r["K"] for r in a["rows"]})
    carried = report.get("carried_over")
    lines += ["## Training cost per solver adjoint vs K", ""]
    if carried:
        lines += [f"(This section and the next are carried over from the run at dacli "
                  f"{carried['environment']['dacli_commit']}: `--accuracy-only` re-ran the section above only.)", ""]
    lines += [
              f"One `train_step` (loss, gradient, Adam update) on a batch of {a['batch']} Lorenz-63 windows of "
              f"{a['window_steps']} steps, the trained network (hidden {a['network']['hidden']}, kernel "
              f"{a['network']['kernel']}); median of {a['repeats']} steps after compile. Memory: XLA's "
              "`temp_size_in_bytes` of the compiled step.", "",
              "| adjoint | solver | " + " | ".join(f"ms/step K={k}" for k in ks) + " | "
              + " | ".join(f"temp MiB K={k}" for k in ks) + " |",
              "|---|---|" + "---|" * (2 * len(ks))]
    groups = {}
    for r in a["rows"]:
        groups.setdefault((r["adjoint"], r["solver"]), {})[r["K"]] = r
    for (name, solver), by_k in groups.items():
        cell = lambda r, key, form: "failed" if "failed" in r else format(r[key], form)  # noqa: E731
        lines.append(f"| {name} | {solver} | " + " | ".join(cell(by_k[k], "step_ms", ".1f") for k in ks) + " | "
                     + " | ".join(cell(by_k[k], "temp_MiB", ".2f") for k in ks) + " |")
    for r in a["rows"]:
        if "failed" in r:
            lines.append(f"\n{r['adjoint']} ({r['solver']}, K = {r['K']}) failed: `{r['failed']}`")
    c = report["convolutions"]
    lines += ["", "## Convolutions inside a scan: equinox.nn.Conv vs dacli's Conv", "",
              f"{c['scan_length']} ConvLSTM gate convolutions ({c['channels_in']} -> {c['channels_out']} channels, "
              f"{c['kernel']}x{c['kernel']}) on {c['maps']} maps of {c['size']}x{c['size']} in one `lax.scan`; median of "
              f"{c['repeats']} calls after compile; same weights (forward values differ by {c['forward_relative_difference']:.1e}).",
              "", "| | equinox.nn.Conv [s] | dacli Conv [s] | ratio |", "|---|---|---|---|",
              f"| forward | {c['equinox_forward_s']:.3f} | {c['dacli_forward_s']:.3f} | {c['forward_ratio']:.1f}x |",
              f"| gradient | {c['equinox_gradient_s']:.3f} | {c['dacli_gradient_s']:.3f} | {c['gradient_ratio']:.1f}x |", ""]
    return "\n".join(lines)


def save(prefix: Path, report: dict) -> None:
    """The JSON so far (a crash in a later section keeps the earlier ones)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".json").write_text(json.dumps(report, indent=2, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny training, shorter twins, K in (2, 4), smaller convolutions: ~5 min")
    parser.add_argument("--setups", default="lorenz63,lorenz96")
    parser.add_argument("--ks", default=None, help="K values for the adjoint table (default 2,4,8,16; quick 2,4)")
    parser.add_argument("--out", default=None, help="output prefix (default benchmarks/results/fourdvarnet[_quick])")
    parser.add_argument("--keep", default=None, help="keep the twins, networks and outputs in this folder")
    parser.add_argument("--variants", default=None, help=f"4DVarNet variants to train (default all: {', '.join(VARIANTS)}; 'none': the 4DVar rows only)")
    parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                        help="extra training override for every setup and variant (repeatable), e.g. train.windows=4000")
    parser.add_argument("--fourdvar", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for the strong and weak 4DVar rows (repeatable), e.g. method.max_steps=1000")
    parser.add_argument("--accuracy-only", action="store_true", help=(
        "run only the accuracy section; the adjoint and convolution sections are carried over from the JSON "
        "already at the output prefix, else from results/fourdvarnet.json (marked as such in the report)"))
    arguments = parser.parse_args()
    quick = arguments.quick
    ks = [int(k) for k in (arguments.ks or ("2,4" if quick else "2,4,8,16")).split(",")]
    prefix = Path(arguments.out or RESULTS / ("fourdvarnet_quick" if quick else "fourdvarnet"))
    began = time.perf_counter()
    import jax

    import dacli

    report = {"quick": quick, "dacli_source": str(Path(dacli.__file__).parent), "accuracy": [],
              "command": "python benchmarks/fourdvarnet.py " + shlex.join(sys.argv[1:])}
    carried = prefix if prefix.with_suffix(".json").exists() else RESULTS / "fourdvarnet"  # --accuracy-only's source
    previous = json.loads(carried.with_suffix(".json").read_text()) if arguments.accuracy_only else None
    variants = None if arguments.variants is None else [v for v in arguments.variants.split(",") if v != "none"]
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(arguments.keep or scratch)
        for setup in arguments.setups.split(","):
            folder = base / setup
            folder.mkdir(parents=True, exist_ok=True)
            report["accuracy"].append(accuracy(setup, folder, quick, variants, arguments.train, arguments.fourdvar))
            save(prefix, report)
        if arguments.accuracy_only:
            report["adjoints"], report["convolutions"] = previous["adjoints"], previous["convolutions"]
            report["carried_over"] = {"sections": ["adjoints", "convolutions"], "environment": previous["environment"]}
        else:
            report["adjoints"] = adjoint_costs(base / "lorenz63", ks, 2 if quick else 5, quick)
        save(prefix, report)
    if not arguments.accuracy_only:
        report["convolutions"] = convolutions(2, size=32) if quick else convolutions(3)
    report["platform"] = f"jax {jax.__version__} on {jax.devices()[0].platform}"
    report["total_s"] = time.perf_counter() - began
    report["environment"] = environment()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".json").write_text(json.dumps(report, indent=2, default=float))
    prefix.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
