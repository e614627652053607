r"""Partial-sort top-k: solve the top-k problems on the ``m`` largest entries only.

The sparse top-k operators (mask and magnitude, DESIGN §1) sort the row (``x`` for the mask,
``|x|`` for the magnitude) and run PAV on the sorted row against ``w_k = (1, ..., 1, 0, ...)``.
When ``k << n`` almost every entry ends up outside the support with output exactly 0, so the
full ``O(n log n)`` sort is wasted. Here, per row:

1. select the ``m > k`` largest keys with an ``O(n)`` selection (``np.argpartition``,
   ``torch.topk``, ``jax.lax.top_k``: `Backend.top_perm`);
2. run the operator's own full-sort row function on those ``m`` entries (a window);
3. certify the window exactly, with integers: the window's solution is the full row's iff
   **the block of sorted position** ``k - 1`` **(the last one carrying a weight 1) does not
   reach the last window position** ``m - 1``;
4. enlarge the window (only for the rows that fail) and go back to 1; a window past
   ``n / FULL_FRACTION`` runs the full sort instead.

**Why the check is exact.** Bottom-up PAV scans the sorted row left to right and only ever
merges the new entry into the blocks at the top of its stack, so on the first ``m`` sorted
positions it builds exactly the stack it builds on the whole row, until a later entry merges
into it. Every entry ``i`` with ``w_i = 0`` alone is a block of value ``gamma_i = s_i`` (mask:
``phi(s_i - gamma) = 0``; magnitude: ``phi_lam(s_i - gamma) = gamma * 0``), i.e. ``u_i = 0``
and output 0. Adjacent blocks of a PAV solution have strictly decreasing values, so if the
block ``B`` holding position ``k - 1`` ends before ``m - 1``, then ``gamma_B > gamma_{m-1} =
s_{m-1} >= s_j`` for every entry ``j`` outside the window: appending those entries (in
decreasing order) as singletons never violates the order, PAV never pools them into ``B``,
and the full solution is the window's followed by ``u = 0`` (output exactly 0) everywhere
else: the KKT conditions of the isotonic problem hold block by block. If ``B`` reaches
``m - 1``, the entry ``m - 1`` (which has ``w = 0``) was pooled into the support, and an entry
outside might be too: enlarge. For the mask there is also an a-priori bound: the solution is
``y_i = clip(phi((x_i - tau) / lambda), 0, 1)`` for one threshold ``tau``, and ``tau >= x_(k) -
lambda`` unless the support is exactly the top ``k``; so the support lies in ``{x_i >= x_(k)
- lambda}``, which sizes the second window when the first one fails.

**Derivatives.** The residuals keep the one `BlockJacobian` layout of ``[m, n]`` rows:
``in_perm`` lists the window in sorted order, then the other entries (any order); their block
ids continue the window's as singletons, with the residuals ``a, b, c`` the full-sort path gives
a singleton with ``w = 0`` and ``u = 0`` (``a + b c = 0``: a zero Jacobian row). So
`jacobian.apply`, the strength tangents and the JAX replay of the residuals run unchanged.

**Window residuals** (the fast path: `backend.NumpyWindowBackend`, used by the NumPy API and
torch's eager CPU path; `_solve_window`). The residuals are the window's own, ``[r, w]``
(``w``: the widest window of the batch; a row with a narrower one is padded with entries
outside its window as zero singletons), with ``in_perm`` giving column indices; nothing is
stored for the other ``n - w`` entries, whose Jacobian rows and columns are 0, and
`jacobian.apply` writes the ``w`` entries into a zeroed output. The ``O(n)`` passes per row
are then: the selection (one ``np.argpartition`` of the key, in the row's own dtype: float32
rows are not copied to float64), ``|x|`` for the magnitude, one NaN scan, and the zero fills
of the output and of the gradient. Elsewhere (JAX, TensorFlow, torch custom ops under
``torch.compile``/``torch.func``, CUDA tensors) the full ``[r, n]`` layout above (`_solve`).

Rows holding NaN run the full sort (their output is NaN, as everywhere). Backends with static
shapes (JAX) cannot size a window per row: they try the first window for every row, and where
any row fails the whole batch takes the full sort (``lax.cond``: only the branch taken runs,
except under ``vmap``, where both do).
"""

