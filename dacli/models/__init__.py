"""Dynamics: the model contract, built-in models and the diffrax integration wrapper."""

from dacli.models.base import Dynamics, GridAxis, StateLayout

__all__ = ["Dynamics", "GridAxis", "StateLayout"]
