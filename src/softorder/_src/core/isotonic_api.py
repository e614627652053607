r"""Batched isotonic regression (the numerical core), with the block structure as integers.

The solvers act on the last axis (or ``axis``) of arrays of any shape, compile once with Numba,
run rows in parallel and accumulate in float64. Each returns the solution and the integer block
ids (``block[..., i]`` is the index of the PAV block holding position ``i``; ids increase along
the axis), so derivatives never rediscover blocks by comparing floats.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..isotonic import pav
from . import registry as R
from . import validation as V
from .dykstra import dykstra_decreasing


class IsotonicResult(NamedTuple):
    solution: np.ndarray
    block: np.ndarray  # int32, same shape as the solution


class DykstraResult(NamedTuple):
    solution: np.ndarray
    block: np.ndarray
    n_iter: int
    residual: float  # largest violation of the order constraints by the returned solution


def _rows(a, ax):
    am = np.moveaxis(a, ax, -1)
    return np.ascontiguousarray(am.reshape(int(np.prod(am.shape[:-1])), am.shape[-1]), np.float64), am.shape


def _back(a2, shape, ax, dtype=None):
    out = np.moveaxis(a2.reshape(shape), -1, ax)
    return out if dtype is None else out.astype(dtype, copy=False)


def _inputs(y, w, axis, wname="w"):
    y = V.as_float_array(y, "y")
    ax = V.check_axis(axis, y.ndim, y.shape)
    if w is None:
        w2 = None
    else:
        w = V.as_float_array(w, wname)
        if w.shape != y.shape:
            raise ValueError(f"{wname} must have the shape of y {y.shape}; got {w.shape}.")
        w2, _ = _rows(w, ax)
    y2, shape = _rows(y, ax)
    return y, ax, y2, w2, shape


def isotonic_regression(y, *, sample_weight=None, y_min=None, y_max=None, increasing=True,
                        axis=-1, return_blocks=False):
    r"""Least-squares isotonic regression along ``axis``, as scikit-learn's, batched.

    .. math::

        \min_{v_1 \le \dots \le v_n} \sum_i c_i (y_i - v_i)^2,
        \qquad y_{\min} \le v_i \le y_{\max},

    (``increasing=False`` reverses the order). Exact, by pool-adjacent-violators, O(n) per row.

    Args:
      y: real array ``[..., n, ...]`` (integer and boolean arrays become float64).
      sample_weight: positive weights ``c``, the shape of ``y`` (default ones).
      y_min, y_max: optional bounds (clipping the unbounded solution is exact for l2).
      increasing: the direction of the order constraint.
      axis: the axis of the sequences.
      return_blocks: also return the integer block ids (an `IsotonicResult`).

    Example:
      >>> import numpy as np
      >>> from softorder.isotonic import isotonic_regression
      >>> isotonic_regression(np.array([1.0, 3.0, 2.0, 4.0]))
      array([1. , 2.5, 2.5, 4. ])
    """
    res = isotonic_regression_fwd(y, sample_weight=sample_weight, y_min=y_min, y_max=y_max,
                                  increasing=increasing, axis=axis)
    sol, block = res[0], res[2]
    return IsotonicResult(sol, block) if return_blocks else sol


def isotonic_regression_fwd(y, *, sample_weight=None, y_min=None, y_max=None, increasing=True,
                            axis=-1):
    """`isotonic_regression`, its `Residuals` for `softorder.numpy.jvp`/`vjp` (two inputs:
    ``y`` and ``sample_weight``; `vjp` returns ``(y_bar, sample_weight_bar)``) and the blocks."""
    from .ops import Residuals  # the NumPy API's residual layout

    op = R.get("isotonic_regression")
    opts = op.make_options(increasing=increasing, y_min=y_min, y_max=y_max)
    y, ax, y2, c2, shape = _inputs(y, sample_weight, axis, "sample_weight")
    if c2 is None:
        c2 = np.ones_like(y2)
    elif np.any(~(c2 > 0)):
        raise ValueError("sample_weight must be positive.")
    v, jacs = op.rows((y2, c2), None, opts, R.NUMPY)
    block = _back(jacs[0].block, shape, ax)
    return _back(v, shape, ax, y.dtype), Residuals(jacs, ax, shape, y.dtype), block


def isotonic_kl(s, w, *, axis=-1):
    r"""Decreasing isotonic problem of the entropic (kl) projection, ``w`` in log space.

    .. math::

        \min_{v_1 \ge \dots \ge v_n} \sum_i e^{s_i - v_i} + \langle e^{w}, v\rangle,
        \qquad v_B = \mathrm{LSE}(s_B) - \mathrm{LSE}(w_B) \text{ on each block } B.
    """
    s, ax, s2, w2, shape = _inputs(s, w, axis)
    v, _, _, _, block = pav.pav_batch(s2, w2, np.ones_like(s2), pav.KIND_KL, 1.0, 1.0, True,
                                      False)
    return IsotonicResult(_back(v, shape, ax, s.dtype), _back(block, shape, ax))


def isotonic_pnorm(s, w, *, p=4 / 3, axis=-1):
    r"""Decreasing isotonic problem of the p-norm projection (the sparse top-k paper).

    .. math::

        \min_{v_1 \ge \dots \ge v_n} \sum_i R^*(s_i - v_i) + \langle w, v\rangle,
        \qquad R^*(u) = \tfrac1q |u|^q,\ q = \tfrac{p}{p-1};

    on each block :math:`\sum_B \mathrm{sign}(s_i - v_B)|s_i - v_B|^{q-1} = \sum_B w_i`:
    a closed form for ``p = 2``, a cubic with additive moments for ``p = 4/3``, a safeguarded
    Newton solve otherwise.
    """
    from .projection import exponent_r

    s, ax, s2, w2, shape = _inputs(s, w, axis)
    r = exponent_r(V.check_p(p))
    kind = pav.KIND_L2 if r == 1.0 else pav.KIND_PNORM
    v, _, _, _, block = pav.pav_batch(s2, w2, np.ones_like(s2), kind, r, 1.0, True, False)
    return IsotonicResult(_back(v, shape, ax, s.dtype), _back(block, shape, ax))


def isotonic_magnitude(s, w, *, p=4 / 3, regularization_strength=1.0, axis=-1):
    r"""Decreasing isotonic problem of the top-k-in-magnitude operator.

    .. math::

        \min_{v_1 \ge \dots \ge v_n} \sum_i R^*(s_i - v_i) + \tfrac12 w_i v_i^2,
        \qquad \sum_B \phi(s_i - v_B) = v_B \sum_B w_i \text{ on each block}.
    """
    from .projection import exponent_r

    s, ax, s2, w2, shape = _inputs(s, w, axis)
    r = exponent_r(V.check_p(p))
    lam = V.check_strength(regularization_strength)
    v, _, _, _, block = pav.pav_batch(s2, w2, np.ones_like(s2), pav.KIND_MAG, r, lam, True,
                                      False)
    return IsotonicResult(_back(v, shape, ax, s.dtype), _back(block, shape, ax))


def isotonic_dykstra(y, *, sample_weight=None, increasing=True, axis=-1, max_iter=1000,
                     tol=1e-9):
    r"""Least-squares isotonic regression by Dykstra's alternating pair projections.

    Each sweep is O(n) and fully parallel; the iterates converge to the exact (PAV) solution,
    long blocks needing many sweeps. Returns the solution, the blocks of constraints active in
    the last sweep, the number of sweeps and the largest remaining order violation. When
    ``max_iter`` sweeps end before the tolerance is met it warns
    (`DykstraNotConvergedWarning`, a ``RuntimeWarning``) and returns the approximation.

    Example:
      >>> import numpy as np
      >>> from softorder.isotonic import isotonic_dykstra
      >>> res = isotonic_dykstra(np.array([1.0, 3.0, 2.0, 4.0]))
      >>> np.round(res.solution, 6), res.block
      (array([1. , 2.5, 2.5, 4. ]), array([0, 1, 1, 2], dtype=int32))
    """
    y, ax, y2, c2, shape = _inputs(y, sample_weight, axis, "sample_weight")
    V.check_positive_int(max_iter, "max_iter")
    if c2 is None:
        c2 = np.ones_like(y2)
    target = -y2 if increasing else y2
    st = dykstra_decreasing(target, c2, max_iter=max_iter, tol=tol)
    sol = -st.solution if increasing else st.solution
    return DykstraResult(_back(sol, shape, ax, y.dtype), _back(st.block, shape, ax),
                         st.n_iter, st.residual)
