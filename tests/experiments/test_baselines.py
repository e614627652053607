"""The O(n^2) baselines of experiments/baselines.py against their hard limits and brute force."""

from __future__ import annotations

import baselines as B
import numpy as np
import pytest
import scipy.stats
import torch


def _rows(seed, batch=3, n=7):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.permutation(batch * n).reshape(batch, n) * 0.37 - 2.0,
                        dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1])
def test_allpairs_rank_tends_to_the_hard_rank_as_tau_goes_to_zero(seed):
    x = _rows(seed)
    hard = np.stack([scipy.stats.rankdata(r) for r in x.numpy()])
    np.testing.assert_allclose(B.allpairs_soft_rank(x, tau=1e-4).numpy(), hard, atol=1e-6)


def test_allpairs_rank_equals_the_pairwise_sum_and_tends_to_the_mean_for_large_tau():
    x = _rows(2)[0]
    brute = [1.0 + sum(1 / (1 + np.exp(-(a - b) / 0.7)) for j, b in enumerate(x.tolist()) if j != i)
             for i, a in enumerate(x.tolist())]
    np.testing.assert_allclose(B.allpairs_soft_rank(x, tau=0.7).numpy(), brute, rtol=1e-12)
    n = x.shape[-1]
    np.testing.assert_allclose(B.allpairs_soft_rank(x, tau=1e9).numpy(), (n + 1) / 2, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_sinkhorn_rank_and_sort_tend_to_the_hard_ones_as_eps_goes_to_zero(seed):
    x = _rows(seed, n=6)
    hard_rank = np.stack([scipy.stats.rankdata(r) for r in x.numpy()])
    hard_sort = np.sort(x.numpy(), axis=-1)
    errors = []
    for eps in (1e-1, 1e-2, 1e-3):
        r = B.sinkhorn_soft_rank(x, eps=eps, iterations=2000).numpy()
        s = B.sinkhorn_soft_sort(x, eps=eps, iterations=2000).numpy()
        errors.append((np.abs(r - hard_rank).max(), np.abs(s - hard_sort).max()))
    assert errors[0][0] > errors[1][0] > errors[2][0]
    assert errors[0][1] > errors[1][1] > errors[2][1]
    assert errors[2][0] < 1e-2 and errors[2][1] < 1e-2 * np.abs(hard_sort).max()


def test_sinkhorn_plan_has_uniform_marginals_and_blurs_for_large_eps():
    x = _rows(3, n=9)
    p = B.sinkhorn_plan(x, eps=0.05, iterations=500)
    np.testing.assert_allclose(p.sum(-1).numpy(), 1 / 9, atol=1e-6)
    np.testing.assert_allclose(p.sum(-2).numpy(), 1 / 9, atol=1e-6)
    r = B.sinkhorn_soft_rank(x, eps=100.0, iterations=50).numpy()
    np.testing.assert_allclose(r, 5.0, atol=0.05)  # (n + 1) / 2


def test_baseline_gradients_match_finite_differences():
    x = _rows(4, batch=1, n=5).requires_grad_(True)
    for f in (lambda z: B.allpairs_soft_rank(z, tau=0.5),
              lambda z: B.sinkhorn_soft_rank(z, eps=0.1, iterations=30),
              lambda z: B.sinkhorn_soft_sort(z, eps=0.1, iterations=30)):
        assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_baseline_memory_model_grows_as_n_squared_and_rejects_unknown_names():
    for m in ("allpairs", "sinkhorn"):
        for bw in (False, True):
            assert B.baseline_bytes(m, 2000, 3, backward=bw) == 4 * B.baseline_bytes(
                m, 1000, 3, backward=bw)
    assert B.baseline_bytes("sinkhorn", 100, 1, backward=True) > 50 * B.baseline_bytes(
        "sinkhorn", 100, 1, backward=False)
    with pytest.raises(ValueError, match="baseline"):
        B.baseline_bytes("softrank", 10, 1, backward=False)
    with pytest.raises(ValueError, match="tau"):
        B.allpairs_soft_rank(torch.zeros(3), tau=0.0)
    with pytest.raises(ValueError, match="eps"):
        B.sinkhorn_soft_rank(torch.zeros(3), eps=-1.0)
