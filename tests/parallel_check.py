"""Child process of tests/test_parallel.py (the device count is fixed when JAX starts, and the
pytest process has started it already). Prints one JSON line; the test asserts on it.

    python tests/parallel_check.py devices       # under JAX_NUM_CPU_DEVICES=4: map_sharded vs vmap

It uses a batch of independent tiny Lorenz-96 windows (n = 8, 4 RK4 steps, every site
observed at every step): strong-constraint 4DVar, LBFGS, each window from its own background.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("EQX_ON_ERROR", "nan")  # as dacli's runtime sets it

MODE = sys.argv[1]

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402

from dacli.covariances.background import background_sqrt_operator  # noqa: E402
from dacli.methods.strong4dvar import StrongConstraint4DVar  # noqa: E402
from dacli.models.integrate import integrate  # noqa: E402
from dacli.models.lorenz import Lorenz96  # noqa: E402
from dacli.models.solvers import RK4  # noqa: E402
from dacli.observations.operator import WindowObservations  # noqa: E402
from dacli.parallel.sharding import map_sharded  # noqa: E402

N, STEPS, DT = 8, 4, 0.05


def windows(count: int, seed: int = 0):
    """The method and ``count`` independent windows: (backgrounds (B, n), starts (B,), obs (B, ...))."""
    rng = np.random.default_rng(seed)
    dynamics = Lorenz96(n=N)
    start = integrate(dynamics, jnp.asarray(8.0 + rng.normal(size=N)), 0.0, 100, DT, RK4(), diffrax.DirectAdjoint())[-1]
    truth = np.asarray(integrate(dynamics, start, 0.0, count * STEPS, DT, RK4(), diffrax.DirectAdjoint()))
    slot = np.repeat(np.arange(1, STEPS + 1), N)
    site = np.tile(np.arange(N), STEPS)
    values = np.stack([truth[k * STEPS + slot, site] for k in range(count)]) + rng.normal(size=(count, slot.size))
    obs = WindowObservations(
        values=values, std=np.ones((count, slot.size)), slot=np.tile(slot.astype(np.int32), (count, 1)),
        index=np.tile(np.stack([site, site], 1).astype(np.int32), (count, 1, 1)),
        weight=np.tile([1.0, 0.0], (count, slot.size, 1)), mask=np.ones((count, slot.size), bool))
    backgrounds = truth[::STEPS][:count] + rng.normal(size=(count, N))
    starts = DT * STEPS * np.arange(count, dtype=float)
    method = StrongConstraint4DVar(
        dynamics=dynamics, ode_solver=RK4(), forward_adjoint=diffrax.RecursiveCheckpointAdjoint(),
        background_sqrt=background_sqrt_operator("gaussian", 1.0, dynamics.layout(), 1.5, jnp.float64),
        minimiser=optx.LBFGS(rtol=1e-6, atol=1e-6), minimiser_adjoint=optx.ImplicitAdjoint(), nsteps=STEPS, dt=DT,
        max_steps=100)
    return method, (backgrounds, starts, obs)


def largest_difference(a, b) -> float:
    """max |a - b| over every leaf of two pytrees; NaN in both counts as equal (inf if shapes differ)."""

    def difference(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        if x.shape != y.shape:
            return float("inf")
        gap = np.where(np.isnan(x) & np.isnan(y), 0.0, np.abs(x - y))
        return float(np.max(gap, initial=0.0))  # NaN on one side only stays NaN

    return max((difference(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))),
               key=lambda d: np.inf if np.isnan(d) else d)


def take(tree, count):
    return jax.tree_util.tree_map(lambda x: x[:count], tree)


def check_devices() -> dict:
    """map_sharded on 4 devices vs one plain jit(vmap) on one device.

    Window analyses for B = 8 (no padding) and B = 5 (padded to 8: the same compiled program);
    B = 1 (padded to 4) on the windows' background forecasts, a cheaper compile than a third
    analysis program (about 10 s here).
    """
    method, batch = windows(8)
    started = time.perf_counter()
    reference = jax.jit(jax.vmap(method.analyse))(*batch)  # default device only
    report = {"devices": len(jax.devices()), "reference_seconds": round(time.perf_counter() - started, 2),
              "reference_devices": len(reference.analysis_initial.sharding.device_set),
              "reference_iterations": np.asarray(reference.iterations).tolist(),
              "reference_converged": np.asarray(reference.converged).tolist()}
    cases = [(f"b{count}", method.analyse, take(batch, count), take(reference, count)) for count in (8, 5)]
    forecasts = batch[:2]
    cases.append(("b1", method.trajectory, take(forecasts, 1), jax.jit(jax.vmap(method.trajectory))(*forecasts)[:1]))
    for name, fn, args, expected in cases:
        started = time.perf_counter()
        result = map_sharded(fn, *args)
        first = jax.tree_util.tree_leaves(result)[0]
        report[name] = {
            "function": fn.__name__,
            "seconds": round(time.perf_counter() - started, 2),
            "items": int(first.shape[0]),
            "max_abs_difference": largest_difference(result, expected),
            "iterations_equal": bool(np.array_equal(result.iterations, np.asarray(expected.iterations)))
            if name != "b1" else None,
            "output_devices": len(first.sharding.device_set),
            "output_spec": str(getattr(first.sharding, "spec", None)),
        }
    return report


if __name__ == "__main__":
    print(json.dumps(check_devices()), flush=True)
