"""Closed registries: the only place that maps configuration names to implementations.

Entries are ``"module:attribute"`` strings resolved on first use, so checking names (during
config validation, or ``dacli --help``) never imports JAX. Lookups are case-insensitive and
unknown names get a "did you mean" suggestion.

:func:`resolve_model_factory` is the one place a configuration loads code: ``model.name =
"package.module:attribute"`` imports that module (running its top-level code, as any plug-in
mechanism does) and accepts the attribute only when it is a :class:`dacli.models.Dynamics`
subclass or a function marked with :func:`dacli.models.model_factory`; anything else is refused
before it is called. Names registered in the ``dacli.models`` entry-point group are trusted as
their package's registration.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from dacli.config.loading import suggest
from dacli.config.schema import Config

MODEL_ENTRY_POINT_GROUP = "dacli.models"


@dataclass(frozen=True)
class Registry:
    """Named implementations of one kind (e.g. 'minimiser')."""

    kind: str
    entries: dict[str, str]
    special: tuple[str, ...] = ()  # names accepted but resolved elsewhere (e.g. "auto")

    def canonical(self, name: str) -> str | None:
        lowered = {key.lower(): key for key in (*self.special, *self.entries)}
        return lowered.get(name.lower())

    def problem(self, name: str) -> str | None:
        """None when ``name`` is known, else a message with the choices and a suggestion."""
        if self.canonical(name) is not None:
            return None
        choices = [*self.special, *self.entries]
        return f"unknown {self.kind} {name!r}{suggest(name, choices)} (choose from: {', '.join(choices)})"

    def resolve(self, name: str) -> Any:
        canonical = self.canonical(name)
        if canonical is None:
            raise KeyError(self.problem(name))
        module, attribute = self.entries[canonical].split(":")
        return getattr(importlib.import_module(module), attribute)


MODELS = Registry("model", {
    "lorenz63": "dacli.models.lorenz:Lorenz63",
    "lorenz96": "dacli.models.lorenz:Lorenz96",
    "qg": "dacli.models.qg:QuasiGeostrophic",
})

SOLVERS = Registry("solver", {
    "Tsit5": "diffrax:Tsit5",
    "Dopri5": "diffrax:Dopri5",
    "Dopri8": "diffrax:Dopri8",
    "Bosh3": "diffrax:Bosh3",
    "RK4": "dacli.models.solvers:RK4",
    "Heun": "diffrax:Heun",
    "Midpoint": "diffrax:Midpoint",
    "Ralston": "diffrax:Ralston",
    "Euler": "diffrax:Euler",
})

MINIMISERS = Registry("minimiser", {
    "LBFGS": "optimistix:LBFGS",
    "BFGS": "optimistix:BFGS",
    "NonlinearCG": "optimistix:NonlinearCG",
    "GradientDescent": "optimistix:GradientDescent",
    "GaussNewton": "optimistix:GaussNewton",
    "LevenbergMarquardt": "optimistix:LevenbergMarquardt",
    "CG": "lineax:CG",  # the incremental formulation's inner loops
}, special=("auto",))


METHODS = Registry("method kind", {
    "strong4dvar": "dacli.methods.strong4dvar:StrongConstraint4DVar",
    "weak4dvar": "dacli.methods.weak4dvar:WeakConstraint4DVar",
    "3dvar": "dacli.methods.threedvar:ThreeDVar",
    "3dfgat": "dacli.methods.threedvar:ThreeDFGAT",
})

@dataclass(frozen=True)
class MethodCapabilities:
    """What a method kind is and can do: commands ask this record, never the kind's name.

    ``learned``: the analysis is a trained network's solver iterations (4DVarNet): it needs
    ``[network]`` and its trained network file, ``dacli train`` trains it, and it has no
    minimiser, minimiser adjoint or error scales to sweep. ``label``: how logs and messages
    name the method.
    """

    label: str
    learned: bool = False


METHOD_CAPABILITIES = {
    "strong4dvar": MethodCapabilities("strong-constraint 4DVar"),
    "weak4dvar": MethodCapabilities("weak-constraint 4DVar"),
    "3dvar": MethodCapabilities("3DVar"),
    "3dfgat": MethodCapabilities("3D-FGAT"),
    "4dvarnet": MethodCapabilities("4DVarNet", learned=True),
}


def capabilities(kind: str) -> MethodCapabilities:
    """The capability record of the method kind ``kind`` (a validated ``method.kind``)."""
    return METHOD_CAPABILITIES[kind]


FORWARD_ADJOINTS = Registry("forward_adjoint", {
    "RecursiveCheckpointAdjoint": "diffrax:RecursiveCheckpointAdjoint",
    "BacksolveAdjoint": "diffrax:BacksolveAdjoint",
    "DirectAdjoint": "diffrax:DirectAdjoint",
    "ForwardMode": "diffrax:ForwardMode",
})

MINIMISER_ADJOINTS = Registry("minimiser_adjoint", {
    "ImplicitAdjoint": "optimistix:ImplicitAdjoint",
    "RecursiveCheckpointAdjoint": "optimistix:RecursiveCheckpointAdjoint",
    "OneStepAdjoint": "dacli.adjoints.stepping:OneStepAdjoint",
    "KStepAdjoint": "dacli.adjoints.stepping:KStepAdjoint",
})


SOLVER_ADJOINTS = Registry("solver_adjoint", {  # how gradients cross 4DVarNet's solver iterations
    "RecursiveCheckpointAdjoint": "optimistix:RecursiveCheckpointAdjoint",
    "DirectAdjoint": "diffrax:DirectAdjoint",
    "OneStepAdjoint": "dacli.adjoints.stepping:OneStepAdjoint",
    "KStepAdjoint": "dacli.adjoints.stepping:KStepAdjoint",
    "ImplicitAdjoint": "dacli.adjoints.unroll:implicit_adjoint",
})


def _plugin_models() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=MODEL_ENTRY_POINT_GROUP)}


_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ATTRIBUTE = re.compile(r"[A-Za-z_]\w*")


def model_problem(name: str) -> str | None:
    """None when the model name can be resolved without importing it."""
    if ":" in name:
        module, _, attribute = name.partition(":")
        if not _MODULE_PATH.fullmatch(module) or not _ATTRIBUTE.fullmatch(attribute):
            return f"expected 'package.module:factory' (a module path and an attribute name), found {name!r}"
        return None
    if MODELS.canonical(name) is not None or name in _plugin_models():
        return None
    choices = list(MODELS.entries) + list(_plugin_models())
    return (
        f"unknown model {name!r}{suggest(name, choices)} (choose from: {', '.join(choices)}, "
        "or give 'package.module:factory')"
    )


def _described(target: Any) -> str:
    """What an import path resolved to, in words (e.g. 'function subprocess.run'), without calling it."""
    if inspect.ismodule(target):
        return f"module {target.__name__}"
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    if isinstance(target, type):
        kind = "abstract class" if inspect.isabstract(target) else "class"
    elif inspect.isfunction(target):
        kind = "function"
    elif inspect.isbuiltin(target):
        kind = "built-in function"
    elif inspect.ismethod(target):
        kind = "method"
    else:
        cls = type(target)
        return f"a {cls.__module__}.{cls.__qualname__} object"
    return f"{kind} {module}.{name}" if isinstance(module, str) and isinstance(name, str) else f"{kind} {target!r}"


def _import_path_factory(name: str) -> Any:
    """The Dynamics subclass or marked factory at ``name`` ('module:attribute'); ConfigError otherwise.

    Importing the module runs its top-level code (the plug-in's own, or a library's); the
    attribute itself is only inspected here, never called, unless it passes.
    """
    from dacli.errors import ConfigError
    from dacli.models.base import Dynamics, is_dynamics_class, is_model_factory

    problem = model_problem(name)
    if problem is not None:
        raise ConfigError([f"model.name: {problem}"])
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError([f"model.name: cannot import module {module_name!r}: {exc}"]) from None
    except Exception as exc:  # the plug-in's own code failed at import (a bug in the user's module)
        raise ConfigError([f"model.name: importing module {module_name!r} failed: {type(exc).__name__}: {exc}"]) from None
    try:  # read, not called: only a module-level __getattr__ (the module's own code) may run
        target = vars(module)[attribute] if attribute in vars(module) else getattr(module, attribute)
    except AttributeError:
        raise ConfigError([f"model.name: module {module_name!r} has no attribute {attribute!r}"]) from None
    except Exception as exc:
        raise ConfigError([f"model.name: module {module_name!r} failed to give {attribute!r}: "
                           f"{type(exc).__name__}: {exc}"]) from None
    if is_dynamics_class(target) or is_model_factory(target):
        return target
    if isinstance(target, type) and issubclass(target, Dynamics):
        missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ()))) or "vector_field, layout"
        raise ConfigError([f"model.name: {name} resolved to {_described(target)}, which does not implement "
                           f"{missing} (a dacli.models.Dynamics subclass must)"])
    raise ConfigError([
        f"model.name: {name} resolved to {_described(target)}, which is neither a dacli.models.Dynamics subclass "
        "nor a factory marked with @dacli.models.model_factory; a config calls only those (see README, "
        "'Bring your own model')"
    ])


def resolve_model_factory(name: str) -> Any:
    """The callable that builds the model: built-in, entry point, or import path (checked, not called)."""
    from dacli.errors import ConfigError

    if ":" in name:
        return _import_path_factory(name)
    if MODELS.canonical(name) is not None:
        return MODELS.resolve(name)
    plugin = _plugin_models().get(name)
    if plugin is None:
        raise ConfigError([f"model.name: {model_problem(name)}"])
    try:
        return plugin.load()  # a registration by the installed package: trusted
    except Exception as exc:
        raise ConfigError([f"model.name: entry point {name!r} ({plugin.value}) failed to load: "
                           f"{type(exc).__name__}: {exc}"]) from None


def check_names(config: Config) -> list[tuple[str, str]]:
    """Problems with the implementation names in ``config`` as (dotted key, message)."""
    checks = [
        ("model.name", model_problem(config.model.name)),
        ("model.solver", SOLVERS.problem(config.model.solver)),
        ("method.minimiser", MINIMISERS.problem(config.method.minimiser)),
        ("method.forward_adjoint", FORWARD_ADJOINTS.problem(config.method.forward_adjoint)),
        ("method.minimiser_adjoint", MINIMISER_ADJOINTS.problem(config.method.minimiser_adjoint)),
    ]
    if config.network is not None:
        checks.append(("network.solver_adjoint", SOLVER_ADJOINTS.problem(config.network.solver_adjoint)))
        if SOLVER_ADJOINTS.canonical(config.network.solver_adjoint) == "ImplicitAdjoint" and config.network.solver == "convlstm":
            checks.append(("network.solver_adjoint", "ImplicitAdjoint differentiates at a fixed point, and the ConvLSTM "
                           "solver's normalised updates never settle (its linear solve stagnates); use solver = "
                           "\"gradient\" with it, or another solver_adjoint"))
    if checks[2][1] is None:
        from dacli.build.choices import minimiser_problem

        checks.append(("method.minimiser", minimiser_problem(config.method)))
    return [(key, message) for key, message in checks if message]
