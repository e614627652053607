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

A row holding NaN gets NaN everywhere. Infinite entries follow docs/conventions.md: the result
is the limit M -> infinity of replacing each +-inf by +-M (one M for the row). l2 (isotonic
regression, ranks and sorts alike) runs PAV on lexicographic numbers ``a M + b``: each block
keeps the weighted sum of the M-coefficients ``a`` next to its finite statistics, and compares
``(A_B / C_B, gamma_B)`` lexicographically; an infinite sample weight is a weight ``M'`` (the
block's value is the mean over its infinitely weighted entries). For the other kinds, infinite
``s`` (sorted, at the ends of the row) are their own segments, solved as the ties they are
(``s = 0`` relative to their common value: the projections are translation invariant), and
infinite ``w`` (soft sorts) follow the closed forms of `_inf_w_row`.
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

    Solved for tau = t / sig with sig = max(sqrt(a), cbrt|c|): the normalized coefficients
    are at most 1, so no power in `_solve_unit_cubic` over- or underflows whatever the scale
    of a and c (a ~ 1e-216 once made the closed form divide by an underflowed 0).
    """
    if c == 0.0:
        return 0.0
    sig = max(math.sqrt(a) if a > 0.0 else 0.0, np.cbrt(abs(c)))
    if sig == 0.0 or math.isinf(sig):
        return _solve_unit_cubic(a, c)
    cn = ((c / sig) / sig) / sig
    if abs(cn) < 1e-100:
        # Linear regime (sig = sqrt(a)): t^3 is below 1e-200 of a t, and cn may have
        # underflowed where -c / a has not.
        return -c / a
    return sig * _solve_unit_cubic((a / sig) / sig, cn)


@njit
def _solve_unit_cubic(a, c):
    """`_solve_cubic` on coefficients of order at most 1.

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
def _mag_cubic(lam, wsum, nn, mean, m2, m3):
    """Offset t (block value ``mean + t``) of a magnitude block with r = 3: the root of
    ``t^3 + ((3 M2 + lam^3 W) / n) t + (lam^3 W mean - M3) / n = 0``, solved for
    ``tau = t / lam`` (the equation divided by lam^3: lam^3 W neither overflows nor vanishes)
    unless M2 / lam^2 overflows."""
    a = lam * wsum
    c = wsum * mean
    if m2 != 0.0:
        a += 3.0 * ((m2 / lam) / lam)
    if m3 != 0.0:
        c -= ((m3 / lam) / lam) / lam
    a /= nn
    c /= nn
    if abs(a) < np.inf and abs(c) < np.inf:
        return lam * _solve_cubic(a, c)
    l3w = lam * lam * lam * wsum
    return _solve_cubic((3.0 * m2 + l3w) / nn, (l3w * mean - m3) / nn)


@njit
def _bracket_middle(lo, hi):
    """A point strictly inside ``(lo, hi)`` that halves the bracket in floating-point terms:
    the arithmetic middle when both ends have one sign and lie within a factor 4; else 0
    (a bracket holding 0) or the geometric middle of the magnitudes. A bracket spanning
    hundreds of binades (``phi(u) = |u|^r`` with ``r < 1`` at huge inputs) then shrinks to
    one binade in ``log2(log2(hi / lo))`` steps, where the arithmetic middle needs one step
    per binade (more than ``NEWTON_MAX_ITER`` for a bracket of 1e100)."""
    if lo < 0.0 < hi:
        if -4.0 * lo < hi or 4.0 * hi < -lo:
            return 0.0
        return 0.5 * lo + 0.5 * hi
    neg = hi <= 0.0
    a = -hi if neg else lo
    b = -lo if neg else hi
    if b <= 4.0 * a:
        mid = 0.5 * a + 0.5 * b
    else:
        mid = math.exp(0.5 * (math.log(max(a, 5e-324)) + math.log(b)))
        if not (a < mid < b):
            mid = 0.5 * a + 0.5 * b
    return -mid if neg else mid


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
    fprev = np.inf
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
        # Newton unless the last step did not halve |F|: phi(u) = sign(u) |u|^r with r < 1
        # makes Newton oscillate (u -> -u for r = 1/2) inside a huge bracket, which then
        # shrank by far less than half per step (200 steps ended 1e15 from the root once).
        if fp > 0.0 and abs(f) <= 0.5 * fprev:
            gn = g + f / fp
        else:
            gn = _bracket_middle(lo, hi)
        fprev = abs(f)
        if not (lo < gn < hi):
            gn = _bracket_middle(lo, hi)
        tol = NEWTON_RTOL * max(abs(g), abs(gn), 1e-300)
        if abs(gn - g) <= tol or hi - lo <= tol:
            return gn
        g = gn
    return g


