"""Tuning classical hyperparameters (B, R, Q scales, B's length scale) through the converged
minimiser."""
