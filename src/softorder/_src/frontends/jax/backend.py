r"""The pure-JAX backend: `NumpyBackend`'s primitives in ``jnp``, with an exact parallel PAV.

With ``xp=JAX`` the row-level operators of `ops` run unchanged on ``[m, n]`` ``jnp`` arrays,
under ``jit`` and on any device (no host round trip): the sorts are ``jnp.argsort``, the
gathers ``take_along_axis``, the segment sums ``jax.ops.segment_sum``, and the isotonic solver
is a block-merging PAV written for parallel hardware:

1. every entry starts as its own block; each block's value ``gamma_B`` solves the block
   equation of DESIGN §1 (closed forms for ``l2``, ``kl`` and the magnitude ``l2`` case; a
   safeguarded Newton iteration, vectorized over all blocks, for the other ``p``);
2. every maximal run of adjacent blocks with increasing values (``gamma_B < gamma_B'``,
   the violators of ``v_1 >= ... >= v_n``) is pooled at once, by a cumulative sum of the
   block boundaries that survive;
3. repeat until no adjacent pair violates the order.

Pooling any adjacent violators, in any order, leads to the unique PAV solution (the block
value of a union lies between its parts' values, so a run of increasing values stays
violating as it is pooled from the left). Each round costs a few O(n) segment reductions per
row; most inputs need a handful of rounds, but adversarial ones (a single outlier cascading
through a long decreasing staircase) need up to ``n`` rounds.

`finalize` computes the block values and the derivative weights ``(u, d, alpha, beta)`` of
`isotonic.pav` from the *integer* block ids with differentiable ``jnp`` (Newton blocks are
polished by two differentiable Newton steps from the converged value, which makes their
derivatives exact to third order). The JAX front end also uses it to differentiate its
residuals, which gives exact second derivatives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ...isotonic import pav as _pav
from ...isotonic.regularizers import D_CAP, NEWTON_MAX_ITER

__all__ = ["JaxBackend", "JAX", "ReplayBackend", "find_blocks", "finalize", "block_sum",
           "match_vma"]

_D_CAP = D_CAP
_NEWTON_MAX_ITER = NEWTON_MAX_ITER


# --------------------------------------------------------------------------------------------
# Segment reductions over integer block ids, one row at a time (vmap over rows): the row axis is
# kept, so a batch sharded over rows (explicit or auto mesh axes) stays sharded -- never a scatter
# into a flattened array.


def _per_row(reduce):
    def row(vals, block):
        return reduce(vals, block, vals.shape[-1], indices_are_sorted=True)[block]

    def at_each_position(vals, block):
        return jax.vmap(row)(vals, block.astype(jnp.int32))

    return at_each_position


block_sum = _per_row(jax.ops.segment_sum)  # sum_{j in B(k)} vals_j at every position k, [m, n]
_block_max = _per_row(jax.ops.segment_max)
_block_min = _per_row(jax.ops.segment_min)


def _iota_like(like):
    """``[0, 1, ..., n-1]`` in every row, int32, with ``like``'s layout."""
    return jnp.zeros_like(like, jnp.int32) + jnp.arange(like.shape[-1], dtype=jnp.int32)


def _put_row(vals, idx):
    return jnp.zeros_like(vals).at[idx].set(vals, unique_indices=True)


def _varying_axes(a):
    """The manual mesh axes over which ``a`` varies (JAX 0.10: ``manual_axis_type.varying``;
    earlier releases: ``vma``)."""
    aval = jax.typeof(a)
    mat = getattr(aval, "manual_axis_type", None)
    if mat is not None:
        return frozenset(getattr(mat, "varying", ()))
    return frozenset(getattr(aval, "vma", ()))


def match_vma(outs, like):
    """Mark every leaf of ``outs`` as varying over the manual mesh axes ``like`` varies over.

    Inside ``jax.shard_map`` the input is device-varying, but constants (loop counters, iotas,
    initial carries) and callback outputs are not typed so: loop carries and custom_jvp
    tangents must match their primals' types.
    """
    vma = _varying_axes(like)
    if not vma:
        return outs

    def fix(o):
        missing = tuple(sorted(vma - _varying_axes(o)))
        return jax.lax.pcast(o, missing, to="varying") if missing else o

    return jax.tree_util.tree_map(fix, outs)


