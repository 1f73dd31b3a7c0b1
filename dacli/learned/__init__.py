"""Learned variational solvers: 4DVarNet (Fablet et al. 2021)."""
