"""Regularized projections onto the permutahedron: sort + isotonic (PAV) + unsort (DESIGN §1).

``P_R(z, w) = argmax_{y in P(w)} <z, y> - R(y) = phi(z - v[sigma^-1])``, where ``v`` solves the
decreasing isotonic problem on ``s = z[sigma]`` (``z`` sorted descending) against ``w`` sorted
descending. Row-level functions take and return float64 ``[m, n]`` arrays; the regularization
strength is applied by the callers (``P_{R/eps}(z, w) = P_R(z / eps, w)`` for every R here).
"""

from __future__ import annotations

import numpy as np

from .isotonic import pav
from .jacobian import BlockJacobian


def argsort_desc(a):
    """Descending argsort of each row (int64)."""
    return np.argsort(-a, axis=-1)


def identity_perm(m, n):
    return np.ascontiguousarray(np.broadcast_to(np.arange(n, dtype=np.int64), (m, n)))


def exponent_r(p):
    """``r = q - 1 = 1 / (p - 1)``: the power in the link ``phi(u) = sign(u) |u|^r``."""
    r = 1.0 / (p - 1.0)
    for exact in (1.0, 3.0):
        if abs(r - exact) <= 1e-9 * exact:
            return exact
    return r


def phi(u, r):
    """The link function ``sign(u) |u|^r`` (``r = 1``: identity)."""
    if r == 1.0:
        return u
    return np.sign(u) * np.abs(u) ** r


def kind_for(regularization, r):
    if regularization == "kl":
        return pav.KIND_KL
    if regularization == "l2" or r == 1.0:
        return pav.KIND_L2
    return pav.KIND_PNORM


def project_rows(
    z,
    w,
    *,
    regularization="l2",
    r=1.0,
    z_is_sorted=False,
    w_is_sorted=False,
    log_form=False,
    want_z=True,
    want_w=True,
):
    """``P_R(z, w)`` row by row, with the Jacobians in ``z`` and in ``w`` (BlockJacobian).

    ``regularization``: "l2", "kl" or "pnorm" (with ``r = 1/(p-1)``). For "kl", ``log_form``
    returns ``log P_R(z, e^w)`` (the paper's ``P_E``, used by soft sort) instead of
    ``P_R(z, w)`` (which needs ``w > 0``). ``*_is_sorted`` skip a sort when the caller knows the
    row is already in descending order (``rho`` for ranks, ``rho / eps`` for sorts).
    """
    m, n = z.shape
    if z_is_sorted:
        zperm = None
        s = np.ascontiguousarray(z, np.float64)
    else:
        zperm = argsort_desc(z)
        s = np.take_along_axis(z, zperm, -1)
    if w_is_sorted:
        wperm = None
        ws = np.ascontiguousarray(w, np.float64)
    else:
        wperm = argsort_desc(w)
        ws = np.take_along_axis(w, wperm, -1)
    kind = kind_for(regularization, r)
    if kind == pav.KIND_KL and not log_form:
        with np.errstate(divide="ignore"):
            ws = np.log(ws)
    need_beta = kind == pav.KIND_KL and log_form and want_w
    u, d, alpha, beta, block = pav.pav_batch(
        s, ws, np.ones((m, n)), kind, r, 1.0, False, need_beta
    )
    if kind == pav.KIND_KL:
        ys = u if log_form else d  # d = exp(u) = phi(u)
    else:
        ys = phi(u, r)
    if zperm is None:
        y = ys
    else:
        y = np.empty_like(ys)
        np.put_along_axis(y, zperm, ys, -1)
    jz = jw = None
    if want_z:
        in_perm = identity_perm(m, n) if zperm is None else zperm
        if kind == pav.KIND_KL and log_form:
            jz = BlockJacobian(in_perm, zperm, block, np.ones_like(d), -np.ones_like(d), alpha)
        else:
            jz = BlockJacobian(in_perm, zperm, block, d, -d, alpha)
    if want_w:
        in_perm = identity_perm(m, n) if wperm is None else wperm
        zero = np.zeros_like(d)
        if kind == pav.KIND_KL and log_form:
            jw = BlockJacobian(in_perm, zperm, block, zero, np.ones_like(d), beta)
        else:
            jw = BlockJacobian(in_perm, zperm, block, zero, alpha, np.ones_like(d))
    return y, jz, jw


def scale_input(jac: BlockJacobian, scale):
    """The Jacobian of ``x -> f(scale * x)`` from that of ``f`` (scale: scalar or sorted array)."""
    return jac._replace(a=jac.a * scale, c=jac.c * scale)
