r"""Soft sort, soft rank and sparse soft top-k: row-level cores and the NumPy API.

Every operator is a regularized projection (DESIGN §1) and comes as

* a row-level core ``*_rows(x2d, ...) -> (y2d, BlockJacobian)`` on float64 ``[m, n]`` arrays,
  which the framework front ends call (or mirror on accelerators), and
* a public NumPy function of any shape and axis, plus a ``*_fwd`` variant returning the
  residuals that `jvp` and `vjp` consume in O(n) per row.

Conventions (shared by every front end): ranks are 1-based and ascending by default (rank 1 is
the smallest entry); ``descending=True`` flips the order. A larger ``regularization_strength``
is softer; ``regularization_strength -> 0`` gives the hard operator. Outputs keep the input's
floating dtype (integer and boolean inputs become float64, as ``np.mean`` does; complex ones
raise); kernels compute in float64. A row holding NaN gives NaN in that row only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from . import registry as R
from . import validation as V
from .backend import NUMPY_WINDOWS
from .jacobian import apply
from .projection import exponent_r, project_rows

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
# Any shape, any axis.


class Residuals(NamedTuple):
    """What `jvp` and `vjp` need: one BlockJacobian per differentiable input, and the layout."""

    jacobians: tuple
    axis: int
    shape: tuple  # the input's shape with ``axis`` moved last
    dtype: np.dtype


def _to_rows(x, axis):
    """``x`` with ``axis`` (normalized) moved last, as C-contiguous float64 ``[m, n]`` rows."""
    xm = x if axis == x.ndim - 1 else np.moveaxis(x, axis, -1)
    shape = xm.shape
    return np.ascontiguousarray(xm.reshape(math.prod(shape[:-1]), shape[-1]), np.float64), shape


def _from_rows(y2, shape, axis, dtype):
    y = y2.reshape(shape)
    if axis != len(shape) - 1:
        y = np.moveaxis(y, -1, axis)
    return y.astype(dtype, copy=False)


def _prepare(x, axis):
    x = V.as_float_array(x)
    ax = V.check_axis(axis, x.ndim, x.shape)
    return x, ax


def _check_tangent(res: Residuals, t, name):
    """A tangent/cotangent of the residuals' layout: real, floating or integer, right shape."""
    t = np.asarray(t)
    kind = t.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real; got complex values with shape {t.shape}.")
    if kind not in "fiub":
        raise TypeError(f"{name} must be an array of real numbers; got dtype {t.dtype}.")
    shape = res.shape
    if res.axis != len(shape) - 1:
        moved = list(shape)
        shape = tuple(moved[:-1][:res.axis] + [moved[-1]] + moved[:-1][res.axis:])
    if t.shape != shape:
        raise ValueError(f"{name} must have the shape of the operator's input/output {shape}; "
                         f"got {t.shape}.")
    return t


def jvp(res: Residuals, *tangents: ArrayLike) -> np.ndarray:
    """Forward-mode derivative: the output tangent for one tangent per differentiable input.

    O(n) per row: gathers and block sums with the saved permutations and block ids.
    """
    if len(tangents) != len(res.jacobians):
        raise ValueError(f"jvp needs {len(res.jacobians)} tangent(s); got {len(tangents)}.")
    total = None
    for jac, t in zip(res.jacobians, tangents):
        t2, _ = _to_rows(_check_tangent(res, t, "tangent"), res.axis)
        out = apply(jac, t2)
        total = out if total is None else total + out
    return _from_rows(total, res.shape, res.axis, res.dtype)


def vjp(res: Residuals, y_bar: ArrayLike) -> np.ndarray | tuple[np.ndarray, ...]:
    """Reverse-mode derivative: the input cotangent(s) for the output cotangent ``y_bar``.

    Returns one array, or a tuple of arrays for functions of several inputs.
    """
    g2, _ = _to_rows(_check_tangent(res, y_bar, "y_bar"), res.axis)
    outs = tuple(_from_rows(apply(jac, g2, transpose=True), res.shape, res.axis, res.dtype)
                 for jac in res.jacobians)
    return outs[0] if len(outs) == 1 else outs


def _call(name, x, k, axis, strength, **options):
    """Validate, lay out as rows, run the registered operator: ``(y, Residuals)``."""
    op = R.get(name)
    x, ax = _prepare(x, axis)
    if op.takes_k:
        options["k"] = k
    opts = op.make_options(shape=x.shape, axis=axis, **options)
    eps = V.check_strength(strength)
    x2, shape = _to_rows(x, ax)
    # NUMPY_WINDOWS: partial top-k residuals cover the window only (`vjp`/`jvp` size the rest).
    y2, jac = op.rows(x2, eps, opts, NUMPY_WINDOWS)
    return _from_rows(y2, shape, ax, x.dtype), Residuals((jac,), ax, shape, x.dtype)


