"""Diagnostics: metrics (RMSE, O-B/O-A) computed from method results; forecast verification."""
