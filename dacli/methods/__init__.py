"""Assimilation methods; each returns a :class:`~dacli.methods.variational.WindowAnalysis`.

Abstract classes (:mod:`.variational`): ``AbstractMethod`` (one window's analysis) and
``AbstractVariationalMethod`` (the cost, its gradient and both formulations' solves). Final
classes: ``StrongConstraint4DVar`` (:mod:`.strong4dvar`), ``WeakConstraint4DVar``
(:mod:`.weak4dvar`), ``ThreeDVar`` and ``ThreeDFGAT`` (:mod:`.threedvar`; 3D-FGAT wraps a strong
4DVar) and ``FourDVarNetMethod`` (:mod:`.learned`).
"""
