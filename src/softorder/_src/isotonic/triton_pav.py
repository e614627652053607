r"""Batched pool-adjacent-violators in Triton: the CUDA twin of `isotonic.pav.pav_batch`.

Same problem, same kinds, same outputs as the Numba kernel (read its docstring): for each row
of ``s`` solve the decreasing isotonic problem of DESIGN §1 and write, per position, ``out``
(``v`` or ``u = s - v``), ``d``, ``alpha``, ``beta`` (kl with ``need_beta``) and the integer
``block`` ids.

Design (one program per row, ``num_warps=1``):

1. A vector pass checks the row for NaN (a NaN row is written as NaN, ``block = arange``).
2. The scan: the sequential stack-based PAV. The stack (block start, gamma and the block
   statistics) lives in per-row scratch global memory; the top block is kept in registers and
   only stored once per input element. Statistics per kind, all float64:
   l2: ``(sum c, sum c (s - w))``; kl: ``(LSE s, LSE w)``; p-norm and magnitude:
   ``(count, mean, M2, M3, sum w)`` merged with Chan et al.'s formulas, so that ``r = 3``
   (``p = 4/3``) is a closed-form cubic and ``r = 1`` a closed form. Other ``r`` solve the
   block equation in-kernel by the same safeguarded Newton as the Numba kernel (its sums are
   vectorized over the block).
3. Finalize, vectorized over chunks of the row: block starts are marked and a running
   ``tl.cumsum`` gives the block id of every position; per-block sums (``sum phi'``, the count
   of infinite entries, ``sum w``) come from a segmented ``tl.associative_scan`` (no atomics:
   the results are deterministic), stored by each block's last position; a last pass gathers
   the block values and writes out/d/alpha/beta/block.

Everything is computed in float64 whatever the input dtype (float32 or float64; outputs have
the input's dtype). ``tl.debug_barrier()`` separates a scratch store from the loads that read
it (a scalar store is done by one thread and read by all). Only ``tl`` math is used (no
libdevice), so the same code runs under ``TRITON_INTERPRET=1``.

This module imports Triton: import it lazily (``softorder.torch`` and `torch_backend` do).
"""

from __future__ import annotations

import struct
import sys
import warnings

import torch

if "tensorflow" in sys.modules and "triton" not in sys.modules:  # pragma: no cover
    warnings.warn(
        "softorder: loading Triton after TensorFlow; on some machines this aborts the process "
        "(an LLVM option clash). Import triton (or softorder.torch's CUDA path) before "
        "tensorflow, or use them in separate processes.",
        RuntimeWarning,
        stacklevel=2,
    )

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from .regularizers import D_CAP as _D_CAP
from .regularizers import KIND_KL, KIND_L2, KIND_MAG, KIND_PNORM
from .regularizers import NEWTON_MAX_ITER as _NEWTON_MAX_ITER

__all__ = ["pav_batch_triton", "is_interpreted", "KIND_L2", "KIND_KL", "KIND_PNORM", "KIND_MAG"]



# --------------------------------------------------------------------------------------------
# Scalar / elementwise math in float64 with tl ops only.


@triton.jit
def _logaddexp(a, b):
    mx = tl.maximum(a, b)
    mn = tl.minimum(a, b)
    res = mx + tl.log(1.0 + tl.exp(mn - mx))
    res = tl.where(mn == -float("inf"), mx, res)
    res = tl.where(mx == float("inf"), mx, res)
    return res


@triton.jit
def _powabs(au, e):
    """``|u|^e`` for ``|u| >= 0`` (``0^e = 0`` for ``e > 0``, ``inf`` for ``e < 0``)."""
    return tl.exp(e * tl.log(au))


@triton.jit
def _phi(u, r, RCODE: tl.constexpr):
    if RCODE == 1:
        res = u
    elif RCODE == 3:
        res = u * u * u
    else:
        p = _powabs(tl.abs(u), r)
        res = tl.where(u >= 0, p, -p)
    return res


@triton.jit
def _phi_inv(y, r, RCODE: tl.constexpr):
    if RCODE == 1:
        res = y
    else:
        p = _powabs(tl.abs(y), 1.0 / r)
        res = tl.where(y >= 0, p, -p)
    return res


