"""Independent references: the primal problems of DESIGN §1 solved by a generic convex solver.

Brute force over the permutahedron's facets (all 2^n - 2 subsets) for small n, solved with
scipy's SLSQP. Nothing here uses softorder.
"""

from itertools import combinations

import numpy as np
from scipy.optimize import minimize


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
    ``f*(u) = min_{t in P(w_k)} sum u_i^2 / (2 t_i)``: jointly over (u, t), by SLSQP."""
    x = np.asarray(x, float)
    n = len(x)
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
    u = res.x[:n]
    return u + dR(u)


def isotonic_decreasing(s, w, conj, extra=None):
    """argmin_{v decreasing} sum_i conj(s_i - v_i) + (linear or quadratic term in w)."""
    s = np.asarray(s, float)
    n = len(s)
    extra = extra or (lambda v: w @ v)
    cons = [{"type": "ineq", "fun": lambda v, i=i: v[i] - v[i + 1]} for i in range(n - 1)]
    res = minimize(lambda v: np.sum(conj(s - v)) + extra(v), s.copy(), method="SLSQP",
                   constraints=cons, options={"ftol": 1e-15, "maxiter": 2000})
    return res.x
