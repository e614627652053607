"""Limits and invariants on every front end (DESIGN §1): the hard operators as the strength
goes to 0, the uninformative means as it goes to infinity, rank sums, monotone sorts, top-k
masks that sum to k and are sparse; and the edges: NaN rows, +-inf, ties, n = 1, empty batches.
"""

import numpy as np
import pytest
from adapters import ADAPTERS
from cases import FEW, HARD, OPS
from numpy.testing import assert_allclose, assert_array_equal

import softorder.numpy as snp

NUMPY = ADAPTERS["numpy"]
X = np.random.default_rng(11).normal(size=(3, 8))
N = X.shape[1]


@pytest.mark.parametrize("reg,descending", [("l2", False), ("kl", True), ("pnorm", False)])
def test_small_strength_gives_the_hard_sort_and_rank(backend, reg, descending):
    kw = dict(regularization=reg, descending=descending)
    assert_allclose(backend("soft_rank", X, regularization_strength=1e-4, **kw),
                    snp.hard_rank(X, descending=descending), atol=1e-6)
    # kl needs a softer-looking strength to be numerically hard: its log-space form.
    assert_allclose(backend("soft_sort", X, regularization_strength=1e-3, **kw),
                    snp.hard_sort(X, descending=descending), atol=1e-4)


@pytest.mark.parametrize("k,p", [(0, 2.0), (3, 4 / 3), (N, 2.0)])
def test_small_strength_gives_the_hard_topk(backend, k, p):
    assert_array_equal(backend("soft_topk_mask", X, k, regularization_strength=1e-6, p=p),
                       snp.hard_topk_mask(X, k))
    assert_allclose(backend("soft_topk_magnitude", X, k, regularization_strength=1e-8, p=p),
                    snp.hard_topk_magnitude(X, k), atol=1e-6)


def test_large_strength_gives_the_uninformative_limits(backend):
    big = 1e9
    for reg in ("l2", "kl"):
        assert_allclose(backend("soft_rank", X, regularization=reg, regularization_strength=big),
                        np.full(X.shape, (N + 1) / 2), rtol=1e-6)
    mean = np.broadcast_to(X.mean(axis=1, keepdims=True), X.shape)
    assert_allclose(backend("soft_sort", X, regularization_strength=big), mean, atol=1e-6)
    lme = np.broadcast_to(np.log(np.mean(np.exp(X), axis=1, keepdims=True)), X.shape)
    assert_allclose(backend("soft_sort", X, regularization="kl", descending=True,
                            regularization_strength=big), lme, atol=1e-6)
    assert_allclose(backend("soft_topk_mask", X, 3, p=2.0, regularization_strength=big),
                    np.full(X.shape, 3 / N), atol=1e-6)
    assert_allclose(backend("soft_topk_magnitude", X, 3, p=2.0, regularization_strength=1e7), X,
                    atol=1e-5)


