"""Dynamics: the model contract, built-in models and the diffrax integration wrapper."""

from dacli.models.base import (
    MAX_STATE_SIZE,
    Dynamics,
    GridAxis,
    StateLayout,
    model_factory,
    size_parameter,
)

__all__ = [
    "MAX_STATE_SIZE",
    "Dynamics",
    "GridAxis",
    "StateLayout",
    "model_factory",
    "size_parameter",
]