# --------------------------------------------------------------------------------------------
# The link function phi(u) = sign(u) |u|^r and its derivative (as in isotonic.pav).


def _phi(u, r):
    if r == 1.0:
        return u
    if r == 3.0:
        return u * u * u
    # |u|^r at u = 0 has an infinite slope for r < 1: the double where keeps its derivative
    # (and the derivatives of that derivative) at 0 instead of inf * 0 = NaN.
    au = jnp.abs(u)
    safe = jnp.where(au == 0, 1.0, au)
    return jnp.where(au == 0, 0.0 * u, jnp.sign(u) * safe ** r)


def _phi_inv(y, r):
    if r == 1.0:
        return y
    if r == 3.0:
        return jnp.cbrt(y)
    ay = jnp.abs(y)
    safe = jnp.where(ay == 0, 1.0, ay)
    return jnp.where(ay == 0, 0.0 * y, jnp.sign(y) * safe ** (1.0 / r))


def _dphi(u, r):
    if r == 1.0:
        return jnp.ones_like(u)
    if r == 3.0:
        return 3.0 * u * u
    au = jnp.abs(u)
    if r < 1.0:
        safe = jnp.where(au == 0, 1.0, au)
        return jnp.where(au == 0, _D_CAP, jnp.minimum(r * safe ** (r - 1.0), _D_CAP))
    return r * au ** (r - 1.0)


# --------------------------------------------------------------------------------------------
# Block values.


def _block_mean(v, cw, csum, block):
    """Weighted block mean, with one correction pass (keeps precision when |v| >> spread)."""
    m1 = block_sum(cw * v, block) / csum
    return m1 + block_sum(cw * (v - m1), block) / csum


def _newton_offsets(s, W, c, lo, hi, block, r, lam_b, mag, tiny):
    """Root ``g`` of ``F(g) = sum_B phi((s - c - g) / lam_b) - (c + g if mag else 1) W`` per block.

    F is decreasing; ``F(lo) >= 0 >= F(hi)``. Safeguarded Newton (bisection when a step leaves
    the bracket), vectorized over all blocks; values are block-constant at every position.
    """

    fun = _make_fun(s, W, c, block, r, lam_b, mag)

    def body(state):
        it, g, lo, hi, width, _ = state
        f, fp = fun(g)
        lo = jnp.where(f > 0, g, lo)
        hi = jnp.where(f < 0, g, hi)
        gn = jnp.where(fp > 0, g + f / jnp.where(fp > 0, fp, 1.0), 0.5 * (lo + hi))
        # Bisect where the step leaves the bracket, or is not half the previous step (Newton
        # oscillating around a root where phi' is infinite, r < 1, converges only linearly).
        slow = 2.0 * jnp.abs(gn - g) > width
        gn = jnp.where((gn > lo) & (gn < hi) & ~slow, gn, 0.5 * (lo + hi))
        gn = jnp.where(f == 0, g, gn)
        tol = 4 * jnp.finfo(s.dtype).eps * jnp.maximum(jnp.maximum(jnp.abs(g), jnp.abs(gn)), tiny)
        done = (jnp.abs(gn - g) <= tol) | (hi - lo <= tol) | (f == 0)
        return it + 1, gn, lo, hi, jnp.abs(gn - g), jnp.all(done)

    def cond(state):
        it, _, _, _, _, done = state
        return (it < _NEWTON_MAX_ITER) & ~done

    lo, hi = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    state = (jnp.int32(0), 0.5 * (lo + hi), lo, hi, hi - lo, jnp.bool_(s.size == 0))
    return lax.while_loop(cond, body, match_vma(state, s))[1]


def _inf_sign(x):
    """The M-coefficient of ``x``: +-1 at +-inf, else 0."""
    one = jnp.ones_like(x)
    return jnp.where(x == jnp.inf, one, jnp.where(x == -jnp.inf, -one, 0.0 * one))


def _fin(x):
    """The finite part of ``x`` (0 at +-inf; a select, so no NaN reaches any derivative)."""
    return jnp.where(jnp.isinf(x), jnp.zeros_like(x), x)