@pytest.mark.parametrize("reg", ["l2", "kl", "pnorm"])
def test_soft_ranks_sum_to_n_n_plus_1_over_2_and_soft_sorts_are_monotone(backend, reg):
    for eps in (0.01, 0.5, 100.0):
        r = backend("soft_rank", X, regularization=reg, regularization_strength=eps)
        assert_allclose(r.sum(axis=1), N * (N + 1) / 2, rtol=1e-12)
        assert np.all((r >= 1 - 1e-9) & (r <= N + 1e-9))
        s = backend("soft_sort", X, regularization=reg, regularization_strength=eps)
        assert np.all(np.diff(s, axis=1) >= -1e-12)
        sd = backend("soft_sort", X, regularization=reg, regularization_strength=eps,
                     descending=True)
        assert np.all(np.diff(sd, axis=1) <= 1e-12)
        if reg == "l2":  # the output lies in the permutahedron of x
            assert_allclose(s.sum(axis=1), X.sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("p", [2.0, 4 / 3, 1.5, 3.0])
def test_topk_masks_sum_to_k_lie_in_the_unit_box_and_are_sparse(backend, p):
    for k, lam in ((1, 0.05), (4, 0.3), (4, 5.0)):
        m = backend("soft_topk_mask", X, k, regularization_strength=lam, p=p)
        assert_allclose(m.sum(axis=1), k, rtol=1e-10)
        assert np.all((m >= -1e-12) & (m <= 1 + 1e-12))
        # The smallest entry of every row lies far below the threshold: exactly zero.
        if lam <= 0.5:
            assert np.all(m[np.arange(len(X)), np.argmin(X, axis=1)] == 0.0)


def test_topk_magnitude_keeps_signs_and_zeroes_the_small_entries(backend):
    y = backend("soft_topk_magnitude", X, 3, regularization_strength=0.1)
    assert np.all(y * X >= 0)
    assert np.all(np.count_nonzero(y, axis=1) < N)
    assert np.all(y[np.arange(len(X)), np.argmin(np.abs(X), axis=1)] == 0.0)


def test_l2_soft_rank_and_sort_are_exact_exactly_up_to_their_gaps(backend):
    x = np.array([0.0, 1.0, 3.0, 3.5, 7.0])  # smallest gap 0.5, largest 3.5
    assert_array_equal(backend("soft_rank", x, regularization_strength=0.5), snp.hard_rank(x))
    assert not np.array_equal(backend("soft_rank", x, regularization_strength=0.51),
                              snp.hard_rank(x))
    # soft_sort's strength multiplies rho: exact up to 1 / (the largest gap).
    assert_allclose(backend("soft_sort", x, regularization_strength=1 / 3.5), snp.hard_sort(x),
                    atol=1e-12)
    assert not np.allclose(backend("soft_sort", x, regularization_strength=1 / 3.4),
                           snp.hard_sort(x))


@pytest.mark.parametrize("reg", ["l2", "kl", "pnorm"])
def test_ties_get_equal_soft_ranks(backend, reg):
    x = np.array([1.0, 3.0, 3.0, -2.0, 3.0])
    r = backend("soft_rank", x, regularization=reg, regularization_strength=1e-3)
    assert_allclose(r, [2, 4, 4, 1, 4], atol=1e-6)


@pytest.mark.parametrize("op", ["soft_topk_mask", "soft_topk_magnitude"])
def test_dykstra_converges_to_the_pav_solution(backend, op):
    kw = dict(regularization_strength=0.7, p=2.0)
    exact = backend(op, X, 4, **kw)
    assert_allclose(backend(op, X, 4, solver="dykstra", max_iter=20000, tol=1e-13, **kw), exact,
                    atol=1e-8)
    rough = backend(op, X, 4, solver="dykstra", max_iter=1, tol=0.0, **kw)
    assert np.max(np.abs(rough - exact)) > 1e-6


def test_topk_with_k_zero_and_k_n(backend):
    for p in (2.0, 4 / 3):
        assert_array_equal(backend("soft_topk_mask", X, 0, p=p), np.zeros_like(X))
        assert_allclose(backend("soft_topk_mask", X, N, p=p), np.ones_like(X), atol=1e-12)
        assert_array_equal(backend("soft_topk_magnitude", X, 0, p=p), np.zeros_like(X))
        assert_allclose(backend("soft_topk_magnitude", X, N, p=p),
                        snp.soft_topk_magnitude(X, N, p=p), rtol=1e-12, atol=1e-12)


def test_kl_soft_sort_is_not_the_mirror_image_of_descending(backend):
    asc = backend("soft_sort", X, regularization="kl")
    desc = backend("soft_sort", X, regularization="kl", descending=True)
    assert not np.allclose(asc, desc[:, ::-1])


# --------------------------------------------------------------------------------------------
# Edges.


@pytest.mark.parametrize("op,args,kw", FEW)
def test_a_nan_row_gives_nan_in_that_row_only(backend, op, args, kw):
    rng = np.random.default_rng(41)
    x = rng.normal(size=(3, 6))
    x[1, 2] = np.nan
    u = rng.normal(size=x.shape)
    y, g = backend.value_and_vjp(op, x, u, *args, **kw)
    assert np.isnan(y[1]).all() and np.isnan(g[1]).all()
    y_clean, g_clean = backend.value_and_vjp(op, x[[0, 2]], u[[0, 2]], *args, **kw)
    assert_allclose(y[[0, 2]], y_clean, rtol=1e-12, atol=1e-12)
    assert_allclose(g[[0, 2]], g_clean, rtol=1e-12, atol=1e-12)
    assert np.isfinite(g[[0, 2]]).all()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # Dykstra on an inf row
@pytest.mark.parametrize("op,args,kw", FEW)
def test_inf_padding_ties_and_single_entries_equal_the_numpy_core(framework, op, args, kw):
    """-inf padding, +inf, ties, a single entry: values and gradients equal the NumPy core's."""
    x = np.array([[0.5, -np.inf, 1.5, 0.2], [1.0, 1.0, 1.0, -np.inf], [2.0, 2.0, 2.0, 2.0],
                  [0.3, np.inf, -1.0, 0.0]])
    u = np.random.default_rng(42).normal(size=x.shape)
    y, g = framework.value_and_vjp(op, x, u, *args, **kw)
    y0, g0 = NUMPY.value_and_vjp(op, x, u, *args, **kw)
    assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    assert_allclose(g, g0, rtol=1e-12, atol=1e-12)
    if not args:  # n = 1 (top-k has k = 2 here)
        one = np.array([[3.0], [-1.0]])
        assert_array_equal(framework(op, one, **kw), NUMPY(op, one, **kw))


def test_minus_inf_padding_is_ignored_by_rank_and_topk(backend):
    # Rows padded with -inf: the padding gets the lowest ranks and mask 0, the real entries
    # what they would get next to far-away entries; the gradient stays finite.
    real = np.array([0.3, 2.0, -1.0])
    padded = np.concatenate([real, [-np.inf, -np.inf]])
    far = np.concatenate([real, [-1e4, -1e4 - 1e-9]])
    for reg in ("l2", "kl", "pnorm"):
        r = backend("soft_rank", padded, regularization=reg, regularization_strength=2.0)
        assert_allclose(r[3:], [1.5, 1.5])
        assert_allclose(r[:3], backend("soft_rank", far, regularization=reg,
                                       regularization_strength=2.0)[:3])
    m, g = backend.value_and_vjp("soft_topk_mask", padded, np.ones(5), 2,
                                 regularization_strength=2.0)
    assert_array_equal(m[3:], [0.0, 0.0])
    assert_allclose(m[:3], backend("soft_topk_mask", real, 2, regularization_strength=2.0))
    assert np.all(np.isfinite(g))


def test_plus_inf_gets_the_top_rank_and_is_always_selected(backend):
    x = np.array([0.3, np.inf, -1.0])
    assert_allclose(backend("soft_rank", x, regularization_strength=10.0)[1], 3.0)
    assert backend("soft_topk_mask", x, 1, regularization_strength=10.0)[1] == 1.0
    # l2 soft sort: the pooled entries follow the infinite gap (the limit), no NaN.
    assert np.all(np.isposinf(backend("soft_sort", np.array([0.0, 1.0, np.inf]))))


@pytest.mark.parametrize("shape,axis", [((0, 5), -1), ((3, 0, 4), -1), ((2, 0), 1), ((4, 1), -1),
                                        ((1,), 0)])
def test_empty_batches_and_single_entries(backend, shape, axis):
    x = np.random.default_rng(43).normal(size=shape)
    for op in OPS:
        args = (0,) if op in ("soft_topk_mask", "soft_topk_magnitude") else ()
        y, g = backend.value_and_vjp(op, x, np.ones(shape), *args, axis=axis)
        assert y.shape == shape and g.shape == shape
        assert_allclose(y, getattr(snp, op)(x, *args, axis=axis), atol=1e-12)
    if x.size:  # n = 1: the single rank is 1, the sort is the value
        assert_array_equal(backend("soft_rank", x, axis=axis), np.ones(shape))
        assert_array_equal(backend("soft_sort", x, axis=axis), x)


@pytest.mark.parametrize("op", OPS)
def test_hard_operators_are_the_soft_limits_along_any_axis(backend, op):
    x = np.random.default_rng(44).normal(size=(4, 3, 5))
    args = (2,) if "topk" in op else ()
    for axis in (0, -1):
        y = backend(op, x, *args, axis=axis, regularization_strength=1e-9)
        assert_allclose(y, getattr(snp, HARD[op])(x, *args, axis=axis), atol=1e-6)
