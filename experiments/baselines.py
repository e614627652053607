"""The O(n^2) soft-rank and soft-sort relaxations the sorting paper compares against.

These are *baselines for the experiments only*: each builds an ``n x n`` matrix per row, so time
and memory grow as ``batch * n^2``. The package itself never forms such a matrix (its operators
are O(n log n) projections onto the permutahedron, Blondel et al. 2020).

* `allpairs_soft_rank`: the "All-pairs" relaxation, every comparison ``x_i > x_j`` replaced by a
  sigmoid (e.g. Qin et al. 2010, Taylor et al. 2008).
* `sinkhorn_soft_rank` / `sinkhorn_soft_sort`: the "OT" relaxation of Cuturi, Teboul and Vert
  (2019, "Differentiable ranks and sorting using optimal transport"): an entropic transport plan
  between the entries of ``x`` and ``n`` sorted targets, computed by Sinkhorn iterations in the
  log domain and differentiated by unrolling them (autograd through the loop).

Conventions as the package: the last axis holds the row, ranks are 1-based and ascending (rank 1
= smallest), sorts ascending. Written from the formulas below, in PyTorch.
"""

from __future__ import annotations

import math

import torch

__all__ = ["allpairs_soft_rank", "sinkhorn_plan", "sinkhorn_soft_rank", "sinkhorn_soft_sort",
           "SINKHORN_DEFAULT_EPS", "SINKHORN_DEFAULT_ITERATIONS", "baseline_bytes"]

#: Cuturi et al.'s defaults: an entropic regularization of 1e-2 on a cost scaled to [0, 1] and a
#: fixed number of Sinkhorn iterations (unrolled for the gradient).
SINKHORN_DEFAULT_EPS = 1e-2
SINKHORN_DEFAULT_ITERATIONS = 100


def allpairs_soft_rank(x: torch.Tensor, *, tau: float = 1.0) -> torch.Tensor:
    """All-pairs sigmoid ranks along the last axis, O(n^2) time and memory per row.

    ``r_i = 1 + sum_{j != i} sigmoid((x_i - x_j) / tau)``, computed as
    ``1/2 + sum_j sigmoid((x_i - x_j) / tau)`` (the ``j = i`` term is ``sigmoid(0) = 1/2``).
    As ``tau -> 0`` each sigmoid becomes the indicator of ``x_j < x_i`` (1/2 at a tie), so
    ``r`` becomes the hard 1-based ascending rank; as ``tau -> inf`` every rank tends to the
    mean ``(n + 1) / 2``.

    Example:
        >>> r = allpairs_soft_rank(torch.tensor([[3.0, 1.0, 2.0]]), tau=1e-3)
        >>> [round(v, 3) for v in r[0].tolist()]
        [3.0, 1.0, 2.0]
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    d = (x.unsqueeze(-1) - x.unsqueeze(-2)) / tau
    return 0.5 + torch.sigmoid(d).sum(-1)


def _squash(x: torch.Tensor) -> torch.Tensor:
    """Cuturi et al.'s input scaling: a logistic map of the standardized row into (0, 1)."""
    mu = x.mean(-1, keepdim=True)
    sd = x.std(-1, keepdim=True, unbiased=False)
    return torch.sigmoid((x - mu) / torch.where(sd > 0, sd, torch.ones_like(sd)))


