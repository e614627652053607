"""Pool-adjacent-violators for every regularizer of DESIGN §1, batched over rows with Numba.

All kernels solve the *decreasing* problem

    v = argmin_{v_1 >= ... >= v_n}  sum_i R*(s_i - v_i) + <w, v>          (KIND_L2/KL/PNORM)
    v = argmin_{v_1 >= ... >= v_n}  sum_i R*(s_i - v_i) + 1/2 w_i v_i^2    (KIND_MAG)

row by row. On each block B of the solution ``v = gamma_B`` solves the block equation

    l2 (sample weights c):  gamma = sum_B c (s - w) / sum_B c
    kl:                     gamma = LSE(s_B) - LSE(w_B)                 (w given in log space)
    p-norm, r = q - 1:      sum_B phi(s_i - gamma) = sum_B w_i,   phi(u) = sign(u) |u|^r
    magnitude:              sum_B phi_lam(s_i - gamma) = gamma sum_B w_i,
                            phi_lam(u) = sign(u) (|u| / lam)^r

Each kernel writes, per sorted position: ``out`` (``v`` if ``write_v`` else ``u = s - v``),
``d = phi'(u)`` (magnitude: ``1 + phi'(u)``; p-norm singletons: 0, since their z-Jacobian
``d (1 - alpha)`` vanishes), ``alpha`` (the weights of ``d gamma / d s`` on the block),
``beta`` (kl only: ``softmax(w_B)``, the weights of ``-d gamma / d w``), and ``block``: the
integer id of the block (0, 1, ... along the row). Derivatives are built from these and never
from comparing floats.

Precision: a block's value is kept as ``center + offset`` (center: a mean of ``s``, or
``max s`` for kl) and ``u_i = (s_i - center) - offset``, so ``u`` keeps full precision when
``|s| >> |u|`` (inputs of 1e9 with a strength of 1e-6, say).

A row holding NaN gets NaN everywhere. Entries of ``s`` at +-inf stay in blocks of their own
(their gamma is infinite and cannot be pooled with a finite one); their ``u`` is the hard value
``phi^-1(mean_B w)`` and their derivative weights are zero.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np
from numba import prange

from .._numba import njit
from ..buffers import carve
from .regularizers import D_CAP as _D_CAP
from .regularizers import KIND_KL, KIND_L2, KIND_MAG, KIND_PNORM, NEWTON_MAX_ITER, NEWTON_RTOL


@njit(inline="always")
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    m = max(a, b)
    if m == np.inf:
        return np.inf
    return m + math.log(math.exp(a - m) + math.exp(b - m))


@njit(inline="always")
def _phi(u, r):
    au = abs(u)
    if r == 1.0:
        return u
    if r == 3.0:
        return u * u * u
    if r == 2.0:
        return u * au
    p = math.sqrt(au) if r == 0.5 else au**r
    return p if u >= 0 else -p


@njit(inline="always")
def _phi_inv(y, r):
    ay = abs(y)
    if r == 1.0:
        return y
    if r == 3.0:
        return np.cbrt(y)
    p = math.sqrt(ay) if r == 2.0 else (ay * ay if r == 0.5 else ay ** (1.0 / r))
    return p if y >= 0 else -p


@njit(inline="always")
def _dphi(u, r):
    """phi'(u) = r |u|^(r-1), capped at _D_CAP where it is infinite (r < 1, u = 0)."""
    if r == 1.0:
        return 1.0
    au = abs(u)
    if r == 3.0:
        return 3.0 * au * au
    if r == 2.0:
        return 2.0 * au
    if r < 1.0:
        if au == 0.0:
            return _D_CAP
        return min(0.5 / math.sqrt(au) if r == 0.5 else r * au ** (r - 1.0), _D_CAP)
    return r * au ** (r - 1.0)