def soft_rank_fwd(x: ArrayLike, *, axis: int = -1, descending: bool = False,
                  regularization: str = "l2", regularization_strength: ArrayLike = 1.0,
                  p: float = 4 / 3, straight_through: bool = False
                  ) -> tuple[np.ndarray, Residuals]:
    """`soft_rank` and its `Residuals` (for `jvp` / `vjp`)."""
    return _call("soft_rank", x, None, axis, regularization_strength, descending=descending,
                 regularization=regularization, p=p, straight_through=straight_through)


def soft_rank(x: ArrayLike, *, axis: int = -1, descending: bool = False,
              regularization: str = "l2", regularization_strength: ArrayLike = 1.0,
              p: float = 4 / 3, straight_through: bool = False) -> np.ndarray:
    return soft_rank_fwd(x, axis=axis, descending=descending, regularization=regularization,
                         regularization_strength=regularization_strength, p=p,
                         straight_through=straight_through)[0]


def soft_sort_fwd(x: ArrayLike, *, axis: int = -1, descending: bool = False,
                  regularization: str = "l2", regularization_strength: ArrayLike = 1.0,
                  p: float = 4 / 3, straight_through: bool = False
                  ) -> tuple[np.ndarray, Residuals]:
    """`soft_sort` and its `Residuals` (for `jvp` / `vjp`)."""
    return _call("soft_sort", x, None, axis, regularization_strength, descending=descending,
                 regularization=regularization, p=p, straight_through=straight_through)


def soft_sort(x: ArrayLike, *, axis: int = -1, descending: bool = False,
              regularization: str = "l2", regularization_strength: ArrayLike = 1.0,
              p: float = 4 / 3, straight_through: bool = False) -> np.ndarray:
    return soft_sort_fwd(x, axis=axis, descending=descending, regularization=regularization,
                         regularization_strength=regularization_strength, p=p,
                         straight_through=straight_through)[0]


def soft_topk_mask_fwd(x: ArrayLike, k: int, *, axis: int = -1, regularization_strength: ArrayLike = 1.0,
                       p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                       straight_through: bool = False) -> tuple[np.ndarray, Residuals]:
    """`soft_topk_mask` and its `Residuals` (for `jvp` / `vjp`)."""
    return _call("soft_topk_mask", x, k, axis, regularization_strength, p=p, solver=solver,
                 max_iter=max_iter, tol=tol, straight_through=straight_through)


def soft_topk_mask(x: ArrayLike, k: int, *, axis: int = -1, regularization_strength: ArrayLike = 1.0,
                   p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                   straight_through: bool = False) -> np.ndarray:
    return soft_topk_mask_fwd(x, k, axis=axis, regularization_strength=regularization_strength,
                              p=p, solver=solver, max_iter=max_iter, tol=tol,
                              straight_through=straight_through)[0]


def soft_topk_magnitude_fwd(x: ArrayLike, k: int, *, axis: int = -1, regularization_strength: ArrayLike = 1.0,
                            p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                            straight_through: bool = False) -> tuple[np.ndarray, Residuals]:
    """`soft_topk_magnitude` and its `Residuals` (for `jvp` / `vjp`)."""
    return _call("soft_topk_magnitude", x, k, axis, regularization_strength, p=p,
                 solver=solver, max_iter=max_iter, tol=tol, straight_through=straight_through)


def soft_topk_magnitude(x: ArrayLike, k: int, *, axis: int = -1, regularization_strength: ArrayLike = 1.0,
                        p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                        straight_through: bool = False) -> np.ndarray:
    return soft_topk_magnitude_fwd(
        x, k, axis=axis, regularization_strength=regularization_strength, p=p, solver=solver,
        max_iter=max_iter, tol=tol, straight_through=straight_through)[0]


soft_rank.__doc__ = R.docstring("soft_rank", "numpy", """
>>> import numpy as np
>>> from softorder.numpy import soft_rank
>>> soft_rank(np.array([5.0, 1.0, 2.0]), regularization_strength=2.0)
array([3.  , 1.25, 1.75])
>>> soft_rank(np.array([5.0, 1.0, 2.0]), regularization_strength=2.0, straight_through=True)
array([3., 1., 2.])
""")
soft_sort.__doc__ = R.docstring("soft_sort", "numpy", """
>>> import numpy as np
>>> from softorder.numpy import soft_sort
>>> np.round(soft_sort(np.array([5.0, 1.0, 2.0])), 4)
array([1.6667, 2.6667, 3.6667])
""")
soft_topk_mask.__doc__ = R.docstring("soft_topk_mask", "numpy", """
>>> import numpy as np
>>> from softorder.numpy import soft_topk_mask
>>> soft_topk_mask(np.array([-5.0, -2.0, 3.0, 1.0]), 2, regularization_strength=0.01)
array([0., 0., 1., 1.])
""")
soft_topk_magnitude.__doc__ = R.docstring("soft_topk_magnitude", "numpy", """
>>> import numpy as np
>>> from softorder.numpy import soft_topk_magnitude
>>> x = np.array([-5.0, -2.0, 3.0, 1.0])
>>> np.round(soft_topk_magnitude(x, 2, regularization_strength=0.01), 6)
array([-5.,  0.,  3.,  0.])
""")


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
