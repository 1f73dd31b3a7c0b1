"""Error covariances (B, R) as lineax operators."""