@njit
def _solve_cubic(a, c):
    """The real root t of t^3 + a t + c = 0 for a >= 0 (one real root, f increasing).

    Newton from ``-c / a`` (linear regime) or ``-cbrt(c)`` (cubic regime) converges in a few
    steps; the hyperbolic closed form is the fallback.
    """
    if c == 0.0:
        return 0.0
    ac = abs(c)
    # The root lies between 0 and the start; Newton from either start converges monotonically
    # (f is convex where t > 0 and concave where t < 0).
    if a > 0.0 and a * a * a >= c * c:
        t = -c / a
    else:
        t = -math.copysign(np.cbrt(ac), c)
    for _ in range(30):
        t2 = t * t
        f = t2 * t + a * t + c
        fp = 3.0 * t2 + a
        if fp <= 0.0:
            break
        step = f / fp
        t -= step
        if abs(step) <= 4e-16 * abs(t):
            return t
    if a <= 0.0:
        return -math.copysign(ac ** (1.0 / 3.0), c)
    m = math.sqrt(a / 3.0)
    return -2.0 * m * math.sinh(math.asinh(1.5 * c / (a * m)) / 3.0)


@njit
def _solve_block(s, start, end, c, wsum, r, lam, mag, lo, hi, g0=np.nan):
    """Root g' of F(g') = sum_B phi_lam(s_i - c - g') - (c + g' if mag else 1) * wsum.

    The block value is gamma = c + g' (c: a reference entry, for precision). F is decreasing
    with F(lo) >= 0 >= F(hi). Safeguarded Newton from ``g0`` (default: the bracket's middle):
    a step that leaves the bracket bisects.
    """
    if not (lo <= hi):
        lo, hi = hi, lo
    g = g0 if lo < g0 < hi else 0.5 * (lo + hi)
    # F is a sum of end - start terms: below this multiple of sum |terms| its sign is rounding.
    noise = 2.2e-16 * math.sqrt(end - start + 1.0)
    for _ in range(NEWTON_MAX_ITER):
        f = 0.0
        fp = 0.0
        fabs = 0.0
        for i in range(start, end):
            u = ((s[i] - c) - g) / lam
            ph = _phi(u, r)
            f += ph
            fabs += abs(ph)
            fp += _dphi(u, r) / lam
        if mag:
            f -= (c + g) * wsum
            fabs += abs((c + g) * wsum)
            fp += wsum
        else:
            f -= wsum
            fabs += abs(wsum)
        if abs(f) <= noise * fabs:
            return g
        if f > 0.0:
            lo = g
        elif f < 0.0:
            hi = g
        if fp > 0.0:
            gn = g + f / fp
        else:
            gn = 0.5 * (lo + hi)
        if not (lo < gn < hi):
            gn = 0.5 * (lo + hi)
        tol = NEWTON_RTOL * max(abs(g), abs(gn), 1e-300)
        if abs(gn - g) <= tol or hi - lo <= tol:
            return gn
        g = gn
    return g


@njit
def _mean_merge(ma, mb, na, nb):
    if ma == mb:  # also keeps equal infinities (ties at +-inf) finite-free of NaN
        return ma
    return ma + (mb - ma) * (nb / (na + nb))


def workspace_specs(nc, n):
    """Shapes of `_pav_row`'s scratch for ``nc`` chunks of rows of length ``n`` (block starts,
    centers/offsets/values, statistics): allocated once per call, reused row after row."""
    return [((nc, n + 1), np.int64), ((nc, 3, n), np.float64), ((nc, n, 5), np.float64)]


