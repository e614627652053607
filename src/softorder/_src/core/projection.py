"""Regularized projections onto the permutahedron: sort + isotonic (PAV) + unsort (DESIGN §1).

``P_R(z, w) = argmax_{y in P(w)} <z, y> - R(y) = phi(z - v[sigma^-1])``, where ``v`` solves the
decreasing isotonic problem on ``s = z[sigma]`` (``z`` sorted descending) against ``w`` sorted
descending. Row-level functions take and return float64 ``[m, n]`` arrays; the regularization
strength is applied by the callers (``P_{R/eps}(z, w) = P_R(z / eps, w)`` for every R here).
"""

from __future__ import annotations

from ..isotonic import pav
from .backend import NUMPY
from .jacobian import BlockJacobian


def exponent_r(p):
    """``r = q - 1 = 1 / (p - 1)``: the power in the link ``phi(u) = sign(u) |u|^r``."""
    r = 1.0 / (p - 1.0)
    for exact in (1.0, 3.0):
        if abs(r - exact) <= 1e-9 * exact:
            return exact
    return r


def phi(u, r, xp=NUMPY):
    """The link function ``sign(u) |u|^r`` (``r = 1``: identity)."""
    if r == 1.0:
        return u
    return xp.sign(u) * xp.abs(u) ** r


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
    xp=NUMPY,
):
    """``P_R(z, w)`` row by row, with the Jacobians in ``z`` and in ``w`` (BlockJacobian).

    ``regularization``: "l2", "kl" or "pnorm" (with ``r = 1/(p-1)``). For "kl", ``log_form``
    returns ``log P_R(z, e^w)`` (the paper's ``P_E``, used by soft sort) instead of
    ``P_R(z, w)`` (which needs ``w > 0``). ``*_is_sorted`` skip a sort when the caller knows the
    row is already in descending order (``rho`` for ranks, ``rho / eps`` for sorts).
    """
    if z_is_sorted:
        zperm = None
        s = z
    else:
        zperm = xp.argsort_desc(z)
        s = xp.take(z, zperm)
    if w_is_sorted:
        wperm = None
        ws = w
    else:
        wperm = xp.argsort_desc(w)
        ws = xp.take(w, wperm)
    kind = kind_for(regularization, r)
    if kind == pav.KIND_KL and not log_form:
        ws = xp.log(ws)
    need_beta = kind == pav.KIND_KL and log_form and want_w
    u, d, alpha, beta, block = xp.pav(s, ws, xp.ones_like(s), kind, r, 1.0, False, need_beta)
    if kind == pav.KIND_KL:
        ys = u if log_form else xp.exp(u)
    else:
        ys = phi(u, r, xp)
    y = ys if zperm is None else xp.put(ys, zperm)
    jz = jw = None
    if want_z:
        in_perm = xp.identity_perm(s) if zperm is None else zperm
        if kind == pav.KIND_KL and log_form:
            jz = BlockJacobian(in_perm, zperm, block, xp.ones_like(d), -xp.ones_like(d), alpha)
        else:
            jz = BlockJacobian(in_perm, zperm, block, d, -d, alpha)
    if want_w:
        in_perm = xp.identity_perm(s) if wperm is None else wperm
        zero = xp.zeros_like(d)
        if kind == pav.KIND_KL and log_form:
            jw = BlockJacobian(in_perm, zperm, block, zero, xp.ones_like(d), beta)
        else:
            jw = BlockJacobian(in_perm, zperm, block, zero, alpha, xp.ones_like(d))
    return y, jz, jw


def scale_input(jac: BlockJacobian, scale):
    """The Jacobian of ``x -> f(scale * x)`` from that of ``f`` (scale: scalar or sorted array)."""
    return jac._replace(a=jac.a * scale, c=jac.c * scale)