@triton.jit
def _dphi(u, r, RCODE: tl.constexpr, D_CAP: tl.constexpr):
    au = tl.abs(u)
    if RCODE == 1:
        res = tl.zeros_like(au) + 1.0
    elif RCODE == 3:
        res = 3.0 * au * au
    else:
        res = r * _powabs(au, r - 1.0)
        capped = tl.where(au == 0.0, D_CAP, tl.minimum(res, D_CAP))
        res = tl.where(r < 1.0, capped, res)
    return res


@triton.jit
def _asinh(x):
    ax = tl.abs(x)
    big = tl.log(ax + tl.sqrt(ax * ax + 1.0))
    x2 = ax * ax
    small = ax * (1.0 - x2 / 6.0 + 0.075 * x2 * x2)
    res = tl.where(ax < 1e-3, small, big)
    return tl.where(x < 0, -res, res)


@triton.jit
def _sinh(x):
    ax = tl.abs(x)
    e = tl.exp(ax)
    big = 0.5 * (e - 1.0 / e)
    x2 = ax * ax
    small = ax * (1.0 + x2 / 6.0 + x2 * x2 / 120.0)
    res = tl.where(ax < 1e-3, small, big)
    return tl.where(x < 0, -res, res)


@triton.jit
def _solve_cubic(a, c):
    """The real root of ``t^3 + a t + c = 0`` for ``a >= 0``, polished by Newton steps."""
    # a <= 0: t = -cbrt(c)
    ac = tl.abs(c)
    cb = _powabs(ac, tl.full([], 1.0 / 3.0, tl.float64))
    t0 = tl.where(c >= 0, -cb, cb)
    # a > 0: hyperbolic form t = -2 sqrt(a/3) sinh(asinh((3c / 2a) sqrt(3/a)) / 3).
    asafe = tl.where(a > 0.0, a, 1.0)
    m = tl.sqrt(asafe / 3.0)
    arg = 1.5 * c / (asafe * m)
    t1 = -2.0 * m * _sinh(_asinh(arg) / 3.0)
    t = tl.where(a > 0.0, t1, t0)
    for _ in tl.static_range(2):
        f = t * t * t + a * t + c
        fp = 3.0 * t * t + a
        t = tl.where(fp > 0.0, t - f / tl.where(fp > 0.0, fp, 1.0), t)
    return t


@triton.jit
def _solve_block(s_row, start, end, wsum, r, lam, lo0, hi0, MAG: tl.constexpr,
                 BLOCK: tl.constexpr, D_CAP: tl.constexpr, MAX_ITER: tl.constexpr):
    """Root of ``sum_B phi((s_i - g)/lam) - (g if MAG else 1) * wsum`` in ``[lo, hi]``.

    The decreasing function is bracketed; a Newton step leaving the bracket is replaced by
    bisection (the Numba kernel's ``_solve_block``, with the block sums vectorized).
    """
    lo = tl.minimum(lo0, hi0)
    hi = tl.maximum(lo0, hi0)
    g = 0.5 * (lo + hi)
    res = g
    it = 0
    go = it < MAX_ITER
    while go:
        f = tl.zeros([], tl.float64)
        fp = tl.zeros([], tl.float64)
        for c0 in range(start, end, BLOCK):
            offs = c0 + tl.arange(0, BLOCK)
            msk = offs < end
            sv = tl.load(s_row + offs, mask=msk, other=0.0).to(tl.float64)
            u = (sv - g) / lam
            f += tl.sum(tl.where(msk, _phi(u, r, 0), 0.0), 0)
            fp += tl.sum(tl.where(msk, _dphi(u, r, 0, D_CAP) / lam, 0.0), 0)
        if MAG:
            f -= g * wsum
            fp += wsum
        else:
            f -= wsum
        lo = tl.where(f > 0.0, g, lo)
        hi = tl.where(f < 0.0, g, hi)
        exact = f == 0.0
        gn = tl.where(fp > 0.0, g + f / tl.where(fp > 0.0, fp, 1.0), 0.5 * (lo + hi))
        inside = (lo < gn) & (gn < hi)
        gn = tl.where(inside, gn, 0.5 * (lo + hi))
        tol = 1e-15 * tl.maximum(tl.maximum(tl.abs(g), tl.abs(gn)), 1e-300)
        conv = (tl.abs(gn - g) <= tol) | (hi - lo <= tol)
        res = tl.where(exact, g, gn)
        it += 1
        go = (~exact) & (~conv) & (it < MAX_ITER)
        g = tl.where(go, gn, g)
    # Out of iterations: the Numba kernel returns the last iterate g (not gn).
    res = tl.where(it >= MAX_ITER, g, res)
    return res


