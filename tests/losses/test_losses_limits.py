"""Each loss against an independent reference on every front end: the hard metric as the
strength goes to 0 (scipy, scikit-learn, NumPy, brute force), and the closed-form large-strength
limit of the l2 operators (soft ranks -> (n+1)/2 + (x - mean x)/eps, soft sorts -> the mean)."""

import itertools

import numpy as np
import pytest
import scipy.stats
from _calls import call
from numpy.testing import assert_allclose
from sklearn.metrics import ndcg_score, roc_auc_score

RNG = np.random.default_rng(7)
X = RNG.normal(size=(4, 7))
Y = RNG.normal(size=(4, 7))
TINY, BIG = 1e-7, 1e7
# l2 soft ranks are exactly (n+1)/2 + (x - mean x)/eps once eps exceeds every gap of a row (the
# whole row pools): a moderate strength keeps the deviations well above rounding.
POOLED = 100.0


def _pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))


@pytest.mark.parametrize("reg", ["l2", "kl"])
def test_soft_spearmanr_at_small_strength_is_scipy_spearmanr(backend, reg):
    y = Y.copy()
    y[1, :3] = 0.5  # ties in the target: average ranks, as scipy
    got = call(backend, "soft_spearmanr", X, y, regularization=reg, regularization_strength=TINY)
    want = [scipy.stats.spearmanr(a, b).statistic for a, b in zip(X, y)]
    assert_allclose(got, want, rtol=1e-6)
    # along another axis: the columns of X.T
    got0 = call(backend, "soft_spearmanr", X.T, y.T, axis=0, regularization=reg,
                regularization_strength=TINY)
    assert_allclose(got0, want, rtol=1e-6)


def test_soft_spearmanr_at_large_strength_is_pearson_of_the_inputs(backend):
    got = call(backend, "soft_spearmanr", X, Y, regularization_strength=POOLED)
    assert_allclose(got, [_pearson(a, b) for a, b in zip(X, Y)], rtol=1e-9)
    ranks = np.argsort(np.argsort(Y, axis=1), axis=1) + 1.0
    got = call(backend, "soft_spearmanr", X, ranks, y_is_ranks=True,
               regularization_strength=POOLED)
    assert_allclose(got, [_pearson(a, b) for a, b in zip(X, ranks)], rtol=1e-9)


