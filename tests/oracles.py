"""Independent references: the primal problems of DESIGN §1 solved by a generic convex solver.

Brute force over the permutahedron's facets (all 2^n - 2 subsets) for small n, solved with
scipy's SLSQP. Nothing here uses softorder.
"""

from itertools import combinations

import numpy as np
from scipy.optimize import brentq, minimize


def permutahedron_constraints(w):
    """``y in P(w)``: sum y = sum w and every subset S sums to at most the top-|S| of w."""
    n = len(w)
    ws = np.sort(w)[::-1]
    top = np.cumsum(ws)
    cons = [{"type": "eq", "fun": lambda y: np.sum(y) - top[-1], "jac": lambda y: np.ones(n)}]
    for size in range(1, n):
        for S in combinations(range(n), size):
            idx = np.array(S)
            row = np.zeros(n)
            row[idx] = 1.0
            cons.append({"type": "ineq", "fun": lambda y, row=row, b=top[size - 1]: b - row @ y,
                         "jac": lambda y, row=row: -row})
    return cons


def regularizer(name, lam=1.0, p=2.0):
    """R and its gradient: l2 = (lam/2)||y||^2, kl = <y, log y - 1>, pnorm = (lam/p)||y||_p^p."""
    if name == "l2":
        return (lambda y: 0.5 * lam * y @ y), (lambda y: lam * y)
    if name == "kl":
        return (lambda y: np.sum(y * np.log(y) - y)), (lambda y: np.log(y))
    return (lambda y: lam / p * np.sum(np.abs(y) ** p),
            lambda y: lam * np.sign(y) * np.abs(y) ** (p - 1))


def project(z, w, reg="l2", lam=1.0, p=2.0):
    """argmax_{y in P(w)} <z, y> - R(y) by SLSQP."""
    z = np.asarray(z, float)
    w = np.asarray(w, float)
    R, dR = regularizer(reg, lam, p)
    n = len(z)
    y0 = np.full(n, w.mean())
    bounds = [(1e-12, None)] * n if reg == "kl" else None
    res = minimize(lambda y: R(y) - z @ y, y0, jac=lambda y: dR(y) - z, method="SLSQP",
                   constraints=permutahedron_constraints(w), bounds=bounds,
                   options={"ftol": 1e-15, "maxiter": 2000})
    # Status 8 ("positive directional derivative") means the line search hit float precision.
    assert res.success or res.status == 8, res.message
    return res.x


def topk_magnitude(x, k, lam=1.0, p=2.0):
    """``y = u + grad R(u)``, ``u = argmax <u, x> - f*(u) - R(u)``, with
    ``f*(u) = min_{t in P(w_k)} sum u_i^2 / (2 t_i)``, accurate to ~1e-12.

    Two independent steps. (1) The joint convex problem in ``(u, t)`` by SLSQP (success
    asserted): a generic solve, but only to ~1e-3, because ``u^2 / t`` is ill-conditioned as
    ``t -> 0``. (2) A polish that solves the KKT conditions of that same problem exactly. With
    ``a_i = u_i / t_i``: stationarity in ``u`` is ``x_i = a_i + R'(u_i)``; in ``t`` it is
    ``a_i^2 / 2 = mu`` where ``0 < t_i < 1`` (``>= mu`` where ``t_i = 1``). So with
    ``c = sqrt(2 mu)``: ``t_i(c) = min(1, phi(|x_i| - c)_+ / c)`` (``phi = R'^-1``), ``y_i = x_i``
    where ``t_i = 1`` and ``sign(x_i) (phi(|x_i| - c) + |x_i| - c)_+`` elsewhere, and ``c`` is
    the root of the decreasing scalar equation ``sum_i t_i(c) = k`` (brentq to 1e-15). The
    polished point is certified against (1): feasible, no larger objective, and close.
    """
    x = np.asarray(x, float)
    n = len(x)
    if k == 0:
        return np.zeros(n)
    if k >= n:
        return x.copy()
    R, dR = regularizer("pnorm", lam, p)
    tmin = 1e-10

    def obj(v):
        u, t = v[:n], v[n:]
        return -u @ x + np.sum(u**2 / (2 * t)) + R(u)

    def grad(v):
        u, t = v[:n], v[n:]
        return np.concatenate([-x + u / t + dR(u), -(u**2) / (2 * t**2)])

    v0 = np.concatenate([0.5 * x, np.full(n, k / n)])
    cons = [{"type": "eq", "fun": lambda v: np.sum(v[n:]) - k,
             "jac": lambda v: np.concatenate([np.zeros(n), np.ones(n)])}]
    bounds = [(None, None)] * n + [(tmin, 1.0)] * n
    res = minimize(obj, v0, jac=grad, method="SLSQP", constraints=cons, bounds=bounds,
                   options={"ftol": 1e-16, "maxiter": 5000})
    assert res.success, res.message
    y_slsqp = res.x[:n] + dR(res.x[:n])

    # (2) the KKT polish.
    ax = np.abs(x)
    q = p / (p - 1.0)

    def phi(z):
        return (np.maximum(z, 0.0) / lam) ** (q - 1.0)

    def t_of(c):
        return np.minimum(1.0, phi(ax - c) / c)

    c = brentq(lambda c: np.sum(t_of(c)) - k, 1e-300, ax.max(), xtol=1e-300, rtol=1e-15,
               maxiter=1000)
    t = t_of(c)
    u = np.where(t >= 1.0, 0.0, np.sign(x) * phi(ax - c))
    # Where t = 1: u solves u + R'(u) = x, so y = x exactly; u itself only enters the check.
    for i in np.flatnonzero(t >= 1.0):
        u[i] = np.sign(x[i]) * brentq(lambda s, a=ax[i]: s + dR(np.array([s]))[0] - a, 0.0, ax[i],
                                      xtol=1e-300, rtol=1e-15)
    y = np.where(t >= 1.0, x, np.sign(x) * (phi(ax - c) + np.maximum(ax - c, 0.0)))
    # Certificate: the KKT point is feasible, its objective is no worse than SLSQP's, and the
    # two answers agree to the generic solver's accuracy.
    assert abs(np.sum(t) - k) < 1e-12 and np.all(t >= 0) and np.all(t <= 1)
    tt = np.maximum(t, tmin)
    assert obj(np.concatenate([u, tt])) <= res.fun + 1e-9 * (1 + abs(res.fun))
    assert np.max(np.abs(y - y_slsqp)) < 1e-2 * (1 + np.max(ax)), (y, y_slsqp)
    return y


