"""Shared cases for the torch tests: each operator beside its NumPy reference."""

import numpy as np

import softorder.numpy as snp
import softorder.torch as st

# (id, op name, positional args, keyword options)
SORT_RANK = [
    (f"{op}-{reg}-{'desc' if desc else 'asc'}", op, (), dict(regularization=reg, descending=desc,
                                                             regularization_strength=0.7))
    for op in ("soft_sort", "soft_rank")
    for reg in ("l2", "kl", "pnorm")
    for desc in (False, True)
]
TOPK = [
    (f"{op}-p{p:.3g}-{solver}", op, (2,), dict(p=p, solver=solver, regularization_strength=0.5))
    for op in ("soft_topk_mask", "soft_topk_magnitude")
    for p, solver in ((4 / 3, "pav"), (2.0, "pav"), (2.0, "dykstra"), (1.5, "pav"))
]
CASES = SORT_RANK + TOPK
IDS = [c[0] for c in CASES]


def torch_fn(op, args, kw):
    return lambda x, **k: getattr(st, op)(x, *args, **kw, **k)


def numpy_fwd(op, args, kw):
    return lambda x, **k: getattr(snp, op + "_fwd")(x, *args, **kw, **k)


def exact_second_order(op, kw):
    """Where the residuals are locally constant in x (the Hessian is 0 a.e.)."""
    if op in ("soft_sort", "soft_rank"):
        return kw["regularization"] == "l2"
    return kw["p"] == 2.0


def spread(rng, shape, gap=0.12):
    """Values with gaps >= ``gap`` along the last axis (away from ties and kinks)."""
    n = shape[-1]
    base = np.arange(n) * gap + rng.uniform(0, 0.1 * gap, size=shape)
    idx = np.argsort(rng.uniform(size=shape), axis=-1)
    return np.take_along_axis(base, idx, -1) - base.mean() + 0.05