def _count(mask):
    return jnp.sum(mask, axis=-1, keepdims=True)


def _closed_rows(s, w, kind):
    """Rows solved in closed form (`isotonic.pav._inf_w_row`): kl / p-norm soft sorts whose
    ``w`` holds +-inf (``s`` finite). Returns ``(closed, same, npos, nneg)``, ``[m, 1]`` each;
    ``same``: every entry at one infinity (singletons). kl rows with only -inf (and some finite
    entries) are left to PAV (``e^-M`` adds nothing to its block)."""
    n = s.shape[-1]
    npos = _count(w == jnp.inf)
    nneg = _count(w == -jnp.inf)
    if kind not in (_pav.KIND_KL, _pav.KIND_PNORM):
        no = jnp.zeros_like(npos, dtype=bool)
        return no, no, npos, nneg
    has = (npos + nneg > 0) & ~jnp.any(jnp.isinf(s), axis=-1, keepdims=True)
    same = has & ((npos == n) | (nneg == n))
    closed = has & (same | (npos > 0)) if kind == _pav.KIND_KL else has
    return closed, same, npos, nneg


def _walls(s, kind):
    """``[m, n-1]``: True between positions of different classes (+inf, finite, -inf) of ``s``
    for the kinds other than l2: infinite ``s`` are segments of their own, solved as ties at
    ``s = 0`` (l2 compares ``a M + b`` lexicographically instead). And ``[m, 1]``: rows whose
    infinite ``s`` are not at the ends (no limit read off segments: NaN, as the Numba kernel)."""
    if kind == _pav.KIND_L2:
        return None, jnp.zeros(s.shape[:-1] + (1,), bool)
    cls = jnp.where(s == jnp.inf, 0, jnp.where(s == -jnp.inf, 2, 1))
    unsorted = jnp.any(cls[:, 1:] < cls[:, :-1], axis=-1, keepdims=True)
    return cls[:, 1:] != cls[:, :-1], unsorted


