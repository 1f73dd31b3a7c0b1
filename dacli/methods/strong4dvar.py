"""Strong-constraint 4DVar: the model is a perfect constraint over the window.

    x0 = xb + B^{1/2} v,   J(v) = 1/2 v^T v + 1/2 sum_p ((y_p - H_p(M(x0))) / sigma_p)^2

Le Dimet & Talagrand (1986); Courtier & Talagrand (1987). Solved directly (nonlinear
formulation) or by outer/inner loops (incremental, Courtier et al. 1994): see
:mod:`dacli.methods.variational`.
"""

from dacli.methods.variational import (
    AbstractInitialStateControl,
    AbstractModelObserved,
    AbstractVariationalFields,
    WindowAnalysis,
    analyse_window,
    analyse_windows,
)


class StrongConstraint4DVar(
    AbstractVariationalFields, AbstractInitialStateControl, AbstractModelObserved, strict=True
):
    """Strong-constraint 4DVar: x(t) = M(x0), control v = v0 (see the module docstring).

    The fields are those every variational method has
    (:class:`~dacli.methods.variational.AbstractVariationalFields`); the control and the observed
    trajectory are :class:`~dacli.methods.variational.AbstractInitialStateControl`'s and
    :class:`~dacli.methods.variational.AbstractModelObserved`'s. When the model is not trusted
    over the window, use :class:`~dacli.methods.weak4dvar.WeakConstraint4DVar`.
    """


__all__ = ["StrongConstraint4DVar", "WindowAnalysis", "analyse_window", "analyse_windows"]
