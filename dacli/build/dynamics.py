"""The model of a configuration: where its factory comes from, and building it.

:func:`resolve_model_factory` is the one place a configuration loads code: ``model.name =
"package.module:attribute"`` imports that module (running its top-level code, as any plug-in
mechanism does) and accepts the attribute only when it is a :class:`dacli.models.Dynamics`
subclass or a function marked with :func:`dacli.models.model_factory`; anything else is refused
before it is called. Names registered in the ``dacli.models`` entry-point group are trusted as
their package's registration; built-in names come from :data:`dacli.build.factories.MODEL_CLASSES`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from dacli.build.factories import MODEL_CLASSES
from dacli.build.traceability import check_traceable
from dacli.config.registry import MODELS, model_problem, plugin_models
from dacli.config.schema import ModelConfig
from dacli.errors import ConfigError
from dacli.models.base import Dynamics, is_dynamics_class, is_model_factory


def _described(target: Any) -> str:
    """What an import path resolved to, in words ('function subprocess.run'), without calling it."""
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
    return (
        f"{kind} {module}.{name}"
        if isinstance(module, str) and isinstance(name, str)
        else f"{kind} {target!r}"
    )


def _import_path_factory(name: str) -> Callable[..., Dynamics]:
    """The Dynamics subclass or marked factory at ``name`` ('module:attribute'); else ConfigError.

    Importing the module runs its top-level code (the plug-in's own, or a library's); the
    attribute itself is only inspected here, never called, unless it passes.
    """
    problem = model_problem(name)
    if problem is not None:
        raise ConfigError([f"model.name: {problem}"])
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError([f"model.name: cannot import module {module_name!r}: {exc}"]) from None
    except Exception as exc:  # the plug-in's own code failed at import (a bug in the user's module)
        raise ConfigError(
            [f"model.name: importing module {module_name!r} failed: {type(exc).__name__}: {exc}"]
        ) from None
    try:  # read, not called: only a module-level __getattr__ (the module's own code) may run
        target = (
            vars(module)[attribute] if attribute in vars(module) else getattr(module, attribute)
        )
    except AttributeError:
        raise ConfigError(
            [f"model.name: module {module_name!r} has no attribute {attribute!r}"]
        ) from None
    except Exception as exc:
        raise ConfigError(
            [
                f"model.name: module {module_name!r} failed to give {attribute!r}: "
                f"{type(exc).__name__}: {exc}"
            ]
        ) from None
    if is_dynamics_class(target) or is_model_factory(target):
        return target
    if isinstance(target, type) and issubclass(target, Dynamics):
        missing = (
            ", ".join(sorted(getattr(target, "__abstractmethods__", ()))) or "vector_field, layout"
        )
        raise ConfigError(
            [
                f"model.name: {name} resolved to {_described(target)}, which does not implement "
                f"{missing} (a dacli.models.Dynamics subclass must)"
            ]
        )
    raise ConfigError(
        [
            f"model.name: {name} resolved to {_described(target)}, which is neither a "
            "dacli.models.Dynamics subclass nor a factory marked with "
            "@dacli.models.model_factory; a config calls only those (see README, 'Bring your own "
            "model')"
        ]
    )


def resolve_model_factory(name: str) -> Callable[..., Dynamics]:
    """The callable that builds the model: built-in, entry point or import path (checked, not
    called)."""
    if ":" in name:
        return _import_path_factory(name)
    canonical = MODELS.canonical(name)
    if canonical is not None:
        return MODEL_CLASSES[canonical]
    plugin = plugin_models().get(name)
    if plugin is None:
        raise ConfigError([f"model.name: {model_problem(name)}"])
    try:
        return plugin.load()  # a registration by the installed package: trusted
    except Exception as exc:
        raise ConfigError(
            [
                f"model.name: entry point {name!r} ({plugin.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ]
        ) from None


def build_dynamics(config: ModelConfig) -> Dynamics:
    """The model object: factory(**parameters), checked against the Dynamics contract (a
    plug-in's vector field also against JAX's tracing: :func:`check_traceable`)."""
    factory = resolve_model_factory(config.name)
    try:
        dynamics = factory(**config.parameters)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            [f"model.parameters: model {config.name!r} rejected its parameters: {exc}"]
        ) from None
    if not isinstance(dynamics, Dynamics):
        raise ConfigError(
            [
                f"model.name: {config.name!r} returned {type(dynamics).__name__}, not a "
                "dacli.models.Dynamics (see README, 'Bring your own model')"
            ]
        )
    if MODELS.canonical(config.name) is None:  # a plug-in: traced once, abstractly
        check_traceable(dynamics, config.name)
    return dynamics