def _stats(s, w, cw, block, kind, r, lam, differentiable):
    """Per-position block quantities ``(u, gamma, ex)`` for the given block ids.

    ``ex["key"] = (P, Q, g)``: blocks compare by ``(P / Q, g)`` lexicographically (``P / Q``:
    the M-coefficient of the block value, ``g`` its finite part): left and right violate
    ``v_L > v_R`` when ``P_L Q_R < P_R Q_L``, or equal and ``g_L <= g_R``.
    """
    ones = jnp.ones_like(s)
    size = block_sum(ones, block)
    ex = {"block": block, "size": size}
    if kind == _pav.KIND_L2:
        # a M + b numbers (isotonic.pav): a = sign_inf(s) - sign_inf(w); an infinite weight is
        # M' (the block's value is the mean over its infinitely weighted entries).
        a = _inf_sign(s) - _inf_sign(w)
        sf, wf = _fin(s), _fin(w)
        cinf = jnp.isinf(cw)
        kinf = block_sum(cinf.astype(s.dtype), block)
        ceff = jnp.where(kinf > 0, cinf.astype(s.dtype), jnp.where(cinf, 0.0, cw))
        csum = block_sum(ceff, block)
        ms = _block_mean(sf, ceff, csum, block)
        mw = _block_mean(wf, ceff, csum, block)
        am = block_sum(ceff * a, block)
        coef = _inf_sign(s) * csum - am  # u_i = s_i - v_B, times C_B: its M-coefficient
        u = jnp.where(coef == 0, (sf - ms) + mw, jnp.sign(coef) * jnp.inf)
        gf = ms - mw
        ex.update(csum=csum, ceff=ceff, key=(am, csum, gf))
        return u, jnp.where(am == 0, gf, jnp.sign(am) * jnp.inf), ex
    sf = _fin(s)  # infinite s: their own segments (walls), solved at s = 0
    if kind == _pav.KIND_KL:
        ms = lax.stop_gradient(_block_max(sf, block))
        es = block_sum(jnp.exp(sf - ms), block)
        wneg = w == -jnp.inf
        wf = _fin(w)
        mwr = lax.stop_gradient(_block_max(jnp.where(wneg, -jnp.inf, wf), block))
        allneg = mwr == -jnp.inf  # every w = -M: the value is +M + LSE(s_B) - log |B|
        mw = jnp.where(allneg, 0.0, mwr)
        # Double where: exp at a w = -inf entry is taken at 0 (it may overflow, and a reverse
        # pass would give 0 * inf = NaN through the branch not taken).
        ew = block_sum(jnp.where(wneg, 0.0, jnp.exp(jnp.where(wneg, mw, wf) - mw)), block)
        ew = jnp.where(allneg, 1.0, ew)
        off = jnp.log(es / ew) - mw
        u = (sf - ms) - off
        gf = jnp.where(allneg, ms + jnp.log(es) - jnp.log(size), ms + off)
        ex.update(ms=ms, es=es, mw=mw, ew=ew, wf=wf, wneg=wneg,
                  key=(allneg.astype(s.dtype), ones, gf))
        return u, jnp.where(allneg, jnp.inf, ms + off), ex
    mag = kind == _pav.KIND_MAG
    lam_b = lam if mag else 1.0
    wf = _fin(w)
    W = block_sum(wf, block)
    c = _block_mean(sf, ones, size, block)
    smin = _block_min(sf, block)
    smax = _block_max(sf, block)
    if mag:  # s = |x| >= 0: gamma in [0, max s]
        lo, hi = -c, smax - c
    else:
        base = _phi_inv(W / size, r)
        lo, hi = (smin - c) - base, (smax - c) - base
    tiny = jnp.maximum(jnp.abs(c), 1.0) * jnp.finfo(s.dtype).tiny
    args = (lax.stop_gradient(v) for v in (sf, W, c, lo, hi))
    off = lax.stop_gradient(_newton_offsets(*args, block, r, lam_b, mag, tiny))
    if differentiable:
        fun = _make_fun(sf, W, c, block, r, lam_b, mag)
        for _ in range(2):
            f, fp = fun(off)
            off = off + jnp.where(fp > 0, f / jnp.where(fp > 0, fp, 1.0), 0.0)
    if not mag:  # singletons: phi(u) = w exactly
        off = jnp.where(size == 1, (sf - c) - _phi_inv(wf, r), off)
    u = (sf - c) - off
    gamma = c + off
    ex.update(W=W, lam_b=lam_b, key=(0.0 * ones, ones, gamma))
    return u, gamma, ex


def _make_fun(s, W, c, block, r, lam_b, mag):
    def fun(g):
        u = ((s - c) - g) / lam_b
        f = block_sum(_phi(u, r), block)
        fp = block_sum(_dphi(u, r), block) / lam_b
        if mag:
            return f - (c + g) * W, fp + W
        return f - W, fp

    return fun