@triton.jit
def _segmented_add(v1, i1, w1, f1, v2, i2, w2, f2):
    """Combine for a segmented sum scan: ``f = 1`` marks a segment start (associative)."""
    keep = f2 != 0
    return (tl.where(keep, v2, v1 + v2), tl.where(keep, i2, i1 + i2),
            tl.where(keep, w2, w1 + w2), f1 | f2)


# --------------------------------------------------------------------------------------------
# The kernel.


@triton.jit
def _singleton(s_row, i, si, wi, ci, r, lam, KIND: tl.constexpr, RCODE: tl.constexpr,
               BLOCK: tl.constexpr, D_CAP: tl.constexpr, MAX_ITER: tl.constexpr):
    """Statistics ``(c0..c4)`` and value ``g`` of the one-entry block ``{i}`` (``ci``: its l2
    weight, read for l2 only); shared by this module's kernel (p-norm and magnitude) and
    `triton_parallel`."""
    zero = si * 0.0
    if KIND == 0:
        c0 = ci
        c1 = ci * (si - wi)
        c2 = zero
        c3 = zero
        c4 = zero
        g = si - wi
    elif KIND == 1:
        c0 = si
        c1 = wi
        c2 = zero
        c3 = zero
        c4 = zero
        g = si - wi
    else:
        c0 = zero + 1.0
        c1 = si
        c2 = zero
        c3 = zero
        c4 = wi
        if KIND == 2:
            g = si - _phi_inv(wi, r, RCODE)
        else:
            if RCODE == 1:
                g = si / (1.0 + lam * wi)
                g = tl.where((wi == 0.0) | (tl.abs(si) == float("inf")), si, g)
            elif RCODE == 3:
                l3w = lam * lam * lam * wi
                g = si + _solve_cubic(l3w, l3w * si)
                g = tl.where((wi == 0.0) | (tl.abs(si) == float("inf")), si, g)
            else:
                if (wi == 0.0) | (tl.abs(si) == float("inf")):
                    g = si
                else:
                    g = _solve_block(s_row, i, i + 1, wi, r, lam, tl.minimum(si, 0.0),
                                     tl.maximum(si, 0.0), True, BLOCK, D_CAP, MAX_ITER)
    return c0, c1, c2, c3, c4, g


