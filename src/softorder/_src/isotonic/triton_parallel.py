r"""An exact parallel pool-adjacent-violators for long rows, in Triton.

Same problem, kinds and outputs as `triton_pav.pav_batch_triton` and the Numba `pav_batch`
(``out``, ``d``, ``alpha``, ``beta``, int32 ``block``); only the schedule differs. The sequential
kernel runs one program per row, so a single row of 1e5 is one thread's latency-bound scan. Here
a row is cut into chunks and the work is spread over ``rows x chunks`` programs.

The math it rests on. For every kind the decreasing isotonic solution ``v`` is unique, and its
blocks are runs where ``v`` is constant (adjacent final blocks have nonincreasing values
``gamma``; equal neighbours do not pool, as in `isotonic.pav._violates`). Two facts follow:

* *Blocks of a sub-row stay pooled.* A block that PAV pools on a contiguous piece of the row is
  a union of blocks of the whole row's solution (PAV may pool adjacent violators in any order,
  and pooling never splits a block). So each chunk can be solved alone.
* *Merging two solved neighbours only pools at the junction.* If ``L`` and ``R`` are solved
  (nonincreasing block values), the only possible violation of ``L ++ R`` is at the
  junction. Pooling it gives one block whose value lies between its parts, which can only violate
  the order with the block just left of it or just right of it; pooling repeats there. The result
  is ``L[:a] ++ [one pooled block] ++ R[b:]``: every other block is kept as it is.

The schedule (each step one kernel launch over its grid):

1. ``_chunk_kernel`` (grid ``rows x chunks``): sequential stack PAV on each chunk of ``CHUNK``
   entries (the sequential kernel's scan), writing the chunk's block list (start, gamma and the
   block statistics) in place, at the chunk's own offset of a per-row scratch.
2. ``_merge_kernel`` (grid ``rows x pairs``), ``ceil(log2(chunks))`` times: neighbouring solved
   groups of chunks are merged pairwise, as a tree. A merge pools the left group's last block
   with the right group's first blocks and/or the left group's previous blocks while they
   violate the order, then moves the right group's untouched blocks down next to it (a vector
   copy). Work per level is O(blocks); the pooling at one junction is sequential (as in PAV, each
   block is pooled once over the whole run).
3. ``_ids_kernel`` (grid ``rows x tiles``): every position finds its block by a vectorized
   binary search over the block starts; per-block sums (``sum phi'``, the count of infinite
   entries, ``sum w``) of blocks lying inside a tile come from a segmented scan and are stored
   directly; the tile's first and last blocks (which may cross tiles) leave partial sums.
4. ``_span_kernel`` (grid ``rows``): a scalar pass over the tiles' partial sums completes the
   blocks crossing tile boundaries (deterministic: no atomics anywhere).
5. ``_out_kernel`` (grid ``rows x tiles``): gathers each position's block values and writes
   ``out``, ``d``, ``alpha``, ``beta`` as the sequential kernel's finalize does.

Statistics are those of the sequential kernel (l2 ``(sum c, sum c (s - w))``, kl ``(LSE s,
LSE w)``, p-norm and magnitude ``(count, mean, M2, M3, sum w)`` with Chan et al.'s merge, the
closed-form cubic for ``r = 3`` and the safeguarded Newton for other ``r``), and the block
helpers are imported from `triton_pav`, so the two kernels solve each block identically.

Precision policy. l2 with float32 (or float16 / bfloat16) inputs runs in float32: its two sums
are kept compensated (a TwoSum error term per sum, in the statistics' spare slots), so a block
value stays within a few float32 ulps of the float64 answer however long the block (tested:
within 1e-5 of the float64 result relative to the row's scale). kl (log-sum-exp of long
blocks), p-norm and magnitude (moment merges, cubic roots, Newton) always run in float64.
float16 / bfloat16 entries are read as they are and accumulated in float32 (l2) or float64.

NaN rows give NaN (``block = arange``) as in the other kernels. Rows holding ``±inf`` are not
sent here: `use_parallel` routes batches with infinite entries to the sequential kernel, which
owns the infinity contract of docs/conventions.md.

Which kernel runs: `use_parallel(m, n)` (see its docstring). Its thresholds are guesses made
without a GPU; ``benchmarks/gpu_check.sh`` measures both kernels so they can be set from data.

This module imports Triton: import it lazily, as `triton_pav`.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

from .regularizers import D_CAP as _D_CAP
from .regularizers import KIND_KL, KIND_L2, KIND_MAG, KIND_PNORM
from .regularizers import NEWTON_MAX_ITER as _NEWTON_MAX_ITER
from .triton_pav import (
    _bits,
    _dphi,
    _entry_outputs,
    _logaddexp,
    _rcode,
    _segmented_add,
    _singleton,
    _solve_block,
    _solve_cubic,
    is_interpreted,
)

__all__ = ["pav_batch_triton_parallel", "use_parallel", "compute_dtype", "PARALLEL_MIN_N",
           "PARALLEL_MIN_N_BIG_BATCH", "BIG_BATCH"]

# The dispatch rule (guesses until a GPU run; see `use_parallel`).
PARALLEL_MIN_N = 2048
PARALLEL_MIN_N_BIG_BATCH = 8192
BIG_BATCH = 1024


# --------------------------------------------------------------------------------------------
# Block helpers.


@triton.jit
def _pool(a0, a1, a2, a3, a4, ga, b0, b1, b2, b3, b4, gb, s_row, start, end, r, lam,
          KIND: tl.constexpr, RCODE: tl.constexpr, BLOCK: tl.constexpr, D_CAP: tl.constexpr,
          MAX_ITER: tl.constexpr):
    """Pool the left block ``a`` (value ``ga``) with its right neighbour ``b`` (``gb``).

    The pooled block covers positions ``[start, end)``; returns its statistics and value.
    l2 keeps ``(sum c, sum c (s - w))`` with their TwoSum errors in ``(c2, c3)``.
    """
    IS_MAG: tl.constexpr = KIND == 3
    if KIND == 0:
        # Knuth's TwoSum, written out (a helper call costs much under the interpreter).
        c0 = a0 + b0
        t0 = c0 - a0
        c1 = a1 + b1
        t1 = c1 - a1
        c2 = a2 + b2 + ((a0 - (c0 - t0)) + (b0 - t0))
        c3 = a3 + b3 + ((a1 - (c1 - t1)) + (b1 - t1))
        c4 = a4
        g = (c1 + c3) / (c0 + c2)
    elif KIND == 1:
        c0 = _logaddexp(a0, b0)
        c1 = _logaddexp(a1, b1)
        c2 = a2
        c3 = a3
        c4 = a4
        g = c0 - c1
    else:
        na = a0
        nb = b0
        nn = na + nb
        c4 = a4 + b4
        c1 = a1
        c2 = a2
        c3 = a3
        if RCODE != 0:
            # Chan et al.'s merge of central moments (left = a, right = b).
            delta = b1 - a1
            c1 = a1 + delta * nb / nn
            c2 = a2 + b2 + delta * delta * na * nb / nn
            c3 = (a3 + b3 + delta * delta * delta * na * nb * (na - nb) / (nn * nn)
                  + 3.0 * delta * (na * b2 - nb * a2) / nn)
        c0 = nn
        if RCODE == 1:
            if IS_MAG:
                g = c1 * nn / (nn + lam * c4)
            else:
                gc = c1 - c4 / nn
                g = tl.where(gc != gc, 0.5 * (ga + gb), gc)
        elif RCODE == 3:
            if IS_MAG:
                l3w = lam * lam * lam * c4
                g = c1 + _solve_cubic((3.0 * c2 + l3w) / nn, (l3w * c1 - c3) / nn)
            else:
                g = c1 + _solve_cubic(3.0 * c2 / nn, (c4 - c3) / nn)
        else:
            lam_b = lam if IS_MAG else 1.0
            g = _solve_block(s_row, start, end, c4, r, lam_b, ga, gb, IS_MAG, BLOCK, D_CAP,
                             MAX_ITER)
    return c0, c1, c2, c3, c4, g


# --------------------------------------------------------------------------------------------
# 1. Sequential PAV on each chunk.


@triton.jit
def _chunk_kernel(
    s_ptr, w_ptr, cw_ptr, st_ptr, gam_ptr, start_ptr, nblk_ptr,
    n, nch, r_bits, lam_bits,
    KIND: tl.constexpr, RCODE: tl.constexpr, CDT: tl.constexpr, CHUNK: tl.constexpr,
    BLOCK: tl.constexpr, D_CAP: tl.constexpr, MAX_ITER: tl.constexpr,
):
    # int64 index arithmetic throughout: the interpreter checks every int32 add for overflow
    # (slow), and the compiled kernel does not care.
    row = tl.program_id(0).to(tl.int64)
    ch = tl.program_id(1).to(tl.int64)
    s_row = s_ptr + row * n
    w_row = w_ptr + row * n
    cw_row = cw_ptr + row * n
    lo = ch * CHUNK
    hi = tl.minimum(lo + CHUNK, n)
    st_row = st_ptr + row * 5 * n + lo  # component c of the chunk's block b at c * n + b
    gam_row = gam_ptr + row * n + lo
    start_row = start_ptr + row * (n + 1) + lo
    r = r_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
    lam = lam_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
    MOMENTS: tl.constexpr = (KIND == 2) or (KIND == 3)

    top = tl.zeros([], tl.int64) - 1
    g = tl.zeros([], CDT)
    c0 = tl.zeros([], CDT)
    c1 = tl.zeros([], CDT)
    c2 = tl.zeros([], CDT)
    c3 = tl.zeros([], CDT)
    c4 = tl.zeros([], CDT)
    cur_start = tl.zeros([], tl.int32)
    for i in range(lo, hi):
        gl = g
        top += 1
        cur_start = (i + tl.zeros([], tl.int64)).to(tl.int32)
        si = tl.load(s_row + i).to(CDT)
        wi = tl.load(w_row + i).to(CDT)
        ci = tl.load(cw_row + i).to(CDT)
        if KIND == 0:  # l2 and kl written out: a helper call is slow under the interpreter
            c0 = ci
            c1 = ci * (si - wi)
            c2 = si * 0.0
            c3 = c2
            g = si - wi
        elif KIND == 1:
            c0 = si
            c1 = wi
            g = si - wi
        else:
            c0, c1, c2, c3, c4, g = _singleton(s_row, i, si, wi, ci, r, lam, KIND, RCODE,
                                               BLOCK, D_CAP, MAX_ITER)
        go = (top > 0) & (gl < g)
        while go:
            a = top - 1
            l0 = tl.load(st_row + a)
            l1 = tl.load(st_row + n + a)
            l2 = tl.load(st_row + 2 * n + a)
            l3 = tl.load(st_row + 3 * n + a)
            l4 = tl.load(st_row + 4 * n + a)
            sa = tl.load(start_row + a)
            c0, c1, c2, c3, c4, g = _pool(l0, l1, l2, l3, l4, gl, c0, c1, c2, c3, c4, g, s_row,
                                          sa, i + 1, r, lam, KIND, RCODE, BLOCK, D_CAP,
                                          MAX_ITER)
            cur_start = sa
            top = a
            gl = tl.load(gam_row + tl.maximum(top - 1, 0))
            go = (top > 0) & (gl < g)
        tl.store(start_row + top, cur_start)
        tl.store(gam_row + top, g)
        tl.store(st_row + top, c0)
        tl.store(st_row + n + top, c1)
        tl.store(st_row + 2 * n + top, c2)
        tl.store(st_row + 3 * n + top, c3)
        if MOMENTS:
            tl.store(st_row + 4 * n + top, c4)
        tl.debug_barrier()
    tl.store(nblk_ptr + row * nch + ch, (top + 1).to(tl.int32))


# --------------------------------------------------------------------------------------------
# 2. Merge neighbouring solved groups of chunks (one tree level per launch).


@triton.jit
def _merge_kernel(
    s_ptr, st_ptr, gam_ptr, start_ptr, nblk_ptr,
    n, nch, span, r_bits, lam_bits,
    KIND: tl.constexpr, RCODE: tl.constexpr, CDT: tl.constexpr, CHUNK: tl.constexpr,
    BLOCK: tl.constexpr, D_CAP: tl.constexpr, MAX_ITER: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    jl = tl.program_id(1).to(tl.int64) * 2 * span
    jr = jl + span
    if jr < nch:
        s_row = s_ptr + row * n
        st_row = st_ptr + row * 5 * n
        gam_row = gam_ptr + row * n
        start_row = start_ptr + row * (n + 1)
        r = r_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
        lam = lam_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
        lbase = jl * CHUNK
        rbase = jr * CHUNK
        rend = tl.minimum((jr + span) * CHUNK, n)
        nbl = tl.load(nblk_ptr + row * nch + jl).to(tl.int64)
        nbr = tl.load(nblk_ptr + row * nch + jr).to(tl.int64)
        # The current block: the left group's last one, at lbase + a.
        a = nbl - 1
        c0 = tl.load(st_row + lbase + a)
        c1 = tl.load(st_row + n + lbase + a)
        c2 = tl.load(st_row + 2 * n + lbase + a)
        c3 = tl.load(st_row + 3 * n + lbase + a)
        c4 = tl.load(st_row + 4 * n + lbase + a)
        g = tl.load(gam_row + lbase + a)
        cur_start = tl.load(start_row + lbase + a)
        ri = tl.zeros([], tl.int64)
        go = nbr > 0
        while go:
            has_r = ri < nbr
            gr = tl.load(gam_row + rbase + ri, mask=has_r, other=0.0)
            take_r = has_r & (g < gr)
            has_l = a > 0
            gl = tl.load(gam_row + lbase + tl.maximum(a - 1, 0))
            take_l = (~take_r) & has_l & (gl < g)
            if take_r:
                q = rbase + ri
                b0 = tl.load(st_row + q)
                b1 = tl.load(st_row + n + q)
                b2 = tl.load(st_row + 2 * n + q)
                b3 = tl.load(st_row + 3 * n + q)
                b4 = tl.load(st_row + 4 * n + q)
                nxt = tl.load(start_row + q + 1, mask=ri + 1 < nbr, other=0)
                end = tl.where(ri + 1 < nbr, nxt, rend)
                c0, c1, c2, c3, c4, g = _pool(c0, c1, c2, c3, c4, g, b0, b1, b2, b3, b4, gr,
                                              s_row, cur_start, end, r, lam, KIND, RCODE,
                                              BLOCK, D_CAP, MAX_ITER)
                ri += 1
            elif take_l:
                q = lbase + a - 1
                b0 = tl.load(st_row + q)
                b1 = tl.load(st_row + n + q)
                b2 = tl.load(st_row + 2 * n + q)
                b3 = tl.load(st_row + 3 * n + q)
                b4 = tl.load(st_row + 4 * n + q)
                sl = tl.load(start_row + q)
                # The current block ends where the right group's next block starts.
                nxt = tl.load(start_row + rbase + ri, mask=ri < nbr, other=0)
                end = tl.where(ri < nbr, nxt, rend)
                c0, c1, c2, c3, c4, g = _pool(b0, b1, b2, b3, b4, gl, c0, c1, c2, c3, c4, g,
                                              s_row, sl, end, r, lam, KIND, RCODE, BLOCK,
                                              D_CAP, MAX_ITER)
                cur_start = sl
                a -= 1
            go = take_r | take_l
        q = lbase + a
        tl.store(st_row + q, c0)
        tl.store(st_row + n + q, c1)
        tl.store(st_row + 2 * n + q, c2)
        tl.store(st_row + 3 * n + q, c3)
        tl.store(st_row + 4 * n + q, c4)
        tl.store(gam_row + q, g)
        tl.store(start_row + q, cur_start)
        # Move the right group's untouched blocks down, after the pooled one (dst <= src, so a
        # forward copy in vectors, each loaded before it is stored, never reads a written slot).
        tl.debug_barrier()
        nmove = nbr - ri
        dst = lbase + a + 1
        src = rbase + ri
        for k0 in range(0, nmove, BLOCK):
            offs = k0 + tl.arange(0, BLOCK)
            msk = offs < nmove
            v0 = tl.load(st_row + src + offs, mask=msk)
            v1 = tl.load(st_row + n + src + offs, mask=msk)
            v2 = tl.load(st_row + 2 * n + src + offs, mask=msk)
            v3 = tl.load(st_row + 3 * n + src + offs, mask=msk)
            v4 = tl.load(st_row + 4 * n + src + offs, mask=msk)
            vg = tl.load(gam_row + src + offs, mask=msk)
            vs = tl.load(start_row + src + offs, mask=msk)
            tl.debug_barrier()
            tl.store(st_row + dst + offs, v0, mask=msk)
            tl.store(st_row + n + dst + offs, v1, mask=msk)
            tl.store(st_row + 2 * n + dst + offs, v2, mask=msk)
            tl.store(st_row + 3 * n + dst + offs, v3, mask=msk)
            tl.store(st_row + 4 * n + dst + offs, v4, mask=msk)
            tl.store(gam_row + dst + offs, vg, mask=msk)
            tl.store(start_row + dst + offs, vs, mask=msk)
            tl.debug_barrier()
        tl.store(nblk_ptr + row * nch + jl, (a + 1 + nmove).to(tl.int32))


# --------------------------------------------------------------------------------------------
# 3-5. Block ids, per-block sums and the outputs, over tiles of BLOCK positions.


@triton.jit
def _ids_kernel(
    s_ptr, w_ptr, gam_ptr, start_ptr, nblk_ptr, nan_ptr, block_ptr, aux_ptr, rec_ptr, bnd_ptr,
    n, nch, ntile, nsteps, r_bits, lam_bits,
    KIND: tl.constexpr, RCODE: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
    D_CAP: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    t = tl.program_id(1)
    base = row * n
    start_row = start_ptr + row * (n + 1)
    gam_row = gam_ptr + base
    aux_row = aux_ptr + row * 3 * n
    r = r_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
    lam = lam_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
    IS_MAG: tl.constexpr = KIND == 3
    MOMENTS: tl.constexpr = (KIND == 2) or (KIND == 3)
    nb = tl.load(nblk_ptr + row * nch)
    has_nan = tl.load(nan_ptr + row) != 0
    p0 = t * BLOCK
    offs = p0 + tl.arange(0, BLOCK)
    msk = offs < n
    last = tl.minimum(p0 + BLOCK, n) - 1
    # Block of each position: the largest b < nb with start[b] <= p (binary search).
    blo = tl.zeros([BLOCK], tl.int32)
    bhi = tl.zeros([BLOCK], tl.int32) + nb
    for _ in range(nsteps):
        mid = (blo + bhi) // 2
        sm = tl.load(start_row + mid, mask=msk, other=0)
        wide = bhi - blo > 1
        le = sm <= offs
        blo = tl.where(wide & le, mid, blo)
        bhi = tl.where(wide & (~le), mid, bhi)
    bid = blo
    tl.store(block_ptr + base + offs, tl.where(has_nan, offs, bid), mask=msk)
    bstart = tl.load(start_row + bid, mask=msk, other=0)
    bend = tl.load(start_row + bid + 1, mask=msk, other=0)
    sv = tl.load(s_ptr + base + offs, mask=msk, other=0.0).to(CDT)
    wv = tl.load(w_ptr + base + offs, mask=msk, other=0.0).to(CDT)
    vinf = (tl.abs(sv) == float("inf")).to(CDT)
    if MOMENTS:
        gb = tl.load(gam_row + bid, mask=msk, other=0.0)
        lam_b = lam if IS_MAG else 1.0
        dp = _dphi((sv - gb) / lam_b, r, RCODE, D_CAP) / lam_b
    else:
        dp = tl.zeros([BLOCK], CDT)
    dp = tl.where(msk, dp, 0.0)
    vinf = tl.where(msk, vinf, 0.0)
    wv = tl.where(msk, wv, 0.0)
    starts = (bstart == offs) | (offs == p0)
    sdp, sinf, sw, _ = tl.associative_scan((dp, vinf, wv, starts.to(tl.int32)), 0,
                                           _segmented_add)
    bfirst = tl.sum(tl.where(offs == p0, bid, 0), 0)
    blast = tl.sum(tl.where(offs == last, bid, 0), 0)
    # Blocks strictly inside the tile: their sums are complete at their last position.
    is_end = msk & (bend == offs + 1) & (bid != bfirst) & (bid != blast)
    tl.store(aux_row + bid, sdp, mask=is_end)
    tl.store(aux_row + n + bid, sinf, mask=is_end)
    tl.store(aux_row + 2 * n + bid, sw, mask=is_end)
    # Partial sums of the first block (up to its end in the tile) and the last block.
    fend = tl.minimum(tl.sum(tl.where(offs == p0, bend, 0), 0), last + 1) - 1
    rec = rec_ptr + (row * ntile + t) * 6
    tl.store(rec + 0, tl.sum(tl.where(offs == fend, sdp, 0), 0))
    tl.store(rec + 1, tl.sum(tl.where(offs == fend, sinf, 0), 0))
    tl.store(rec + 2, tl.sum(tl.where(offs == fend, sw, 0), 0))
    tl.store(rec + 3, tl.sum(tl.where(offs == last, sdp, 0), 0))
    tl.store(rec + 4, tl.sum(tl.where(offs == last, sinf, 0), 0))
    tl.store(rec + 5, tl.sum(tl.where(offs == last, sw, 0), 0))
    tl.store(bnd_ptr + (row * ntile + t) * 2, bfirst)
    tl.store(bnd_ptr + (row * ntile + t) * 2 + 1, blast)


@triton.jit
def _span_kernel(aux_ptr, rec_ptr, bnd_ptr, n, ntile):
    """Complete the sums of the tiles' first and last blocks, in order over the tiles."""
    row = tl.program_id(0).to(tl.int64)
    aux_row = aux_ptr + row * 3 * n
    rec_row = rec_ptr + row * ntile * 6
    bnd_row = bnd_ptr + row * ntile * 2
    cur = tl.load(bnd_row)
    a0 = tl.load(rec_row)
    a1 = tl.load(rec_row + 1)
    a2 = tl.load(rec_row + 2)
    for t in range(0, ntile):
        bf = tl.load(bnd_row + 2 * t)
        bl = tl.load(bnd_row + 2 * t + 1)
        f0 = tl.load(rec_row + 6 * t)
        f1 = tl.load(rec_row + 6 * t + 1)
        f2 = tl.load(rec_row + 6 * t + 2)
        if t > 0:
            if bf == cur:  # the block continues from the previous tile
                a0 += f0
                a1 += f1
                a2 += f2
            else:  # the previous block ended with the previous tile
                tl.store(aux_row + cur, a0)
                tl.store(aux_row + n + cur, a1)
                tl.store(aux_row + 2 * n + cur, a2)
                cur = bf
                a0 = f0
                a1 = f1
                a2 = f2
        if bl != bf:  # the first block ends inside this tile; the last one opens
            tl.store(aux_row + cur, a0)
            tl.store(aux_row + n + cur, a1)
            tl.store(aux_row + 2 * n + cur, a2)
            cur = bl
            a0 = tl.load(rec_row + 6 * t + 3)
            a1 = tl.load(rec_row + 6 * t + 4)
            a2 = tl.load(rec_row + 6 * t + 5)
    tl.store(aux_row + cur, a0)
    tl.store(aux_row + n + cur, a1)
    tl.store(aux_row + 2 * n + cur, a2)