def finalize(s, w, cw, block, kind, r, lam, write_v=False, need_beta=False, differentiable=True):
    """``(out, d, alpha, beta)`` of `isotonic.pav.pav_batch` for the given integer blocks.

    Differentiable in ``s``, ``w`` and ``cw`` (the blocks are constants): these are the block
    equations of DESIGN §1 written with segment sums. ``out`` is ``u = s - v`` (or ``v`` when
    ``write_v``); ``beta`` is ``[m, 0]`` unless ``need_beta``. Infinite entries follow
    docs/conventions.md as `isotonic.pav` does (values and weights: the limit M -> infinity).
    """
    closed, same, npos, nneg = _closed_rows(s, w, kind)
    _, unsorted = _walls(s, kind)
    u, gamma, ex = _stats(s, w, cw, block, kind, r, lam, differentiable)
    size = ex["size"]
    n = s.shape[-1]
    inf = jnp.inf
    beta = jnp.zeros(s.shape[:-1] + (0,), s.dtype)
    if kind == _pav.KIND_L2:
        d = jnp.ones_like(s)
        one = size == 1
        alpha = jnp.where(one, 1.0, ex["ceff"] / jnp.where(one, 1.0, ex["csum"]))
    elif kind == _pav.KIND_KL:
        sf = _fin(s)
        al = jnp.exp(sf - ex["ms"]) / ex["es"]
        big = size > 1
        alpha = jnp.where(big, al, 1.0)
        # Each branch's exp is taken at 0 where the other is selected (double where).
        d = jnp.where(big, al * ex["ew"] * jnp.exp(jnp.where(big, ex["mw"], 0.0)),
                      jnp.exp(jnp.where(big, 0.0, u)))
        if need_beta:
            wneg = ex["wneg"]
            bt = jnp.where(wneg, 0.0, jnp.exp(jnp.where(wneg, ex["mw"], ex["wf"]) - ex["mw"]))
            bt = bt / ex["ew"]
            beta = jnp.where(big, bt, 1.0)
        # Rows with +inf in w: one block, u = +inf, alpha = softmax(s), beta on the +inf.
        kc = closed & ~same
        smax = lax.stop_gradient(jnp.max(sf, axis=-1, keepdims=True, initial=-inf))
        e = jnp.exp(sf - smax)
        u = jnp.where(kc, inf, u)
        gamma = jnp.where(kc, -inf, gamma)
        d = jnp.where(kc, inf, d)
        alpha = jnp.where(kc, e / jnp.sum(e, axis=-1, keepdims=True), alpha)
        if need_beta:
            hot = (w == inf).astype(s.dtype)
            beta = jnp.where(kc, hot / jnp.maximum(npos, 1), beta)
    else:
        mag = kind == _pav.KIND_MAG
        lam_b = ex["lam_b"]
        dp = _dphi(u / lam_b, r) / lam_b
        tot = block_sum(dp, block) + (ex["W"] if mag else 0.0)
        alpha = jnp.where(tot > 0, dp / jnp.where(tot > 0, tot, 1.0), 1.0 / size)
        if mag:
            d = 1.0 + dp
            # |x| = +inf (its own segment): u = +inf where the segment holds a top-k weight,
            # else 0; phi'(u) -> inf (r > 1) or 0 (r < 1) there (r = 1: the ties' Jacobian).
            sinf = s == inf
            wseg = jnp.sum(jnp.where(sinf, _fin(w), 0.0), axis=-1, keepdims=True)
            hot = sinf & (wseg > 0)
            u = jnp.where(hot, inf, u)
            gamma = jnp.where(sinf, inf, gamma)
            if r > 1.0:
                d = jnp.where(hot, inf, d)
                alpha = jnp.where(hot, 1.0 / jnp.maximum(_count(sinf), 1), alpha)
            elif r < 1.0:
                d = jnp.where(hot, 1.0, d)
                alpha = jnp.where(hot, 0.0, alpha)
        else:
            d = jnp.where(size == 1, 0.0, dp)
            alpha = jnp.where(size == 1, 1.0, alpha)
            # Rows with unbalanced +-inf in w: one block at sign(P - N) inf (balanced: the
            # finite block equation, already solved on the one block with sum of finite w).
            ub = closed & ~same & (npos != nneg)
            sg = jnp.where(npos > nneg, 1.0, -1.0).astype(s.dtype)
            u = jnp.where(ub, sg * inf, u)
            gamma = jnp.where(ub, -sg * inf, gamma)
            # phi'(+-inf) is a constant of the limit (inf, 1 or 0): computed off the graph, as
            # phi'' at inf is inf and a reverse pass through it would give 0 * inf = NaN.
            d = jnp.where(ub, lax.stop_gradient(_dphi(jnp.full_like(s, inf), r)), d)
            alpha = jnp.where(ub, 1.0 / max(n, 1), alpha)  # n = 0: no entry (never 1 / 0)
    # Every entry at one infinity: singletons, u = w, identity Jacobian.
    u = jnp.where(same, w, u)
    gamma = jnp.where(same, s - w, gamma)
    d = jnp.where(same, 0.0, d)
    alpha = jnp.where(same, 1.0, alpha)
    if need_beta:
        beta = jnp.where(same, 1.0, beta)
    out = gamma if write_v else u
    nan = jnp.any(jnp.isnan(s) | jnp.isnan(w) | jnp.isnan(cw), axis=-1, keepdims=True) | unsorted
    out, d, alpha = (jnp.where(nan, jnp.nan, a) for a in (out, d, alpha))
    if need_beta:
        beta = jnp.where(nan, jnp.nan, beta)
    return out, d, alpha, beta