@triton.jit
def _entry_outputs(sv, wv, cw_ptrs, u, gb, size, ninf, wsum, st0, st1, st_row, aux_row, bid,
                   msk, n, lam, r, KIND: tl.constexpr, IS_MAG: tl.constexpr,
                   WRITE_V: tl.constexpr, NEED_BETA: tl.constexpr, RCODE: tl.constexpr,
                   D_CAP: tl.constexpr, BLOCK: tl.constexpr, CDT: tl.constexpr):
    """``(out, d, alpha, beta)`` of one tile of entries from their block's statistics, in
    ``CDT``: shared by this module's kernel and `triton_parallel._out_kernel`. ``sv``/``wv``:
    the entries' ``s``/``w``; ``gb``: the block value; ``size``, ``ninf``, ``wsum``: the
    block's length, infinite-entry count and weight sum; ``st0``/``st1``: its l2 weight sum
    (or kl log-sum-exp of ``s``) and kl log-sum-exp of ``w``; ``cw_ptrs``: the entries' l2
    weights (read for l2 only)."""
    o = gb if WRITE_V else u
    bet = tl.zeros([BLOCK], CDT)
    if KIND == 0:
        cv = tl.load(cw_ptrs, mask=msk, other=0.0).to(CDT)
        dv = tl.zeros([BLOCK], CDT) + 1.0
        al = tl.where(size > 1.0, cv / st0, 1.0)
        uh = wsum / size
    elif KIND == 1:
        dv = tl.exp(u)
        al = tl.where(size > 1.0, tl.exp(sv - st0), 1.0)
        if NEED_BETA:
            bet = tl.where(size > 1.0, tl.exp(wv - st1), 1.0)
        uh = st1 - tl.log(size)
    else:
        lam_b = lam if IS_MAG else 1.0
        dp = _dphi(u / lam_b, r, RCODE, D_CAP) / lam_b
        tot = tl.load(aux_row + bid, mask=msk, other=0.0)
        if IS_MAG:
            tot += tl.load(st_row + 4 * n + bid, mask=msk, other=0.0)
            dv = 1.0 + dp
            al = tl.where(tot > 0.0, dp / tl.where(tot > 0.0, tot, 1.0), 1.0 / size)
            uh = tl.where(wsum > 0.0, float("inf"), 0.0)
        else:
            # As the Numba kernel: a singleton's z-Jacobian is exactly 0 (d = 0).
            dv = tl.where(size == 1.0, 0.0, dp)
            al = tl.where(tot > 0.0, dp / tl.where(tot > 0.0, tot, 1.0), 1.0 / size)
            al = tl.where(size == 1.0, 1.0, al)
            uh = _phi_inv(wsum / size, r, RCODE)
    # Blocks holding an infinite entry: the hard value, zero derivative weights.
    blk_inf = ninf > 0.0
    if WRITE_V:
        o = tl.where(blk_inf, sv, o)  # v is +-inf with the block's entries
    else:
        o = tl.where(blk_inf, uh, o)
    dv = tl.where(blk_inf, 0.0, dv)
    al = tl.where(blk_inf, 1.0 / size, al)
    bet = tl.where(blk_inf, 1.0 / size, bet)
    return o, dv, al, bet