from __future__ import annotations

import numpy as np

# Below this row length the full sort is cheaper: the measured crossover (window residuals,
# forward + backward, NumPy and torch CPU, k = 1 and 8) lies between n = 1024 and 2048
# (benchmarks/bench_partial_topk.py --n 1024 2048 4096).
PARTIAL_MIN_N = 2048
# A window beyond n / FULL_FRACTION (after enlarging) runs the full sort instead.
FULL_FRACTION = 8
# Growth of a window that failed (when no a-priori bound sizes the next one).
GROWTH = 8


def first_window(k: int, n: int) -> int:
    """The first window: a few times ``k`` (the support is ``k`` entries in the hard limit,
    a few more where soft), at least 64 (a window costs ``O(m log m)``: nothing next to the
    ``O(n)`` selection)."""
    return min(n, max(64, 4 * (k + 1)))


def use_partial(options, n: int, xp) -> bool:
    """Whether the top-k row functions take the partial sort: ``options.partial`` if set
    (True/False), else automatically: PAV, ``n >= PARTIAL_MIN_N`` and a first window of at most
    ``n / FULL_FRACTION``. Never on a backend without `Backend.top_perm` (the JAX replay of
    saved residuals runs the full-sort code on the saved permutation, which reproduces the
    partial layout: see the module docstring)."""
    if options.solver != "pav" or not getattr(xp, "partial_topk", False) or n < 2:
        return False
    if options.partial is not None:
        return bool(options.partial) and options.k < n
    return n >= PARTIAL_MIN_N and first_window(options.k, n) * FULL_FRACTION <= n


def partial_rows(core, x, key, strength, o, xp, tail_residuals, support_bound=None):
    """``core``'s ``(y, BlockJacobian)`` on the rows ``x``, computed on windows of the largest
    ``key`` entries (module docstring).

    Args:
      core: the operator's full-sort row function ``(x2, strength, o, xp) -> (y2, jac)``
        (options ``o`` without straight-through).
      key: the selection key (``x`` for the mask, ``|x|`` for the magnitude), ``[r, n]``.
      tail_residuals: ``(xs, strength) -> (a, b, c)``, each shaped like ``xs``: the residuals
        of entries outside the window, whose inputs are ``xs`` (zero singleton blocks).
      support_bound: optional ``(x, x_k, strength) -> [r]``: how many entries may be in the
        support, given the ``k``-th largest input ``x_k`` (``[r, 1]``); sizes a second window.

    On `backend.NumpyWindowBackend` (``xp.window_layout``) the residuals are window residuals
    (``[r, w]``, `_solve_window`); elsewhere the full ``[r, n]`` layout (`_solve`).
    """
    n = x.shape[-1]
    nan_rows = xp.isnan(xp.row_max(key))[:, 0]  # max propagates NaN
    solve = _solve_window if getattr(xp, "window_layout", False) else _solve
    return solve(core, x, key, strength, o, xp, tail_residuals, support_bound, nan_rows,
                 first_window(o.k, n))


def _certified(jw, k, m, nan_rows):
    """Rows whose window solution is the full row's: the block of sorted position ``k - 1``
    ends before the last window position (module docstring)."""
    if k > 0:
        return (jw.block[:, k - 1] != jw.block[:, m - 1]) & ~nan_rows
    return ~nan_rows


def _next_window(xp, m, k, support_bound, x, xk, strength):
    if support_bound is not None and k > 0:
        return max(2 * m, int(xp.max(support_bound(x, xk, strength))) + 2)
    return GROWTH * m