@njit
def _bottom_up(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st, top, lo, hi):
    """Bottom-up PAV of positions ``[lo, hi)``: pushes its blocks after block ``top`` (never
    merging into those) and returns the new top. Cost: O(hi - lo) for l2, kl and r in {1, 3};
    for other r each merge re-solves the merged block (O(block) per merge)."""
    floor = top + 1
    cubic = r == 3.0
    for i in range(lo, hi):
        top += 1
        start[top] = i
        si = s[i]
        wi = w[i]
        center[top] = si
        if kind == KIND_L2:
            st[top, 0] = cw[i]
            st[top, 1] = si
            st[top, 2] = wi
            offset[top] = -wi
        elif kind == KIND_KL:
            # LSE(s_B) = m + log(e): m = max_B s, e = sum_B exp(s - m) (linear); same for w.
            st[top, 0] = si
            st[top, 2] = 1.0
            st[top, 1] = wi
            st[top, 3] = 1.0
            offset[top] = -wi
        else:
            st[top, 0] = 1.0
            st[top, 1] = si
            st[top, 2] = 0.0
            st[top, 3] = 0.0
            st[top, 4] = wi
            if kind == KIND_PNORM:
                offset[top] = -(winv[i] if winv.shape[0] > 0 else _phi_inv(wi, r))
            elif wi == 0.0 or math.isinf(si):
                offset[top] = 0.0
            elif r == 1.0:
                offset[top] = -si * (lam * wi / (1.0 + lam * wi))
            elif cubic:
                l3w = lam * lam * lam * wi
                offset[top] = _solve_cubic(l3w, l3w * si)
            else:
                offset[top] = _solve_block(s, i, i + 1, si, wi, r, lam, True,
                                           min(0.0, si) - si, max(0.0, si) - si)
        gam[top] = center[top] + offset[top]
        while top > floor and gam[top - 1] <= gam[top]:
            a = top - 1
            gl = gam[a]
            gr = gam[top]
            if kind == KIND_L2:
                ca = st[a, 0]
                cb = st[top, 0]
                st[a, 1] = _mean_merge(st[a, 1], st[top, 1], ca, cb)
                st[a, 2] = _mean_merge(st[a, 2], st[top, 2], ca, cb)
                st[a, 0] = ca + cb
                center[a] = st[a, 1]
                offset[a] = -st[a, 2]
            elif kind == KIND_KL:
                for col in (0, 1):  # (max, linear sum) pairs for s (cols 0, 2) and w (1, 3)
                    ma = st[a, col]
                    mb = st[top, col]
                    if math.isinf(ma) or math.isinf(mb):  # infinite entries: see finalize
                        st[a, col] = max(ma, mb)
                        st[a, col + 2] = 1.0
                    elif ma >= mb:
                        st[a, col + 2] += st[top, col + 2] * math.exp(mb - ma)
                    else:
                        st[a, col + 2] = st[a, col + 2] * math.exp(ma - mb) + st[top, col + 2]
                        st[a, col] = mb
                center[a] = st[a, 0]
                offset[a] = math.log(st[a, 2] / st[a, 3]) - st[a, 1]
            else:
                na = st[a, 0]
                nb = st[top, 0]
                nn = na + nb
                st[a, 4] += st[top, 4]
                wsum = st[a, 4]
                if cubic or (kind == KIND_MAG and r == 1.0):
                    # Chan et al.'s stable merge of central moments.
                    delta = st[top, 1] - st[a, 1]
                    mean = st[a, 1] + delta * nb / nn
                    m2 = st[a, 2] + st[top, 2] + delta * delta * na * nb / nn
                    m3 = (
                        st[a, 3]
                        + st[top, 3]
                        + delta * delta * delta * na * nb * (na - nb) / (nn * nn)
                        + 3.0 * delta * (na * st[top, 2] - nb * st[a, 2]) / nn
                    )
                    st[a, 1] = mean
                    st[a, 2] = m2
                    st[a, 3] = m3
                    center[a] = mean
                st[a, 0] = nn
                if kind == KIND_MAG and r == 1.0:
                    offset[a] = -st[a, 1] * (lam * wsum / (nn + lam * wsum))
                elif cubic:
                    mean = st[a, 1]
                    if kind == KIND_PNORM:
                        # n t^3 + 3 M2 t + (W - M3) = 0, gamma = mean + t
                        offset[a] = _solve_cubic(3.0 * st[a, 2] / nn, (wsum - st[a, 3]) / nn)
                    else:
                        l3w = lam * lam * lam * wsum
                        offset[a] = _solve_cubic((3.0 * st[a, 2] + l3w) / nn,
                                                 (l3w * mean - st[a, 3]) / nn)
                else:
                    c = center[a]
                    offset[a] = _solve_block(
                        s, start[a], i + 1, c, wsum, r, lam if kind == KIND_MAG else 1.0,
                        kind == KIND_MAG, gl - c, gr - c, 0.5 * (gl + gr) - c,
                    )
            top -= 1
            gam[top] = center[top] + offset[top]
    return top


# Rows longer than this, with a general exponent r (not 1 or 3: no closed-form merge), are
# split top-down (`_topdown`); shorter segments run bottom-up PAV.
TOPDOWN_MIN = 64


@njit
def _use_topdown(s, w, kind, r):
    if not (kind == KIND_PNORM or kind == KIND_MAG) or r == 1.0 or r == 3.0:
        return False
    if s.shape[0] <= TOPDOWN_MIN:
        return False
    for i in range(s.shape[0]):  # infinite entries: the bottom-up kernel's blocks of their own
        if math.isinf(s[i]) or math.isinf(w[i]):
            return False
    return True


