"""Strong-constraint 4DVar: the model is a perfect constraint over the window.

    x0 = xb + B^{1/2} v,   J(v) = 1/2 v^T v + 1/2 sum_p ((y_p - H_p(M(x0))) / sigma_p)^2

Le Dimet & Talagrand (1986); Courtier & Talagrand (1987). Solved directly (nonlinear
formulation) or by outer/inner loops (incremental, Courtier et al. 1994): see
:mod:`dacli.methods.variational`.
"""

from __future__ import annotations

from dacli.methods.variational import VariationalMethod, WindowAnalysis, analyse_window, analyse_windows


class StrongConstraint4DVar(VariationalMethod):
    """Strong-constraint 4DVar; everything is the shared variational machinery with x(t) = M(x0)."""


__all__ = ["StrongConstraint4DVar", "WindowAnalysis", "analyse_window", "analyse_windows"]
