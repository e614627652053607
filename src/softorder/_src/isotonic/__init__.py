"""Isotonic solvers: PAV for every regularizer (Numba) and Dykstra (vectorized)."""