@njit
def _split(s, w, lo, hi, c, g, r, lam, mag, h, at_root):
    """Prefix sums Q_k = sum_{lo <= i < k} h_i(t) of the objective's derivative at the level
    t = c + g, h_i(t) = (w_i t if mag else w_i) - phi((s_i - t) / lam), ``h`` scratch.

    Returns the smallest minimizer k of Q (positions lo..k-1 are exactly those whose solution
    exceeds t) and whether every Q_k is >= 0 up to its rounding. Q_k is summed from the left
    over the first half and as minus the suffix sum over the second (exact when t is the
    pooled root, Q_hi = 0), so that each is accurate to its own terms: a few tiny trailing
    terms decide a split, however large the others. Without ``at_root`` (any other level)
    all of Q is summed from the left."""
    t = c + g
    m = (lo + hi) // 2 if at_root else hi
    tiny = 4.4e-16 * math.sqrt(hi - lo + 1.0)
    clean = True
    q = 0.0
    qabs = 0.0
    qmin = 0.0
    k = lo
    for i in range(lo, hi):
        ph = _phi(((s[i] - c) - g) / lam, r)
        wt = w[i] * t if mag else w[i]
        h[i] = wt - ph
        if i < m:
            q += h[i]
            qabs += abs(wt) + abs(ph)
            if q < qmin:
                qmin = q
                k = i + 1
            if q < -tiny * qabs:
                clean = False
    q = 0.0
    qabs = 0.0
    kr = hi
    qrmin = 0.0
    for i in range(hi - 1, m - 1, -1):  # Q_i = -(h_i + ... + h_{hi-1})
        q -= h[i]
        qabs += abs(h[i])
        if q <= qrmin:
            qrmin = q
            kr = i
        if q < -tiny * qabs:
            clean = False
    if qrmin < qmin:
        k = kr
    return k, clean


@njit
def _topdown(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st):
    """PAV blocks of a whole row for a general exponent r, in O(n log n) evaluations of phi.

    Threshold decomposition (Hochbaum & Queyranne): for any level t, the positions whose
    solution exceeds t are the prefix ``[lo, k)`` with k the smallest minimizer of the prefix
    sums Q_k of ``h_i(t)`` (the objective's derivative at v = t), and the two sides are
    independent problems (the constraint between them is slack). A segment is one block
    exactly when all Q_k >= 0 at its pooled root. Each segment is split at a cheap level (the
    middle entry's own value; one pass), or, where that split is lopsided, solved as one
    pooled block (Newton) and split at its root if it is not one block. Segments of at most
    TOPDOWN_MIN entries run bottom-up PAV. Blocks are emitted left to right.
    """
    n = s.shape[0]
    mag = kind == KIND_MAG
    lam_b = lam if mag else 1.0
    segs = np.empty((n + 1, 2), np.int64)
    h = np.empty(n)
    segs[0, 0] = 0
    segs[0, 1] = n
    ns = 1
    top = -1
    while ns > 0:
        ns -= 1
        lo = segs[ns, 0]
        hi = segs[ns, 1]
        ln = hi - lo
        if ln <= TOPDOWN_MIN:
            top = _bottom_up(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st,
                             top, lo, hi)
            continue
        m = (lo + hi) // 2
        c = s[m]
        # The middle entry's own (singleton) value as the level.
        if mag:
            gm = 0.0 if w[m] == 0.0 else _solve_block(s, m, m + 1, c, w[m], r, lam, True,
                                                      min(0.0, c) - c, max(0.0, c) - c)
        else:
            gm = -(winv[m] if winv.shape[0] > 0 else _phi_inv(w[m], r))
        k, _ = _split(s, w, lo, hi, c, gm, r, lam_b, mag, h, False)
        if 8 * min(k - lo, hi - k) < ln:
            # Lopsided: is the segment one block? Its pooled root, bracketed by the extremes.
            wsum = 0.0
            smin = s[lo]
            smax = s[lo]
            for i in range(lo, hi):
                wsum += w[i]
                smin = min(smin, s[i])
                smax = max(smax, s[i])
            if mag:
                blo = min(0.0, smin)
                bhi = max(0.0, smax)
            else:
                sh = _phi_inv(wsum / ln, r)
                blo = smin - sh
                bhi = smax - sh
            g = _solve_block(s, lo, hi, c, wsum, r, lam_b, mag, blo - c, bhi - c, gm)
            k2, single = _split(s, w, lo, hi, c, g, r, lam_b, mag, h, True)
            if single or k2 <= lo or k2 >= hi:
                top += 1
                start[top] = lo
                center[top] = c
                offset[top] = g
                gam[top] = c + g
                st[top, 0] = ln
                st[top, 4] = wsum
                continue
            if not (lo < k < hi) or min(k2 - lo, hi - k2) > min(k - lo, hi - k):
                k = k2
        segs[ns, 0] = k  # right part, processed after the left one
        segs[ns, 1] = hi
        segs[ns + 1, 0] = lo
        segs[ns + 1, 1] = k
        ns += 2
    return top


