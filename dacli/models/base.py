"""The dynamics contract every model — built-in or user plug-in — satisfies.

A model is an :class:`equinox.Module` subclassing :class:`Dynamics`:

* ``vector_field(t, x, args)`` returns dx/dt for the flat state vector ``x`` (shape
  ``(layout.size,)``) at absolute model time ``t``; it must be written in ``jax.numpy`` so
  that it can be differentiated (tangent-linear and adjoint models come from autodiff).
* ``layout()`` returns a :class:`StateLayout`: the variable names, the grid axes they live on
  (none, one, or more, each a :class:`GridAxis` with coordinate values, units and periodicity)
  and the variables' units (plain records defined in :mod:`dacli.layout`, re-exported here). The
  flat state is the variables concatenated, each flattened in C order over the grid (for a 2-D
  model: over (y, x), x fastest).

A configuration names a model by import path (``model.name = "package.module:attribute"``); that
attribute must be a :class:`Dynamics` subclass or a function marked with :func:`model_factory`,
so a config can call nothing that was not written for dacli (see
:func:`dacli.config.registry.resolve_model_factory`, the one place a config loads code).
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from dacli.layout import FULL_CIRCLE, LATITUDE_UNITS, LONGITUDE_UNITS, GridAxis, StateLayout

__all__ = [
    "FULL_CIRCLE",
    "AbstractAdjointRule",
    "LATITUDE_UNITS",
    "LONGITUDE_UNITS",
    "MAX_STATE_SIZE",
    "Dynamics",
    "GridAxis",
    "adjoint_rule",
    "StateLayout",
    "is_dynamics_class",
    "is_model_factory",
    "model_factory",
    "size_parameter",
]

# The largest state a model may have (elements of the flat state vector: 800 MB in float64). A
# model checks its size parameters against it in ``__init__``, before ``layout()`` allocates its
# grid, so a mistyped size (n = 1e12) is a configuration error, not an exhausted memory.
MAX_STATE_SIZE = 100_000_000


class Dynamics(eqx.Module):
    """Abstract model: a vector field on a flat state plus its layout (see module docstring)."""

    @abc.abstractmethod
    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " n"], args: PyTree
    ) -> Float[Array, " n"]:
        """dx/dt at time ``t`` for state ``x``; ``args`` is unused by built-in models."""

    @abc.abstractmethod
    def layout(self) -> StateLayout:
        """Variable names, grid and periodicity of the state."""

    def default_state(self, key: PRNGKeyArray) -> Float[Array | np.ndarray, " n"]:
        """A generic initial state for spin-up in twin experiments (override for realism)."""
        return jax.random.normal(key, (self.layout().size,))

    def with_adjoint_rule(self) -> Dynamics | None:
        """This model with a hand-written adjoint of its vector field as a ``jax.custom_vjp``
        rule, or None (the default) when it has none.

        A reverse pass through the rule runs fewer kernels than JAX's transpose of the vector
        field (the adjoint model of NWP practice; Errico 1997, BAMS 78), but forward mode
        (:func:`jax.jvp`) cannot go through it: dacli uses it only where nothing linearises the
        model forward (:func:`dacli.build.problem.adjoint_rule_choice`) and checks it against
        autodiff's tangent-linear model in ``dacli check-adjoints``. Not for models whose field
        depends on time or on arrays (a rule gives them no cotangent). A subclass that overrides
        ``vector_field`` must override this too: dacli reads the rule through
        :func:`adjoint_rule`, which ignores one inherited from a class with another field."""
        return None


class AbstractAdjointRule(Dynamics):
    """A model (``model``) whose vector field carries its hand-written adjoint as a
    ``jax.custom_vjp`` rule: what :meth:`Dynamics.with_adjoint_rule` returns. Subclasses are
    final and define ``vector_field`` (the model's own values, and the rule); the layout and
    the default state are the model's. Reverse mode only: never where anything linearises
    forward (:func:`dacli.build.problem.adjoint_rule_choice`)."""

    model: eqx.AbstractVar[Dynamics]

    def layout(self) -> StateLayout:
        return self.model.layout()

    def default_state(self, key: PRNGKeyArray) -> Float[Array | np.ndarray, " n"]:
        return self.model.default_state(key)

    def with_adjoint_rule(self) -> Dynamics:
        return self


def adjoint_rule(dynamics: Dynamics) -> Dynamics | None:
    """``dynamics.with_adjoint_rule()``, or None where the class that defines the model's
    ``vector_field`` does not also define ``with_adjoint_rule``: a subclass that changes the
    field (a plug-in deriving from Lorenz96) would otherwise inherit a rule for its parent's
    field, and run the parent's model. Call this, not the method."""
    if isinstance(dynamics, AbstractAdjointRule):
        return dynamics
    cls = type(dynamics)

    def defining(name: str) -> type:
        return next(base for base in cls.__mro__ if name in base.__dict__)

    if defining("vector_field") is not defining("with_adjoint_rule"):
        return None
    return dynamics.with_adjoint_rule()


def size_parameter(name: str, value: Any, minimum: int, maximum: int = MAX_STATE_SIZE) -> int:
    """``value`` as an int in [``minimum``, ``maximum``]: for a model's grid-size parameters.

    Raises a ValueError naming the parameter (reported as ``model.parameters``) for a non-integer
    or a value out of range; the default maximum is :data:`MAX_STATE_SIZE`.
    """
    whole = isinstance(value, int) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    )
    if isinstance(value, bool) or not whole:
        raise ValueError(
            f"{name} must be an integer from {minimum:,} to {maximum:,}, found {value!r}"
        )
    if not minimum <= value <= maximum:
        limit = " (dacli.models.MAX_STATE_SIZE)" if maximum == MAX_STATE_SIZE else ""
        raise ValueError(
            f"{name} must be an integer from {minimum:,} to {maximum:,}{limit}, found {int(value)}"
        )
    return int(value)