@triton.jit
def _pav_kernel(
    s_ptr, w_ptr, cw_ptr,
    out_ptr, d_ptr, alpha_ptr, beta_ptr, block_ptr,
    st_ptr, gam_ptr, start_ptr, mark_ptr, aux_ptr,
    n, r_bits, lam_bits,
    KIND: tl.constexpr, RCODE: tl.constexpr, WRITE_V: tl.constexpr, NEED_BETA: tl.constexpr,
    BLOCK: tl.constexpr, D_CAP: tl.constexpr, MAX_ITER: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = row * n
    s_row = s_ptr + base
    w_row = w_ptr + base
    cw_row = cw_ptr + base
    gam_row = gam_ptr + base
    mark_row = mark_ptr + base
    start_row = start_ptr + row * (n + 1)
    st_row = st_ptr + row * 5 * n  # component c of block b at st_row + c * n + b
    aux_row = aux_ptr + row * 3 * n  # per-block sums: sum phi', count of inf, sum w
    r = r_bits.to(tl.int64).to(tl.float64, bitcast=True)
    lam = lam_bits.to(tl.int64).to(tl.float64, bitcast=True)
    IS_MAG: tl.constexpr = KIND == 3
    MOMENTS: tl.constexpr = (KIND == 2) or (KIND == 3)

    # 1. NaN check.
    nan_count = tl.zeros([], tl.int32)
    for c0 in range(0, n, BLOCK):
        offs = c0 + tl.arange(0, BLOCK)
        msk = offs < n
        sv = tl.load(s_row + offs, mask=msk, other=0.0)
        wv = tl.load(w_row + offs, mask=msk, other=0.0)
        cv = tl.load(cw_row + offs, mask=msk, other=0.0)
        bad = (sv != sv) | (wv != wv) | (cv != cv)
        nan_count += tl.sum(bad.to(tl.int32), 0)
    has_nan = nan_count > 0
    n_scan = tl.where(has_nan, 0, n)

    # 2. The scan. The top block's statistics (c0..c4), gamma (g) and start stay in registers.
    top = tl.zeros([], tl.int32) - 1
    g = tl.zeros([], tl.float64)
    c0 = tl.zeros([], tl.float64)
    c1 = tl.zeros([], tl.float64)
    c2 = tl.zeros([], tl.float64)
    c3 = tl.zeros([], tl.float64)
    c4 = tl.zeros([], tl.float64)
    cur_start = tl.zeros([], tl.int32)
    for i in range(0, n_scan):
        # The block below the new one is the previous top, whose gamma is still in ``g``.
        gl = g
        top += 1
        cur_start = i + tl.zeros([], tl.int32)
        si = tl.load(s_row + i).to(tl.float64)
        wi = tl.load(w_row + i).to(tl.float64)
        if KIND == 0:
            ci = tl.load(cw_row + i).to(tl.float64)
            c0 = ci
            c1 = ci * (si - wi)
            g = si - wi
        elif KIND == 1:
            c0 = si
            c1 = wi
            g = si - wi
        else:
            c0, c1, c2, c3, c4, g = _singleton(s_row, i, si, wi, si, r, lam, KIND, RCODE,
                                               BLOCK, D_CAP, MAX_ITER)
        # Pool while the block below violates the order (gamma_left < gamma_right: equal
        # values do not pool, as in isotonic.pav._violates).
        go = (top > 0) & (gl < g)
        while go:
            a = top - 1
            l0 = tl.load(st_row + a)
            l1 = tl.load(st_row + n + a)
            if KIND == 0:
                c0 = l0 + c0
                c1 = l1 + c1
                g = c1 / c0
            elif KIND == 1:
                c0 = _logaddexp(l0, c0)
                c1 = _logaddexp(l1, c1)
                g = c0 - c1
            else:
                l2 = tl.load(st_row + 2 * n + a)
                l3 = tl.load(st_row + 3 * n + a)
                l4 = tl.load(st_row + 4 * n + a)
                na = l0
                nb = c0
                nn = na + nb
                c4 = l4 + c4
                if RCODE != 0:
                    # Chan et al.'s stable merge of central moments (left = l, right = c).
                    delta = c1 - l1
                    mean = l1 + delta * nb / nn
                    m2 = l2 + c2 + delta * delta * na * nb / nn
                    m3 = (l3 + c3 + delta * delta * delta * na * nb * (na - nb) / (nn * nn)
                          + 3.0 * delta * (na * c2 - nb * l2) / nn)
                    c1 = mean
                    c2 = m2
                    c3 = m3
                c0 = nn
                if RCODE == 1:
                    if IS_MAG:
                        g = c1 * nn / (nn + lam * c4)
                    else:
                        # The Numba kernel solves this linear case by its Newton, which
                        # returns the bracket's midpoint where the block sum is NaN (infs).
                        gc = c1 - c4 / nn
                        g = tl.where(gc != gc, 0.5 * (gl + g), gc)
                elif RCODE == 3:
                    if IS_MAG:
                        l3w = lam * lam * lam * c4
                        g = c1 + _solve_cubic((3.0 * c2 + l3w) / nn, (l3w * c1 - c3) / nn)
                    else:
                        g = c1 + _solve_cubic(3.0 * c2 / nn, (c4 - c3) / nn)
                else:
                    sa = tl.load(start_row + a)
                    lam_b = lam if IS_MAG else 1.0
                    g = _solve_block(s_row, sa, i + 1, c4, r, lam_b, gl, g, IS_MAG, BLOCK,
                                     D_CAP, MAX_ITER)
            cur_start = tl.load(start_row + a)
            top = a
            gl = tl.load(gam_row + tl.maximum(top - 1, 0))
            go = (top > 0) & (gl < g)
        tl.store(start_row + top, cur_start)
        tl.store(gam_row + top, g)
        tl.store(st_row + top, c0)
        tl.store(st_row + n + top, c1)
        if MOMENTS:
            tl.store(st_row + 2 * n + top, c2)
            tl.store(st_row + 3 * n + top, c3)
            tl.store(st_row + 4 * n + top, c4)
        tl.debug_barrier()
    nb_blocks = top + 1
    tl.store(start_row + nb_blocks, n)
    tl.debug_barrier()

    # 3a. Mark the start of every block but the first.
    for b0 in range(1, nb_blocks, BLOCK):
        boffs = b0 + tl.arange(0, BLOCK)
        bmsk = boffs < nb_blocks
        pos = tl.load(start_row + boffs, mask=bmsk, other=0)
        tl.store(mark_row + pos, tl.full([BLOCK], 1, tl.int32), mask=bmsk)
    tl.debug_barrier()

    # 3b. Block ids by a running cumsum; per-block sums by a segmented scan (deterministic:
    # no atomics), written by the last position of each block.
    carry = tl.zeros([], tl.int32)
    acc_dp = tl.zeros([], tl.float64)
    acc_inf = tl.zeros([], tl.float64)
    acc_w = tl.zeros([], tl.float64)
    for p0 in range(0, n, BLOCK):
        offs = p0 + tl.arange(0, BLOCK)
        msk = offs < n
        mk = tl.load(mark_row + offs, mask=msk, other=0)
        bid = carry + tl.cumsum(mk, 0)
        carry += tl.sum(mk, 0)
        bid = tl.minimum(bid, n - 1)
        tl.store(block_ptr + base + offs, tl.where(has_nan, offs, bid), mask=msk)
        sv = tl.load(s_row + offs, mask=msk, other=0.0).to(tl.float64)
        wv = tl.load(w_row + offs, mask=msk, other=0.0).to(tl.float64)
        vinf = (tl.abs(sv) == float("inf")).to(tl.float64)
        if MOMENTS:
            gb = tl.load(gam_row + bid, mask=msk, other=0.0)
            lam_b = lam if IS_MAG else 1.0
            dp = _dphi((sv - gb) / lam_b, r, RCODE, D_CAP) / lam_b
        else:
            dp = tl.zeros([BLOCK], tl.float64)
        dp = tl.where(msk, dp, 0.0)
        vinf = tl.where(msk, vinf, 0.0)
        wv = tl.where(msk, wv, 0.0)
        # A chunk's first entry continues the previous chunk's block unless a block starts.
        starts = (mk != 0) | (offs == 0)
        first = (offs == p0) & (~starts)
        dp = tl.where(first, dp + acc_dp, dp)
        vinf = tl.where(first, vinf + acc_inf, vinf)
        wv = tl.where(first, wv + acc_w, wv)
        sdp, sinf, sw, _ = tl.associative_scan((dp, vinf, wv, starts.to(tl.int32)), 0,
                                               _segmented_add)
        last = tl.minimum(p0 + BLOCK, n) - 1
        acc_dp = tl.sum(tl.where(offs == last, sdp, 0.0), 0)
        acc_inf = tl.sum(tl.where(offs == last, sinf, 0.0), 0)
        acc_w = tl.sum(tl.where(offs == last, sw, 0.0), 0)
        nxt = tl.load(mark_row + offs + 1, mask=offs + 1 < n, other=1)
        is_end = msk & (nxt != 0)
        tl.store(aux_row + bid, sdp, mask=is_end)
        tl.store(aux_row + n + bid, sinf, mask=is_end)
        tl.store(aux_row + 2 * n + bid, sw, mask=is_end)
    tl.debug_barrier()

    # 3c. Write the outputs.
    nan = float("nan")
    for p0 in range(0, n, BLOCK):
        offs = p0 + tl.arange(0, BLOCK)
        msk = offs < n
        bid = tl.load(block_ptr + base + offs, mask=msk, other=0)
        bid = tl.minimum(tl.maximum(bid, 0), n - 1)
        sv = tl.load(s_row + offs, mask=msk, other=0.0).to(tl.float64)
        wv = tl.load(w_row + offs, mask=msk, other=0.0).to(tl.float64)
        gb = tl.load(gam_row + bid, mask=msk, other=0.0)
        lo = tl.load(start_row + bid, mask=msk, other=0)
        hi = tl.load(start_row + bid + 1, mask=msk, other=1)
        size = (hi - lo).to(tl.float64)
        ninf = tl.load(aux_row + n + bid, mask=msk, other=0.0)
        wsum = tl.load(aux_row + 2 * n + bid, mask=msk, other=0.0)
        st0 = tl.load(st_row + bid, mask=msk, other=1.0)
        st1 = tl.load(st_row + n + bid, mask=msk, other=0.0)
        u = sv - gb
        o, dv, al, bet = _entry_outputs(sv, wv, cw_row + offs, u, gb, size, ninf, wsum, st0, st1,
                                        st_row, aux_row, bid, msk, n, lam, r, KIND, IS_MAG,
                                        WRITE_V, NEED_BETA, RCODE, D_CAP, BLOCK, tl.float64)
        tl.store(out_ptr + base + offs, tl.where(has_nan, nan, o), mask=msk)
        tl.store(d_ptr + base + offs, tl.where(has_nan, nan, dv), mask=msk)
        tl.store(alpha_ptr + base + offs, tl.where(has_nan, nan, al), mask=msk)
        if NEED_BETA:
            tl.store(beta_ptr + base + offs, tl.where(has_nan, nan, bet), mask=msk)


# --------------------------------------------------------------------------------------------
# Python wrapper.


def is_interpreted() -> bool:
    """True when this module's kernel was decorated under ``TRITON_INTERPRET=1`` (runs on CPU)."""
    return type(_pav_kernel).__name__ == "InterpretedFunction"


def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def _rcode(r: float) -> int:
    if r == 1.0:
        return 1
    if r == 3.0:
        return 3
    return 0


def pav_batch_triton(s, w, cw, kind, r, lam, write_v, need_beta, *, block_size=None):
    """`pav_batch` on torch tensors ``[m, n]`` (float32 or float64) with the Triton kernel.

    Args:
      s, w, cw: ``[m, n]`` tensors on one CUDA device (or on CPU when this module was imported
        with ``TRITON_INTERPRET=1``); ``w`` and ``cw`` are cast to ``s``'s dtype.
      kind: ``KIND_L2``, ``KIND_KL``, ``KIND_PNORM`` or ``KIND_MAG`` (see `isotonic.pav`).
      r: the link exponent (``r = 1`` and ``r = 3`` in closed form, others by Newton).
      lam: the magnitude strength (``KIND_MAG`` only).
      write_v: write ``v`` instead of ``u = s - v``.
      need_beta: also return ``beta`` (kl); otherwise ``beta`` has shape ``[m, 0]``.
      block_size: the vector width of the finalize passes (a power of two; default: the row
        length rounded up, between 16 and 1024). Rows longer than it are done in chunks.

    Returns:
      ``(out, d, alpha, beta, block)``: float tensors of ``s``'s dtype and int32 ``block``,
      equal to `pav_batch`'s to rounding (the kernel accumulates in float64).

    Example:
      >>> import torch  # doctest: +SKIP
      >>> s = torch.tensor([[1.0, 3.0, 2.0]], device="cuda")  # doctest: +SKIP
      >>> pav_batch_triton(s, torch.zeros_like(s), torch.ones_like(s), KIND_L2, 1.0, 1.0,
      ...                  True, False)[0]  # doctest: +SKIP
      tensor([[2., 2., 2.]], device='cuda:0')
    """
    if kind not in (KIND_L2, KIND_KL, KIND_PNORM, KIND_MAG):
        raise ValueError(f"kind must be one of KIND_L2/KL/PNORM/MAG (0..3); got {kind!r}.")
    if s.dim() != 2:
        raise ValueError(f"s must be 2-D [m, n]; got shape {tuple(s.shape)}.")
    if s.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"s must be float32 or float64; got {s.dtype}.")
    dev = s.device
    if dev.type == "cpu" and not is_interpreted():
        raise RuntimeError(
            "pav_batch_triton got CPU tensors but Triton is not in interpreter mode: set "
            "TRITON_INTERPRET=1 before softorder._src.isotonic.triton_pav is imported, or use the Numba "
            "kernel (softorder._src.isotonic.pav.pav_batch) on CPU."
        )
    m, n = s.shape
    s = s.contiguous()
    w = w.to(dtype=s.dtype, device=dev).expand(m, n).contiguous()
    cw = cw.to(dtype=s.dtype, device=dev).expand(m, n).contiguous()
    dt = s.dtype
    out = torch.empty((m, n), dtype=dt, device=dev)
    d = torch.empty((m, n), dtype=dt, device=dev)
    alpha = torch.empty((m, n), dtype=dt, device=dev)
    beta = torch.empty((m, n) if need_beta else (m, 0), dtype=dt, device=dev)
    block = torch.empty((m, n), dtype=torch.int32, device=dev)
    if m == 0 or n == 0:
        return out, d, alpha, beta, block
    f64 = torch.float64
    st = torch.empty((m, 5, n), dtype=f64, device=dev)
    gam = torch.empty((m, n), dtype=f64, device=dev)
    start = torch.empty((m, n + 1), dtype=torch.int32, device=dev)
    mark = torch.zeros((m, n), dtype=torch.int32, device=dev)
    aux = torch.empty((m, 3, n), dtype=f64, device=dev)
    if block_size is None:
        block_size = max(16, min(1024, triton.next_power_of_2(n)))
    elif block_size < 1 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two; got {block_size!r}.")
    _pav_kernel[(m,)](
        s, w, cw, out, d, alpha, beta if need_beta else out, block,
        st, gam, start, mark, aux,
        n, _bits(r), _bits(lam),
        KIND=int(kind), RCODE=_rcode(float(r)), WRITE_V=bool(write_v),
        NEED_BETA=bool(need_beta), BLOCK=block_size, D_CAP=_D_CAP,
        MAX_ITER=_NEWTON_MAX_ITER, num_warps=1,
    )
    _infinite_rows_by_numba(s, w, cw, kind, r, lam, write_v, need_beta,
                            (out, d, alpha, beta, block))
    return out, d, alpha, beta, block


