"""The correlation shapes of a correlated covariance: the one list of them.

Without JAX, so the configuration schema (:mod:`dacli.config.schema`, its correlated covariance
kinds) reads it too; the correlation functions are in :mod:`dacli.covariances.spectral`.
"""

SHAPES = ("gaussian", "matern32")
