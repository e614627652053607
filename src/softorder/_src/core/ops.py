r"""Soft sort, soft rank and sparse soft top-k: row-level cores and the NumPy API.

Every operator is a regularized projection (DESIGN §1) and comes as

* a row-level core ``*_rows(x2d, ...) -> (y2d, BlockJacobian)`` on float64 ``[m, n]`` arrays,
  which the framework front ends call (or mirror on accelerators), and
* a public NumPy function of any shape and axis, plus a ``*_fwd`` variant returning the
  residuals that `jvp` and `vjp` consume in O(n) per row.

Conventions (shared by every front end): ranks are 1-based and ascending by default (rank 1 is
the smallest entry); ``descending=True`` flips the order. A larger ``regularization_strength``
is softer; ``regularization_strength -> 0`` gives the hard operator. Outputs keep the input's
floating dtype; kernels compute in float64. A row holding NaN gives NaN in that row only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..isotonic import pav
from . import fused
from . import validation as V
from .backend import NUMPY
from .jacobian import BlockJacobian, jvp_rows, vjp_rows
from .projection import exponent_r, kind_for, phi, project_rows, scale_input

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "project_permutahedron",
    "hard_sort",
    "hard_rank",
    "hard_topk_mask",
    "hard_topk_magnitude",
    "soft_sort_fwd",
    "soft_rank_fwd",
    "soft_topk_mask_fwd",
    "soft_topk_magnitude_fwd",
    "project_permutahedron_fwd",
    "jvp",
    "vjp",
    "Residuals",
]


# --------------------------------------------------------------------------------------------
# Row-level cores: float64 [m, n] in, (float64 [m, n], BlockJacobian) out.


def soft_rank_rows(x, strength=1.0, descending=False, regularization="l2", p=4 / 3, xp=NUMPY):
    """Soft ranks ``P_R(+-x / eps, rho)`` of each row; ascending: rank 1 = smallest."""
    scale = (-1.0 if descending else 1.0) / strength
    r = exponent_r(p) if regularization == "pnorm" else 1.0
    if xp is NUMPY:
        perm = np.argsort(x, axis=-1)
        return fused.zside(x, perm, not descending, scale, w_mode=fused.W_RHO,
                           kind=kind_for(regularization, r), r=r)
    y, jz, _ = project_rows(
        x * scale, xp.rho(x), regularization=regularization, r=r, w_is_sorted=True,
        want_w=False, xp=xp,
    )
    return y, scale_input(jz, scale)


def soft_sort_rows(x, strength=1.0, descending=False, regularization="l2", p=4 / 3, xp=NUMPY):
    """Soft sort: descending ``P_R(rho / eps, x)`` (kl: ``log P_R(rho/eps, e^x)``); ascending
    is ``-soft_sort_desc(-x)``."""
    r = exponent_r(p) if regularization == "pnorm" else 1.0
    if xp is NUMPY:
        perm = np.argsort(x, axis=-1)
        return fused.wside(x, perm, descending, not descending, 1.0 / strength,
                           kind=kind_for(regularization, r), r=r)
    xs = x if descending else -x
    y, _, jw = project_rows(
        xp.rho(x) / strength, xs, regularization=regularization, r=r, z_is_sorted=True,
        log_form=regularization == "kl", want_z=False, xp=xp,
    )
    # y = -S(-x) has the same Jacobian as S: the two sign flips cancel.
    return (y if descending else -y), jw


def soft_topk_mask_rows(x, k, strength=1.0, p=4 / 3, solver="pav", max_iter=1000, tol=1e-9,
                        xp=NUMPY):
    """Sparse soft top-k mask ``P_R(x, w_k)`` with ``R = (lambda/p) ||y||_p^p``."""
    if xp is NUMPY and solver == "pav":
        r = exponent_r(p)
        return fused.zside(x, np.argsort(x, axis=-1), True, 1.0 / strength, w_mode=fused.W_TOPK,
                           k=k, kind=kind_for("pnorm", r), r=r)
    z = x / strength
    w = xp.topk_weights(x, k)
    if solver == "pav":
        y, jz, _ = project_rows(z, w, regularization="pnorm", r=exponent_r(p),
                                w_is_sorted=True, want_w=False, xp=xp)
        return y, scale_input(jz, 1.0 / strength)
    perm = xp.argsort_desc(z)
    s = xp.take(z, perm)
    v, block = xp.dykstra(s - w, xp.ones_like(s), max_iter, tol)
    ys = s - v
    y = xp.put(ys, perm)
    # 0, or NaN on a row holding NaN (Dykstra makes that whole row NaN): its gradient too.
    nan_row = ys * 0.0
    ones = xp.ones_like(s) + nan_row
    alpha = xp.block_alpha(block, ones)
    return y, BlockJacobian(perm, perm, block, ones / strength, -ones, alpha / strength)


def soft_topk_magnitude_rows(x, k, strength=1.0, p=4 / 3, solver="pav", max_iter=1000,
                             tol=1e-9, xp=NUMPY):
    """Sparse soft top-k in magnitude: ``sign(x) * unsort(u + phi(u))`` (DESIGN §1)."""
    if xp is NUMPY and solver == "pav":
        return fused.zside(x, np.argsort(np.abs(x), axis=-1), True, 1.0, mag=True,
                           w_mode=fused.W_TOPK, k=k, kind=pav.KIND_MAG, r=exponent_r(p),
                           lam=strength)
    ax = xp.abs(x)
    perm = xp.argsort_desc(ax)
    s = xp.take(ax, perm)
    sg = xp.sign(xp.take(x, perm))
    w = xp.topk_weights(x, k)
    r = exponent_r(p)
    lam = strength
    if solver == "pav":
        u, d, alpha, _, block = xp.pav(s, w, xp.ones_like(s), pav.KIND_MAG, r, lam, False, False)
    else:
        omega = 1.0 + lam * w  # weighted isotonic: weights 1/lam + w, targets s / (1 + lam w)
        v, block = xp.dykstra(s / omega, omega, max_iter, tol)
        u = s - v
        # v * 0 is 0, or NaN on a row holding NaN (Dykstra makes that whole row NaN).
        d = (xp.ones_like(s) + v * 0.0) * (1.0 + 1.0 / lam)
        alpha = xp.block_alpha(block, omega) / omega
    # Entries with x = 0 (sign 0) stay exactly 0, also where u is infinite.
    ys = xp.where(sg == 0, 0.0, sg * (u + phi(u / lam, r, xp))) + 0.0
    y = xp.put(ys, perm)
    return y, BlockJacobian(perm, perm, block, sg * d * sg, -sg * d, alpha * sg)


# --------------------------------------------------------------------------------------------
# Any shape, any axis.


class Residuals(NamedTuple):
    """What `jvp` and `vjp` need: one BlockJacobian per differentiable input, and the layout."""

    jacobians: tuple
    axis: int
    shape: tuple  # the input's shape with ``axis`` moved last
    dtype: np.dtype


def _to_rows(x, axis):
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    return np.ascontiguousarray(xm.reshape(int(np.prod(xm.shape[:-1])), n), np.float64), xm.shape


def _from_rows(y2, shape, axis, dtype):
    return np.moveaxis(y2.reshape(shape), -1, axis).astype(dtype, copy=False)


def _prepare(x, axis):
    x = V.as_float_array(x)
    ax = V.check_axis(axis, x.ndim, x.shape)
    return x, ax


def _run(rows_fn, x, ax, *args, **kwargs):
    x2, shape = _to_rows(x, ax)
    y2, jac = rows_fn(x2, *args, **kwargs)
    return _from_rows(y2, shape, ax, x.dtype), Residuals((jac,), ax, shape, x.dtype)


def jvp(res: Residuals, *tangents):
    """Forward-mode derivative: the output tangent for one tangent per differentiable input.

    O(n) per row: gathers and block sums with the saved permutations and block ids.
    """
    if len(tangents) != len(res.jacobians):
        raise ValueError(f"jvp needs {len(res.jacobians)} tangent(s); got {len(tangents)}.")
    total = None
    for jac, t in zip(res.jacobians, tangents):
        t2, _ = _to_rows(np.asarray(t), res.axis)
        out = jvp_rows(jac, t2)
        total = out if total is None else total + out
    return _from_rows(total, res.shape, res.axis, res.dtype)


def vjp(res: Residuals, y_bar):
    """Reverse-mode derivative: the input cotangent(s) for the output cotangent ``y_bar``.

    Returns one array, or a tuple of arrays for functions of several inputs.
    """
    g2, _ = _to_rows(np.asarray(y_bar), res.axis)
    outs = tuple(_from_rows(vjp_rows(jac, g2), res.shape, res.axis, res.dtype)
                 for jac in res.jacobians)
    return outs[0] if len(outs) == 1 else outs


def _sort_rank_args(regularization, regularization_strength, p):
    V.check_regularization(regularization)
    eps = V.check_strength(regularization_strength)
    p = V.check_p(p) if regularization == "pnorm" else p
    return eps, p


def soft_rank_fwd(x, *, axis=-1, descending=False, regularization="l2",
                  regularization_strength=1.0, p=4 / 3):
    """`soft_rank` and its `Residuals` (for `jvp` / `vjp`)."""
    x, ax = _prepare(x, axis)
    eps, p = _sort_rank_args(regularization, regularization_strength, p)
    return _run(soft_rank_rows, x, ax, eps, bool(descending), regularization, p)


def soft_rank(x, *, axis=-1, descending=False, regularization="l2",
              regularization_strength=1.0, p=4 / 3):
    r"""Soft ranks: a differentiable, exact-in-the-limit relaxation of ranking.

    .. math::

        r_\varepsilon(x) = P_R(x / \varepsilon, \rho)
        = \arg\max_{y \in \mathcal{P}(\rho)} \langle x / \varepsilon, y \rangle - R(y),
        \qquad \rho = (n, n-1, \dots, 1),

    where :math:`\mathcal{P}(\rho)` is the permutahedron (all permutations of ranks and their
    convex hull). ``l2``: :math:`R(y) = \tfrac12\|y\|^2`; ``kl``:
    :math:`R(y) = \langle y, \log y - 1\rangle`; ``pnorm``:
    :math:`R(y) = \tfrac1p \|y\|_p^p`. Solved exactly by sorting and PAV in
    :math:`O(n \log n)`; derivatives cost :math:`O(n)`.

    Args:
      x: floating array ``[..., n, ...]``.
      axis: the axis to rank along (default last).
      descending: if True, rank 1 is the largest entry; by default rank 1 is the smallest.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (the top-k paper's
        regularizer, exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0`, in the units of ``x``; larger is
        softer. l2 soft ranks equal the hard ranks when :math:`\varepsilon` is at most the
        smallest gap between sorted entries; as :math:`\varepsilon \to \infty` every rank
        tends to :math:`(n+1)/2`.
      p: the exponent for ``regularization="pnorm"`` (``p > 1``).

    Returns:
      Soft ranks, same shape and dtype as ``x``, 1-based, summing to :math:`n(n+1)/2` per row.

    Example:
      >>> import numpy as np
      >>> from softorder.numpy import soft_rank
      >>> soft_rank(np.array([5.0, 1.0, 2.0]), regularization_strength=2.0)
      array([3.  , 1.25, 1.75])

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    return soft_rank_fwd(x, axis=axis, descending=descending, regularization=regularization,
                         regularization_strength=regularization_strength, p=p)[0]


def soft_sort_fwd(x, *, axis=-1, descending=False, regularization="l2",
                  regularization_strength=1.0, p=4 / 3):
    """`soft_sort` and its `Residuals` (for `jvp` / `vjp`)."""
    x, ax = _prepare(x, axis)
    eps, p = _sort_rank_args(regularization, regularization_strength, p)
    return _run(soft_sort_rows, x, ax, eps, bool(descending), regularization, p)


def soft_sort(x, *, axis=-1, descending=False, regularization="l2",
              regularization_strength=1.0, p=4 / 3):
    r"""Soft sort: a differentiable relaxation of sorting, exact in the limit.

    .. math::

        s_\varepsilon(x) = P_R(\rho / \varepsilon, x)
        = \arg\max_{y \in \mathcal{P}(x)} \langle \rho / \varepsilon, y \rangle - R(y)
        \quad\text{(descending)},

    with ``kl`` in the paper's log-space form :math:`\log P_R(\rho/\varepsilon, e^x)`. The
    ascending sort is :math:`-s_\varepsilon(-x)` (for ``kl`` this is not a mirror image of the
    descending one). The output lies in the permutahedron of ``x``: it is monotone and, for
    ``l2``, has the same sum as ``x``.

    Args:
      x: floating array ``[..., n, ...]``.
      axis: the axis to sort along (default last).
      descending: sort largest first; ascending by default.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (with exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0`; larger is softer. Following the
        paper, it multiplies ``rho``, so it is in the units of ``1 / x``: l2 soft sort is
        exact when :math:`\varepsilon \le 1 /` (the largest gap between sorted entries), and
        tends to the mean as :math:`\varepsilon \to \infty`.
      p: the exponent for ``regularization="pnorm"`` (``p > 1``).

    Returns:
      Softly sorted values, same shape and dtype as ``x``.

    Example:
      >>> import numpy as np
      >>> from softorder.numpy import soft_sort
      >>> np.round(soft_sort(np.array([5.0, 1.0, 2.0])), 4)
      array([1.6667, 2.6667, 3.6667])

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    return soft_sort_fwd(x, axis=axis, descending=descending, regularization=regularization,
                         regularization_strength=regularization_strength, p=p)[0]


def _topk_args(x, k, axis, regularization_strength, p, solver, max_iter):
    x, ax = _prepare(x, axis)
    n = x.shape[ax]
    k = V.check_k(k, n, x.shape, axis)
    lam = V.check_strength(regularization_strength)
    p = V.check_p(p)
    V.check_solver(solver, p)
    V.check_positive_int(max_iter, "max_iter")
    return x, ax, k, lam, p


def soft_topk_mask_fwd(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                       max_iter=1000, tol=1e-9):
    """`soft_topk_mask` and its `Residuals` (for `jvp` / `vjp`)."""
    x, ax, k, lam, p = _topk_args(x, k, axis, regularization_strength, p, solver, max_iter)
    return _run(soft_topk_mask_rows, x, ax, k, lam, p, solver, max_iter, tol)


def soft_topk_mask(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                   max_iter=1000, tol=1e-9):
    r"""Sparse soft top-k mask: which entries are among the ``k`` largest, relaxed.

    .. math::

        m_\lambda(x) = \arg\max_{y \in \mathcal{P}(w_k)} \langle x, y \rangle
        - \frac{\lambda}{p} \|y\|_p^p,
        \qquad \mathcal{P}(w_k) = \{y \in [0, 1]^n : \textstyle\sum_i y_i = k\}.

    The output sums to ``k``, lies in ``[0, 1]`` and is sparse: entries far from the top-k
    boundary are exactly 0 or 1. ``p = 2`` is piecewise linear (kinks); ``p = 4/3`` (default)
    is continuously differentiable. ``lambda -> 0`` gives the hard mask, ``lambda -> infinity``
    the uniform ``k / n``.

    Args:
      x: floating array ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n``.
      axis: the axis to select along (default last).
      regularization_strength: :math:`\lambda > 0`, in the units of ``x``.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (parallel, approximate; ``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and stopping tolerance.

    Returns:
      The soft mask, same shape and dtype as ``x``.

    Example:
      >>> import numpy as np
      >>> from softorder.numpy import soft_topk_mask
      >>> soft_topk_mask(np.array([-5.0, -2.0, 3.0, 1.0]), 2, regularization_strength=0.01)
      array([0., 0., 1., 1.])

    References:
      Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
      Convex Analysis Perspective. ICML 2023.
    """
    return soft_topk_mask_fwd(x, k, axis=axis, regularization_strength=regularization_strength,
                              p=p, solver=solver, max_iter=max_iter, tol=tol)[0]


def soft_topk_magnitude_fwd(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3,
                            solver="pav", max_iter=1000, tol=1e-9):
    """`soft_topk_magnitude` and its `Residuals` (for `jvp` / `vjp`)."""
    x, ax, k, lam, p = _topk_args(x, k, axis, regularization_strength, p, solver, max_iter)
    return _run(soft_topk_magnitude_rows, x, ax, k, lam, p, solver, max_iter, tol)


def soft_topk_magnitude(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                        max_iter=1000, tol=1e-9):
    r"""Sparse soft top-k in magnitude: keep the ``k`` entries of largest ``|x|``, relaxed.

    The hard operator is :math:`x \odot \mathrm{topk\_mask}(|x|)`, the gradient of
    :math:`f(x) = \tfrac12 \sum_{\text{top-}k} x_i^2`. The soft one is
    :math:`y = u + \nabla R(u)` with

    .. math::

        u = \arg\max_u \langle u, x\rangle - f^*(u) - R(u), \qquad
        R(u) = \frac{\lambda}{p}\|u\|_p^p,

    computed exactly by PAV on :math:`|x|` sorted. Entries outside the soft support are exactly
    0; ``lambda -> 0`` gives the hard operator, ``lambda -> infinity`` returns ``x``.

    Args:
      x: floating array ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n``.
      axis: the axis to select along (default last).
      regularization_strength: :math:`\lambda > 0`.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (parallel, approximate; ``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and stopping tolerance.

    Returns:
      Same shape and dtype as ``x``.

    Example:
      >>> import numpy as np
      >>> from softorder.numpy import soft_topk_magnitude
      >>> x = np.array([-5.0, -2.0, 3.0, 1.0])
      >>> np.round(soft_topk_magnitude(x, 2, regularization_strength=0.01), 6)
      array([-5.,  0.,  3.,  0.])

    References:
      Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
      Convex Analysis Perspective. ICML 2023.
    """
    return soft_topk_magnitude_fwd(
        x, k, axis=axis, regularization_strength=regularization_strength, p=p, solver=solver,
        max_iter=max_iter, tol=tol)[0]


def project_permutahedron_fwd(z, w, *, axis=-1, regularization="l2", p=4 / 3):
    """`project_permutahedron` and its `Residuals` (two inputs: `vjp` returns ``(z_bar, w_bar)``)."""
    z, ax = _prepare(z, axis)
    w = V.as_float_array(w, "w")
    if w.shape != z.shape:
        raise ValueError(f"w must have the shape of z {z.shape}; got {w.shape}.")
    V.check_regularization(regularization)
    r = exponent_r(V.check_p(p)) if regularization == "pnorm" else 1.0
    z2, shape = _to_rows(z, ax)
    w2, _ = _to_rows(w, ax)
    if regularization == "kl" and np.any(w2 <= 0):
        raise ValueError("regularization='kl' projects onto P(w) with w > 0; w has entries <= 0.")
    y2, jz, jw = project_rows(z2, w2, regularization=regularization, r=r)
    return _from_rows(y2, shape, ax, z.dtype), Residuals((jz, jw), ax, shape, z.dtype)


def project_permutahedron(z, w, *, axis=-1, regularization="l2", p=4 / 3):
    r"""Regularized projection onto the permutahedron of ``w``.

    .. math::

        P_R(z, w) = \arg\max_{y \in \mathcal{P}(w)} \langle z, y\rangle - R(y)

    with ``l2`` (Euclidean projection), ``kl`` (:math:`R(y) = \langle y, \log y - 1\rangle`,
    ``w > 0``) or ``pnorm`` (:math:`R(y) = \frac1p\|y\|_p^p`). Sort, PAV, unsort:
    :math:`O(n \log n)`.

    Example:
      >>> import numpy as np
      >>> from softorder.numpy import project_permutahedron
      >>> project_permutahedron(np.array([2.5, 0.5, 1.0]), np.array([3.0, 2.0, 1.0]))
      array([3.  , 1.25, 1.75])
    """
    return project_permutahedron_fwd(z, w, axis=axis, regularization=regularization, p=p)[0]


# --------------------------------------------------------------------------------------------
# Hard operators (the limits).


def hard_sort(x, *, axis=-1, descending=False):
    """Sorted values along ``axis`` (``np.sort``, optionally descending)."""
    x, ax = _prepare(x, axis)
    y = np.sort(x, axis=ax)
    return np.flip(y, axis=ax) if descending else y


def hard_rank(x, *, axis=-1, descending=False):
    """1-based ranks ``argsort(argsort(x)) + 1`` (ties by position), in ``x``'s dtype."""
    x, ax = _prepare(x, axis)
    key = -x if descending else x
    order = np.argsort(key, axis=ax, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, x.shape[ax] + 1).reshape(
        [-1 if i == ax else 1 for i in range(x.ndim)]) + np.zeros_like(order), ax)
    return ranks.astype(x.dtype)


def hard_topk_mask(x, k, *, axis=-1):
    """1 on the ``k`` largest entries along ``axis`` (ties by position), else 0."""
    x, ax = _prepare(x, axis)
    k = V.check_k(k, x.shape[ax], x.shape, axis)
    order = np.argsort(-x, axis=ax, kind="stable")
    mask = np.zeros_like(x)
    top = np.take(order, np.arange(k), axis=ax)
    np.put_along_axis(mask, top, 1.0, ax)
    return mask


def hard_topk_magnitude(x, k, *, axis=-1):
    """``x`` on the ``k`` entries of largest magnitude, else 0."""
    x, ax = _prepare(x, axis)
    return x * hard_topk_mask(np.abs(x), k, axis=ax) + 0.0  # + 0.0: no -0.0
