"""Dykstra's algorithm for (weighted) l2 isotonic regression, written once over a `Backend`.

The chain ``v_1 >= v_2 >= ... >= v_n`` is split into two sets of disjoint pair constraints,
``(1,2),(3,4),...`` and ``(2,3),(4,5),...``. Projecting onto either set is independent
(weighted) averaging of the violating pairs, so one sweep is O(n) and fully parallel: here each
pair is a pair of strided slices, so the same code runs on NumPy, torch and JAX
arrays (under ``jit`` too, the loop being the backend's ``while_loop``). Dykstra's correction
terms make the alternation converge to the exact projection (the PAV solution); long blocks
need many sweeps. Pairs that the last sweep averaged are the active constraints: they give the
block structure (integer ids) that the derivatives use.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

from .backend import NUMPY

Array = Any


class DykstraNotConvergedWarning(RuntimeWarning):
    """Dykstra stopped at ``max_iter`` sweeps before meeting its tolerance (eager arrays)."""


class DykstraState(NamedTuple):
    solution: Array  # [m, n]
    block: Array  # [m, n] int32, ids of the blocks of active constraints
    n_iter: Any  # sweeps run (an int, or a 0-d array under jit)
    residual: Any  # max constraint violation max_i (v_{i+1} - v_i)_+ of the solution


def _pairs(weights, n, offset):
    """The pairs (offset, offset+1), (offset+2, offset+3), ... as slices, and each entry's
    share of its pair's weighted mean (constant over the sweeps)."""
    stop = offset + 2 * ((n - offset) // 2)
    a, b = slice(offset, stop, 2), slice(offset + 1, stop, 2)
    wa, wb = weights[..., a], weights[..., b]
    return offset, stop, a, b, wa / (wa + wb), wb / (wa + wb)


def _project_pairs(z, pairs, xp):
    """Weighted projection onto {v_a >= v_b} for the disjoint pairs ``(a, a+1)``.

    Returns the projection and the pairs it averaged (the active constraints), ``[m, pairs]``.
    """
    offset, stop, a, b, share_a, share_b = pairs
    za, zb = z[..., a], z[..., b]
    active = za < zb  # strict, as isotonic.pav._violates: equal values do not pool
    mean = share_a * za + share_b * zb
    mid = xp.interleave(xp.where(active, mean, za), xp.where(active, mean, zb))
    return xp.concat([z[..., :offset], mid, z[..., stop:]]), active


def dykstra_decreasing(y, weights, *, max_iter=1000, tol=1e-9, xp=NUMPY) -> DykstraState:
    """Weighted l2 projection of each row of ``y`` onto decreasing sequences, by Dykstra.

    Stops when one full sweep changes no entry by more than ``tol`` times the row's largest
    ``|y|``, in every row, or after ``max_iter`` sweeps. A row holding NaN is solved as zeros
    and set to NaN at the end: it neither stalls the stopping test of the other rows nor leaks
    into them.

    Convergence: when ``max_iter`` sweeps ran without meeting ``tol``, eager backends (NumPy,
    torch: the loop runs in Python) warn with `DykstraNotConvergedWarning` (a
    ``RuntimeWarning``), naming the sweeps, the tolerance and the last change; the result
    is returned anyway (an approximate solution: raise ``max_iter`` or ``tol``, or use PAV).
    Under JAX tracing there is no warning (the loop is ``lax.while_loop``): there, check
    ``n_iter < max_iter`` in the returned state (``n_iter == max_iter``: possibly not
    converged).
    """
    m, n = y.shape
    weights = weights + 0.0 * y
    nanrow = xp.row_any(xp.isnan(y) | xp.isnan(weights))
    y = xp.where(nanrow, 0.0, y)
    weights = xp.where(nanrow, 1.0, weights)
    pairs = (_pairs(weights, n, 0), _pairs(weights, n, 1))
    scale = xp.maximum(xp.row_max(xp.abs(y)), 1e-300)
    no0 = y[..., 0:(n // 2) * 2:2] < y[..., 0:(n // 2) * 2:2]  # all False, one per pair
    no1 = y[..., 1:1 + ((n - 1) // 2) * 2:2] < y[..., 1:1 + ((n - 1) // 2) * 2:2]

    def body(state):
        it, x, p, q, _, _, _ = state
        t, j1 = _project_pairs(x + p, pairs[0], xp)
        p = x + p - t
        xn, j2 = _project_pairs(t + q, pairs[1], xp)
        q = t + q - xn
        change = xp.row_max(xp.abs(xn - x))
        done = xp.all(change <= tol * scale)
        if isinstance(done, bool) and it + 1 >= max_iter and not done:  # eager: Python loop
            warnings.warn(
                f"Dykstra did not converge: {max_iter} sweeps (max_iter) left a relative "
                f"change of {xp.max(change / scale):.3g} in the last sweep, above "
                f"tol={tol:g}; the result is approximate (raise max_iter or tol, or use "
                "solver='pav').",
                DykstraNotConvergedWarning, stacklevel=4)
        return it + 1, xn, p, q, j1, j2, done

    def cond(state):
        return (state[0] < max_iter) & ~state[6]

    zero = 0.0 * y
    init = (0, y, zero, zero, no0, no1, m * n == 0)
    it, x, _, _, j1, j2, _ = xp.while_loop(cond, body, init)
    # A new block starts wherever a position was not averaged with its predecessor: the
    # link (i, i+1) is active pair of the first set for even i, of the second for odd i.
    link = xp.interleave(j1[..., : (n - 1) // 2], j2) if n > 1 else j1
    if n > 1 and (n - 1) % 2:
        link = xp.concat([link, j1[..., -1:]])
    start = xp.concat([xp.where(y[..., :1] == y[..., :1], 1, 1), xp.where(link, 0, 1)])
    block = xp.cumsum_int32(start) - 1
    residual = xp.max(xp.maximum(x[..., 1:] - x[..., :-1], 0.0)) if m * (n - 1) > 0 else 0.0
    x = xp.where(nanrow, x + float("nan"), x)
    return DykstraState(x, block, it, residual)


def varies_on(w, run, xp=NUMPY):
    """``[m, 1]``: whether ``w`` takes two different values on the positions ``run``."""
    hi = xp.row_max(xp.where(run, w, -float("inf")))
    lo = -xp.row_max(xp.where(run, -w, -float("inf")))
    return hi > lo


def block_alpha(block, weights, xp=NUMPY):
    """``weights / (sum of weights over the block)`` for integer block ids per row."""
    return weights / xp.segment_sum(weights, block)


def dykstra_with_infinite_groups(s, target, weights, pool_pos, pool_neg, *, max_iter=1000,
                                 tol=1e-9, xp=NUMPY):
    """`dykstra_decreasing` of ``target`` for rows whose sort key ``s`` (descending) may hold
    runs of ``+inf`` (at the start) and ``-inf`` (at the end), as docs/conventions.md reads
    them: each run is the limit of ties at ``+-M``, ``M -> infinity``, so it never pools with
    the finite entries. ``pool_pos`` / ``pool_neg`` (``[m, 1]`` booleans, from the caller, who
    knows the run's targets at ``M``) say whether the ``+inf`` / ``-inf`` run is one block;
    otherwise its entries are singletons (equal values do not pool, as in `isotonic.pav`).

    The runs' targets are replaced by values just beyond the largest (``+inf`` run) or
    smallest (``-inf`` run) finite target of the row: their optimal value then satisfies the
    order constraint to the finite rest, which is solved as without them. The caller gives the
    runs their values (the limit, e.g. the run's mean weight for a top-k mask). Returns the
    `DykstraState` with the block ids of the limit.
    """
    pinf = s == float("inf")
    ninf = s == -float("inf")
    infs = pinf | ninf
    zero = 0.0 * xp.where(infs, 0.0, target)
    tmax = xp.row_max(xp.where(infs, zero - float("inf"), target))
    tmin = -xp.row_max(xp.where(infs, zero - float("inf"), -target))
    tmax = xp.where(xp.isnan(tmax) | (tmax > -float("inf")), tmax, 0.0)  # no finite entry: 0
    tmin = xp.where(xp.isnan(tmin) | (tmin < float("inf")), tmin, 0.0)
    # Strictly beyond the finite targets (a tie would pool, moving the rest by a rounding).
    tpos = tmax + xp.maximum(xp.abs(tmax) * 2.0**-30, 1.0)
    tneg = tmin - xp.maximum(xp.abs(tmin) * 2.0**-30, 1.0)
    tpos = xp.where(xp.abs(tpos) < float("inf"), tpos, tmax)
    tneg = xp.where(xp.abs(tneg) < float("inf"), tneg, tmin)
    t = xp.where(pinf, zero + tpos, xp.where(ninf, zero + tneg, target))
    st = dykstra_decreasing(t, weights, max_iter=max_iter, tol=tol, xp=xp)
    n = s.shape[-1]
    if n <= 1:
        return st
    cls = xp.where(pinf, 0, xp.where(ninf, 2, 1))
    same = cls[..., 1:] == cls[..., :-1]
    run = ((cls[..., 1:] == 0) & pool_pos) | ((cls[..., 1:] == 2) & pool_neg)
    inside = same & run  # within a pooled run of one infinity: no new block
    new = (st.block[..., 1:] != st.block[..., :-1]) | ~same | ((cls[..., 1:] != 1) & ~run)
    start = xp.concat([cls[..., :1] == cls[..., :1], new & ~inside])
    return st._replace(block=xp.cumsum_int32(start) - 1)
