"""The operator cases every property body runs: (id, op, positional args, keyword options)."""

import numpy as np
import pytest

SORT_RANK = [
    (f"{op}-{reg}-{'desc' if desc else 'asc'}", op, (),
     # soft_sort's strength is in the units of 1 / x: exact (hard) below 1 / (largest gap).
     dict(regularization=reg, descending=desc,
          regularization_strength=0.7 if op == "soft_rank" else 5.0))
    for op in ("soft_rank", "soft_sort")
    for reg in ("l2", "kl", "pnorm")
    for desc in (False, True)
] + [("soft_rank-pnorm1.5-asc", "soft_rank", (),
      dict(regularization="pnorm", p=1.5, regularization_strength=2.0))]
TOPK = [
    (f"{op}-p{p:.3g}-{solver}", op, (2,),
     dict(p=p, solver=solver, regularization_strength=0.5,
          **(dict(max_iter=5000, tol=1e-12) if solver == "dykstra" else {})))
    for op in ("soft_topk_mask", "soft_topk_magnitude")
    for p, solver in ((4 / 3, "pav"), (2.0, "pav"), (1.5, "pav"), (2.0, "dykstra"))
]
CASES = [pytest.param(*c[1:], id=c[0]) for c in SORT_RANK + TOPK]
# A smaller spread of the same cases (each op, each regularizer or p, each solver once).
FEW = [pytest.param(*c[1:], id=c[0]) for c in (SORT_RANK[0], SORT_RANK[3], SORT_RANK[4],
                                                SORT_RANK[6], SORT_RANK[9], SORT_RANK[11],
                                                TOPK[0], TOPK[3], TOPK[5], TOPK[6])]
OPS = ("soft_rank", "soft_sort", "soft_topk_mask", "soft_topk_magnitude")
HARD = {"soft_rank": "hard_rank", "soft_sort": "hard_sort", "soft_topk_mask": "hard_topk_mask",
        "soft_topk_magnitude": "hard_topk_magnitude"}


def spread(rng, shape, gap=0.12):
    """Values with gaps >= ``gap`` along the last axis, in magnitude too (away from ties and
    kinks: finite differences and straight-through values are well defined there)."""
    n = shape[-1]
    base = np.arange(n) * gap + rng.uniform(0, 0.1 * gap, size=shape) + 0.3 * gap
    idx = np.argsort(rng.uniform(size=shape), axis=-1)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return np.take_along_axis(base, idx, -1) * sign


SHAPE, AXIS = (3, 5, 4), 1  # one layout for the bodies below: JAX compiles once per case


def point(seed, shape=SHAPE, axis=AXIS):
    """A tie-free point of ``shape``, spread along ``axis``."""
    moved = list(shape)
    moved.append(moved.pop(axis))
    return np.moveaxis(spread(np.random.default_rng(seed), moved), -1, axis)