def isotonic_decreasing(s, w, conj, dconj, extra=None, dextra=None):
    """argmin_{v decreasing} sum_i conj(s_i - v_i) + extra_i(v_i) (default ``w_i v_i``),
    accurate to ~1e-12.

    ``conj``/``dconj``/``extra``/``dextra`` act entrywise (each term convex in ``v_i``). SLSQP
    (success asserted) gives the active set: its blocks of (numerically) equal ``v``. The
    polish solves each block's stationarity ``sum_B g_i(gamma) = 0`` exactly (brentq;
    ``g_i(v) = -dconj(s_i - v) + dextra_i(v)``, increasing) and certifies the KKT conditions:
    the block values decrease, and every multiplier ``mu_j = sum_{i <= j in B} g_i(gamma)`` of
    a constraint inside a block is >= 0. A KKT point of a convex problem is its minimum.
    """
    s = np.asarray(s, float)
    w = np.asarray(w, float)
    n = len(s)
    extra = extra or (lambda v: w * v)
    dextra = dextra or (lambda v: w + 0.0 * v)

    def g(v):
        return -dconj(s - v) + dextra(v)

    cons = [{"type": "ineq", "fun": lambda v, i=i: v[i] - v[i + 1],
             "jac": lambda v, i=i: np.eye(n)[i] - np.eye(n)[i + 1]} for i in range(n - 1)]
    res = minimize(lambda v: np.sum(conj(s - v) + extra(v)), s.copy(), jac=g, method="SLSQP",
                   constraints=cons, options={"ftol": 1e-15, "maxiter": 2000})
    assert res.success, res.message
    v0 = res.x
    span = 1.0 + np.max(np.abs(v0))
    starts = [0] + [i + 1 for i in range(n - 1) if v0[i] - v0[i + 1] > 1e-6 * span] + [n]
    v = np.empty(n)
    for a, b in zip(starts[:-1], starts[1:]):
        def gb(gam, a=a, b=b):
            return np.sum(g(np.full(n, gam))[a:b])
        lo, hi = v0[a:b].min() - 1.0, v0[a:b].max() + 1.0
        while gb(lo) > 0:
            lo -= 2 * (hi - lo)
        while gb(hi) < 0:
            hi += 2 * (hi - lo)
        gam = brentq(gb, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=1000)
        v[a:b] = gam
        mu = np.cumsum(g(v)[a:b])[:-1]
        assert np.all(mu >= -1e-9 * span), ("not a KKT point: multipliers", mu)
    assert np.all(np.diff(v) <= 0), ("not a KKT point: not decreasing", v)
    assert np.max(np.abs(v - v0)) < 1e-4 * span
    return v