def find_blocks(s, w, cw, kind, r, lam):
    """The PAV blocks (int32 ids ``0, 1, ...`` per row) of the decreasing problem, by rounds of
    parallel pooling of adjacent violators. Not differentiable (integers)."""
    s, w, cw = (lax.stop_gradient(a) for a in (s, w, cw))
    m, n = s.shape
    block0 = _iota_like(s)
    if n <= 1 or m == 0:
        return block0
    closed, same, _, _ = _closed_rows(s, w, kind)
    wall, unsorted = _walls(s, kind)
    nan = jnp.any(jnp.isnan(s) | jnp.isnan(w) | jnp.isnan(cw), axis=-1, keepdims=True)
    nan = nan | unsorted
    zero = nan | closed  # rows with nothing to solve here: one round of ties
    s = jnp.where(zero, 0.0, s)
    w = jnp.where(zero, 0.0, w)
    cw = jnp.where(nan, 1.0, cw)

    def key_of(block):
        return _stats(s, w, cw, block, kind, r, lam, differentiable=False)[2]["key"]

    # The magnitude's +inf segment (|x| = inf, solved as ties at s = 0) is one block when it
    # holds a top-k weight (its w = 1 entries have v < M, which the w = 0 ones at v = M violate),
    # as isotonic.pav's explicit pooling of it.
    held = None
    if kind == _pav.KIND_MAG:
        top = s[:, :-1] == jnp.inf
        top = top & (s[:, 1:] == jnp.inf)
        held = top & jnp.any((s == jnp.inf) & (w > 0), axis=-1, keepdims=True)

    def violations(block, key):
        # Strict, as isotonic.pav._violates: equal values (the same M-coefficient and the same
        # finite part) do not pool.
        p, q, g = key
        la = p[:, :-1] * q[:, 1:]
        lb = p[:, 1:] * q[:, :-1]
        v = (la < lb) | ((la == lb) & (g[:, :-1] < g[:, 1:]))
        if held is not None:
            v = v | held
        v = v & (block[:, :-1] != block[:, 1:])
        return v if wall is None else v & ~wall

    def body(state):
        block, key, viol, it = state
        boundary = (block[:, 1:] != block[:, :-1]) & ~viol
        block = jnp.concatenate(
            [jnp.zeros_like(block[:, :1]), jnp.cumsum(boundary, axis=1, dtype=jnp.int32)], axis=1)
        key = key_of(block)
        return block, key, violations(block, key), it + 1

    def cond(state):
        return jnp.any(state[2]) & (state[3] < n)

    key = key_of(block0)
    state = match_vma((block0, key, violations(block0, key), jnp.int32(0)), s)
    block = lax.while_loop(cond, body, state)[0]
    block = jnp.where(closed & ~same, jnp.zeros_like(block), block)
    return jnp.where(nan | same, block0, block)


# --------------------------------------------------------------------------------------------
# The backends.


def _top_perm_row(idx, n):
    rest = jnp.ones(n, jnp.bool_).at[idx].set(False)
    others = jnp.nonzero(rest, size=n - idx.shape[0])[0].astype(jnp.int32)
    return jnp.concatenate([idx.astype(jnp.int32), others])


