"""The core: backend interface, projections, the BlockJacobian map, operators, NumPy API."""