@njit
def _mean_merge(ma, mb, na, nb):
    if ma == mb:  # also keeps equal infinities (ties at +-inf) finite-free of NaN
        return ma
    if nb == 0.0:
        return ma
    if na == 0.0:
        return mb
    diff = mb - ma
    if math.isinf(diff):  # |ma|, |mb| near the float limit: no overflow of the difference
        return ma * (na / (na + nb)) + mb * (nb / (na + nb))
    return ma + diff * (nb / (na + nb))


@njit(inline="always")
def _inf_sign(x):
    """The M-coefficient of ``x`` (+-1 at +-inf, else 0)."""
    if x == np.inf:
        return 1.0
    if x == -np.inf:
        return -1.0
    return 0.0


@njit(inline="always")
def _fin(x):
    """The finite part of ``x`` (0 at +-inf)."""
    return 0.0 if math.isinf(x) else x


@njit(inline="always")
def _l2_set(st, b):
    """The statistics a l2 block's value is read from: its infinitely weighted entries if it
    has any (columns 4-7: count, mean s, mean w, sum of M-coefficients), else its finite
    weights (columns 0-3: sum c, wmean s, wmean w, sum c a)."""
    return 4 if st[b, 4] > 0.0 else 0


@njit(inline="always")
def _violates(kind, st, gam, a, b):
    """Whether block ``a`` (left) and ``b`` (right) violate ``v_a >= v_b`` and must pool. l2
    compares ``(A / C, gamma)`` lexicographically (A: the blocks' M-coefficients).

    Strict: equal values do not pool. Both choices give the same solution, but only the
    unpooled blocks give the right derivative where the tie comes from equal sorted entries
    with equal weights (tied entries below a top-k's support, a k = 0 mask: the operator is
    locally constant there, and a pooled block's Jacobian is not zero)."""
    if kind != KIND_L2:
        return gam[a] < gam[b]
    ca = _l2_set(st, a)
    cb = _l2_set(st, b)
    la = st[a, ca + 3] * st[b, cb]
    lb = st[b, cb + 3] * st[a, ca]
    if la != lb:
        return la < lb
    return gam[a] < gam[b]


def workspace_specs(nc, n):
    """Shapes of `_pav_row`'s scratch for ``nc`` chunks of rows of length ``n`` (block starts,
    centers/offsets/values, statistics): allocated once per call, reused row after row."""
    return [((nc, n + 1), np.int64), ((nc, 3, n), np.float64), ((nc, n, 8), np.float64)]


