"""Values published in the papers and the issue tracker."""

import numpy as np
from numpy.testing import assert_allclose

from softorder.numpy import soft_rank, soft_sort, soft_topk_magnitude, soft_topk_mask


def test_soft_rank_ascending_matches_published_values():
    x = np.array([5.0, 1.0, 2.0])
    assert_allclose(soft_rank(x, regularization_strength=2.0), [3.0, 1.25, 1.75], atol=1e-12)
    assert_allclose(soft_rank(x, regularization_strength=1.0), [3.0, 1.0, 2.0], atol=1e-12)


def test_soft_sort_ascending_matches_published_values():
    x = np.array([5.0, 1.0, 2.0])
    assert_allclose(soft_sort(x, regularization_strength=1.0), [5 / 3, 8 / 3, 11 / 3], atol=1e-12)


def test_sparse_topk_mask_and_magnitude_match_published_values():
    x = np.array([-5.0, -2.0, 3.0, 1.0])
    assert_allclose(soft_topk_mask(x, 2, regularization_strength=0.01, p=4 / 3), [0, 0, 1, 1],
                    atol=1e-4)
    assert_allclose(soft_topk_magnitude(x, 2, regularization_strength=0.01, p=4 / 3),
                    [-5, 0, 3, 0], atol=1e-4)
