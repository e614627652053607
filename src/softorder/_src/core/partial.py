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

Rows holding NaN run the full sort (their output is NaN, as everywhere). Backends with static
shapes (JAX) cannot size a window per row: they try the first window for every row, and where
any row fails the whole batch takes the full sort (``lax.cond``: only the branch taken runs,
except under ``vmap``, where both do).
"""

from __future__ import annotations

# Below this row length the full sort is cheap enough (measured: benchmarks/bench_partial_topk.py).
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
      tail_residuals: ``(x, perm, strength) -> (a, b, c)``, ``[r, n]`` each: the residuals
        of the entries outside the window, at their sorted positions (``perm``: the
        permutation; the first ``m`` columns are overwritten with the window's).
      support_bound: optional ``(x, x_k, strength) -> [r]``: how many entries may be in the
        support, given the ``k``-th largest input ``x_k`` (``[r, 1]``); sizes a second window.
    """
    n = x.shape[-1]
    nan_rows = xp.isnan(xp.row_max(key))[:, 0]  # max propagates NaN
    return _solve(core, x, key, strength, o, xp, tail_residuals, support_bound, nan_rows,
                  first_window(o.k, n))


def _solve(core, x, key, strength, o, xp, tail_residuals, support_bound, nan_rows, m):
    n = x.shape[-1]
    if m * FULL_FRACTION > n or m >= n:
        return core(x, strength, o, xp)
    k = o.k
    perm = xp.top_perm(key, m)
    head = perm[:, :m]
    xw = xp.take(x, head)
    yw, jw = core(xw, strength, o, xp)
    if k > 0:
        ok = (jw.block[:, k - 1] != jw.block[:, m - 1]) & ~nan_rows
    else:
        ok = ~nan_rows
    # The full layout: the window in sorted order, then the rest as zero singleton blocks.
    # (``with_head`` may write into its first argument: every one is fresh here.)
    y = xp.put_window(yw, head, x)
    a_t, b_t, c_t = tail_residuals(x, perm, strength)
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
        m_next = GROWTH * m
        if support_bound is not None and k > 0:
            m_next = max(2 * m, int(xp.max(support_bound(x_, xk_, strength))) + 2)
        return _solve(core, x_, key_, strength, o, xp, tail_residuals, support_bound, nan_,
                      m_next)

    return xp.redo_rows(ok, (y, jac), retry, x, key, nan_rows, xk)
