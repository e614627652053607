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
        it, g, lo, hi, _ = state
        f, fp = fun(g)
        lo = jnp.where(f > 0, g, lo)
        hi = jnp.where(f < 0, g, hi)
        gn = jnp.where(fp > 0, g + f / jnp.where(fp > 0, fp, 1.0), 0.5 * (lo + hi))
        gn = jnp.where((gn > lo) & (gn < hi), gn, 0.5 * (lo + hi))
        gn = jnp.where(f == 0, g, gn)
        tol = 4 * jnp.finfo(s.dtype).eps * jnp.maximum(jnp.maximum(jnp.abs(g), jnp.abs(gn)), tiny)
        done = (jnp.abs(gn - g) <= tol) | (hi - lo <= tol) | (f == 0)
        return it + 1, gn, lo, hi, jnp.all(done)

    def cond(state):
        it, _, _, _, done = state
        return (it < _NEWTON_MAX_ITER) & ~done

    lo, hi = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    state = match_vma((jnp.int32(0), 0.5 * (lo + hi), lo, hi, jnp.bool_(s.size == 0)), s)
    return lax.while_loop(cond, body, state)[1]


def _stats(s, w, cw, block, kind, r, lam, differentiable):
    """Per-position block quantities: (u, gamma, extras) for the given block ids."""
    ones = jnp.ones_like(s)
    size = block_sum(ones, block)
    sinf = jnp.isinf(s)
    hasinf = block_sum(sinf.astype(s.dtype), block) > 0
    sf = jnp.where(sinf, 0.0, s)
    # A block holding +-inf has the value +-inf (infinite entries are never pooled with
    # finite ones, as in the Numba kernel); finalize gives their entries the hard values.
    infsign = block_sum(jnp.where(sinf, jnp.sign(s), 0.0), block)
    ginf = jnp.where(infsign > 0, jnp.inf, -jnp.inf)
    ex = {"block": block, "size": size, "hasinf": hasinf}
    if kind == _pav.KIND_L2:
        csum = block_sum(cw, block)
        ms = _block_mean(sf, cw, csum, block)
        mw = _block_mean(w, cw, csum, block)
        u = (sf - ms) + mw
        gamma = ms - mw
        ex.update(csum=csum)
        return u, jnp.where(hasinf, ginf, gamma), ex
    if kind == _pav.KIND_KL:
        ms = lax.stop_gradient(_block_max(sf, block))
        es = block_sum(jnp.exp(sf - ms), block)
        wf = jnp.where(jnp.isfinite(w), w, 0.0)
        mw = lax.stop_gradient(_block_max(wf, block))
        ew = block_sum(jnp.where(w == -jnp.inf, 0.0, jnp.exp(wf - mw)), block)
        off = jnp.log(es / ew) - mw
        u = (sf - ms) - off
        ex.update(ms=ms, es=es, mw=mw, ew=ew, wf=wf)
        return u, jnp.where(hasinf, ginf, ms + off), ex
    mag = kind == _pav.KIND_MAG
    lam_b = lam if mag else 1.0
    W = block_sum(w, block)
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
        off = jnp.where(size == 1, (sf - c) - _phi_inv(w, r), off)
    u = (sf - c) - off
    ex.update(W=W, lam_b=lam_b)
    return u, jnp.where(hasinf, ginf, c + off), ex


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
    ``write_v``); ``beta`` is ``[m, 0]`` unless ``need_beta``.
    """
    u, gamma, ex = _stats(s, w, cw, block, kind, r, lam, differentiable)
    block, size, hasinf = ex["block"], ex["size"], ex["hasinf"]
    beta = jnp.zeros(s.shape[:-1] + (0,), s.dtype)
    if kind == _pav.KIND_L2:
        d = jnp.ones_like(s)
        alpha = cw / ex["csum"]
        uh = block_sum(w, block) / size
    elif kind == _pav.KIND_KL:
        al = jnp.exp(jnp.where(jnp.isinf(s), 0.0, s) - ex["ms"]) / ex["es"]
        big = size > 1
        alpha = jnp.where(big, al, 1.0)
        d = jnp.where(big, al * ex["ew"] * jnp.exp(ex["mw"]), jnp.exp(u))
        if need_beta:
            bt = jnp.where(w == -jnp.inf, 0.0, jnp.exp(ex["wf"] - ex["mw"])) / ex["ew"]
            beta = jnp.where(big, bt, 1.0)
        uh = ex["mw"] + jnp.log(ex["ew"]) - jnp.log(size)
    else:
        mag = kind == _pav.KIND_MAG
        lam_b = ex["lam_b"]
        dp = _dphi(u / lam_b, r) / lam_b
        tot = block_sum(dp, block) + (ex["W"] if mag else 0.0)
        alpha = jnp.where(tot > 0, dp / jnp.where(tot > 0, tot, 1.0), 1.0 / size)
        if mag:
            d = 1.0 + dp
            uh = jnp.where(ex["W"] > 0, jnp.inf, 0.0)
        else:
            d = jnp.where(size == 1, 0.0, dp)
            alpha = jnp.where(size == 1, 1.0, alpha)
            uh = _phi_inv(ex["W"] / size, r)
    out = gamma if write_v else u
    out = jnp.where(hasinf, s if write_v else uh, out)
    d = jnp.where(hasinf, 0.0, d)
    alpha = jnp.where(hasinf, 1.0 / size, alpha)
    if need_beta:
        beta = jnp.where(hasinf, 1.0 / size, beta)
    nan = jnp.any(jnp.isnan(s) | jnp.isnan(w) | jnp.isnan(cw), axis=-1, keepdims=True)
    out, d, alpha = (jnp.where(nan, jnp.nan, a) for a in (out, d, alpha))
    if need_beta:
        beta = jnp.where(nan, jnp.nan, beta)
    return out, d, alpha, beta


def find_blocks(s, w, cw, kind, r, lam):
    """The PAV blocks (int32 ids ``0, 1, ...`` per row) of the decreasing problem, by rounds of
    parallel pooling of adjacent violators. Not differentiable (integers)."""
    s, w, cw = (lax.stop_gradient(a) for a in (s, w, cw))
    m, n = s.shape
    nan = jnp.any(jnp.isnan(s) | jnp.isnan(w) | jnp.isnan(cw), axis=-1, keepdims=True)
    s = jnp.where(nan, 0.0, s)
    w = jnp.where(nan, 0.0, w)
    cw = jnp.where(nan, 1.0, cw)
    block0 = _iota_like(s)
    if n <= 1 or m == 0:
        return block0

    def gamma_of(block):
        return _stats(s, w, cw, block, kind, r, lam, differentiable=False)[1]

    def violations(block, gamma):
        # Strict, as isotonic.pav._violates: equal finite values do not pool. Equal infinite
        # values (ties of +-inf entries, whose finite parts this backend does not carry) do.
        ga, gb = gamma[:, :-1], gamma[:, 1:]
        viol = (ga < gb) | ((ga == gb) & jnp.isinf(ga))
        return viol & (block[:, :-1] != block[:, 1:])

    def body(state):
        block, gamma, viol, it = state
        boundary = (block[:, 1:] != block[:, :-1]) & ~viol
        block = jnp.concatenate(
            [jnp.zeros_like(block[:, :1]), jnp.cumsum(boundary, axis=1, dtype=jnp.int32)], axis=1)
        gamma = gamma_of(block)
        return block, gamma, violations(block, gamma), it + 1

    def cond(state):
        return jnp.any(state[2]) & (state[3] < n)

    gamma = gamma_of(block0)
    state = match_vma((block0, gamma, violations(block0, gamma), jnp.int32(0)), s)
    block = lax.while_loop(cond, body, state)[0]
    return jnp.where(nan, block0, block)


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