def sinkhorn_plan(x: torch.Tensor, *, eps: float = SINKHORN_DEFAULT_EPS,
                  iterations: int = SINKHORN_DEFAULT_ITERATIONS) -> torch.Tensor:
    """The entropic transport plan ``P`` (shape ``(..., n, n)``) between squashed ``x`` and
    the ``n`` targets ``t_j = (j - 1) / (n - 1)``, uniform weights ``1/n`` on both sides.

    ``P = argmin_{P 1 = 1/n, P^T 1 = 1/n} <P, C> - eps H(P)`` with ``C_ij = (z_i - t_j)^2`` and
    ``z = sigmoid(standardize(x))``, by ``iterations`` Sinkhorn steps on the dual potentials in
    the log domain (stable for small ``eps``):
    ``f_i = eps log(1/n) - eps logsumexp_j((g_j - C_ij) / eps)``, then the same for ``g``, and
    ``P_ij = exp((f_i + g_j - C_ij) / eps)``. In one dimension the optimal unregularized plan
    for a convex cost is the monotone (sorting) coupling, so ``P -> Pi / n`` with ``Pi`` the
    sorting permutation as ``eps -> 0`` (and enough iterations).
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    n = x.shape[-1]
    z = _squash(x)
    t = torch.linspace(0.0, 1.0, n, dtype=x.dtype, device=x.device) if n > 1 else \
        torch.full((1,), 0.5, dtype=x.dtype, device=x.device)
    cost = (z.unsqueeze(-1) - t) ** 2
    log_w = -math.log(n)
    f = torch.zeros_like(z)
    g = torch.zeros_like(z)
    for _ in range(iterations):
        f = eps * log_w - eps * torch.logsumexp((g.unsqueeze(-2) - cost) / eps, dim=-1)
        g = eps * log_w - eps * torch.logsumexp((f.unsqueeze(-1) - cost) / eps, dim=-2)
    return torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / eps)


def sinkhorn_soft_rank(x: torch.Tensor, *, eps: float = SINKHORN_DEFAULT_EPS,
                       iterations: int = SINKHORN_DEFAULT_ITERATIONS) -> torch.Tensor:
    """OT soft ranks (Cuturi et al. 2019): ``r_i = n * sum_j P_ij * j`` along the last axis.

    The expected target index of entry ``i`` under the plan's row ``i`` (rescaled by the row
    mass ``1/n``). With ``P -> Pi / n`` (``eps -> 0``) this is the hard 1-based ascending rank.

    Example:
        >>> r = sinkhorn_soft_rank(torch.tensor([[3.0, 1.0, 2.0]]), eps=1e-3, iterations=500)
        >>> [round(v, 2) for v in r[0].tolist()]
        [3.0, 1.0, 2.0]
    """
    n = x.shape[-1]
    p = sinkhorn_plan(x, eps=eps, iterations=iterations)
    idx = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    return n * (p @ idx)


def sinkhorn_soft_sort(x: torch.Tensor, *, eps: float = SINKHORN_DEFAULT_EPS,
                       iterations: int = SINKHORN_DEFAULT_ITERATIONS) -> torch.Tensor:
    """OT soft sort (Cuturi et al. 2019): ``s_j = n * sum_i P_ij * x_i`` along the last axis.

    The barycentre of the entries transported to target ``j``; the hard ascending sort as
    ``eps -> 0``.

    Example:
        >>> s = sinkhorn_soft_sort(torch.tensor([[3.0, 1.0, 2.0]]), eps=1e-3, iterations=500)
        >>> [round(v, 2) for v in s[0].tolist()]
        [1.0, 2.0, 3.0]
    """
    n = x.shape[-1]
    p = sinkhorn_plan(x, eps=eps, iterations=iterations)
    return n * (p.transpose(-1, -2) @ x.unsqueeze(-1)).squeeze(-1)


def baseline_bytes(method: str, n: int, batch: int, *, backward: bool, itemsize: int = 4,
                   iterations: int = SINKHORN_DEFAULT_ITERATIONS) -> int:
    """A prediction of the peak extra memory of a baseline call, ``c * batch * n^2 * itemsize``.

    ``c`` counts the ``n x n`` buffers alive at once: All-pairs keeps the difference and the
    sigmoid (2; one more for the backward). Sinkhorn keeps the cost, the log-kernel temporaries
    and the plan (5) without gradient; unrolled for the gradient, autograd saves about four
    ``n x n`` buffers per iteration (the scaled kernel and the logsumexp input of each of the
    two potential updates). Checked against measured peaks in experiments/runtime_memory.py.
    """
    if method == "allpairs":
        c = 3 if backward else 2
    elif method.startswith("sinkhorn"):
        c = 4 * iterations + 3 if backward else 5
    else:
        raise ValueError(f"unknown baseline {method!r}")
    return int(c) * batch * n * n * itemsize
