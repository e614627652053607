"""Fused CPU kernels: gather + PAV + link + scatter + Jacobian residuals in one pass per row.

The generic row operators (`ops.py` with `projection.project_rows`) compose backend primitives
and make a dozen passes over memory; on CPU these kernels do the same work in one Numba pass
per row, after NumPy's (SIMD) argsort. They call the same `_pav_row` and produce the same
`BlockJacobian` (tests assert both paths agree), so the math still lives in one place: the
PAV kernel and the formulas documented in `projection.py` / `ops.py`.

``perm`` is NumPy's ascending argsort of the sort key; ``reverse`` reads it backwards, giving
the descending order without negating a copy of the input.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import prange

from .._numba import njit
from ..buffers import carve
from ..isotonic.pav import (
    KIND_KL,
    KIND_L2,
    KIND_MAG,
    KIND_PNORM,
    _mean_merge,
    _pav_row,
    _phi,
    chunks,
    use_parallel,
    workspace_specs,
)
from .jacobian import BlockJacobian


def residual_arrays(m, n, dtypes):
    """``[m, n]`` arrays of the given dtypes, from one buffer (see `buffers`)."""
    return carve([((m, n), dt) for dt in dtypes])


W_RHO = 0  # w = (n, n-1, ..., 1)
W_TOPK = 1  # w = (1, ..., 1, 0, ..., 0) with k ones


def _scratch(m, n, parallel, lean=False):
    """Scratch for each chunk of rows: 7 rows of floats (s, w or sign, ones, u, d, alpha,
    beta) and PAV's workspace. ``lean``: only `_l2_scan` (and `_pav_row` on rows holding NaN,
    which return before reading the workspace) will run, so the general kernel's statistics
    table (8 floats per entry: most of the scratch) is left out."""
    nc = chunks(m) if parallel else 1
    specs = workspace_specs(nc, n)
    if lean:
        shape, dt = specs[2]
        specs[2] = ((nc, 0) + tuple(shape[2:]), dt)
    f, start, cog, st = carve([((nc, 7, n), np.float64)] + specs)
    return f, start, cog, st


@njit
def _chunk_scratch(f, start, cog, st, ch):
    fc = f[ch]
    fc[2, :] = 1.0
    return fc, (start[ch], cog[ch], st[ch])


@njit(inline="always")
def _scaled_diff(xa, xb, scale):
    """``(xa - xb) * scale`` without overflow of the difference; 0 for equal entries (also
    equal infinities, and ties under an infinite scale)."""
    if xa == xb:
        return 0.0
    diff = xa - xb
    if math.isinf(diff) and not (math.isinf(xa) or math.isinf(xb)):
        return ((0.5 * xa - 0.5 * xb) * scale) * 2.0  # halves: 0.5 * 5e-324 would round to 0
    return diff * scale


@njit
def _l2_scan(s, w, u, d, al, block, ws):
    """`_pav_row` for ``KIND_L2`` with unit weights on a row of finite ``s`` and ``w`` (what
    the fused kernels' l2 segments are): the same blocks, the same arithmetic (block means of
    ``s`` and ``w`` merged by `_mean_merge`, ``u = (s - mean s) + mean w``) and so the same
    bits, without the general kernel's infinite-entry and weight bookkeeping (several times
    faster; tested equal to `_pav_row`)."""
    n = s.shape[0]
    start, cog, _ = ws
    cen = cog[0]
    off = cog[1]
    cnt = cog[2]
    top = -1
    for i in range(n):
        top += 1
        start[top] = i
        cen[top] = s[i]
        off[top] = -w[i]
        cnt[top] = 1.0
        g = cen[top] + off[top]
        while top > 0 and cen[top - 1] + off[top - 1] < g:
            a = top - 1
            na = cnt[a]
            nb = cnt[top]
            cen[a] = _mean_merge(cen[a], cen[top], na, nb)
            off[a] = -_mean_merge(-off[a], -off[top], na, nb)
            cnt[a] = na + nb
            top = a
            g = cen[a] + off[a]
    start[top + 1] = n
    for b in range(top + 1):
        lo = start[b]
        hi = start[b + 1]
        cb = cen[b]
        ob = off[b]
        ab = 1.0 if hi - lo == 1 else 1.0 / cnt[b]
        for i in range(lo, hi):
            u[i] = (s[i] - cb) - ob
            d[i] = 1.0
            al[i] = ab
            block[i] = b


@njit
def _zside_row(x, perm, reverse, scale, mag, w, winv, kind, r, lam, gap,
               y, in_perm, block, a, b, c, scr):
    n = x.shape[0]
    f, ws = scr
    s = f[0, :n]
    sg = f[1, :n]
    cw = f[2, :n]
    u = f[3, :n]
    d = f[4, :n]
    al = f[5, :n]
    beta = f[6, :0]
    for kk in range(n):
        idx = perm[n - 1 - kk] if reverse else perm[kk]
        in_perm[kk] = idx
        xv = x[idx]
        if mag:
            s[kk] = abs(xv)
            sg[kk] = 1.0 if xv > 0 else (-1.0 if xv < 0 else (0.0 if xv == 0 else xv))
    has_nan = False
    if not mag:
        for kk in range(n):
            if math.isnan(x[kk]):
                has_nan = True
                s[kk] = np.nan
    if mag or has_nan:  # a row holding NaN: NaN everywhere (PAV's convention)
        _pav_row(s, w, cw, kind, r, lam, False, u, d, al, beta, block, winv, ws)
    else:
        # Ranks and masks are translation invariant (sum y is fixed) and two sorted neighbours
        # whose scaled gap exceeds ``gap`` (the range of phi^-1(w)) are never pooled: the row
        # splits into segments there, each solved with s relative to its first entry. So
        # x * scale never overflows, and infinite entries are the ties they are (s = 0).
        # s = scale * x decreases along in_perm whatever the sign of scale (descending ranks
        # have scale < 0 and x ascending), so the signed scaled gap is the one to test.
        nblk = 0
        lo = 0
        while lo < n:
            ref = x[in_perm[lo]]
            hi = lo + 1
            s[lo] = 0.0
            while hi < n:
                xh = x[in_perm[hi]]
                if _scaled_diff(x[in_perm[hi - 1]], xh, scale) > gap:
                    break
                s[hi] = _scaled_diff(xh, ref, scale)
                hi += 1
            if kind == KIND_L2:  # s and w are finite here
                _l2_scan(s[lo:hi], w[lo:hi], u[lo:hi], d[lo:hi], al[lo:hi], block[lo:hi], ws)
            else:
                _pav_row(s[lo:hi], w[lo:hi], cw[lo:hi], kind, r, lam, False, u[lo:hi],
                         d[lo:hi], al[lo:hi], beta, block[lo:hi],
                         winv[lo:hi] if winv.shape[0] > 0 else winv, ws)
            for kk in range(lo, hi):
                block[kk] += nblk
            nblk = block[hi - 1] + 1
            if hi - lo == 1:  # a singleton's Jacobian d (1 - alpha) is exactly 0
                d[lo] = 0.0
            lo = hi
    for kk in range(n):
        idx = in_perm[kk]
        if mag:
            g = sg[kk]
            if g == 0.0:
                y[idx] = 0.0
            else:
                y[idx] = g * (u[kk] + _phi(u[kk] / lam, r)) + 0.0  # no -0.0
            a[kk] = g * d[kk] * g
            b[kk] = -g * d[kk]
            c[kk] = al[kk] * g
        else:
            if kind == KIND_KL:  # d = exp(u), except on infinite entries (d = 0)
                y[idx] = d[kk] if d[kk] > 0.0 else math.exp(u[kk])
            else:
                y[idx] = _phi(u[kk], r)
            a[kk] = d[kk] * scale if d[kk] != 0.0 else 0.0
            b[kk] = -d[kk]
            c[kk] = al[kk] * scale if d[kk] != 0.0 else 0.0


@njit(parallel=True)
def _zside_par(x, perm, reverse, scale, mag, w, winv, kind, r, lam, gap, y, in_perm, block, a,
               b, c, f, start, cog, st):
    m = x.shape[0]
    nc = f.shape[0]
    for ch in prange(nc):
        scr = _chunk_scratch(f, start, cog, st, ch)
        for row in range(ch * m // nc, (ch + 1) * m // nc):
            _zside_row(x[row], perm[row], reverse, scale, mag, w, winv, kind, r, lam, gap,
                       y[row], in_perm[row], block[row], a[row], b[row], c[row], scr)


@njit
def _zside_ser(x, perm, reverse, scale, mag, w, winv, kind, r, lam, gap, y, in_perm, block, a,
               b, c, f, start, cog, st):
    scr = _chunk_scratch(f, start, cog, st, 0)
    for row in range(x.shape[0]):
        _zside_row(x[row], perm[row], reverse, scale, mag, w, winv, kind, r, lam, gap,
                   y[row], in_perm[row], block[row], a[row], b[row], c[row], scr)


_LEAN_CHECK_FROM = 1 << 16
_RESIDUALS = (np.int64, np.int32, np.float64, np.float64, np.float64)
_WEIGHTS_CACHE_N = 1 << 16  # rows up to this long keep their weights (per-call overhead)


@functools.lru_cache(maxsize=64)
def _weights(w_mode, n, k, kind, r):
    """``(w, phi^-1(w) or empty, gap)`` of `zside`: the same for every row and, for one shape
    and option set, every call (kept for short rows; the kernels only read them)."""
    # w is the same for every row: built once, with phi^-1(w) for the p-norm singletons.
    w = np.arange(n, 0, -1.0) if w_mode == W_RHO else (np.arange(n) < k).astype(np.float64)
    winv = np.empty(0)
    if kind == KIND_KL:
        w = np.log(w)
    elif kind == KIND_PNORM:
        winv = w ** (1.0 / r)
    # Sorted neighbours farther apart (scaled) than the range of the roots s_i - phi^-1(w_i)
    # are never pooled: twice that range (plus 1) splits the row safely.
    wl = w if kind != KIND_PNORM else winv
    gap = 2.0 * (float(wl.max() - wl.min()) if n else 0.0) + 1.0
    return w, winv, gap


def zside(x, perm, reverse, scale, *, mag=False, w_mode=W_RHO, k=0, kind=0, r=1.0, lam=1.0):
    """Rank, top-k mask or top-k magnitude of the rows of ``x``: ``(y, BlockJacobian)``.

    ``s = scale * x`` (or ``|x|`` when ``mag``) in descending order, ``w`` = rho or w_k.
    """
    m, n = x.shape
    y = np.empty((m, n))
    in_perm, block, a, b, c = residual_arrays(m, n, _RESIDUALS)
    w, winv, gap = (_weights if n <= _WEIGHTS_CACHE_N else _weights.__wrapped__)(
        w_mode, n, k, kind, r)
    args = (x, perm, bool(reverse), float(scale), bool(mag), w, winv, int(kind), float(r),
            float(lam), gap, y, in_perm, block, a, b, c)
    par = use_parallel(m, n)
    lean = kind == KIND_L2 and not mag  # l2 segments: `_l2_scan` (NaN rows: no workspace)
    (_zside_par if par else _zside_ser)(*args, *_scratch(m, n, par, lean))
    return y, BlockJacobian(in_perm, in_perm, block, a, b, c)


@njit
def _wside_row(x, perm, reverse, negate, scale, kind, r, y, in_perm, block, b, c, scr):
    n = x.shape[0]
    f, ws = scr
    s = f[0, :n]
    w = f[1, :n]
    cw = f[2, :n]
    u = f[3, :n]
    d = f[4, :n]
    al = f[5, :n]
    beta = f[6, :n] if kind == KIND_KL else f[6, :0]
    wmax = -np.inf
    wmin = np.inf
    has_inf = False
    has_nan = False
    for kk in range(n):
        idx = perm[n - 1 - kk] if reverse else perm[kk]
        in_perm[kk] = idx
        w[kk] = -x[idx] if negate else x[idx]
        if math.isinf(w[kk]):
            has_inf = True
        elif math.isnan(w[kk]):
            has_nan = True
        else:
            wv = w[kk] if kind != KIND_PNORM else math.copysign(abs(w[kk]) ** (1.0 / r), w[kk])
            wmax = max(wmax, wv)
            wmin = min(wmin, wv)
    # Gaps of s = rho * scale above the range of the roots' phi^-1(w) pool nothing: beyond
    # that the result does not depend on the scale, so it is capped there (a huge or
    # infinite 1 / strength then gives the exact sort, not an overflow). Not with infinite
    # entries: they pool the row, whose values then depend on the scale.
    # p-norm: phi^-1(w) = |w|^(1/r) under- or overflows for |w| beyond ~1e+-154 (p = 3):
    # S(x, eps) = S(t x, eps t^-(p-1)) / t (homogeneity) with t a power of 2, the Jacobian
    # unchanged (rows with infinities depend on the scale: left as they are).
    tw = 1.0
    if kind == KIND_PNORM and not has_inf and wmax >= wmin:
        amax = 0.0
        amin = np.inf
        for kk in range(n):
            aw = abs(w[kk])
            amax = max(amax, aw)
            if aw > 0.0:
                amin = min(amin, aw)
        if amax > 0.0 and (math.log2(amax) / r > 1000.0 or math.log2(amin) / r < -1000.0):
            tw = 2.0 ** (-round(math.log2(amax)))
            scale = scale * tw ** (1.0 / r)
            wmax = -np.inf
            wmin = np.inf
            for kk in range(n):
                w[kk] *= tw
                wv = math.copysign(abs(w[kk]) ** (1.0 / r), w[kk])
                wmax = max(wmax, wv)
                wmin = min(wmin, wv)
    rng = _scaled_diff(wmax, wmin, 1.0) if wmax >= wmin else 0.0
    sc = min(scale, 2.0 * rng + 1.0) if rng < np.inf and not has_inf else scale
    sc = min(sc, 1e300 / max(n, 1))
    for kk in range(n):
        s[kk] = (n - kk) * sc
    if kind == KIND_L2 and not (has_inf or has_nan):
        _l2_scan(s, w, u, d, al, block, ws)
    else:
        _pav_row(s, w, cw, kind, r, 1.0, False, u, d, al, beta, block, np.empty(0), ws)
    for kk in range(n):
        if kind == KIND_KL:
            v = u[kk]
            b[kk] = 1.0
            c[kk] = beta[kk]
        else:
            v = _phi(u[kk], r) / tw
            b[kk] = al[kk]
            c[kk] = 1.0
        y[kk] = -v if negate else v


@njit(parallel=True)
def _wside_par(x, perm, reverse, negate, scale, kind, r, y, in_perm, block, b, c,
               f, start, cog, st):
    m = x.shape[0]
    nc = f.shape[0]
    for ch in prange(nc):
        scr = _chunk_scratch(f, start, cog, st, ch)
        for row in range(ch * m // nc, (ch + 1) * m // nc):
            _wside_row(x[row], perm[row], reverse, negate, scale, kind, r,
                       y[row], in_perm[row], block[row], b[row], c[row], scr)


@njit
def _wside_ser(x, perm, reverse, negate, scale, kind, r, y, in_perm, block, b, c,
               f, start, cog, st):
    scr = _chunk_scratch(f, start, cog, st, 0)
    for row in range(x.shape[0]):
        _wside_row(x[row], perm[row], reverse, negate, scale, kind, r,
                   y[row], in_perm[row], block[row], b[row], c[row], scr)


def wside(x, perm, reverse, negate, scale, *, kind=0, r=1.0):
    """Soft sort of the rows of ``x``: ``w = -+x`` sorted descending, ``z = scale * rho``."""
    m, n = x.shape
    y = np.empty((m, n))
    in_perm, block, a, b, c = residual_arrays(m, n, _RESIDUALS)
    a.fill(0.0)
    args = (x, perm, bool(reverse), bool(negate), float(scale), int(kind), float(r),
            y, in_perm, block, b, c)
    par = use_parallel(m, n)
    # l2 rows without infinite entries run `_l2_scan`; checking costs a pass over x, paid
    # where the general kernel's statistics table (8 floats per entry) is worth leaving out.
    lean = kind == KIND_L2 and m * n >= _LEAN_CHECK_FROM and not np.isinf(x).any()
    (_wside_par if par else _wside_ser)(*args, *_scratch(m, n, par, lean))
    return y, BlockJacobian(in_perm, None, block, a, b, c)


__all__ = ["zside", "wside", "W_RHO", "W_TOPK", "KIND_MAG"]
