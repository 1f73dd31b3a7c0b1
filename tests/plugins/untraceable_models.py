"""Plug-in models JAX cannot trace: user mistakes dacli must report as such (exit 2), not as
internal errors. Each is the ring model of ``ring_models`` with one classic mistake in its
vector field.
"""

import jax
import jax.numpy as jnp
import numpy as np
from ring_models import AdvectionDiffusionRing

from dacli.models import model_factory


class BranchingRing(AdvectionDiffusionRing):
    """A Python ``if`` on a state value: TracerBoolConversionError when traced."""

    def vector_field(self, t, x, args):
        if x[0] > 0.0:
            return super().vector_field(t, x, args)
        return -x


class NumpyRing(AdvectionDiffusionRing):
    """A call into numpy on the state: TracerArrayConversionError when traced."""

    def vector_field(self, t, x, args):
        return super().vector_field(t, x, args) + 0.01 * np.sin(x)


class DynamicLoopRing(AdvectionDiffusionRing):
    """A ``fori_loop`` whose bound comes from the state: a while_loop, so forward-traceable but
    not reverse-differentiable."""

    def vector_field(self, t, x, args):
        repeats = jnp.int32(1) + (jnp.abs(x[0]) > 10.0).astype(jnp.int32)
        damped = jax.lax.fori_loop(0, repeats, lambda _, y: 0.5 * y, x)
        return super().vector_field(t, x, args) - 0.01 * damped


@model_factory
def make_branching_ring(n: int = 32, speed: float = 1.0, diffusion: float = 0.1):
    return BranchingRing(n=int(n), speed=float(speed), diffusion=float(diffusion))


@model_factory
def make_numpy_ring(n: int = 32, speed: float = 1.0, diffusion: float = 0.1):
    return NumpyRing(n=int(n), speed=float(speed), diffusion=float(diffusion))


@model_factory
def make_dynamic_loop_ring(n: int = 32, speed: float = 1.0, diffusion: float = 0.1):
    return DynamicLoopRing(n=int(n), speed=float(speed), diffusion=float(diffusion))
