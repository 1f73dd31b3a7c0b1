"""Closed registries: the names a configuration may use, checked without JAX.

A :class:`Registry` holds one kind's names (case-insensitive, with "did you mean" suggestions);
the factory that builds each name's engine object from its configuration record lives in
:mod:`dacli.build.factories`, under the same name. Checking names (config validation,
``dacli validate``, ``dacli --help``) imports only this module, so it never imports JAX.
:class:`MethodCapabilities` says what each method kind is and can do: commands ask it, never
the kind's name.

Models are also found outside the registry: an installed package's entry point in the
``dacli.models`` group, or an import path ``"package.module:attribute"`` (resolved, and checked
before anything is called, by :func:`dacli.build.dynamics.resolve_model_factory`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from dacli.config.schema import Config, MethodConfig
from dacli.config.spelling import suggest

MODEL_ENTRY_POINT_GROUP = "dacli.models"


@dataclass(frozen=True)
class Registry:
    """The names of one kind of implementation (e.g. 'minimiser'); ``special`` names (e.g.
    "auto") are accepted but decided elsewhere (:mod:`dacli.build.choices`)."""

    kind: str
    names: tuple[str, ...]
    special: tuple[str, ...] = ()

    def canonical(self, name: str) -> str | None:
        lowered = {key.lower(): key for key in (*self.special, *self.names)}
        return lowered.get(name.lower())

    def problem(self, name: str) -> str | None:
        """None when ``name`` is known, else a message with the choices and a suggestion."""
        if self.canonical(name) is not None:
            return None
        choices = [*self.special, *self.names]
        return (
            f"unknown {self.kind} {name!r}{suggest(name, choices)} "
            f"(choose from: {', '.join(choices)})"
        )


MODELS = Registry("model", ("lorenz63", "lorenz96", "qg"))

ODE_SOLVERS = Registry(
    "ODE solver",
    ("Tsit5", "Dopri5", "Dopri8", "Bosh3", "RK4", "Heun", "Midpoint", "Ralston", "Euler"),
)

INNER_SOLVER = "CG"  # the incremental formulation's inner loops: lineax's conjugate gradients

MINIMISERS = Registry(
    "minimiser",
    (
        "LBFGS",
        "BFGS",
        "NonlinearCG",
        "GradientDescent",
        "GaussNewton",
        "LevenbergMarquardt",
        INNER_SOLVER,
    ),
    special=("auto",),
)

METHODS = Registry(
    "method kind", ("strong4dvar", "weak4dvar", "3dvar", "3dfgat")
)  # variational ones

FORWARD_ADJOINTS = Registry(
    "forward_adjoint",
    ("RecursiveCheckpointAdjoint", "BacksolveAdjoint", "DirectAdjoint", "ForwardMode"),
)

MINIMISER_ADJOINTS = Registry(
    "minimiser_adjoint",
    ("ImplicitAdjoint", "RecursiveCheckpointAdjoint", "OneStepAdjoint", "KStepAdjoint"),
)

ITERATION_ADJOINTS = Registry(
    "iteration adjoint",
    (
        "RecursiveCheckpointAdjoint",
        "DirectAdjoint",
        "OneStepAdjoint",
        "KStepAdjoint",
        "ImplicitAdjoint",
    ),
)  # across 4DVarNet's iterations


@dataclass(frozen=True)
class MethodCapabilities:
    """What a method kind is and can do: commands ask this record, never the kind's name.

    ``label``: how logs and messages name the method. ``learned``: the analysis is a trained
    network's solver iterations (4DVarNet): it needs ``[network]`` and its trained network
    file, ``dacli train`` trains it, and it has no minimiser, minimiser adjoint or error scales
    to sweep. ``formulation``: what ``formulation = "auto"`` means for it, and ``why``.
    ``model_error``: the control includes model-error forcings (``[method.model_error]``:
    sub-windows and Q). ``tunable``: ``dacli tune`` can fit its B, R (and Q) scales by
    differentiating through the minimisation.
    """

    label: str
    formulation: str
    why: str
    learned: bool = False
    model_error: bool = False
    tunable: bool = False


def _minimised_directly(kind: str) -> str:
    return f"{kind} minimised directly (set formulation = 'incremental' for outer/inner loops)"


METHOD_CAPABILITIES = {
    "strong4dvar": MethodCapabilities(
        "strong-constraint 4DVar", "nonlinear", _minimised_directly("strong4dvar"), tunable=True
    ),
    "weak4dvar": MethodCapabilities(
        "weak-constraint 4DVar",
        "nonlinear",
        _minimised_directly("weak4dvar"),
        model_error=True,
        tunable=True,
    ),
    "3dvar": MethodCapabilities("3DVar", "nonlinear", _minimised_directly("3dvar"), tunable=True),
    "3dfgat": MethodCapabilities(
        "3D-FGAT",
        "incremental",
        "3D-FGAT is defined by its identity tangent-linear "
        "model, which only the incremental formulation's inner loops use",
    ),
    "4dvarnet": MethodCapabilities(
        "4DVarNet",
        "learned",
        "4DVarNet: a trained network's solver iterations replace the minimiser",
        learned=True,
    ),
}


def capabilities(kind: str) -> MethodCapabilities:
    """The capability record of the method kind ``kind`` (a validated ``method.kind``)."""
    return METHOD_CAPABILITIES[kind]


def formulation_of(method: MethodConfig) -> str:
    """The formulation ``method`` runs: as configured, or its kind's default for "auto"."""
    return (
        method.formulation
        if method.formulation != "auto"
        else capabilities(method.kind).formulation
    )


