r"""JAX front end: soft sort, rank, top-k and isotonic regression as ``jax.custom_jvp`` ops.

Each public function validates its options like `softorder.numpy`, moves ``axis`` last,
reshapes to ``[m, n]`` rows and calls one ``custom_jvp`` op whose primal returns the output
and the residuals of the operator's `BlockJacobian` (DESIGN §1): the sorting permutation, the
inverse output permutation, the integer PAV block ids and three float vectors ``a, b, c``.
Its tangent is linear and written in ``jnp``:

.. math::

    g = \dot x[\pi_{in}], \qquad
    t_k = a_k g_k + b_k \sum_{j \in B(k)} c_j g_j, \qquad
    \dot y = t[\pi_{out}^{-1}],

with ``take_along_axis`` and ``jax.ops.segment_sum`` over the saved block ids, O(n) per row.
JAX transposes it for reverse mode, so ``jvp``, ``grad``, ``jacfwd``, ``jacrev``, ``vmap``
and ``jit`` all come from this one rule.

**Two forward backends** (``backend=`` on every function):

* ``"callback"`` (default on CPU): the fused Numba kernels of `ops` through
  ``jax.pure_callback`` (``vmap_method="broadcast_all"``: a ``vmap`` becomes one batched call,
  never a loop over rows). Computes in float64.
* ``"jax"`` (default on GPU/TPU): the same row operators over the pure-JAX backend
  (`jax_backend`): ``jnp.argsort``, a parallel block-merging PAV and Dykstra in
  ``lax.while_loop``; no host round trip. Computes in float64 with ``jax_enable_x64``,
  otherwise in float32.

**Higher orders.** The residuals ``a, b, c`` depend smoothly on ``x`` (except for ``l2``,
where they are constant). Their tangent is the JVP of a pure-``jnp`` *replay* of the operator
with the saved permutation and blocks (`jax_backend.ReplayBackend`), which is exact wherever
the sort order and the blocks are locally constant (everywhere but a measure-zero set of
kinks). So second (and higher) derivatives -- ``jax.hessian``, ``jacfwd(jacrev(f))``,
``check_grads(order=2)`` -- are exact for every regularization, for both backends.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...core import ops
from ...core import validation as V
from ...core.projection import exponent_r
from ...isotonic import pav
from .backend import (
    JAX,
    ReplayBackend,
    block_sum,
    find_blocks,
    inverse_perm,
    match_vma,
    segment_ids,
)

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "BACKENDS",
    "default_backend",
]

BACKENDS = ("callback", "jax")
_FLOAT_DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)


def default_backend():
    """``"callback"`` when JAX's default platform is the CPU, else ``"jax"``."""
    return "callback" if jax.default_backend() == "cpu" else "jax"


def _check_backend(backend):
    if backend is None:
        return default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None (automatic); got {backend!r}.")
    return backend


def _compute_dtype():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


# --------------------------------------------------------------------------------------------
# Inputs, axes, rows.


def _as_float(x, name="x"):
    """A floating jax array (or tracer); NumPy arrays and lists are checked as NumPy does."""
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        if x.dtype not in _FLOAT_DTYPES:
            raise V.float_dtype_error(name, x.dtype, x.shape, f"{name}.astype(jnp.float32)")
        return x
    if hasattr(x, "dtype") and str(x.dtype) == "bfloat16":
        return jnp.asarray(x)
    return jnp.asarray(V.as_float_array(x, name))


def _to_rows(x, ax):
    xm = jnp.moveaxis(x, ax, -1)
    n = xm.shape[-1]
    m = int(np.prod(xm.shape[:-1], dtype=np.int64))
    return xm.reshape(m, n).astype(_compute_dtype()), xm.shape


def _from_rows(y2, shape, ax, dtype):
    return jnp.moveaxis(y2.reshape(shape), -1, ax).astype(dtype)


def _static_number(value, name):
    if isinstance(value, jax.core.Tracer):
        raise V.static_number_error(
            name, value, "softorder.jax", "a traced array",
            "Mark it static (e.g. jax.jit(..., static_argnames=...)) or pass float(...).")
    return value


# --------------------------------------------------------------------------------------------
# The differentiable row op.


class _Spec(NamedTuple):
    """Everything static about one operator call (hashable: a ``nondiff_argnum``)."""

    op: str  # "rank", "sort", "mask", "magnitude"
    args: tuple  # the row core's positional arguments after x
    backend: str
    has_out: bool  # False for sorts: the output is in sorted order
    exact2: bool  # True when a, b, c are constant in x (l2, p = 2, Dykstra)