class JaxBackend:
    """`NumpyBackend`'s primitives for ``jnp`` arrays ``[m, n]``: pure JAX, any device."""

    name = "jax"
    partial_topk = True
    static_shapes = True

    # Partial sorts (core.partial): a first window, then the full sort for the whole batch.
    @staticmethod
    def top_perm(key, m):
        idx = lax.top_k(key, m)[1]
        return jax.vmap(lambda i: _top_perm_row(i, key.shape[-1]))(idx)

    @staticmethod
    def with_head(a, head):
        return a.at[:, :head.shape[-1]].set(head.astype(a.dtype))

    @staticmethod
    def put_window(vals, idx, like):
        zeros = jnp.zeros(like.shape, vals.dtype)
        return jax.vmap(lambda z, i, v: z.at[i].set(v, unique_indices=True))(zeros, idx, vals)

    @staticmethod
    def iota_int32(like, start):
        return _iota_like(like) + start.astype(jnp.int32)

    @staticmethod
    def row_count(cond):
        return jnp.sum(cond, axis=-1)

    @staticmethod
    def redo_rows(ok, result, fn, *arrays):
        def redo():
            sub = fn(*arrays)
            keep = ok[:, None]
            return jax.tree_util.tree_map(lambda r, s: jnp.where(keep, r, s.astype(r.dtype)),
                                          result, sub)

        return lax.cond(jnp.all(ok), lambda: result, redo)

    @staticmethod
    def argsort_desc(a):
        return jnp.argsort(-a, axis=-1, stable=True).astype(jnp.int32)

    @staticmethod
    def take(a, idx):
        return jnp.take_along_axis(a, idx, -1)

    @staticmethod
    def put(vals, idx):
        return jax.vmap(_put_row)(vals, idx)

    @staticmethod
    def segment_sum(vals, block):
        return block_sum(vals, block)

    def pav(self, s, w, cw, kind, r, lam, write_v, need_beta):
        block = self.blocks(s, w, cw, kind, r, lam)
        out, d, alpha, beta = finalize(s, w, cw, block, kind, r, lam, write_v, need_beta,
                                       differentiable=self.differentiable)
        return out, d, alpha, beta, block

    differentiable = False

    @staticmethod
    def blocks(s, w, cw, kind, r, lam):
        return find_blocks(s, w, cw, kind, r, lam)

    # Constant rows are built from ``like`` so that they carry its sharding (rows sharded over
    # a mesh stay sharded, and vmap over rows sees one layout).

    @staticmethod
    def rho(like):
        n = like.shape[-1]
        return jnp.zeros_like(like) + jnp.arange(n, 0, -1, dtype=like.dtype)

    @staticmethod
    def topk_weights(like, k):
        n = like.shape[-1]
        return jnp.zeros_like(like) + (jnp.arange(n) < k).astype(like.dtype)

    @staticmethod
    def identity_perm(like):
        return _iota_like(like)

    @staticmethod
    def log(a):
        return jnp.log(a)

    exp = staticmethod(jnp.exp)
    ones_like = staticmethod(jnp.ones_like)
    zeros_like = staticmethod(jnp.zeros_like)
    abs = staticmethod(jnp.abs)
    sign = staticmethod(jnp.sign)
    where = staticmethod(jnp.where)

    # Reductions and control flow (for core.dykstra).
    @staticmethod
    def row_max(a):
        return jnp.max(a, axis=-1, keepdims=True, initial=-jnp.inf)

    @staticmethod
    def row_any(a):
        return jnp.any(a, axis=-1, keepdims=True)

    all = staticmethod(jnp.all)
    max = staticmethod(jnp.max)

    @staticmethod
    def cumsum_int32(a):
        return jnp.cumsum(a, axis=-1).astype(jnp.int32)

    @staticmethod
    def interleave(a, b):
        return jnp.stack([a, b], axis=-1).reshape(*a.shape[:-1], 2 * a.shape[-1])

    @staticmethod
    def concat(parts):
        return jnp.concatenate(parts, axis=-1)

    @staticmethod
    def while_loop(cond, body, state):
        return lax.while_loop(cond, body, state)

    isnan = staticmethod(jnp.isnan)
    maximum = staticmethod(jnp.maximum)
    minimum = staticmethod(jnp.minimum)
    sqrt = staticmethod(jnp.sqrt)

    @staticmethod
    def row_sum(a):
        return jnp.sum(a, axis=-1, keepdims=True)


JAX = JaxBackend()


class ReplayBackend(JaxBackend):
    """A `JaxBackend` that replays a known sort order and PAV block structure.

    ``argsort_desc`` returns the saved permutation and ``pav`` the `finalize` of the saved
    blocks, differentiably: the row operators of `ops` then give their output and residuals as
    smooth ``jnp`` functions of the input, exact wherever the structure is locally constant.
    """

    differentiable = True
    # The replay runs the full-sort code on the saved permutation and blocks, which also
    # reproduces a partial sort's residuals (the entries outside its window are zero
    # singleton blocks): see core.partial.
    partial_topk = False

    def __init__(self, perm, block):
        self.perm = perm
        self.saved_block = block

    def argsort_desc(self, a):
        return self.perm

    def blocks(self, s, w, cw, kind, r, lam):
        return self.saved_block