def minimiser_problem(method: MethodConfig) -> str | None:
    """None when the minimiser fits the formulation, else what is wrong and what to do."""
    name = method.minimiser.lower()
    formulation = formulation_of(method)
    if name == "auto":
        return None
    if formulation == "incremental" and name != INNER_SOLVER.lower():
        return (
            f"{method.minimiser!r} minimises the nonlinear cost; the incremental formulation's "
            f"inner loops use '{INNER_SOLVER}' (set minimiser = 'auto' or '{INNER_SOLVER}')"
        )
    if formulation == "nonlinear" and name == INNER_SOLVER.lower():
        return (
            f"'{INNER_SOLVER}' is the incremental formulation's inner-loop solver; set formulation "
            "= 'incremental', or choose a nonlinear minimiser"
        )
    return None


def plugin_models() -> dict[str, EntryPoint]:
    """The models installed packages register in the ``dacli.models`` entry-point group."""
    return {ep.name: ep for ep in entry_points(group=MODEL_ENTRY_POINT_GROUP)}


_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ATTRIBUTE = re.compile(r"[A-Za-z_]\w*")


def model_problem(name: str) -> str | None:
    """None when the model name can be resolved without importing it."""
    if ":" in name:
        module, _, attribute = name.partition(":")
        if not _MODULE_PATH.fullmatch(module) or not _ATTRIBUTE.fullmatch(attribute):
            return (
                "expected 'package.module:factory' (a module path and an attribute name), "
                f"found {name!r}"
            )
        return None
    if MODELS.canonical(name) is not None:
        return None
    plugins = plugin_models()  # one entry-point lookup
    if name in plugins:
        return None
    choices = list(MODELS.names) + list(plugins)
    return (
        f"unknown model {name!r}{suggest(name, choices)} (choose from: {', '.join(choices)}, "
        "or give 'package.module:factory')"
    )


def check_names(config: Config) -> list[tuple[str, str]]:
    """Problems with the implementation names in ``config`` as (dotted key, message)."""
    checks = [
        ("model.name", model_problem(config.model.name)),
        ("model.ode_solver", ODE_SOLVERS.problem(config.model.ode_solver)),
        ("method.minimiser", MINIMISERS.problem(config.method.minimiser)),
        ("method.forward_adjoint", FORWARD_ADJOINTS.problem(config.method.forward_adjoint)),
        ("method.minimiser_adjoint", MINIMISER_ADJOINTS.problem(config.method.minimiser_adjoint)),
    ]
    if config.network is not None:
        checks.append(
            (
                "network.iteration_adjoint",
                ITERATION_ADJOINTS.problem(config.network.iteration_adjoint),
            )
        )
        if (
            ITERATION_ADJOINTS.canonical(config.network.iteration_adjoint) == "ImplicitAdjoint"
            and config.network.update == "convlstm"
        ):
            checks.append(
                (
                    "network.iteration_adjoint",
                    "ImplicitAdjoint differentiates at a fixed point, and the ConvLSTM solver's "
                    "normalised updates never settle (its linear solve stagnates); use update = "
                    '"gradient" with it, or another iteration_adjoint',
                )
            )
    if checks[2][1] is None:
        checks.append(("method.minimiser", minimiser_problem(config.method)))
    return [(key, message) for key, message in checks if message]
