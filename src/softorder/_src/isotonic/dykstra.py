"""Dykstra's algorithm for (weighted) l2 isotonic regression: parallel, approximate.

The chain ``v_1 >= v_2 >= ... >= v_n`` is split into two sets of disjoint pair constraints,
``(1,2),(3,4),...`` and ``(2,3),(4,5),...``. Projecting onto either set is independent
(weighted) averaging of violating pairs, so one sweep is O(n) and fully vectorized. Dykstra's
correction terms make the alternation converge to the exact projection (the PAV solution);
long blocks need many sweeps. Pairs that the last sweep averaged are the active constraints:
they give the block structure (integer ids) that the derivatives use.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class DykstraState(NamedTuple):
    solution: np.ndarray  # [m, n] float64
    block: np.ndarray  # [m, n] int32, ids of the blocks of active constraints
    n_iter: int
    residual: float  # max constraint violation max_i (v_{i+1} - v_i)_+ of the returned solution


def _project_pairs(z, weights, offset):
    """Weighted projection onto {v_a >= v_b for the pairs (a, a+1), a = offset, offset+2, ...}."""
    out = z.copy()
    n = z.shape[-1]
    npairs = (n - offset) // 2
    if npairs <= 0:
        return out, np.zeros(z.shape[:-1] + (0,), bool)
    a = slice(offset, offset + 2 * npairs, 2)
    b = slice(offset + 1, offset + 2 * npairs, 2)
    za, zb = z[..., a], z[..., b]
    wa, wb = weights[..., a], weights[..., b]
    active = za < zb
    mean = (wa * za + wb * zb) / (wa + wb)
    out[..., a] = np.where(active, mean, za)
    out[..., b] = np.where(active, mean, zb)
    return out, active


def dykstra_decreasing(y, weights, *, max_iter=1000, tol=1e-9):
    """Weighted l2 projection of each row of ``y`` onto decreasing sequences, by Dykstra.

    Stops when one full sweep changes no entry by more than ``tol`` times the row scale, or
    after ``max_iter`` sweeps.
    """
    y = np.asarray(y, np.float64)
    weights = np.asarray(weights, np.float64)
    m, n = y.shape
    # A row holding NaN is solved as zeros and set to NaN at the end: it neither stalls the
    # stopping test of the other rows nor leaks into them.
    nanrow = np.isnan(y).any(axis=1) | np.isnan(weights).any(axis=1)
    if nanrow.any():
        y = np.where(nanrow[:, None], 0.0, y)
        weights = np.where(nanrow[:, None], 1.0, weights)
    x = y.copy()
    p = np.zeros_like(x)
    q = np.zeros_like(x)
    act1 = np.zeros((m, n // 2), bool)
    act2 = np.zeros((m, max(n - 1, 0) // 2), bool)
    scale = np.maximum(np.max(np.abs(y), axis=1, initial=0.0), 1e-300)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        t, act1 = _project_pairs(x + p, weights, 0)
        p = x + p - t
        xn, act2 = _project_pairs(t + q, weights, 1)
        q = t + q - xn
        change = np.max(np.abs(xn - x), axis=1, initial=0.0)
        x = xn
        if np.all(change <= tol * scale):
            break
    link = np.zeros((m, max(n - 1, 0)), bool)
    link[:, 0::2] = act1
    link[:, 1::2] = act2
    block = np.zeros((m, n), np.int32)
    if n > 1:
        block[:, 1:] = np.cumsum(~link, axis=1, dtype=np.int32)
    viol = np.diff(x, axis=1) if n > 1 else np.zeros((m, 0))
    residual = float(np.max(np.maximum(viol, 0.0), initial=0.0))
    if nanrow.any():
        x[nanrow] = np.nan
    return DykstraState(x, block, it, residual)


def block_alpha(block, weights):
    """``weights / (sum of weights over the block)`` for integer block ids per row."""
    m, n = block.shape
    gid = (np.arange(m, dtype=np.int64)[:, None] * n + block).ravel()
    sums = np.bincount(gid, weights=weights.ravel(), minlength=m * n)
    return (weights.ravel() / sums[gid]).reshape(m, n)
