"""Whether JAX can trace a plug-in model the way dacli runs it: reverse mode through its field.

Every method differentiates the model window in reverse mode, so :func:`check_traceable` traces
``vector_field(t, x, None)`` and its pullback (:func:`jax.vjp`) once, abstractly
(:func:`jax.eval_shape`: shapes and dtypes only, nothing compiled or computed, a few
milliseconds), with the model's array fields, the time and the state abstract as inside
:func:`dacli.models.integrate.integrate`'s jitted solve. A model that JAX cannot trace there — a
Python ``if`` on a state value, a call into numpy, a dynamic ``while_loop`` under reverse mode, a
``vector_field`` that does not return the state's shape — is the user's model to fix: a
:class:`dacli.errors.ConfigError` (exit 2) naming the plug-in, JAX's error in one line, where it
happened and the usual fix, not an internal error at the first window.

Forward mode (:func:`jax.jvp`) is not probed: a model with a ``jax.custom_vjp`` rule is
legitimate and cannot be pushed forward; :func:`forward_mode_problem` says so for the settings
that need it. Not for dacli's built-in models (tested by dacli's own suite). Reference: JAX's
"Errors" page, https://docs.jax.dev/en/latest/errors.html.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from dacli.config.registry import FORWARD_ADJOINTS, MINIMISER_ADJOINTS, MODELS
from dacli.config.schema import Config
from dacli.errors import ConfigError, DacliError
from dacli.models.base import Dynamics

# A dynamic while_loop (or a fori_loop with traced bounds) under reverse mode: a ValueError whose
# message starts so (jax 0.4 to 0.10).
_DYNAMIC_LOOP = "Reverse-mode differentiation does not work for lax.while_loop"

_CONVERSION_FIX = (
    "don't convert values computed from the state or time to Python numbers (int(), float(), "
    "range(), list indices) or use them as shapes; keep them as jax arrays"
)

# (exception class, the usual fix), the first match wins: subclasses before their bases.
_FIXES: tuple[tuple[type[BaseException], str], ...] = (
    (
        jax.errors.TracerBoolConversionError,
        "use jnp.where or jax.lax.cond instead of a Python if/while/and/or on a value computed "
        "from the state or time",
    ),
    (
        jax.errors.TracerArrayConversionError,
        "use jax.numpy (jnp) instead of numpy inside vector_field",
    ),
    (jax.errors.TracerIntegerConversionError, _CONVERSION_FIX),
    (
        jax.errors.NonConcreteBooleanIndexError,
        "a boolean mask gives a shape that depends on the values: use jnp.where(mask, a, b)",
    ),
    (jax.errors.ConcretizationTypeError, _CONVERSION_FIX),
)

_LOOP_FIX = (
    "use jax.lax.scan, or a fori_loop with static (Python int) bounds, instead of a while_loop "
    "or a fori_loop whose bounds depend on the state"
)

# Frames of these packages are JAX's machinery, not the place in the user's model to point at.
_LIBRARIES = tuple(
    str(Path(module.__file__).parent) for module in (jax, eqx, np) if module.__file__ is not None
) + (str(Path(__file__)),)


def _first_line(exc: BaseException) -> str:
    """The exception's message up to its first line break (JAX's messages run on for lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _where(exc: BaseException) -> str:
    """' (at file:line, in function)' of the innermost frame outside JAX, equinox, numpy and this
    module (the user's line), or '' when there is none."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(_LIBRARIES)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {frame.filename}:{frame.lineno}, in {frame.name})"


def _fix(exc: BaseException) -> str | None:
    """The usual fix for a JAX tracing error, or None for any other exception."""
    for kind, fix in _FIXES:
        if isinstance(exc, kind):
            return fix
    if isinstance(exc, ValueError) and str(exc).startswith(_DYNAMIC_LOOP):
        return _LOOP_FIX
    return None


def _abstract_inputs(dynamics: Dynamics) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    """(time, state) as the solve sees them: scalar and ``(layout.size,)`` in JAX's float dtype
    (float64 when x64 is on, as ``run.precision = "float64"`` sets it; float32 otherwise)."""
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    return jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct((dynamics.layout().size,), dtype)


def _pullback_shapes(
    dynamics: Dynamics, time: jax.ShapeDtypeStruct, state: jax.ShapeDtypeStruct
) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    """Shapes of ``vector_field(t, x, None)`` and of its pullback of itself, traced abstractly;
    raises whatever tracing the model raises. The model's arrays are abstract too (as under
    :func:`equinox.filter_jit`), its other fields static."""
    arrays, static = eqx.partition(dynamics, eqx.is_array)

    def field_and_pullback(arrays, t, x):
        model = eqx.combine(arrays, static)
        dx, pullback = jax.vjp(lambda y: model.vector_field(t, y, None), x)
        return dx, pullback(dx)[0]

    return jax.eval_shape(field_and_pullback, arrays, time, state)


def check_traceable(dynamics: Dynamics, name: str) -> None:
    """Raise a :class:`ConfigError` (exit 2) if JAX cannot trace ``dynamics.vector_field`` and
    its reverse-mode derivative, or if the field is not shaped like the state; ``name`` is the
    configured ``model.name``. No compilation, no computation.

    Any exception from the model's code while traced is reported as the model's failure (with
    its type, first line and the user's line), since the only code that runs is the model's and
    JAX's: dacli's :class:`DacliError` passes through unchanged.
    """
    time, state = _abstract_inputs(dynamics)
    try:
        dx, _ = _pullback_shapes(dynamics, time, state)
    except DacliError:
        raise
    except Exception as exc:
        described = f"{type(exc).__name__}: {_first_line(exc)}{_where(exc)}"
        fix = _fix(exc)
        if fix is not None:
            problem = f"{name} cannot be traced by JAX: {described}; {fix}"
        else:
            problem = (
                f"{name}: vector_field(t, x, args) failed when traced with an abstract "
                f"{state.dtype}[{state.shape[0]}] state: {described}"
            )
        raise ConfigError([f"model.name: {problem}"]) from None
    if getattr(dx, "shape", None) != state.shape:
        got = f"{dx.dtype}{list(dx.shape)}" if isinstance(dx, jax.ShapeDtypeStruct) else repr(dx)
        raise ConfigError(
            [
                f"model.name: {name}: vector_field returned {got} for a state of shape "
                f"{state.dtype}[{state.shape[0]}] (layout().size); it must return dx/dt, an "
                "array shaped like the state"
            ]
        )


def forward_mode_problem(dynamics: Dynamics) -> str | None:
    """Why forward mode (:func:`jax.jvp`) cannot go through ``dynamics.vector_field`` (JAX's
    error, one line: typically a ``jax.custom_vjp`` rule), or None when it can. For the settings
    that linearise the model forward (the incremental formulation of 4DVar,
    ``forward_adjoint = "ForwardMode"``, the observation-space diagnostics' spread probes), not a
    requirement of every model.

    Lowered, not only traced: JAX refuses a ``custom_vjp`` under ``jvp`` when it lowers the
    program (:func:`jax.eval_shape` lets it pass), so this costs a lowering to StableHLO (tens of
    milliseconds; no XLA compilation) and starts JAX's backend: call it after
    :func:`dacli.run.runtime.configure`.
    """
    arrays, static = eqx.partition(dynamics, eqx.is_array)
    time, state = _abstract_inputs(dynamics)

    def pushforward(arrays, t, x):
        model = eqx.combine(arrays, static)
        return jax.jvp(lambda y: model.vector_field(t, y, None), (x,), (jnp.ones_like(x),))

    try:
        jax.jit(pushforward).lower(arrays, time, state)
    except DacliError:
        raise
    except Exception as exc:
        return f"{type(exc).__name__}: {_first_line(exc)}"
    return None


def forward_mode_settings(config: Config, spread_probes: int = 0) -> list[tuple[str, str]]:
    """(setting, what to do instead) for each configured setting that linearises the model
    forward: the incremental 4DVar formulation (3D-FGAT's tangent-linear model is the identity,
    3D-Var has none), ``forward_adjoint = "ForwardMode"``, a OneStep/KStep minimiser adjoint
    (its Newton refinement after every solve takes Hessian-vector products, forward over
    reverse: :class:`dacli.adjoints.stepping.KStepAdjoint`), the spread probes of the
    observation-space diagnostics (``spread_probes`` as passed to
    :func:`dacli.build.problem.build_problem`)."""
    method = config.method
    settings = []
    if method.effective_formulation == "incremental" and method.kind in (
        "strong4dvar",
        "weak4dvar",
    ):
        settings.append(
            ("method.formulation = incremental", 'set method.formulation = "nonlinear"')
        )
    if FORWARD_ADJOINTS.canonical(method.forward_adjoint) == "ForwardMode":
        settings.append(
            (
                "method.forward_adjoint = ForwardMode",
                'set method.forward_adjoint = "RecursiveCheckpointAdjoint"',
            )
        )
    adjoint = MINIMISER_ADJOINTS.canonical(method.minimiser_adjoint)
    if adjoint in ("OneStepAdjoint", "KStepAdjoint"):
        settings.append(
            (
                f"method.minimiser_adjoint = {adjoint}",
                'set method.minimiser_adjoint = "ImplicitAdjoint"',
            )
        )
    if spread_probes > 0:
        settings.append(
            ("output.observation_diagnostics", "leave output.observation_diagnostics unset")
        )
    return settings


def check_forward_mode(dynamics: Dynamics, name: str, settings: list[tuple[str, str]]) -> None:
    """Raise a :class:`ConfigError` (exit 2) if ``settings`` (as :func:`forward_mode_settings`
    gives them: what linearises the model forward, what to do instead) is not empty and the
    plug-in model ``name`` cannot be differentiated in forward mode (:func:`forward_mode_problem`):
    one problem per setting. Built-in models support both modes and are not probed; nothing is
    probed when no setting needs forward mode."""
    if not settings or MODELS.canonical(name) is not None:
        return
    reason = forward_mode_problem(dynamics)
    if reason is None:
        return
    rule = (
        ", or give the model a jax.custom_jvp rule instead of its custom_vjp (JAX derives reverse "
        "mode from a custom_jvp)"
        if "custom_vjp" in reason
        else ""
    )
    raise ConfigError(
        [
            f"{setting}: linearises the model forward (jax.jvp), which {name} does not support "
            f"({reason}); {alternative}{rule}"
            for setting, alternative in settings
        ]
    )
