"""The operator registry: one definition per operator (values, derivatives, options)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import softorder.numpy as so
from softorder._src.core import registry as R
from softorder._src.core.backend import NumpyBackend
from softorder._src.core.dykstra import dykstra_decreasing
from softorder._src.isotonic import pav
from softorder.isotonic import isotonic_regression, isotonic_regression_fwd

RNG = np.random.default_rng(7)
GENERIC = NumpyBackend()  # not the NUMPY instance: takes the generic (non-fused) code paths

SORT_CASES = [("soft_rank", dict(regularization=r, descending=d, p=p))
              for r in ("l2", "kl", "pnorm") for d in (False, True) for p in (4 / 3, 1.5)]
SORT_CASES += [("soft_sort", dict(regularization=r, descending=d, p=p))
               for r in ("l2", "kl", "pnorm") for d in (False, True) for p in (4 / 3, 3.0)]
TOPK_CASES = [(n, dict(k=3, p=p, solver=s)) for n in ("soft_topk_mask", "soft_topk_magnitude")
              for p in (4 / 3, 1.5, 2.0, 3.0) for s in ("pav", "dykstra")
              if s == "pav" or p == 2.0]


def _options(name, kw, x):
    return R.get(name).make_options(shape=x.shape, **kw)


@pytest.mark.parametrize("name,kw", SORT_CASES + TOPK_CASES)
@pytest.mark.parametrize("eps", [0.3, 2.0])
def test_strength_tangent_matches_finite_differences(name, kw, eps):
    x = RNG.normal(size=(3, 7)) * 2
    if name == "soft_sort":  # its strength is in 1/x units: soft only beyond 1 / the gaps
        eps *= 10
    op = R.get(name)
    if op.takes_k:  # soft only where the k-th and (k+1)-th entries are within the strength
        x = x / 4
    o = _options(name, kw, x)
    y, jac = op.rows(x, eps, o, R.NUMPY)
    t = op.strength_tangent(x, y, jac, eps, o, R.NUMPY)
    h = 1e-6 * eps
    fd = (op.rows(x, eps + h, o, R.NUMPY)[0] - op.rows(x, eps - h, o, R.NUMPY)[0]) / (2 * h)
    assert np.abs(fd).max() > 1e-6  # a point where the strength matters
    assert_allclose(t, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize("name,kw", SORT_CASES + TOPK_CASES)
def test_generic_backend_path_equals_fused_numba_path(name, kw):
    x = RNG.normal(size=(4, 9))
    op = R.get(name)
    o = _options(name, kw, x)
    y1, j1 = op.rows(x, 0.7, o, R.NUMPY)
    y2, j2 = op.rows(x, 0.7, o, GENERIC)
    assert_allclose(y1, y2, rtol=1e-7, atol=1e-9)
    t = RNG.normal(size=x.shape)
    from softorder._src.core.jacobian import apply
    for transpose in (False, True):
        assert_allclose(apply(j1, t, transpose=transpose), apply(j2, t, transpose=transpose,
                                                                 xp=GENERIC),
                        rtol=1e-7, atol=1e-9)


HARD = {"soft_rank": so.hard_rank, "soft_sort": so.hard_sort,
        "soft_topk_mask": so.hard_topk_mask, "soft_topk_magnitude": so.hard_topk_magnitude}


@pytest.mark.parametrize("name,kw", SORT_CASES[::3] + TOPK_CASES)
@pytest.mark.parametrize("xp", [R.NUMPY, GENERIC], ids=["fused", "generic"])
def test_straight_through_value_is_hard_and_derivative_is_soft(name, kw, xp):
    # No ties, also in magnitude.
    x = (RNG.permutation(12).reshape(2, 6) + 1.0) * RNG.choice([-1.0, 1.0], size=(2, 6))
    op = R.get(name)
    o = _options(name, dict(kw, straight_through=True), x)
    soft = _options(name, kw, x)
    y, jac = op.rows(x, 0.8, o, xp)
    k = kw.get("k")
    hard_kw = {"descending": kw["descending"]} if "descending" in kw else {}
    expected = HARD[name](x, k, **hard_kw) if k is not None else HARD[name](x, **hard_kw)
    assert_allclose(y, expected)
    _, soft_jac = op.rows(x, 0.8, soft, xp)
    for a, b in zip(jac, soft_jac):
        if a is not None:
            assert_allclose(a, b)


def test_straight_through_public_api_and_its_vjp():
    x = np.array([[0.3, -1.2, 2.5, 0.9]])
    y, res = so.soft_topk_mask_fwd(x, 2, regularization_strength=1.0, straight_through=True)
    assert_allclose(y, [[0.0, 0.0, 1.0, 1.0]])
    _, soft_res = so.soft_topk_mask_fwd(x, 2, regularization_strength=1.0)
    g = RNG.normal(size=x.shape)
    assert np.abs(so.vjp(res, g)).max() > 0
    assert_allclose(so.vjp(res, g), so.vjp(soft_res, g))


@pytest.mark.parametrize("shape", [(4, 9), (3, 10), (2, 1), (0, 5), (5, 0)])
def test_dykstra_over_the_backend_converges_to_pav_with_its_blocks(shape):
    y = RNG.normal(size=shape)
    w = RNG.uniform(0.5, 2.0, size=shape)
    st = dykstra_decreasing(y, w, max_iter=20000, tol=1e-13)
    assert st.solution.shape == shape and st.block.shape == shape
    if y.size:
        v, _, _, _, block = pav.pav_batch(y, np.zeros_like(y), w, pav.KIND_L2, 1.0, 1.0, True,
                                          False)
        assert_allclose(st.solution, v, atol=1e-9)
        np.testing.assert_array_equal(st.block, block)
        assert st.residual <= 1e-9


def test_dykstra_keeps_a_nan_row_to_itself():
    y = RNG.normal(size=(3, 6))
    y[1, 2] = np.nan
    st = dykstra_decreasing(y, np.ones_like(y))
    assert np.isnan(st.solution[1]).all()
    assert np.isfinite(st.solution[[0, 2]]).all()


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("bounds", [(None, None), (-0.3, 0.4)])
def test_isotonic_operator_matches_sklearn_and_finite_differences(increasing, bounds):
    from sklearn.isotonic import IsotonicRegression

    lo, hi = bounds
    y = RNG.normal(size=(3, 8))
    c = RNG.uniform(0.5, 2.0, size=y.shape)
    v, res, _ = isotonic_regression_fwd(y, sample_weight=c, increasing=increasing, y_min=lo,
                                        y_max=hi)
    ref = np.stack([IsotonicRegression(increasing=increasing, y_min=lo, y_max=hi).fit_transform(
        np.arange(8), y[i], sample_weight=c[i]) for i in range(3)])
    assert_allclose(v, ref, atol=1e-12)
    dy, dc = RNG.normal(size=y.shape), RNG.normal(size=y.shape)
    h = 1e-6
    f = lambda yy, cc: isotonic_regression(yy, sample_weight=cc, increasing=increasing,
                                           y_min=lo, y_max=hi)
    fd = (f(y + h * dy, c + h * dc) - f(y - h * dy, c - h * dc)) / (2 * h)
    t = so.jvp(res, dy, dc)
    assert np.abs(t).max() > 0
    assert_allclose(t, fd, atol=1e-7)
    u = RNG.normal(size=y.shape)
    yb, cb = so.vjp(res, u)
    assert np.isclose(np.sum(u * t), np.sum(yb * dy) + np.sum(cb * dc))


@pytest.mark.parametrize("bad,err", [
    (dict(regularization_strength="0.5"), TypeError),
    (dict(regularization_strength=True), TypeError),
    (dict(regularization_strength=None), TypeError),
    (dict(p="2", regularization="pnorm"), TypeError),
    (dict(descending="yes"), TypeError),
    (dict(straight_through=1), TypeError),
])
def test_options_are_validated_once_with_named_errors(bad, err):
    with pytest.raises(err) as info:
        so.soft_rank(np.ones(3), **bad)
    assert next(iter(bad)) in str(info.value)


@pytest.mark.parametrize("tol", [-1.0, float("nan"), "x", None])
def test_dykstra_tol_is_checked(tol):
    with pytest.raises((TypeError, ValueError), match="tol"):
        so.soft_topk_mask(np.ones(4), 2, p=2.0, solver="dykstra", tol=tol)


def test_strength_as_a_0d_array_is_accepted():
    x = RNG.normal(size=5)
    assert_allclose(so.soft_rank(x, regularization_strength=np.array(0.5)),
                    so.soft_rank(x, regularization_strength=0.5))


def test_options_are_frozen_and_hashable():
    o = R.get("soft_topk_mask").make_options(shape=(2, 5), k=2)
    assert hash(o) == hash(R.get("soft_topk_mask").make_options(shape=(2, 5), k=2))
    with pytest.raises(AttributeError):
        o.k = 3


def test_every_operator_has_a_rendered_docstring_with_math_and_example():
    for name in R.OPERATORS:
        for fw in ("numpy", "torch", "jax", "tensorflow"):
            doc = R.docstring(name, fw, ">>> 1\n1")
            assert ".. math::" in doc and "Example:" in doc and "References:" in doc
            assert "{array}" not in doc and "{axis}" not in doc
