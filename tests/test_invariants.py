"""Limits and invariants of DESIGN §1: hard operators in the limit, sums, monotonicity, sparsity."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from softorder.numpy import (
    hard_rank,
    hard_sort,
    hard_topk_magnitude,
    hard_topk_mask,
    soft_rank,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_mask,
)

RNG = np.random.default_rng(11)
X = RNG.normal(size=(5, 12))
REGS = ["l2", "kl", "pnorm"]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("reg", REGS)
def test_small_strength_gives_the_hard_operators(descending, reg):
    assert_allclose(soft_rank(X, regularization_strength=1e-4, regularization=reg,
                              descending=descending),
                    hard_rank(X, descending=descending), atol=1e-6)
    # kl needs a softer-looking strength to be numerically hard: its log-space form.
    assert_allclose(soft_sort(X, regularization_strength=1e-3, regularization=reg,
                              descending=descending),
                    hard_sort(X, descending=descending), atol=1e-4)


def test_small_strength_gives_the_hard_topk():
    for k in [0, 1, 5, 12]:
        for p in [2.0, 4 / 3]:
            assert_array_equal(soft_topk_mask(X, k, regularization_strength=1e-6, p=p),
                               hard_topk_mask(X, k))
            assert_allclose(soft_topk_magnitude(X, k, regularization_strength=1e-8, p=p),
                            hard_topk_magnitude(X, k), atol=1e-6)


def test_large_strength_gives_the_uninformative_limits():
    n = X.shape[1]
    big = 1e9
    assert_allclose(soft_rank(X, regularization_strength=big), (n + 1) / 2, rtol=1e-6)
    assert_allclose(soft_rank(X, regularization_strength=big, regularization="kl"), (n + 1) / 2,
                    rtol=1e-6)
    mean = X.mean(axis=1, keepdims=True)
    assert_allclose(soft_sort(X, regularization_strength=big), np.broadcast_to(mean, X.shape),
                    atol=1e-6)
    lme = np.log(np.mean(np.exp(X), axis=1, keepdims=True))
    assert_allclose(soft_sort(X, regularization_strength=big, regularization="kl",
                              descending=True), np.broadcast_to(lme, X.shape), atol=1e-6)
    assert_allclose(soft_topk_mask(X, 3, regularization_strength=big, p=2.0), 3 / n, atol=1e-6)
    assert_allclose(soft_topk_magnitude(X, 3, regularization_strength=1e7, p=2.0), X, atol=1e-5)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("eps", [0.01, 0.5, 3.0, 100.0])
def test_soft_ranks_sum_to_n_n_plus_1_over_2_and_sort_is_monotone(reg, eps):
    n = X.shape[1]
    r = soft_rank(X, regularization=reg, regularization_strength=eps)
    assert_allclose(r.sum(axis=1), n * (n + 1) / 2, rtol=1e-12)
    assert np.all((r >= 1 - 1e-9) & (r <= n + 1e-9))
    s = soft_sort(X, regularization=reg, regularization_strength=eps)
    assert np.all(np.diff(s, axis=1) >= -1e-12)
    sd = soft_sort(X, regularization=reg, regularization_strength=eps, descending=True)
    assert np.all(np.diff(sd, axis=1) <= 1e-12)
    if reg == "l2":
        assert_allclose(s.sum(axis=1), X.sum(axis=1), rtol=1e-12)


def test_l2_soft_rank_is_exact_iff_strength_below_the_smallest_gap():
    x = np.array([0.0, 1.0, 3.0, 3.5, 7.0])  # smallest gap 0.5
    assert_array_equal(soft_rank(x, regularization_strength=0.5), hard_rank(x))
    assert not np.array_equal(soft_rank(x, regularization_strength=0.51), hard_rank(x))


def test_l2_soft_sort_is_exact_iff_strength_below_one_over_the_largest_gap():
    x = np.array([0.0, 1.0, 3.0, 3.5, 7.0])  # largest gap 3.5
    assert_allclose(soft_sort(x, regularization_strength=1 / 3.5), hard_sort(x), atol=1e-12)
    assert not np.allclose(soft_sort(x, regularization_strength=1 / 3.4), hard_sort(x))


@pytest.mark.parametrize("p", [2.0, 4 / 3, 1.5, 3.0])
@pytest.mark.parametrize("lam", [0.05, 0.5, 5.0])
def test_topk_masks_sum_to_k_lie_in_the_unit_box_and_are_sparse(p, lam):
    for k in [1, 4]:
        m = soft_topk_mask(X, k, regularization_strength=lam, p=p)
        assert_allclose(m.sum(axis=1), k, rtol=1e-10)
        assert np.all((m >= -1e-12) & (m <= 1 + 1e-12))
        # The smallest entry of every row lies far below the threshold: exactly zero.
        if lam <= 0.5:
            assert np.all(m[np.arange(5), np.argmin(X, axis=1)] == 0.0)


def test_topk_magnitude_keeps_signs_and_zeroes_the_small_entries():
    y = soft_topk_magnitude(X, 3, regularization_strength=0.1)
    assert np.all(y * X >= 0)
    assert np.all(np.count_nonzero(y, axis=1) < X.shape[1])
    assert np.all(y[np.arange(5), np.argmin(np.abs(X), axis=1)] == 0.0)


@pytest.mark.parametrize("op", [soft_topk_mask, soft_topk_magnitude])
def test_dykstra_solver_converges_to_the_pav_solution(op):
    exact = op(X, 4, regularization_strength=0.7, p=2.0)
    approx = op(X, 4, regularization_strength=0.7, p=2.0, solver="dykstra", max_iter=20000,
                tol=1e-13)
    assert_allclose(approx, exact, atol=1e-8)
    rough = op(X, 4, regularization_strength=0.7, p=2.0, solver="dykstra", max_iter=1, tol=0)
    assert np.max(np.abs(rough - exact)) > 1e-6


def test_kl_sort_is_not_the_mirror_image_of_descending():
    asc = soft_sort(X, regularization="kl")
    desc = soft_sort(X, regularization="kl", descending=True)
    assert not np.allclose(asc, desc[:, ::-1])