@njit
def _bottom_up(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st, top, lo, hi,
               pool_ties=False):
    """Bottom-up PAV of positions ``[lo, hi)``: pushes its blocks after block ``top`` (never
    merging into those) and returns the new top. Cost: O(hi - lo) for l2, kl and r in {1, 3};
    for other r each merge re-solves the merged block (O(block) per merge). ``pool_ties``
    pools equal values too (a segment of infinite entries solved at ``s = 0`` that must be one
    block: see `_pav_row`)."""
    floor = top + 1
    cubic = r == 3.0
    for i in range(lo, hi):
        top += 1
        start[top] = i
        si = s[i]
        wi = w[i]
        center[top] = si
        if kind == KIND_L2:
            ai = _inf_sign(si) - _inf_sign(wi)
            sf = _fin(si)
            wf = _fin(wi)
            ci = cw[i]
            col = 4 if math.isinf(ci) else 0
            for j in range(8):
                st[top, j] = 0.0
            st[top, col] = 1.0 if col == 4 else ci
            st[top, col + 1] = sf
            st[top, col + 2] = wf
            st[top, col + 3] = st[top, col] * ai
            center[top] = sf
            offset[top] = -wf
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
                offset[top] = _mag_cubic(lam, wi, 1.0, si, 0.0, 0.0)
            else:
                # The root gamma lies in [0, s] (s = |x| >= 0): solved relative to the nearer
                # end, so that gamma << s (a huge lam) keeps its digits (relative to s it
                # would be rounding: s = 1e300, lam = 1e300 gave gamma = 9e284, not 1).
                h = 0.5 * si
                if _phi((si - h) / lam, r) <= h * wi:
                    # gamma <= s / 2: u = s - gamma in [s/2, s], so phi(s / lam) / w is within
                    # a factor 2^r of gamma: Newton's start (from the bracket's middle its
                    # first step lands on 0, and bisection would need ~1000 halvings).
                    # (Where s / lam underflows that start means nothing: the middle.)
                    center[top] = 0.0
                    q = si / lam
                    g0 = min(_phi(q, r) / wi, h) if q >= 2.2250738585072014e-308 else np.nan
                    offset[top] = _solve_block(s, i, i + 1, 0.0, wi, r, lam, True, 0.0, h, g0)
                else:
                    offset[top] = _solve_block(s, i, i + 1, si, wi, r, lam, True, -h, 0.0)
        gam[top] = center[top] + offset[top]
        while top > floor and (_violates(kind, st, gam, top - 1, top) or (
                pool_ties and gam[top - 1] == gam[top])):
            a = top - 1
            if kind == KIND_L2:
                for c0 in (0, 4):
                    ca = st[a, c0]
                    cb = st[top, c0]
                    st[a, c0 + 1] = _mean_merge(st[a, c0 + 1], st[top, c0 + 1], ca, cb)
                    st[a, c0 + 2] = _mean_merge(st[a, c0 + 2], st[top, c0 + 2], ca, cb)
                    st[a, c0 + 3] += st[top, c0 + 3]
                    st[a, c0] = ca + cb
                c0 = _l2_set(st, a)
                center[a] = st[a, c0 + 1]
                offset[a] = -st[a, c0 + 2]
            elif kind == KIND_KL:
                for col in (0, 1):  # (max, linear sum) pairs for s (cols 0, 2) and w (1, 3)
                    ma = st[a, col]
                    mb = st[top, col]
                    if mb == -np.inf:  # e^-inf = 0 adds nothing
                        pass
                    elif ma == -np.inf:
                        st[a, col] = mb
                        st[a, col + 2] = st[top, col + 2]
                    elif math.isinf(ma) or math.isinf(mb):  # +inf: counts of the +inf entries
                        if ma == mb:
                            st[a, col + 2] += st[top, col + 2]
                        elif mb > ma:
                            st[a, col] = mb
                            st[a, col + 2] = st[top, col + 2]
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
                        offset[a] = _mag_cubic(lam, wsum, nn, mean, st[a, 2], st[a, 3])
                else:
                    # The bracket relative to c from each block's (center, offset), not
                    # from gam = center + offset: rounding gam loses the offset's digits
                    # (magnitude: u = s - gam can be 1e-12 of s), and tied blocks bracket
                    # the root exactly.
                    c = center[a]
                    bl = offset[a]
                    br = (center[top] - c) + offset[top]
                    offset[a] = _solve_block(
                        s, start[a], i + 1, c, wsum, r, lam if kind == KIND_MAG else 1.0,
                        kind == KIND_MAG, bl, br, 0.5 * (bl + br),
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
def _kl_lex(lse_s, npos, nneg, wm, we):
    """A kl block's value ``LSE(s_B) - LSE(w_B)`` in the limit, as ``(A, B)`` meaning
    ``A M + B``: ``+M`` entries dominate ``LSE(w_B)`` (``M + log P``), ``-M`` ones add
    nothing unless the block has no other (``-M + log N``)."""
    if npos > 0.0:
        return -1.0, lse_s - math.log(npos)
    if we > 0.0:
        return 0.0, lse_s - (wm + math.log(we))
    return 1.0, lse_s - math.log(nneg)


@njit
def _kl_inf_w_blocks(s, w, write_v, out, d, alpha, beta, block):
    """kl soft sorts with infinite ``w`` (sorted descending, ``s`` finite): PAV whose block
    values ``A M + B`` (`_kl_lex`) are compared lexicographically, so the limit M -> infinity
    of every block, its value and its weights: ``alpha = softmax(s_B)``, ``beta`` the limit of
    ``softmax(w_B)`` (``1/P`` on the ``+M`` entries if any, else the softmax of the finite
    ones, else ``1/N``). Blocks of ``+M`` entries split where their finite parts do (the
    ascending sort of ``[-inf, -inf, inf]`` has two blocks, not one)."""
    n = s.shape[0]
    start = np.empty(n + 1, np.int64)
    st = np.empty((n, 8))  # max s, sum exp(s - max), P, N, max finite w, sum exp(w - max), A, B
    top = -1
    for i in range(n):
        top += 1
        start[top] = i
        st[top, 0] = s[i]
        st[top, 1] = 1.0
        st[top, 2] = 1.0 if w[i] == np.inf else 0.0
        st[top, 3] = 1.0 if w[i] == -np.inf else 0.0
        st[top, 4] = -np.inf if math.isinf(w[i]) else w[i]
        st[top, 5] = 0.0 if math.isinf(w[i]) else 1.0
        st[top, 6], st[top, 7] = _kl_lex(s[i], st[top, 2], st[top, 3], st[top, 4], st[top, 5])
        while top > 0 and (st[top - 1, 6] < st[top, 6] or (
                st[top - 1, 6] == st[top, 6] and st[top - 1, 7] < st[top, 7])):
            a = top - 1
            for col in (0, 4):  # (max, linear sum) pairs of s and of the finite w
                ma = st[a, col]
                mb = st[top, col]
                if mb == -np.inf:
                    continue
                if ma == -np.inf:
                    st[a, col] = mb
                    st[a, col + 1] = st[top, col + 1]
                elif ma >= mb:
                    st[a, col + 1] += st[top, col + 1] * math.exp(mb - ma)
                else:
                    st[a, col + 1] = st[a, col + 1] * math.exp(ma - mb) + st[top, col + 1]
                    st[a, col] = mb
            st[a, 2] += st[top, 2]
            st[a, 3] += st[top, 3]
            st[a, 6], st[a, 7] = _kl_lex(st[a, 0] + math.log(st[a, 1]), st[a, 2], st[a, 3],
                                         st[a, 4], st[a, 5])
            top -= 1
    start[top + 1] = n
    nb = beta.shape[0] > 0
    for b in range(top + 1):
        lo = start[b]
        hi = start[b + 1]
        aa = st[b, 6]
        bb = st[b, 7]
        for i in range(lo, hi):
            block[i] = b
            if aa == 0.0:
                u = s[i] - bb
                out[i] = bb if write_v else u
                d[i] = math.exp(u)
            else:  # u = s - (A M + B) = -A inf
                out[i] = aa * np.inf if write_v else -aa * np.inf
                d[i] = np.inf if aa < 0.0 else 0.0
            alpha[i] = math.exp(s[i] - st[b, 0]) / st[b, 1] if hi - lo > 1 else 1.0
            if nb:
                if hi - lo == 1:
                    beta[i] = 1.0
                elif st[b, 2] > 0.0:
                    beta[i] = 1.0 / st[b, 2] if w[i] == np.inf else 0.0
                elif st[b, 5] > 0.0:
                    beta[i] = 0.0 if math.isinf(w[i]) else math.exp(w[i] - st[b, 4]) / st[b, 5]
                else:
                    beta[i] = 1.0 / st[b, 3]


@njit
def _inf_w_row(s, w, kind, r, write_v, out, d, alpha, beta, block):
    """Soft sorts (``s`` finite and decreasing, ``w`` sorted with +-inf entries; kl/p-norm):
    the limit M -> infinity. Returns True (the row is done).

    * Every entry at the same infinity: singletons, ``u = w`` (+-inf), identity Jacobian.
    * kl: PAV on lexicographic block values (`_kl_inf_w_blocks`).
    * p-norm: one block (the roots ``s_i - phi^-1(w_i)`` increase at order M at both ends):
      ``u = sign(P - N) inf`` with ``alpha = 1/n`` if P != N, else the finite block equation
      with ``sum w`` over the finite entries (the +-M cancel).
    """
    n = s.shape[0]
    npos = 0
    nneg = 0
    for i in range(n):
        if w[i] == np.inf:
            npos += 1
        elif w[i] == -np.inf:
            nneg += 1
    nb = beta.shape[0] > 0
    if npos == n or nneg == n:
        for i in range(n):
            out[i] = s[i] - w[i] if write_v else w[i]
            d[i] = 0.0
            alpha[i] = 1.0
            block[i] = i
            if nb:
                beta[i] = 1.0
        return True
    for i in range(n):
        block[i] = 0
    if kind == KIND_KL:
        _kl_inf_w_blocks(s, w, write_v, out, d, alpha, beta, block)
        return True
    if npos != nneg:
        sgn = 1.0 if npos > nneg else -1.0
        for i in range(n):
            out[i] = -sgn * np.inf if write_v else sgn * np.inf
            d[i] = _dphi(sgn * np.inf, r)
            alpha[i] = 1.0 / n
            if nb:
                beta[i] = 1.0 / n
        return True
    wsum = 0.0
    smin = s[0]
    smax = s[0]
    for i in range(n):
        wsum += _fin(w[i])
        smin = min(smin, s[i])
        smax = max(smax, s[i])
    c = s[n // 2]
    sh = _phi_inv(wsum / n, r)
    g = _solve_block(s, 0, n, c, wsum, r, 1.0, False, smin - sh - c, smax - sh - c)
    tot = 0.0
    for i in range(n):
        u = (s[i] - c) - g
        out[i] = c + g if write_v else u
        d[i] = _dphi(u, r)
        tot += d[i]
    for i in range(n):
        alpha[i] = d[i] / tot if tot > 0.0 else 1.0 / n
        if nb:
            beta[i] = 1.0 / n
    return True


@njit
def _pav_row(s, w, cw, kind, r, lam, write_v, out, d, alpha, beta, block, winv, ws):
    """PAV on one row. ``winv``: phi^-1(w) precomputed (p-norm), or an empty array.
    ``ws``: scratch ``(start, cog, st)`` shaped as in `workspace_specs` for rows at least
    this long (overwritten)."""
    n = s.shape[0]
    if n == 0:
        return
    ninf_s = 0
    ninf_w = 0
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
        if math.isinf(s[i]):
            ninf_s += 1
        if math.isinf(w[i]):
            ninf_w += 1
    if kind != KIND_L2 and ninf_w > 0 and ninf_s == 0 and kind != KIND_MAG:
        if _inf_w_row(s, w, kind, r, write_v, out, d, alpha, beta, block):
            return
    start, cog, st = ws
    # Each block's value is gamma = center + offset, and u_i = (s_i - center) - offset: the
    # center (a mean of s, LSE(s), or a reference entry) absorbs the scale of s, so u keeps
    # full precision when |s| >> |u| (e.g. x / eps = 1e15 with ties).
    center = cog[0]
    offset = cog[1]
    gam = cog[2]
    # Statistics (each pushed block sets the columns its kind reads). l2: (sum c, wmean s,
    # wmean w, sum c a) for finite weights, the same for infinite weights (count first);
    # kl: (max s, max w, sum exp(s - max), sum exp(w - max)); cubic and magnitude
    # r=1: (count, mean s, M2, M3, sum w); other r: (count, -, -, -, sum w).
    # Infinite s with another kind than l2 (sorted rows: +inf first, -inf last): segments of
    # their own, solved as ties (s = 0), never pooled with the finite entries.
    npos = 0
    nneg = 0
    sv = s
    if kind != KIND_L2 and ninf_s > 0:
        while npos < n and s[npos] == np.inf:
            npos += 1
        while nneg < n - npos and s[n - 1 - nneg] == -np.inf:
            nneg += 1
        if npos + nneg != ninf_s:  # not sorted: no limit read off segments
            for j in range(n):
                out[j] = np.nan
                d[j] = np.nan
                alpha[j] = np.nan
                block[j] = j
                if beta.shape[0] > 0:
                    beta[j] = np.nan
            return
        sv = s.copy()
        for i in range(n):
            if math.isinf(sv[i]):
                sv[i] = 0.0
    top = -1
    if ninf_s == 0 and _use_topdown(s, w, kind, r):
        top = _topdown(s, w, cw, kind, r, lam, winv, start, center, offset, gam, st)
    elif kind != KIND_L2 and ninf_s > 0:
        # The +inf segment of the magnitude, solved at s = 0, is all ties (v = 0); in the limit
        # (s = M) it is one block when it holds a top-k weight (a block of w = 1 entries has
        # v < M, which its w = 0 neighbours' v = M violate, all the way down), else singletons.
        # The sorts' strictly decreasing w pools their segments without help.
        held = False
        if kind == KIND_MAG:
            for i in range(npos):
                held = held or w[i] > 0.0
        top = _bottom_up(sv, w, cw, kind, r, lam, winv, start, center, offset, gam, st,
                         -1, 0, npos, held)
        top = _bottom_up(sv, w, cw, kind, r, lam, winv, start, center, offset, gam, st,
                         top, npos, n - nneg)
        top = _bottom_up(sv, w, cw, kind, r, lam, winv, start, center, offset, gam, st,
                         top, n - nneg, n)
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
        for i in range(lo, hi):
            block[i] = b
        if kind == KIND_L2:
            c0 = _l2_set(st, b)
            tot = st[b, c0]
            am = st[b, c0 + 3]  # sum of M-coefficients of s - w (times the weights)
            for i in range(lo, hi):
                if write_v:
                    out[i] = g if am == 0.0 else math.copysign(np.inf, am)
                else:
                    coef = _inf_sign(s[i]) * tot - am  # u_i = s_i - v_B, times C_B
                    out[i] = (_fin(s[i]) - cb) - ob if coef == 0.0 else math.copysign(
                        np.inf, coef)
                d[i] = 1.0
                if size == 1:
                    alpha[i] = 1.0
                elif c0 == 4:
                    alpha[i] = 1.0 / tot if math.isinf(cw[i]) else 0.0
                else:
                    alpha[i] = cw[i] / tot
        elif kind == KIND_KL:
            # d = exp(u) = softmax(s_B) * sum_B exp(w): one exp per entry.
            es = st[b, 2]
            mw = st[b, 1]
            ew = st[b, 3]
            wtot = ew * math.exp(mw)
            for i in range(lo, hi):
                u = (sv[i] - cb) - ob
                out[i] = g if write_v else u
                al = math.exp(sv[i] - cb) / es if size > 1 else 1.0
                alpha[i] = al
                d[i] = al * wtot if size > 1 else math.exp(u)
                if beta.shape[0] > 0:
                    beta[i] = math.exp(w[i] - mw) / ew if size > 1 else 1.0
        else:
            lam_b = lam if kind == KIND_MAG else 1.0
            tot = 0.0
            for i in range(lo, hi):
                u = (sv[i] - cb) - ob
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
    if kind == KIND_MAG and npos > 0:
        # |x| = +inf (the top segment, never pooled with the finite rest): u = +inf where the segment
        # holds a top-k weight, else 0 (v = s). The Jacobian of ties computed at s = 0 is the
        # limit for r = 1 and where u = 0; for u = +inf, phi'(u) -> inf (r > 1) or 0 (r < 1).
        wseg = 0.0
        for i in range(npos):
            wseg += w[i]
        if wseg > 0.0:
            for i in range(npos):
                out[i] = np.inf
                if r > 1.0:
                    d[i] = np.inf
                    alpha[i] = 1.0 / npos
                elif r < 1.0:
                    d[i] = 1.0
                    alpha[i] = 0.0
        elif write_v:
            for i in range(npos):
                out[i] = np.inf


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
