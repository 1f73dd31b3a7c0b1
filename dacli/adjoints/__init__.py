"""Adjoint strategies of dacli's own (the rest are diffrax's and optimistix's)."""

from dacli.adjoints.stepping import KStepAdjoint, OneStepAdjoint

__all__ = ["KStepAdjoint", "OneStepAdjoint"]