def test_y_is_ranks_uses_y_as_given(backend):
    y = Y * 3.0 + 1.0  # not ranks: correlated as given, not ranked again
    got = call(backend, "soft_spearmanr", X, y, y_is_ranks=True, regularization_strength=TINY)
    hard = np.argsort(np.argsort(X, axis=1), axis=1) + 1.0
    assert_allclose(got, [_pearson(a, b) for a, b in zip(hard, y)], rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_soft_spearman_loss_is_one_minus_soft_spearmanr_reduced(backend, reduction):
    r = call(backend, "soft_spearmanr", X, Y, regularization_strength=0.3)
    got = call(backend, "soft_spearman_loss", X, Y, regularization_strength=0.3,
               reduction=reduction)
    want = {"none": 1 - r, "sum": np.sum(1 - r), "mean": np.mean(1 - r)}[reduction]
    assert np.shape(got) == np.shape(want)
    assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("reg", ["l2", "kl"])
def test_topk_loss_at_small_strength_is_the_hinge_on_the_hard_rank(backend, k, reg):
    labels = RNG.integers(0, X.shape[1], size=X.shape[0])
    labels[0] = np.argmax(X[0])  # one row with the label on top
    got = call(backend, "topk_classification_loss", X, labels, k, regularization=reg,
               regularization_strength=TINY, reduction="none")
    above = np.sum(X > X[np.arange(len(X)), labels][:, None], axis=1)  # classes above label
    assert_allclose(got, np.maximum(above + 1 - k, 0), atol=1e-6)
    # the top-k 0/1 error structure: zero exactly on the rows whose label is in the top k
    in_topk = np.argsort(-X, axis=1)[:, :k] == labels[:, None]
    assert np.array_equal(got < 0.5, in_topk.any(axis=1))
    if k == 1:
        assert np.array_equal(got == 0, np.argmax(X, axis=1) == labels)


def test_topk_loss_at_large_strength_is_the_mean_rank_hinge(backend):
    n = X.shape[1]
    labels = np.arange(X.shape[0]) % n
    for k in (1, 3, 6):
        got = call(backend, "topk_classification_loss", X, labels, k,
                   regularization_strength=BIG, reduction="none")
        assert_allclose(got, np.full(len(X), max((n + 1) / 2 - k, 0)), atol=1e-5)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_soft_quantile_at_small_strength_is_numpy_quantile(backend, q):
    got = call(backend, "soft_quantile", X, q, regularization_strength=TINY)
    assert_allclose(got, np.quantile(X, q, axis=1), rtol=1e-9, atol=1e-12)
    got0 = call(backend, "soft_quantile", X.T, q, axis=0, regularization_strength=TINY)
    assert_allclose(got0, np.quantile(X, q, axis=1), rtol=1e-9, atol=1e-12)


def test_soft_median_at_small_strength_is_numpy_median_and_all_tend_to_the_mean(backend):
    for x in (X, X[:, :6]):  # odd and even n
        assert_allclose(call(backend, "soft_median", x, regularization_strength=TINY),
                        np.median(x, axis=1), rtol=1e-9)
        mean = x.mean(axis=1)
        assert_allclose(call(backend, "soft_median", x, regularization_strength=BIG), mean,
                        atol=1e-6)
        assert_allclose(call(backend, "soft_quantile", x, 0.9, regularization_strength=BIG),
                        mean, atol=1e-6)
        assert_allclose(call(backend, "soft_trimmed_mean", x, 2, regularization_strength=BIG),
                        mean, atol=1e-6)


@pytest.mark.parametrize("trim", [0, 1, 3])
def test_soft_trimmed_mean_at_small_strength_is_the_sorted_trimmed_mean(backend, trim):
    got = call(backend, "soft_trimmed_mean", X, trim, regularization_strength=TINY)
    n = X.shape[1]
    assert_allclose(got, np.sort(X, axis=1)[:, trim:n - trim].mean(axis=1), rtol=1e-9)
    if trim == 1:  # scipy's trim_mean with proportiontocut = trim / n
        assert_allclose(got, scipy.stats.trim_mean(X, 1.5 / n, axis=1), rtol=1e-9)


@pytest.mark.parametrize("trim", [0, 1, 3, 6])
def test_soft_lts_at_small_strength_is_least_trimmed_squares_by_enumeration(backend, trim):
    got = call(backend, "soft_least_trimmed_squares", X, trim, regularization_strength=TINY,
               reduction="none")
    n = X.shape[1]
    want = [min(np.mean(row[list(s)] ** 2) for s in itertools.combinations(range(n), n - trim))
            for row in X]
    assert_allclose(got, want, rtol=1e-9)


def test_soft_lts_at_large_strength_is_least_squares(backend):
    got = call(backend, "soft_least_trimmed_squares", X, 3, regularization_strength=BIG,
               reduction="none")
    assert_allclose(got, np.mean(X**2, axis=1), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_soft_lts_reductions(backend, reduction):
    per_row = call(backend, "soft_least_trimmed_squares", X, 2, regularization_strength=0.3,
                   reduction="none")
    got = call(backend, "soft_least_trimmed_squares", X, 2, regularization_strength=0.3,
               reduction=reduction)
    want = {"none": per_row, "sum": per_row.sum(), "mean": per_row.mean()}[reduction]
    assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("k", [None, 1, 3, 7, 20])
def test_soft_ndcg_at_small_strength_is_sklearn_ndcg_score(backend, k):
    rel = np.round(np.abs(Y) * 2)  # graded, with ties and zeros
    got = call(backend, "soft_ndcg", X, rel, k, regularization_strength=TINY)
    want = [ndcg_score(r[None], s[None], k=k) for r, s in zip(rel, X)]
    assert_allclose(got, want, rtol=1e-9)


def test_soft_ndcg_at_large_strength_discounts_every_entry_by_the_mean_rank(backend):
    rel = np.abs(Y)
    n = X.shape[1]
    got = call(backend, "soft_ndcg", X, rel, regularization_strength=BIG)
    idcg = np.sum(-np.sort(-rel, axis=1) / np.log2(np.arange(2, n + 2)), axis=1)
    assert_allclose(got, rel.sum(axis=1) / np.log2((n + 3) / 2) / idcg, rtol=1e-6)
    # all-irrelevant rows score 0, as scikit-learn's
    zero = call(backend, "soft_ndcg", X, np.zeros_like(X), 3, regularization_strength=0.5)
    assert np.array_equal(zero, np.zeros(len(X)))


def test_soft_auc_at_small_strength_is_sklearn_roc_auc_score(backend):
    labels = (Y > 0).astype(np.int64)
    labels[:, 0], labels[:, 1] = 1, 0  # both classes in every row
    scores = X.copy()
    scores[2, :4] = 0.25  # ties score 1/2 per pair, as average ranks
    got = call(backend, "soft_auc", scores, labels, regularization_strength=TINY)
    assert_allclose(got, [roc_auc_score(lab, s) for lab, s in zip(labels, scores)], rtol=1e-9)
    got_bool = call(backend, "soft_auc", scores, labels.astype(bool), regularization_strength=TINY)
    assert_allclose(got_bool, got, rtol=1e-12)


def test_soft_auc_at_large_strength_is_one_half_plus_the_mean_gap(backend):
    labels = np.zeros(X.shape, np.int64)
    labels[:, ::2] = 1
    got = call(backend, "soft_auc", X, labels, regularization_strength=POOLED)
    p = labels.sum(axis=1)
    q = X.shape[1] - p
    dev = np.sum(labels * (X - X.mean(axis=1, keepdims=True)), axis=1)
    assert_allclose(got - 0.5, dev / (POOLED * p * q), rtol=1e-9)
    one_class = call(backend, "soft_auc", X, np.ones(X.shape, np.int64))
    assert np.all(np.isnan(one_class))
