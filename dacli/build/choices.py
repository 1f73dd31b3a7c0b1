"""Choices dacli makes for the user ("auto"), each returned with its reason.

Like lineax's ``AutoLinearSolver``, an automatic choice explains itself: the reason is logged and
written into the output file's provenance, so a run records why it ran the way it did.
"""

from __future__ import annotations

from dataclasses import dataclass

from dacli.config.registry import INNER_SOLVER, MINIMISERS, capabilities
from dacli.config.schema import MethodConfig

# Gauss-Newton (optimistix) forms the dense Jacobian of the residuals: residuals x controls.
DENSE_JACOBIAN_LIMIT = 4_000_000


@dataclass(frozen=True)
class Choice:
    """What was chosen (a registry name, or a formulation) and why, for the log and the file."""

    name: str
    reason: str


def choose_formulation(method: MethodConfig) -> Choice:
    """The formulation: as configured, or the method kind's own for "auto" (its capabilities)."""
    if method.formulation != "auto":
        return Choice(method.formulation, "as configured")
    kind = capabilities(method.kind)
    return Choice(kind.formulation, kind.why)


def choose_minimiser(method: MethodConfig, control_size: int, residual_size: int) -> Choice:
    """The minimiser for ``method`` given the control size and the number of residuals
    (control + observations)."""

    formulation = choose_formulation(method).name
    if method.minimiser.lower() != "auto":
        return Choice(MINIMISERS.canonical(method.minimiser) or method.minimiser, "as configured")
    if formulation == "incremental":
        return Choice(
            INNER_SOLVER,
            "the inner problem is quadratic with a symmetric positive-definite Hessian "
            "I + L^T R^-1 L in the B^1/2-preconditioned control space: conjugate gradients "
            "(lineax.CG), matrix-free, as in operational incremental 4DVar",
        )
    jacobian = control_size * residual_size
    if jacobian <= DENSE_JACOBIAN_LIMIT:
        return Choice(
            "GaussNewton",
            f"the cost is a sum of squares and its dense Jacobian is small ({residual_size} "
            f"residuals x {control_size} controls <= {DENSE_JACOBIAN_LIMIT:,} elements): "
            "Gauss-Newton needs few iterations",
        )
    return Choice(
        "LBFGS",
        f"the dense Jacobian Gauss-Newton would form is too large ({residual_size} residuals x "
        f"{control_size} controls > {DENSE_JACOBIAN_LIMIT:,} elements): limited-memory BFGS, "
        "matrix-free",
    )
