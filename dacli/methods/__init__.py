"""Variational methods. Each returns a :class:`WindowAnalysis` per window."""