_ROWS = {
    "rank": ops.soft_rank_rows,
    "sort": ops.soft_sort_rows,
    "mask": ops.soft_topk_mask_rows,
    "magnitude": ops.soft_topk_magnitude_rows,
}


def _numpy_rows(spec, x):
    """The callback body: float64 rows through the Numba core, residuals as int32/float."""
    x = np.asarray(x)
    shape = x.shape
    dt = x.dtype
    n = shape[-1]
    x2 = np.array(x.reshape(-1, n), dtype=np.float64)  # a writable float64 copy for Numba
    y, jac = _ROWS[spec.op](x2, *spec.args)
    in_perm = jac.in_perm.astype(np.int32)
    block = np.asarray(jac.block, np.int32)
    outs = [y.astype(dt), in_perm, block, jac.a.astype(dt), jac.b.astype(dt), jac.c.astype(dt)]
    if spec.has_out:
        inv = np.empty_like(in_perm)
        m = in_perm.shape[0]
        out_perm = jac.out_perm.astype(np.int32)
        np.put_along_axis(inv, out_perm, np.broadcast_to(np.arange(n, dtype=np.int32), (m, n)), -1)
        outs.append(inv)
    return tuple(o.reshape(shape) for o in outs)


def _forward(spec, x2):
    """``(y2, residuals)`` for float rows ``x2 [m, n]``; residuals
    ``(in_perm, block, a, b, c, inv_out | None)``."""
    m, n = x2.shape
    if m == 0 or n == 0:
        z = jnp.zeros((m, n), jnp.int32)
        return x2, (z, z, x2, x2, x2, z if spec.has_out else None)
    if spec.backend == "callback":
        ity = jax.ShapeDtypeStruct((m, n), jnp.int32)
        fty = jax.ShapeDtypeStruct((m, n), x2.dtype)
        shapes = (fty, ity, ity, fty, fty, fty) + ((ity,) if spec.has_out else ())
        outs = match_vma(jax.pure_callback(functools.partial(_numpy_rows, spec), shapes, x2,
                                            vmap_method="broadcast_all"), x2)
        y, in_perm, block, a, b, c = outs[:6]
        inv = outs[6] if spec.has_out else None
        return y, (in_perm, block, a, b, c, inv)
    y, jac = _ROWS[spec.op](x2, *spec.args, xp=JAX)
    inv = inverse_perm(jac.out_perm) if spec.has_out else None
    return y, (jac.in_perm.astype(jnp.int32), jac.block.astype(jnp.int32), jac.a, jac.b, jac.c,
               inv)


def _tangent(res, t):
    """The BlockJacobian map ``t -> J t`` in jnp (linear in ``t``; JAX transposes it)."""
    in_perm, block, a, b, c, inv = res
    g = jnp.take_along_axis(t, in_perm, -1)
    tt = a * g + b * block_sum(c * g, segment_ids(block))
    return tt if inv is None else jnp.take_along_axis(tt, inv, -1)


def _replay_abc(spec, in_perm, block, x2):
    """``(a, b, c)`` as smooth jnp functions of ``x2`` with the saved order and blocks."""
    _, jac = _ROWS[spec.op](x2, *spec.args, xp=ReplayBackend(in_perm, block))
    return jac.a, jac.b, jac.c


def _float0_zeros(a):
    # A symbolic zero typed like ``a``'s tangent (float0, with ``a``'s varying mesh axes).
    return jax.custom_derivatives.SymbolicZero(jax.typeof(a).strip_weak_type().to_tangent_aval())


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _core(spec, x2):
    return _forward(spec, x2)


def _core_jvp(spec, primals, tangents):
    (x2,), (t,) = primals, tangents
    if isinstance(t, jax.custom_derivatives.SymbolicZero):
        t = jnp.zeros(t.shape, t.dtype)
    y, res = _core(spec, x2)
    in_perm, block, a, b, c, inv = res
    ty = _tangent(res, t)
    if spec.exact2:
        ta, tb, tc = jnp.zeros_like(a), jnp.zeros_like(b), jnp.zeros_like(c)
    else:
        _, (ta, tb, tc) = jax.jvp(functools.partial(_replay_abc, spec, in_perm, block), (x2,),
                                  (t,))
    tres = (_float0_zeros(in_perm), _float0_zeros(block), ta, tb, tc,
            None if inv is None else _float0_zeros(inv))
    return (y, res), (ty, tres)