@njit
def _pav_row(s, w, cw, kind, r, lam, write_v, out, d, alpha, beta, block, winv, ws):
    """PAV on one row. ``winv``: phi^-1(w) precomputed (p-norm), or an empty array.
    ``ws``: scratch ``(start, cog, st)`` shaped as in `workspace_specs` for rows at least
    this long (overwritten)."""
    n = s.shape[0]
    if n == 0:
        return
    for i in range(n):
        if math.isnan(s[i]) or math.isnan(w[i]) or math.isnan(cw[i]):
            for j in range(n):
                out[j] = np.nan
                d[j] = np.nan
                alpha[j] = np.nan
                block[j] = j
                if beta.shape[0] > 0:
                    beta[j] = np.nan
            return
    start, cog, st = ws
    # Each block's value is gamma = center + offset, and u_i = (s_i - center) - offset: the
    # center (a mean of s, LSE(s), or a reference entry) absorbs the scale of s, so u keeps
    # full precision when |s| >> |u| (e.g. x / eps = 1e15 with ties).
    center = cog[0]
    offset = cog[1]
    gam = cog[2]
    # Statistics (each pushed block sets the columns its kind reads). l2: (sum c, wmean s,
    # wmean w); kl: (max s, max w, sum exp(s - max), sum exp(w - max)); cubic and magnitude
    # r=1: (count, mean s, M2, M3, sum w); other r: (count, -, -, -, sum w).
    top = -1
    if _use_topdown(s, w, kind, r):
        top = _topdown(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st)
    else:
        top = _bottom_up(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st, -1, 0, n)
    start[top + 1] = n
    # Finalize: solution, derivative weights and block ids.
    for b in range(top + 1):
        lo = start[b]
        hi = start[b + 1]
        size = hi - lo
        g = gam[b]
        cb = center[b]
        ob = offset[b]
        has_inf = False
        for i in range(lo, hi):
            block[i] = b
            if math.isinf(s[i]):
                has_inf = True
        if has_inf:
            # The hard value: phi^-1 of the block's mean w (ties of infinities share it).
            wsum = 0.0
            lse = -np.inf
            for i in range(lo, hi):
                if kind == KIND_KL:
                    lse = _logaddexp(lse, w[i])
                else:
                    wsum += w[i]
            if kind == KIND_KL:
                uh = lse - math.log(size)
            elif kind == KIND_L2:
                uh = wsum / size
            elif kind == KIND_PNORM:
                uh = _phi_inv(wsum / size, r)
            else:
                uh = np.inf if wsum > 0 else 0.0
            for i in range(lo, hi):
                out[i] = s[lo] if write_v else uh  # v is +-inf with the block's entries
                d[i] = 0.0
                alpha[i] = 1.0 / size
                if beta.shape[0] > 0:
                    beta[i] = 1.0 / size
            continue
        if kind == KIND_L2:
            tot = st[b, 0]
            for i in range(lo, hi):
                out[i] = g if write_v else (s[i] - cb) - ob
                d[i] = 1.0
                alpha[i] = cw[i] / tot if size > 1 else 1.0
        elif kind == KIND_KL:
            # d = exp(u) = softmax(s_B) * sum_B exp(w): one exp per entry.
            es = st[b, 2]
            mw = st[b, 1]
            ew = st[b, 3]
            wtot = ew * math.exp(mw)
            for i in range(lo, hi):
                u = (s[i] - cb) - ob
                out[i] = g if write_v else u
                al = math.exp(s[i] - cb) / es if size > 1 else 1.0
                alpha[i] = al
                d[i] = al * wtot if size > 1 else math.exp(u)
                if beta.shape[0] > 0:
                    beta[i] = math.exp(w[i] - mw) / ew if size > 1 else 1.0
        else:
            lam_b = lam if kind == KIND_MAG else 1.0
            tot = 0.0
            for i in range(lo, hi):
                u = (s[i] - cb) - ob
                out[i] = g if write_v else u
                dp = _dphi(u / lam_b, r) / lam_b
                alpha[i] = dp
                tot += dp
            if kind == KIND_MAG:
                tot += st[b, 4]
            for i in range(lo, hi):
                dp = alpha[i]
                d[i] = 1.0 + dp if kind == KIND_MAG else dp
                if size == 1 and kind != KIND_MAG:
                    # A singleton's z-Jacobian d (1 - alpha) is exactly 0; d = 0 keeps it so
                    # where phi' is huge (p > 2 at u = 0) and rounding would not.
                    d[i] = 0.0
                    alpha[i] = 1.0
                elif tot > 0.0:
                    alpha[i] = dp / tot
                else:
                    alpha[i] = 1.0 / size