def _infinite_rows_by_numba(s, w, cw, kind, r, lam, write_v, need_beta, outs):
    """Rows holding an infinite ``s``, ``w`` or ``cw``: solved again by the Numba kernel, which
    follows the infinity contract of docs/conventions.md (the limit ``M -> infinity`` of
    ``+-M``; l2 by lexicographic PAV, infinite ``s`` of other kinds as segments of their own,
    kl/p-norm closed forms for infinite ``w``), and written back: values and derivatives
    are the Numba kernel's. The kernel itself treats infinities as IEEE numbers, which is not
    that limit. Costs one device sync per call (the test for such rows), and a copy of those
    rows to the host and back where there are any (rare: ``-inf`` padding, say)."""
    bad = (torch.isinf(s).any(1) | torch.isinf(w).any(1) | torch.isinf(cw).any(1)).nonzero()
    if bad.numel() == 0:
        return
    from . import pav as _numba_pav  # Numba: CPU; imported only when needed

    rows = bad[:, 0]
    host = [a[rows].to(torch.float64).cpu().numpy() for a in (s, w, cw)]
    ref = _numba_pav.pav_batch(*host, int(kind), float(r), float(lam), bool(write_v),
                               bool(need_beta))
    for dst, src in zip(outs, ref):
        if dst.shape[1] == 0:
            continue
        dst[rows] = torch.from_numpy(src).to(dtype=dst.dtype, device=dst.device)


