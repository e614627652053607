"""Shared cases: each TF operator beside its NumPy reference (``*_fwd`` gives residuals)."""

import numpy as np
import tensorflow as tf

import softorder.numpy as snp
import softorder.tensorflow as stf

# (id, tf function, numpy *_fwd, kwargs): k for top-k is passed positionally by `call`.
SORT_RANK = [
    (f"{op}-{reg}-{'desc' if desc else 'asc'}", op, reg, desc)
    for op in ("soft_sort", "soft_rank")
    for reg in ("l2", "kl", "pnorm")
    for desc in (False, True)
]
TOPK = [
    (f"{op}-p{p:.3g}-{solver}", op, p, solver)
    for op in ("soft_topk_mask", "soft_topk_magnitude")
    for p, solver in ((4 / 3, "pav"), (2.0, "pav"), (2.0, "dykstra"), (1.5, "pav"))
]


def sort_rank_case(op, reg, desc, strength=0.7):
    kw = dict(regularization=reg, descending=desc, regularization_strength=strength)
    tf_fn = lambda x, **k: getattr(stf, op)(x, **kw, **k)
    np_fwd = lambda x, **k: getattr(snp, op + "_fwd")(x, **kw, **k)
    return tf_fn, np_fwd


def topk_case(op, p, solver, k=2, strength=0.5):
    kw = dict(p=p, solver=solver, regularization_strength=strength)
    tf_fn = lambda x, **kk: getattr(stf, op)(x, k, **kw, **kk)
    np_fwd = lambda x, **kk: getattr(snp, op + "_fwd")(x, k, **kw, **kk)
    return tf_fn, np_fwd


ALL_CASES = [pytest_id for pytest_id, *_ in SORT_RANK + TOPK]


def case(name):
    for cid, op, a, b in SORT_RANK:
        if cid == name:
            return sort_rank_case(op, a, b)
    for cid, op, a, b in TOPK:
        if cid == name:
            return topk_case(op, a, b)
    raise KeyError(name)


def spread(rng, shape, gap=0.12):
    """Values with gaps >= ``gap`` along the last axis (away from ties and kinks)."""
    n = shape[-1]
    base = np.arange(n) * gap + rng.uniform(0, 0.1 * gap, size=shape)
    idx = np.argsort(rng.uniform(size=shape), axis=-1)
    return np.take_along_axis(base, idx, -1) - base.mean() + 0.05


TOL = {tf.float16: 2e-3, tf.bfloat16: 1e-2, tf.float32: 2e-6, tf.float64: 1e-12}