@triton.jit
def _out_kernel(
    s_ptr, w_ptr, cw_ptr, out_ptr, d_ptr, alpha_ptr, beta_ptr, block_ptr, nan_ptr,
    st_ptr, gam_ptr, start_ptr, aux_ptr,
    n, r_bits, lam_bits,
    KIND: tl.constexpr, RCODE: tl.constexpr, CDT: tl.constexpr, WRITE_V: tl.constexpr,
    NEED_BETA: tl.constexpr, BLOCK: tl.constexpr, D_CAP: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    t = tl.program_id(1)
    base = row * n
    st_row = st_ptr + row * 5 * n
    gam_row = gam_ptr + base
    start_row = start_ptr + row * (n + 1)
    aux_row = aux_ptr + row * 3 * n
    r = r_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
    lam = lam_bits.to(tl.int64).to(tl.float64, bitcast=True).to(CDT)
    IS_MAG: tl.constexpr = KIND == 3
    has_nan = tl.load(nan_ptr + row) != 0
    offs = t * BLOCK + tl.arange(0, BLOCK)
    msk = offs < n
    bid = tl.load(block_ptr + base + offs, mask=msk, other=0)
    bid = tl.minimum(tl.maximum(bid, 0), n - 1)
    sv = tl.load(s_ptr + base + offs, mask=msk, other=0.0).to(CDT)
    wv = tl.load(w_ptr + base + offs, mask=msk, other=0.0).to(CDT)
    gb = tl.load(gam_row + bid, mask=msk, other=0.0)
    lo = tl.load(start_row + bid, mask=msk, other=0)
    hi = tl.load(start_row + bid + 1, mask=msk, other=1)
    size = (hi - lo).to(CDT)
    ninf = tl.load(aux_row + n + bid, mask=msk, other=0.0)
    wsum = tl.load(aux_row + 2 * n + bid, mask=msk, other=0.0)
    st0 = tl.load(st_row + bid, mask=msk, other=1.0)
    st1 = tl.load(st_row + n + bid, mask=msk, other=0.0)
    u = sv - gb
    if KIND == 0:  # the compensated l2 weight sum (its error term in the spare slot)
        st0 = st0 + tl.load(st_row + 2 * n + bid, mask=msk, other=0.0)
    o, dv, al, bet = _entry_outputs(sv, wv, cw_ptr + base + offs, u, gb, size, ninf, wsum, st0,
                                    st1, st_row, aux_row, bid, msk, n, lam, r, KIND, IS_MAG,
                                    WRITE_V, NEED_BETA, RCODE, D_CAP, BLOCK, CDT)
    nan = float("nan")
    tl.store(out_ptr + base + offs, tl.where(has_nan, nan, o), mask=msk)
    tl.store(d_ptr + base + offs, tl.where(has_nan, nan, dv), mask=msk)
    tl.store(alpha_ptr + base + offs, tl.where(has_nan, nan, al), mask=msk)
    if NEED_BETA:
        tl.store(beta_ptr + base + offs, tl.where(has_nan, nan, bet), mask=msk)


# --------------------------------------------------------------------------------------------
# Python side.


def compute_dtype(kind, dtype):
    """The dtype the parallel kernel computes in: float32 for l2 on float32 or narrower inputs
    (compensated sums keep it within 1e-5 of float64), float64 for everything else."""
    narrow = dtype in (torch.float32, torch.float16, torch.bfloat16)
    return torch.float32 if (kind == KIND_L2 and narrow) else torch.float64


def use_parallel(m, n, *tensors):
    """Whether `pav_batch_triton_parallel` (rather than the one-program-per-row kernel) runs.

    The rule: rows of at least ``PARALLEL_MIN_N`` (2048) entries when the batch is below
    ``BIG_BATCH`` (1024) rows, and rows of at least ``PARALLEL_MIN_N_BIG_BATCH`` (8192) for
    larger batches (there, one program per row already fills the GPU and the extra passes of
    the parallel kernel cost more than the parallelism gains). Batches holding ``±inf`` go to
    the sequential kernel (it owns the infinity contract); checking costs one device sync, paid
    only for rows long enough to qualify. ``SOFTORDER_TRITON_PAV=sequential|parallel`` forces
    one kernel. The thresholds are guesses made without a GPU: ``benchmarks/gpu_check.sh``
    times both kernels so they can be set from measurements.
    """
    force = os.environ.get("SOFTORDER_TRITON_PAV", "auto")
    if force == "sequential":
        return False
    if force != "parallel":
        if n < PARALLEL_MIN_N or (m >= BIG_BATCH and n < PARALLEL_MIN_N_BIG_BATCH):
            return False
    if not tensors:
        return True
    return not bool(torch.stack([torch.isinf(t).any() for t in tensors]).any())  # one sync


def _default_chunk(n):
    return 256 if n >= 4096 else 128


def pav_batch_triton_parallel(s, w, cw, kind, r, lam, write_v, need_beta, *, chunk=None,
                              block_size=None):
    """`pav_batch_triton` by the chunked, tree-merged parallel PAV (module docstring).

    Args:
      s, w, cw, kind, r, lam, write_v, need_beta: as `triton_pav.pav_batch_triton`; ``s`` may
        also be float16 / bfloat16 (read as is, accumulated in float32 or float64).
      chunk: entries per chunk of the first, sequential pass (any positive integer; default 128
        or 256 by row length). Tests use tiny chunks to force many junction merges.
      block_size: the vector width of the copy, id and output passes (a power of two; default
        256, or the row length rounded up when smaller, at least 16).

    Returns:
      ``(out, d, alpha, beta, block)`` as `pav_batch_triton` (``beta`` is ``[m, 0]`` unless
      ``need_beta``), equal to the Numba kernel's to rounding.

    Example:
      >>> import torch  # doctest: +SKIP
      >>> s = torch.tensor([[1.0, 3.0, 2.0, 0.0]], device="cuda")  # doctest: +SKIP
      >>> pav_batch_triton_parallel(s, torch.zeros_like(s), torch.ones_like(s), KIND_L2, 1.0,
      ...                           1.0, True, False, chunk=2)[0]  # doctest: +SKIP
      tensor([[2., 2., 2., 0.]], device='cuda:0')
    """
    if kind not in (KIND_L2, KIND_KL, KIND_PNORM, KIND_MAG):
        raise ValueError(f"kind must be one of KIND_L2/KL/PNORM/MAG (0..3); got {kind!r}.")
    if s.dim() != 2:
        raise ValueError(f"s must be 2-D [m, n]; got shape {tuple(s.shape)}.")
    if s.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f"s must be a floating dtype (16, 32 or 64 bits); got {s.dtype}.")
    dev = s.device
    if dev.type == "cpu" and not is_interpreted():
        raise RuntimeError(
            "pav_batch_triton_parallel got CPU tensors but Triton is not in interpreter mode: "
            "set TRITON_INTERPRET=1 before softorder's Triton modules are imported.")
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
    chunk = _default_chunk(n) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}.")
    if block_size is None:
        block_size = max(16, min(256, triton.next_power_of_2(n)))
    elif block_size < 1 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two; got {block_size!r}.")
    cdt = compute_dtype(kind, dt)
    tcdt = tl.float32 if cdt == torch.float32 else tl.float64
    nch = -(-n // chunk)
    ntile = -(-n // block_size)
    st = torch.zeros((m, 5, n), dtype=cdt, device=dev)
    gam = torch.empty((m, n), dtype=cdt, device=dev)
    start = torch.empty((m, n + 1), dtype=torch.int32, device=dev)
    start[:, n] = n
    nblk = torch.empty((m, nch), dtype=torch.int32, device=dev)
    aux = torch.empty((m, 3, n), dtype=cdt, device=dev)
    rec = torch.empty((m, ntile, 6), dtype=cdt, device=dev)
    bnd = torch.empty((m, ntile, 2), dtype=torch.int32, device=dev)
    nan = (torch.isnan(s).any(1) | torch.isnan(w).any(1) | torch.isnan(cw).any(1)).to(
        torch.int32)
    rb, lb = _bits(r), _bits(lam)
    common = dict(KIND=int(kind), RCODE=_rcode(float(r)), CDT=tcdt)
    solve = dict(BLOCK=block_size, D_CAP=_D_CAP, MAX_ITER=_NEWTON_MAX_ITER)
    _chunk_kernel[(m, nch)](s, w, cw, st, gam, start, nblk, n, nch, rb, lb, CHUNK=chunk,
                            **common, **solve, num_warps=1)
    span = 1
    while span < nch:
        npairs = -(-nch // (2 * span))
        # Several warps: the pooling loop only loads; the copy's loads and stores are
        # separated by barriers.
        _merge_kernel[(m, npairs)](s, st, gam, start, nblk, n, nch, span, rb, lb, CHUNK=chunk,
                                   **common, **solve, num_warps=4)
        span *= 2
    # After the last level the row's blocks are start[0:nb]; start[nb] must be n.
    nb = nblk[:, :1].to(torch.int64)
    start.scatter_(1, nb, torch.full_like(nb, n, dtype=torch.int32))
    nsteps = max(1, math.ceil(math.log2(n + 1)))
    _ids_kernel[(m, ntile)](s, w, gam, start, nblk, nan, block, aux, rec, bnd, n, nch, ntile,
                            nsteps, rb, lb, **common, BLOCK=block_size, D_CAP=_D_CAP,
                            num_warps=4)
    _span_kernel[(m,)](aux, rec, bnd, n, ntile, num_warps=1)
    _out_kernel[(m, ntile)](s, w, cw, out, d, alpha, beta if need_beta else out, block, nan,
                            st, gam, start, aux, n, rb, lb, **common, WRITE_V=bool(write_v),
                            NEED_BETA=bool(need_beta), BLOCK=block_size, D_CAP=_D_CAP,
                            num_warps=4)
    return out, d, alpha, beta, block


def _compile_cuda(kind, r, dtype="fp32", arch=90):
    """Compile every kernel of this module for ``sm_<arch>`` without a GPU (a real-compiler
    check of what the interpreter does not check: loop-carried types, control flow).

    Needs this module imported *without* ``TRITON_INTERPRET=1``. Returns the compiled kernels.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    cdt = "fp32" if (kind == KIND_L2 and dtype != "fp64") else "fp64"
    c = dict(KIND=int(kind), RCODE=_rcode(float(r)),
             CDT=tl.float32 if cdt == "fp32" else tl.float64)
    p, cp = f"*{dtype}", f"*{cdt}"
    specs = [
        (_chunk_kernel, dict(s_ptr=p, w_ptr=p, cw_ptr=p, st_ptr=cp, gam_ptr=cp,
                             start_ptr="*i32", nblk_ptr="*i32", n="i32", nch="i32",
                             r_bits="i64", lam_bits="i64"),
         dict(c, CHUNK=128, BLOCK=256, D_CAP=_D_CAP, MAX_ITER=_NEWTON_MAX_ITER)),
        (_merge_kernel, dict(s_ptr=p, st_ptr=cp, gam_ptr=cp, start_ptr="*i32", nblk_ptr="*i32",
                             n="i32", nch="i32", span="i32", r_bits="i64", lam_bits="i64"),
         dict(c, CHUNK=128, BLOCK=256, D_CAP=_D_CAP, MAX_ITER=_NEWTON_MAX_ITER)),
        (_ids_kernel, dict(s_ptr=p, w_ptr=p, gam_ptr=cp, start_ptr="*i32", nblk_ptr="*i32",
                           nan_ptr="*i32", block_ptr="*i32", aux_ptr=cp, rec_ptr=cp,
                           bnd_ptr="*i32", n="i32", nch="i32", ntile="i32", nsteps="i32",
                           r_bits="i64", lam_bits="i64"),
         dict(c, BLOCK=256, D_CAP=_D_CAP)),
        (_span_kernel, dict(aux_ptr=cp, rec_ptr=cp, bnd_ptr="*i32", n="i32", ntile="i32"), {}),
        (_out_kernel, dict(s_ptr=p, w_ptr=p, cw_ptr=p, out_ptr=p, d_ptr=p, alpha_ptr=p,
                           beta_ptr=p, block_ptr="*i32", nan_ptr="*i32", st_ptr=cp,
                           gam_ptr=cp, start_ptr="*i32", aux_ptr=cp, n="i32", r_bits="i64",
                           lam_bits="i64"),
         dict(c, WRITE_V=False, NEED_BETA=kind == KIND_KL, BLOCK=256, D_CAP=_D_CAP)),
    ]
    done = []
    for fn, sig, constexprs in specs:
        sig = dict(sig)
        sig.update({k: "constexpr" for k in constexprs})
        src = ASTSource(fn, sig, constexprs)
        done.append(triton.compile(src, target=GPUTarget("cuda", arch, 32),
                                   options={"num_warps": 1}))
    return done