def _compile_cuda(kind, r, write_v=False, need_beta=False, dtype="fp64", arch=90):
    """Compile the kernel for a CUDA target without a GPU (a check of the real code path).

    The interpreter does not type-check loops or lower anything; this runs Triton's full
    pipeline (TTIR, TTGIR, LLVM IR, PTX, cubin by the bundled ptxas) for ``sm_<arch>``.
    Needs this module imported *without* ``TRITON_INTERPRET=1``. Returns the compiled kernel.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    ptr = f"*{dtype}"
    signature = {
        "s_ptr": ptr, "w_ptr": ptr, "cw_ptr": ptr, "out_ptr": ptr, "d_ptr": ptr,
        "alpha_ptr": ptr, "beta_ptr": ptr, "block_ptr": "*i32", "st_ptr": "*fp64",
        "gam_ptr": "*fp64", "start_ptr": "*i32", "mark_ptr": "*i32", "aux_ptr": "*fp64",
        "n": "i32", "r_bits": "i64", "lam_bits": "i64",
    }
    constexprs = {
        "KIND": int(kind), "RCODE": _rcode(float(r)), "WRITE_V": bool(write_v),
        "NEED_BETA": bool(need_beta), "BLOCK": 256, "D_CAP": _D_CAP,
        "MAX_ITER": _NEWTON_MAX_ITER,
    }
    signature.update({k: "constexpr" for k in constexprs})
    src = ASTSource(_pav_kernel, signature, constexprs)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": 1})
