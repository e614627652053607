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


def test_sparse_topk_mask_and_magnitude_reach_the_hard_limit_at_small_strength():
    x = np.array([-5.0, -2.0, 3.0, 1.0])
    assert_allclose(soft_topk_mask(x, 2, regularization_strength=0.01, p=4 / 3), [0, 0, 1, 1],
                    atol=1e-4)
    assert_allclose(soft_topk_magnitude(x, 2, regularization_strength=0.01, p=4 / 3),
                    [-5, 0, 3, 0], atol=1e-4)


X4 = np.array([-5.0, -2.0, 3.0, 1.0])


def test_soft_topk_mask_at_a_soft_strength_matches_its_hand_derivation():
    """``P_R(x, w_2)`` on the capped simplex: ``y_i = clip(phi(x_i - tau), 0, 1)``, ``sum y = 2``.

    p = 2, lambda = 4: ``phi(z) = z / 4``. Guess 3 capped, -5 at 0: ``(1 - tau)/4 + (-2 - tau)/4
    = 1`` gives ``tau = -2.5``: y = [0, 0.125, 1, 0.875]; check: ``(3 + 2.5)/4 >= 1`` (capped),
    ``-5 + 2.5 < 0`` (zero). p = 4/3, lambda = 65^(1/3): ``phi(z) = (z_+ / lambda)^3``; with
    ``tau = -3``: ``(1 + 3)^3 / 65 + (-2 + 3)^3 / 65 = 1``, 3 capped (``6^3 >= 65``), -5 zero:
    y = [0, 1/65, 1, 64/65].
    """
    assert_allclose(soft_topk_mask(X4, 2, regularization_strength=4.0, p=2.0),
                    [0, 0.125, 1, 0.875], rtol=1e-12, atol=1e-15)
    assert_allclose(soft_topk_mask(X4, 2, regularization_strength=65 ** (1 / 3), p=4 / 3),
                    [0, 1 / 65, 1, 64 / 65], rtol=1e-12, atol=1e-15)


def test_soft_topk_magnitude_at_a_soft_strength_matches_its_hand_derivation():
    """DESIGN §1 with ``s = |x|`` sorted = [5, 3, 2, 1], ``w = [1, 1, 0, 0]``: blocks solve
    ``sum_B phi(s_i - gamma) = gamma sum_B w_i``, ``y = sign(x) (s - v + phi(s - v))``.

    p = 2, lambda = 1 (``phi(z) = z``): singletons give v = [2.5, 1.5, 2, 1] (``s/2`` where
    w = 1, ``s`` where w = 0); 1.5 < 2 pools {3, 2}: ``5 - 2 gamma = gamma``, gamma = 5/3;
    v = [2.5, 5/3, 5/3, 1] decreases, so y = 2 (s - v) = [5, 8/3, 2/3, 0], unsorted with signs:
    [-5, -2/3, 8/3, 0]. p = 4/3, lambda = 9^(1/3) (``phi(z) = z^3 / 9``): the block {3, 2}
    has ``(3 - 1)^3/9 + (2 - 1)^3/9 = 1 = gamma``; the singleton 5 has ``(5 - g)^3 = 9 g``,
    g ~ 2.2 > 1, and the singleton 1 has g = 1: decreasing. y = [5, 2 + 8/9, 1 + 1/9, 0]:
    [-5, -10/9, 26/9, 0]. (A 0.1% error in lambda moves these by ~1e-3.)
    """
    assert_allclose(soft_topk_magnitude(X4, 2, regularization_strength=1.0, p=2.0),
                    [-5, -2 / 3, 8 / 3, 0], rtol=1e-12, atol=1e-15)
    assert_allclose(soft_topk_magnitude(X4, 2, regularization_strength=9 ** (1 / 3), p=4 / 3),
                    [-5, -10 / 9, 26 / 9, 0], rtol=1e-12, atol=1e-15)
