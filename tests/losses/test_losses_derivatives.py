"""Gradients of every loss through the front ends' autodiff against central finite differences
of the NumPy values (float64, soft strengths, points without ties), with random output weights
so that every row's gradient counts."""

import numpy as np
import pytest
from _calls import finite_difference, grad
from adapters import ADAPTERS
from numpy.testing import assert_allclose

NUMPY = ADAPTERS["numpy"]
RNG = np.random.default_rng(5)
X = RNG.normal(size=(3, 6))
Y = RNG.normal(size=(3, 6))
LABELS = np.array([0, 4, 2])
BINARY = np.array([[1, 0, 1, 0, 0, 1]] * 3)

CASES = [
    ("soft_spearmanr", (Y,), {}, True),
    ("soft_spearmanr", (Y,), {"regularization": "kl"}, True),
    ("soft_spearman_loss", (Y,), {"reduction": "none"}, True),
    ("topk_classification_loss", (LABELS, 2), {"reduction": "none"}, True),
    ("topk_classification_loss", (LABELS, 1), {"regularization": "kl", "reduction": "sum",
                                                "regularization_strength": 4.0}, False),
    ("soft_quantile", (0.3,), {}, True),
    ("soft_median", (), {"regularization": "kl"}, True),
    ("soft_trimmed_mean", (1,), {}, True),
    ("soft_least_trimmed_squares", (2,), {"reduction": "none"}, True),
    ("soft_least_trimmed_squares", (2,), {"reduction": "mean"}, False),
    ("soft_ndcg", (np.abs(Y), 3), {}, True),
    ("soft_auc", (BINARY,), {}, True),
]


@pytest.mark.parametrize("name,args,kw,per_row", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_gradients_match_finite_differences(framework, name, args, kw, per_row):
    w = RNG.uniform(0.5, 1.5, size=len(X)) if per_row else None
    kw = dict(kw)
    strength = kw.pop("regularization_strength", 0.8 if name.startswith(
        ("soft_quantile", "soft_median", "soft_trimmed", "soft_least")) else 0.6)
    g = grad(framework, name, X, *args, weights=w, regularization_strength=strength, **kw)
    fd = finite_difference(NUMPY, name, X, *args, weights=w, regularization_strength=strength,
                           **kw)
    assert np.any(np.abs(fd) > 1e-3)
    assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_spearman_gradient_along_another_axis(framework):
    g = grad(framework, "soft_spearmanr", X.T, Y.T, axis=0, regularization_strength=0.6)
    fd = finite_difference(NUMPY, "soft_spearmanr", X.T, Y.T, axis=0, regularization_strength=0.6)
    assert_allclose(g, fd, rtol=1e-5, atol=1e-7)