def _solve(core, x, key, strength, o, xp, tail_residuals, support_bound, nan_rows, m):
    n = x.shape[-1]
    if m * FULL_FRACTION > n or m >= n:
        return core(x, strength, o, xp)
    k = o.k
    perm = xp.top_perm(key, m)
    head = perm[:, :m]
    xw = xp.take(x, head)
    yw, jw = core(xw, strength, o, xp)
    ok = _certified(jw, k, m, nan_rows)
    # The full layout: the window in sorted order, then the rest as zero singleton blocks.
    # (``with_head`` may write into its first argument: every one is fresh here.)
    y = xp.put_window(yw, head, x)
    a_t, b_t, c_t = tail_residuals(xp.take(x, perm), strength)
    in_perm = xp.with_head(perm, xp.take(head, jw.in_perm))  # head: a view of perm, now stale
    block = xp.with_head(xp.iota_int32(x, jw.block[:, m - 1:m] + (1 - m)), jw.block)
    jac = type(jw)(in_perm, in_perm, block, xp.with_head(a_t, jw.a), xp.with_head(b_t, jw.b),
                   xp.with_head(c_t, jw.c))
    if getattr(xp, "static_shapes", False):
        # One retry, for the whole batch: the full sort (shapes are static).
        return xp.redo_rows(ok, (y, jac), lambda x_, key_: core(x_, strength, o, xp), x, key)
    # The k-th largest input (sorted window position k - 1), for the mask's support bound.
    xk = xp.take(xw, jw.in_perm[:, k - 1:k]) if k > 0 else x[:, :1]

    def retry(x_, key_, nan_, xk_):
        if xp.all(nan_):
            return core(x_, strength, o, xp)
        return _solve(core, x_, key_, strength, o, xp, tail_residuals, support_bound, nan_,
                      _next_window(xp, m, k, support_bound, x_, xk_, strength))

    return xp.redo_rows(ok, (y, jac), retry, x, key, nan_rows, xk)


def _solve_window(core, x, key, strength, o, xp, tail_residuals, support_bound, nan_rows, m):
    """`_solve` with window residuals (NumPy only, `backend.NumpyWindowBackend`).

    Per row: one ``np.argpartition`` of the key (read in its own dtype: a float32 row is not
    copied to float64), the window gathered and solved in float64, the output written into
    zeros of ``x``'s dtype; the residuals are the window's own (``[r, m]``, its ``in_perm``
    mapped to column indices). Rows that fail are solved again (a larger window, or the whole
    row) and the batch's residuals widened to the widest: a row's extra columns are entries
    outside its window, as zero singleton blocks (``tail_residuals``), the full layout's."""
    n = x.shape[-1]
    if m * FULL_FRACTION > n or m >= n:
        return core(xp.as_float64(x), strength, o, xp)
    k = o.k
    head, rest = xp.top_split(key, m)
    xw = xp.as_float64(xp.take(x, head))
    yw, jw = core(xw, strength, o, xp)
    ok = _certified(jw, k, m, nan_rows)
    y = xp.put_window(yw, head, x)
    in_perm = xp.take(head, jw.in_perm)
    jac = type(jw)(in_perm, in_perm, jw.block, jw.a, jw.b, jw.c)
    bad = np.flatnonzero(~ok)
    if len(bad) == 0:
        return y, jac
    if xp.all(nan_rows[bad]):
        ys, js = core(xp.as_float64(x[bad]), strength, o, xp)
    else:
        xk = xp.take(xw, jw.in_perm[:, k - 1:k])[bad] if k > 0 else None
        ys, js = _solve_window(core, x[bad], key[bad], strength, o, xp, tail_residuals,
                               support_bound, nan_rows[bad],
                               _next_window(xp, m, k, support_bound, x[bad], xk, strength))
    y[bad] = ys
    extra = js.a.shape[-1] - m
    if extra > 0:  # widen every row by ``extra`` entries outside its window
        pad = rest[:, :extra]
        a_t, b_t, c_t = tail_residuals(xp.as_float64(xp.take(x, pad)), strength)
        ids = jw.block[:, m - 1:m] + np.arange(1, extra + 1, dtype=np.int32)
        in_perm = np.concatenate([in_perm, pad], axis=-1)
        jac = type(jw)(in_perm, in_perm, np.concatenate([jw.block, ids], axis=-1),
                       *(np.concatenate([f, t], axis=-1) for f, t in
                         ((jw.a, a_t), (jw.b, b_t), (jw.c, c_t))))
    for dst, src in zip((jac.in_perm, *jac[2:]), (js.in_perm, *js[2:])):
        dst[bad] = src
    return y, jac