# Rows run in parallel only when there is enough work: a parallel region costs microseconds
# to start (and far more when the cores are busy), which dominates small inputs.
PARALLEL_MIN_WORK = 1 << 15


# A process forked after GNU OpenMP started its threads (Numba's default "omp" layer on Linux)
# aborts at its first parallel region ("fork() called from a process already using GNU
# OpenMP"): a torch DataLoader worker or a multiprocessing "fork" pool, for instance. Such a
# child runs the serial kernels instead (same results; rows in one thread).
_fork_safe_serial = False


def _after_fork_in_child():
    global _fork_safe_serial
    try:
        from numba.np.ufunc import parallel as _nbpar

        started = bool(getattr(_nbpar, "_is_initialized", True))
        layer = getattr(_nbpar, "_threading_layer", "omp")
    except Exception:  # pragma: no cover - a Numba without these internals: be safe
        started, layer = True, "omp"
    if started and layer == "omp":
        _fork_safe_serial = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def use_parallel(m, n):
    return m > 1 and m * n >= PARALLEL_MIN_WORK and not _fork_safe_serial


def chunks(m):
    """How many chunks of rows a parallel kernel splits ``m`` rows into (a few per thread, for
    balance); each chunk allocates its scratch once. (Computed here, not in the kernel: a
    kernel calling ``numba.get_num_threads`` cannot be cached.)"""
    return max(1, min(m, 4 * numba.get_num_threads()))


@njit(parallel=True)
def _pav_batch_par(s, w, cw, kind, r, lam, write_v, out, d, alpha, beta, block, start, cog, st):
    m = s.shape[0]
    nc = start.shape[0]
    for ch in prange(nc):
        ws = (start[ch], cog[ch], st[ch])
        for row in range(ch * m // nc, (ch + 1) * m // nc):
            _pav_row(s[row], w[row], cw[row], kind, r, lam, write_v,
                     out[row], d[row], alpha[row], beta[row], block[row], np.empty(0), ws)


@njit
def _pav_batch_ser(s, w, cw, kind, r, lam, write_v, out, d, alpha, beta, block, start, cog, st):
    ws = (start[0], cog[0], st[0])
    for row in range(s.shape[0]):
        _pav_row(s[row], w[row], cw[row], kind, r, lam, write_v,
                 out[row], d[row], alpha[row], beta[row], block[row], np.empty(0), ws)


def pav_batch(s, w, cw, kind, r, lam, write_v, need_beta):
    """Run PAV on each row of ``s`` (rows sorted descending for projections). float64 in/out.

    Returns ``(out, d, alpha, beta, block)``; ``beta`` has shape ``[m, 0]`` unless ``need_beta``.
    """
    s = np.ascontiguousarray(s, np.float64)
    w = np.ascontiguousarray(w, np.float64)
    cw = np.ascontiguousarray(cw, np.float64)
    m, n = s.shape
    out = np.empty((m, n))
    d = np.empty((m, n))
    alpha = np.empty((m, n))
    beta = np.empty((m, n) if need_beta else (m, 0))
    block = np.empty((m, n), np.int32)
    args = (s, w, cw, int(kind), float(r), float(lam), bool(write_v), out, d, alpha, beta, block)
    par = use_parallel(m, n)
    ws = carve(workspace_specs(chunks(m) if par else 1, n))
    (_pav_batch_par if par else _pav_batch_ser)(*args, *ws)
    return out, d, alpha, beta, block