_core.defjvp(_core_jvp, symbolic_zeros=True)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _apply(spec, x, ax):
    # Jitted (and inlined into callers' jit): eager calls, grads and jvps run compiled code.
    x2, shape = _to_rows(x, ax)
    y2, _ = _core(spec, x2)
    return _from_rows(y2, shape, ax, x.dtype)


# --------------------------------------------------------------------------------------------
# Public operators (same options, defaults and numbers as softorder.numpy).


def _sort_rank_spec(op, x, axis, descending, regularization, regularization_strength, p,
                    backend):
    x = _as_float(x)
    ax = V.check_axis(axis, x.ndim, x.shape)
    V.check_regularization(regularization)
    eps = V.check_strength(_static_number(regularization_strength, "regularization_strength"))
    p = V.check_p(_static_number(p, "p")) if regularization == "pnorm" else 4 / 3
    exact2 = regularization == "l2" or (regularization == "pnorm" and exponent_r(p) == 1.0)
    spec = _Spec(op, (eps, bool(descending), regularization, p), _check_backend(backend),
                 op == "rank", exact2)
    return spec, x, ax


def soft_rank(x, *, axis=-1, descending=False, regularization="l2", regularization_strength=1.0,
              p=4 / 3, backend=None):
    r"""Soft ranks along ``axis``: 1-based, ascending by default (`softorder.numpy.soft_rank`).

    .. math::

        r_\varepsilon(x) = P_R(\pm x / \varepsilon, \rho)
        = \arg\max_{y \in \mathcal{P}(\rho)} \langle \pm x / \varepsilon, y \rangle - R(y),
        \qquad \rho = (n, \dots, 1),

    with ``l2`` :math:`R(y) = \tfrac12\|y\|^2`, ``kl`` :math:`R(y) = \langle y, \log y - 1
    \rangle` or ``pnorm`` :math:`R(y) = \tfrac1p\|y\|_p^p`. Exact: sort + PAV,
    :math:`O(n \log n)`; derivatives :math:`O(n)`.

    Args:
      x: floating array ``[..., n, ...]`` (float16, bfloat16, float32 or float64).
      axis: the axis to rank along (default last).
      descending: if True, rank 1 is the largest entry.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0` in the units of ``x``; larger is softer.
      p: the exponent for ``regularization="pnorm"`` (``p > 1``).
      backend: ``"callback"`` (Numba on the host), ``"jax"`` (pure JAX, any device) or None
        (automatic: callback on CPU, pure JAX elsewhere).

    Returns:
      Soft ranks, shape and dtype of ``x``; each row sums to :math:`n(n+1)/2`.

    Example:
      >>> import jax.numpy as jnp
      >>> from softorder.jax import soft_rank
      >>> soft_rank(jnp.array([5.0, 1.0, 2.0], jnp.float32), regularization_strength=2.0)
      Array([3.  , 1.25, 1.75], dtype=float32)

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    spec, x, ax = _sort_rank_spec("rank", x, axis, descending, regularization,
                                  regularization_strength, p, backend)
    return _apply(spec, x, ax)


def soft_sort(x, *, axis=-1, descending=False, regularization="l2", regularization_strength=1.0,
              p=4 / 3, backend=None):
    r"""Soft sort along ``axis``, ascending by default (`softorder.numpy.soft_sort`).

    .. math::

        s_\varepsilon(x) = P_R(\rho / \varepsilon, x)\ \text{(descending)}, \qquad
        \text{ascending: } -s_\varepsilon(-x),

    with ``kl`` in the paper's log-space form :math:`\log P_R(\rho/\varepsilon, e^x)`.
    ``regularization_strength`` multiplies :math:`\rho`, as in the paper (units of ``1/x``).
    The output is monotone along ``axis``; for ``l2`` it has the sum of ``x``.

    Args:
      x: floating array ``[..., n, ...]``.
      axis: the axis to sort along (default last).
      descending: sort largest first.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0`; larger is softer.
      p: the exponent for ``regularization="pnorm"``.
      backend: ``"callback"``, ``"jax"`` or None (automatic), as in `soft_rank`.

    Returns:
      Softly sorted values, shape and dtype of ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softorder.jax import soft_sort
      >>> soft_sort(jnp.array([5.0, 1.0, 2.0], jnp.float32)).round(4)
      Array([1.6667, 2.6667, 3.6667], dtype=float32)

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    spec, x, ax = _sort_rank_spec("sort", x, axis, descending, regularization,
                                  regularization_strength, p, backend)
    return _apply(spec, x, ax)


def _topk_spec(op, x, k, axis, regularization_strength, p, solver, max_iter, tol, backend):
    x = _as_float(x)
    ax = V.check_axis(axis, x.ndim, x.shape)
    k = V.check_k(k, x.shape[ax], x.shape, axis)
    lam = V.check_strength(_static_number(regularization_strength, "regularization_strength"))
    p = V.check_p(_static_number(p, "p"))
    V.check_solver(solver, p)
    max_iter = V.check_positive_int(max_iter, "max_iter")
    tol = float(_static_number(tol, "tol"))
    exact2 = exponent_r(p) == 1.0
    spec = _Spec(op, (k, lam, p, solver, max_iter, tol), _check_backend(backend), True, exact2)
    return spec, x, ax


def soft_topk_mask(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                   max_iter=1000, tol=1e-9, backend=None):
    r"""Sparse soft top-k mask along ``axis`` (`softorder.numpy.soft_topk_mask`).

    .. math::

        m_\lambda(x) = \arg\max_{y \in [0,1]^n,\ \sum_i y_i = k} \langle x, y\rangle
        - \frac{\lambda}{p}\|y\|_p^p.

    Sums to ``k``, lies in ``[0, 1]``, and is exactly 0 or 1 away from the top-k boundary.
    ``p = 2`` is piecewise linear; ``p = 4/3`` (default) is continuously differentiable.

    Args:
      x: floating array ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n`` (a Python int).
      axis: the axis to select along (default last).
      regularization_strength: :math:`\lambda > 0`, in the units of ``x``.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (parallel, approximate; ``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and stopping tolerance.
      backend: ``"callback"``, ``"jax"`` or None (automatic), as in `soft_rank`.

    Returns:
      The soft mask, shape and dtype of ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from softorder.jax import soft_topk_mask
      >>> x = jnp.array([-5.0, -2.0, 3.0, 1.0], jnp.float32)
      >>> soft_topk_mask(x, 2, regularization_strength=0.01)
      Array([0., 0., 1., 1.], dtype=float32)

    References:
      Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
      Convex Analysis Perspective. ICML 2023.
    """
    spec, x, ax = _topk_spec("mask", x, k, axis, regularization_strength, p, solver, max_iter,
                             tol, backend)
    return _apply(spec, x, ax)


def soft_topk_magnitude(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                        max_iter=1000, tol=1e-9, backend=None):
    r"""Sparse soft top-k in magnitude along ``axis`` (`softorder.numpy.soft_topk_magnitude`).

    The hard operator is :math:`x \odot \mathrm{topk\_mask}(|x|)`; the soft one is
    :math:`y = u + \nabla R(u)` with
    :math:`u = \arg\max_u \langle u, x\rangle - f^*(u) - R(u)`,
    :math:`R = \frac{\lambda}{p}\|\cdot\|_p^p`, :math:`f(x) = \tfrac12\sum_{\text{top-}k}x_i^2`.

    Args:
      x: floating array ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n``.
      axis: the axis to select along (default last).
      regularization_strength: :math:`\lambda > 0`.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and stopping tolerance.
      backend: ``"callback"``, ``"jax"`` or None (automatic), as in `soft_rank`.

    Returns:
      Shape and dtype of ``x``; exactly 0 outside the soft support.

    Example:
      >>> import jax.numpy as jnp
      >>> from softorder.jax import soft_topk_magnitude
      >>> x = jnp.array([-5.0, -2.0, 3.0, 1.0], jnp.float32)
      >>> soft_topk_magnitude(x, 2, regularization_strength=0.01).round(4)
      Array([-5.,  0.,  3.,  0.], dtype=float32)

    References:
      Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
      Convex Analysis Perspective. ICML 2023.
    """
    spec, x, ax = _topk_spec("magnitude", x, k, axis, regularization_strength, p, solver,
                             max_iter, tol, backend)
    return _apply(spec, x, ax)


# --------------------------------------------------------------------------------------------
# Isotonic regression (differentiable in y and sample_weight, to any order).


class IsotonicResult(NamedTuple):
    """``(solution, block)``: the fit and its int32 block ids (like `softorder.isotonic`)."""

    solution: jax.Array
    block: jax.Array


def _isotonic_blocks_np(target, c):
    target = np.asarray(target, np.float64)
    c = np.asarray(c, np.float64)
    shape = target.shape
    n = shape[-1]
    t2, c2 = target.reshape(-1, n), c.reshape(-1, n)
    _, _, _, _, block = pav.pav_batch(t2, np.zeros_like(t2), c2, pav.KIND_L2, 1.0, 1.0, True,
                                      False)
    return block.astype(np.int32).reshape(shape)


def _isotonic_blocks(target, c, backend):
    m, n = target.shape
    if m == 0 or n == 0:
        return jnp.zeros((m, n), jnp.int32)
    if backend == "callback":
        return match_vma(jax.pure_callback(
            _isotonic_blocks_np, jax.ShapeDtypeStruct((m, n), jnp.int32), target, c,
            vmap_method="broadcast_all"), target)
    return find_blocks(target, jnp.zeros_like(target), c, pav.KIND_L2, 1.0, 1.0)


def isotonic_regression(y, *, sample_weight=None, y_min=None, y_max=None, increasing=True,
                        axis=-1, return_blocks=False, backend=None):
    r"""Least-squares isotonic regression along ``axis`` (`softorder.isotonic`), differentiable.

    .. math::

        \min_{v_1 \le \dots \le v_n} \sum_i c_i (y_i - v_i)^2, \qquad
        y_{\min} \le v_i \le y_{\max}.

    PAV finds the integer blocks (on the host by Numba, or in pure JAX); the fit is then
    :math:`v_B = \sum_B c_j y_j / \sum_B c_j`, clipped, written in ``jnp``: JAX differentiates
    it in ``y`` and in ``sample_weight`` to any order (the blocks are locally constant).
    Non-positive weights raise ``ValueError`` for concrete inputs; under ``jit`` they give NaN
    in their row.

    Args:
      y: floating array ``[..., n, ...]``.
      sample_weight: positive weights, the shape of ``y`` (default ones).
      y_min, y_max: optional bounds (Python numbers).
      increasing: the direction of the order constraint.
      axis: the axis of the sequences.
      return_blocks: also return the int32 block ids (an `IsotonicResult`).
      backend: ``"callback"``, ``"jax"`` or None (automatic), as in `soft_rank`.

    Example:
      >>> import jax.numpy as jnp
      >>> from softorder.jax import isotonic_regression
      >>> isotonic_regression(jnp.array([1.0, 3.0, 2.0, 4.0], jnp.float32))
      Array([1. , 2.5, 2.5, 4. ], dtype=float32)
    """
    y = _as_float(y, "y")
    ax = V.check_axis(axis, y.ndim, y.shape)
    backend = _check_backend(backend)
    if sample_weight is None:
        c = jnp.ones_like(y)
    else:
        c = _as_float(sample_weight, "sample_weight")
        if c.shape != y.shape:
            raise ValueError(f"sample_weight must have the shape of y {y.shape}; got {c.shape}.")
        if not isinstance(c, jax.core.Tracer) and bool(jnp.any(~(c > 0))):
            raise ValueError("sample_weight must be positive.")
    lo = None if y_min is None else float(_static_number(y_min, "y_min"))
    hi = None if y_max is None else float(_static_number(y_max, "y_max"))
    v, block = _isotonic(y, c, bool(increasing), lo, hi, ax, backend)
    if return_blocks:
        return IsotonicResult(v, block)
    return v


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6))
def _isotonic(y, c, increasing, lo, hi, ax, backend):
    y2, shape = _to_rows(y, ax)
    c2, _ = _to_rows(c, ax)
    bad = jnp.any(~(c2 > 0), axis=-1, keepdims=True)
    c2 = jnp.where(bad, 1.0, c2)
    target = jax.lax.stop_gradient(-y2 if increasing else y2)
    block = jax.lax.stop_gradient(_isotonic_blocks(target, jax.lax.stop_gradient(c2), backend))
    gid = segment_ids(block)
    csum = block_sum(c2, gid)
    v = block_sum(c2 * y2, gid) / csum
    v = v + block_sum(c2 * (y2 - v), gid) / csum  # one correction pass, as the Numba mean
    if lo is not None or hi is not None:
        free = jnp.ones(v.shape, bool)
        if lo is not None:
            free = free & (v > lo)
        if hi is not None:
            free = free & (v < hi)
        v = jnp.where(free, v, jnp.clip(jax.lax.stop_gradient(v), lo, hi))
    v = jnp.where(bad, jnp.nan, v)
    return _from_rows(v, shape, ax, y.dtype), _from_rows(block, shape, ax, jnp.int32)