# --- plug-in factories ---------------------------------------------------------------------------

_FACTORY_MARK = object()  # identity-checked: only model_factory sets it
_FACTORY_ATTRIBUTE = "__dacli_model_factory__"

Factory = TypeVar("Factory", bound=Callable[..., Any])


def model_factory(function: Factory) -> Factory:
    """Mark ``function`` as a dacli model factory: a config may name it as ``model.name =
    "module:function"``.

    dacli calls a plug-in named by import path only when it is a :class:`Dynamics` subclass or a
    function marked with this decorator, so a configuration (data) can never call an arbitrary
    function such as ``subprocess.run``. The factory gets ``model.parameters`` as keyword
    arguments and returns a :class:`Dynamics`. A :class:`Dynamics` subclass needs no mark, and
    neither does a factory registered in the ``dacli.models`` entry-point group::

        @model_factory
        def make_ring(n=32, speed=1.0, diffusion=0.1):
            return AdvectionDiffusionRing(n=int(n), speed=float(speed), diffusion=float(diffusion))
    """
    if not inspect.isfunction(function):
        raise TypeError(
            f"@model_factory marks a function, not {type(function).__name__}; a Dynamics subclass "
            "needs no mark"
        )
    setattr(function, _FACTORY_ATTRIBUTE, _FACTORY_MARK)
    return function


def is_model_factory(candidate: Any) -> bool:
    """Whether ``candidate`` is a function marked with :func:`model_factory` (read without calling
    anything)."""
    return (
        inspect.isfunction(candidate)
        and candidate.__dict__.get(_FACTORY_ATTRIBUTE) is _FACTORY_MARK
    )


def is_dynamics_class(candidate: Any) -> bool:
    """Whether ``candidate`` is a concrete :class:`Dynamics` subclass (one a config may
    instantiate)."""
    return (
        isinstance(candidate, type)
        and issubclass(candidate, Dynamics)
        and candidate is not Dynamics
        and not inspect.isabstract(candidate)
    )
