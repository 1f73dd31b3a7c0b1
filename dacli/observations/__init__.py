"""Observation sets, window packing and the observation operator."""
