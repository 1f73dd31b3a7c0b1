"""Config records -> engine objects. The only layer that maps names to classes."""
