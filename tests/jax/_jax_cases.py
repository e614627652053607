"""Shared cases: each softorder.jax operator beside its softorder.numpy reference.

Importing this module also sets up the JAX test process (there is no conftest.py here: a second
``conftest`` module clashes with tests/conftest.py under ``--doctest-modules``): float64 on.
x64 is process-global; the default float32 mode is tested in a subprocess.
"""

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import softorder.jax as sj  # noqa: E402
import softorder.numpy as snp  # noqa: E402

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
ALL_CASES = [cid for cid, *_ in SORT_RANK + TOPK]
# The cases whose residuals a, b, c vary with x (second order needs the replay).
SMOOTH_CASES = ["soft_rank-kl-asc", "soft_sort-kl-desc", "soft_sort-pnorm-asc",
                "soft_topk_mask-p1.33-pav", "soft_topk_magnitude-p1.5-pav"]


def case(name, backend=None, strength=None):
    """(jax function of x (and axis=), numpy *_fwd of x (and axis=))."""
    for cid, op, reg, desc in SORT_RANK:
        if cid == name:
            kw = dict(regularization=reg, descending=desc,
                      regularization_strength=0.7 if strength is None else strength)
            return (lambda x, op=op, kw=kw, **k: getattr(sj, op)(x, backend=backend, **kw, **k),
                    lambda x, op=op, kw=kw, **k: getattr(snp, op + "_fwd")(x, **kw, **k))
    for cid, op, p, solver in TOPK:
        if cid == name:
            kw = dict(p=p, solver=solver,
                      regularization_strength=0.5 if strength is None else strength)
            if solver == "dykstra":
                kw.update(max_iter=5000, tol=1e-13)
            return (lambda x, op=op, kw=kw, **k: getattr(sj, op)(x, 2, backend=backend, **kw, **k),
                    lambda x, op=op, kw=kw, **k: getattr(snp, op + "_fwd")(x, 2, **kw, **k))
    raise KeyError(name)


def spread(rng, shape, gap=0.12):
    """Values with gaps >= ``gap`` along the last axis (away from ties and kinks)."""
    n = shape[-1]
    base = np.arange(n) * gap + rng.uniform(0, 0.1 * gap, size=shape)
    idx = np.argsort(rng.uniform(size=shape), axis=-1)
    return np.take_along_axis(base, idx, -1) - base.mean() + 0.05
