"""Adjoint strategies of dacli's own (the rest are diffrax's and optimistix's).

:mod:`.stepping`: k-step differentiation through a converged minimisation (the variational
methods' ``minimiser_adjoint``). :mod:`.unroll`: how gradients cross 4DVarNet's solver
iterations (``network.iteration_adjoint``).
"""

from dacli.adjoints.stepping import KStepAdjoint, OneStepAdjoint
from dacli.adjoints.unroll import AbstractIterationAdjoint, Checkpointed, Implicit, KStep, Unrolled

__all__ = [
    "AbstractIterationAdjoint",
    "Checkpointed",
    "Implicit",
    "KStep",
    "KStepAdjoint",
    "OneStepAdjoint",
    "Unrolled",
]
