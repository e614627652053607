"""JVP and VJP of every operator: finite differences in float64, and adjointness."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from softorder._src.core.backend import NumpyBackend
from softorder._src.core.jacobian import apply, jvp_rows, vjp_rows
from softorder.numpy import (
    jvp,
    project_permutahedron_fwd,
    soft_rank_fwd,
    soft_sort_fwd,
    soft_topk_magnitude_fwd,
    soft_topk_mask_fwd,
    vjp,
)

RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 7))  # generic point: no ties, no block boundary within h
SIGNS = np.sign(X)


def _cases():
    for reg in ["l2", "kl", "pnorm"]:
        for descending in [False, True]:
            for eps in [0.1, 1.0, 10.0]:
                kw = dict(regularization=reg, descending=descending, regularization_strength=eps)
                yield pytest.param(soft_rank_fwd, kw, id=f"rank-{reg}-{descending}-{eps}")
                yield pytest.param(soft_sort_fwd, kw, id=f"sort-{reg}-{descending}-{eps}")
    for p in [2.0, 4 / 3, 1.5, 3.0]:
        for lam in [0.1, 1.0, 10.0]:
            for k in [1, 3]:
                kw = dict(k=k, regularization_strength=lam, p=p)
                yield pytest.param(soft_topk_mask_fwd, kw, id=f"mask-{p:.3f}-{lam}-{k}")
                yield pytest.param(soft_topk_magnitude_fwd, kw, id=f"mag-{p:.3f}-{lam}-{k}")
    for lam in [0.3, 3.0]:
        kw = dict(k=2, regularization_strength=lam, p=2.0, solver="dykstra", tol=1e-13,
                  max_iter=20000)
        yield pytest.param(soft_topk_mask_fwd, kw, id=f"mask-dykstra-{lam}")
        yield pytest.param(soft_topk_magnitude_fwd, kw, id=f"mag-dykstra-{lam}")


def _call(fwd, x, kw):
    kw = dict(kw)
    if "k" in kw:
        k = kw.pop("k")
        return fwd(x, k, **kw)
    return fwd(x, **kw)


def _fd(fwd, x, kw, v, h=None):
    # A step relative to the point's scale: sorts are tested at |x| up to ~1e4, where an
    # absolute step of 1e-6 loses digits to rounding.
    h = 1e-6 * max(1.0, float(np.max(np.abs(x)))) if h is None else h
    return (_call(fwd, x + h * v, kw)[0] - _call(fwd, x - h * v, kw)[0]) / (2 * h)


def _candidates(fwd, strength):
    """Points scaled to the strength so that blocks pool (DESIGN §1: ranks and masks pool where
    gaps of x are below the strength, l2/kl sorts where gaps exceed 1 / strength; the magnitude
    operator pools across the k-th magnitude when the magnitudes are close, relative to lambda:
    for p = 2 the ratio s_(k+1) / s_k must exceed 1 / (1 + lambda), whatever the scale)."""
    if fwd is soft_sort_fwd:
        # p = 4/3 sorts pool where gaps of x^(1/3) exceed 1 / strength: x ~ strength^-3.
        return [X * c / strength ** e for e in (1, 3) for c in (5.0, 20.0)]
    if fwd is soft_topk_magnitude_fwd:
        return [SIGNS * c * (1.0 + d * np.abs(X)) for d in (0.5, 0.1, 0.02) for c in
                (1.0, 0.3, 3.0, 0.1, 10.0)]
    return [X * c * strength for c in (1.0, 0.5)]


def _pooled_point(fwd, kw):
    """The first candidate where every row has a block of two or more entries."""
    for x in _candidates(fwd, kw["regularization_strength"]):
        block = np.asarray(_call(fwd, x, kw)[1].jacobians[0].block)
        if all(len(np.unique(row)) < x.shape[1] for row in block):
            return x
    raise AssertionError("no candidate point pools a block in every row")


@pytest.mark.parametrize("fwd,kw", list(_cases()))
def test_jvp_and_vjp_match_finite_differences_and_each_other(fwd, kw):
    x = _pooled_point(fwd, kw)
    y, res = _call(fwd, x, kw)
    rng = np.random.default_rng(3)  # per test: the draws do not depend on the test order
    v = rng.normal(size=x.shape)
    u = rng.normal(size=x.shape)
    fd = _fd(fwd, x, kw, v)
    # A derivative test at a point with a zero Jacobian proves nothing: every row moves.
    assert np.all(np.max(np.abs(fd), axis=-1) > 1e-3), fd
    scale = max(1.0, float(np.max(np.abs(fd))))
    assert_allclose(jvp(res, v), fd, rtol=1e-5, atol=1e-6 * scale)
    # Adjointness <u, J v> = <J^T u, v>, row by row.
    assert_allclose(np.sum(u * jvp(res, v), -1), np.sum(vjp(res, u) * v, -1), rtol=1e-10,
                    atol=1e-12 * scale)
    # The VJP against finite differences: <J^T fd, v> = |J v|^2 > 0 in every row, so a wrong
    # sign (or a zero) of the VJP fails here whatever the random draws.
    assert_allclose(np.sum(vjp(res, fd) * v, -1), np.sum(fd * fd, -1), rtol=1e-5)


@pytest.mark.parametrize("reg,p", [("l2", 2.0), ("kl", 2.0), ("pnorm", 4 / 3)])
def test_projection_derivatives_in_both_inputs_match_finite_differences(reg, p):
    z = RNG.normal(size=(2, 6))
    w = RNG.uniform(0.5, 3.0, size=(2, 6))
    y, res = project_permutahedron_fwd(z, w, regularization=reg, p=p)
    dz, dw = RNG.normal(size=z.shape), RNG.normal(size=w.shape)
    h = 1e-6

    def f(zz, ww):
        return project_permutahedron_fwd(zz, ww, regularization=reg, p=p)[0]

    fd = (f(z + h * dz, w + h * dw) - f(z - h * dz, w - h * dw)) / (2 * h)
    assert_allclose(jvp(res, dz, dw), fd, rtol=1e-5, atol=1e-6)
    u = RNG.normal(size=z.shape)
    zb, wb = vjp(res, u)
    assert np.isclose(np.sum(u * jvp(res, dz, dw)), np.sum(zb * dz) + np.sum(wb * dw))


def test_numba_jvp_kernel_equals_the_gather_and_segment_sum_reference():
    x = RNG.normal(size=(4, 9))
    for fwd, kw in [(soft_rank_fwd, {"regularization": "kl"}),
                    (soft_sort_fwd, {"regularization": "l2"})]:
        _, res = fwd(x, regularization_strength=0.5, **kw)
        v = RNG.normal(size=x.shape)
        jac = res.jacobians[0]
        # The fused Numba maps equal the generic map written over the backend interface.
        generic = NumpyBackend()
        assert_allclose(jvp_rows(jac, v), apply(jac, v, xp=generic), rtol=1e-12, atol=1e-12)
        assert_allclose(vjp_rows(jac, v), apply(jac, v, transpose=True, xp=generic),
                        rtol=1e-12, atol=1e-12)


def test_l2_soft_rank_jacobian_is_block_averaging():
    # x sorted in blocks [2.0, 1.9] pooled at eps = 1: their ranks average, derivative 1/2 each.
    x = np.array([[2.0, 1.9, -5.0]])
    y, res = soft_rank_fwd(x, regularization_strength=1.0)
    J = np.stack([jvp(res, e[None])[0] for e in np.eye(3)], axis=1)
    assert_allclose(y, [[2.55, 2.45, 1.0]])
    assert_allclose(J, [[0.5, -0.5, 0], [-0.5, 0.5, 0], [0, 0, 0]], atol=1e-15)


def test_derivatives_cost_no_more_than_linear_memory():
    # Residuals hold O(n) entries per row: no n x n matrix anywhere.
    x = RNG.normal(size=(2, 50_000))
    _, res = soft_rank_fwd(x)
    total = sum(a.size for a in res.jacobians[0] if a is not None)
    assert total <= 6 * x.size
