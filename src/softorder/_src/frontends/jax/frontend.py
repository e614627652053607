r"""JAX front end: every registered operator (`core.registry`) as one ``jax.custom_jvp`` op.

A public function validates its options once (``Operator.make_options``: a frozen, hashable
dataclass), moves ``axis`` last, reshapes to ``[m, n]`` rows and calls `_core`, the one
``custom_jvp`` function of every operator. Its static part is ``(operator name, options,
backend)``; the rows ``x2`` and the ``regularization_strength`` are its operands, so a new
strength (a Python float or a 0-d array, traced too) never compiles a new executable. The
primal returns the output and the operator's `BlockJacobian` (one layout: ``out_perm`` is None
for sorts, equal to ``in_perm`` otherwise). The tangent is the core's one derivative map,
``jacobian.apply(jac, x_dot, xp=JAX)`` (gathers and per-row segment sums, O(n) per row), plus
``Operator.strength_tangent`` times the strength's tangent. It is linear in the tangents, so JAX
transposes it for reverse mode: ``jvp``, ``grad``, ``jacfwd``, ``jacrev``, ``vmap`` and ``jit``
all come from this one rule.

**Two forward backends** (``backend=`` on every function):

* ``"callback"`` (default on CPU): the registry's row function on the NumPy backend (fused
  Numba kernels) through ``jax.pure_callback`` (``vmap_method="broadcast_all"``: a ``vmap``
  becomes one batched call, never a loop over rows). Computes in float64. Under a mesh
  (explicit or auto axes) the callback runs inside ``jax.shard_map`` over the axes that shard
  the rows, so each device computes its own rows and the output keeps the input's sharding.
* ``"jax"`` (default on GPU/TPU): the same row function over the pure-JAX backend
  (`backend.JaxBackend`): ``jnp.argsort``, a parallel block-merging PAV and Dykstra in
  ``lax.while_loop``; no host round trip. Computes in float64 with ``jax_enable_x64``,
  otherwise in float32.

**Higher orders.** The residuals ``a, b, c`` depend smoothly on ``x`` (except where
``options.exact_second_order``) and on the strength. Their tangent is the JVP of a pure-``jnp``
*replay* of the registry's row function with the saved permutation and blocks
(`backend.ReplayBackend`), exact wherever the sort order and the blocks are locally constant
(everywhere but a measure-zero set of kinks). So second (and higher) derivatives, in ``x`` and
in the strength, are exact for every regularization, for both backends.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

from ...core import registry as R
from ...core import validation as V
from ...core.jacobian import BlockJacobian, apply
from ...isotonic import pav
from .backend import JAX, ReplayBackend, block_sum, find_blocks, match_vma

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


def default_backend() -> str:
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
    x = V.as_float_array(x, name)
    if not x.dtype.isnative:  # big-endian NumPy arrays: JAX takes native byte order only
        x = x.astype(x.dtype.newbyteorder("="))
    return jnp.asarray(x)


def _static_number(value, name):
    if isinstance(value, jax.core.Tracer):
        raise V.static_number_error(
            name, value, "softorder.jax", "a traced array",
            "Mark it static (e.g. jax.jit(..., static_argnames=...)) or pass float(...).")
    return value


def _check_strength(value):
    """A Python/NumPy number (checked > 0) or a 0-d jax array (a traced one cannot be checked
    for positivity); an operand of the op, never static."""
    if isinstance(value, (jax.Array, jax.core.Tracer)) and not isinstance(value, np.ndarray):
        if value.shape != () or not (jnp.issubdtype(value.dtype, jnp.floating)
                                     or jnp.issubdtype(value.dtype, jnp.integer)):
            raise TypeError(f"regularization_strength must be a positive number or a 0-d real "
                            f"array; got dtype {value.dtype} with shape {value.shape}.")
        if not isinstance(value, jax.core.Tracer):
            V.check_strength(value)
        return value
    return V.check_strength(value)


def _to_rows(x, ax):
    xm = jnp.moveaxis(x, ax, -1)
    n = xm.shape[-1]
    m = int(np.prod(xm.shape[:-1], dtype=np.int64))
    return xm.reshape(m, n).astype(_compute_dtype()), xm.shape


def _from_rows(y2, shape, ax, dtype):
    return jnp.moveaxis(y2.reshape(shape), -1, ax).astype(dtype)


# --------------------------------------------------------------------------------------------
# The forward pass: the registry's row function, on the host (Numba) or in jnp.


class _Static(NamedTuple):
    """Everything static about one call (hashable: the ``nondiff_argnum`` of `_core`)."""

    name: str  # the registry name, e.g. "soft_rank"
    options: Any  # the operator's frozen options (SortOptions / TopKOptions)
    backend: str  # "callback" or "jax"


def _host_rows(static, x, strength):
    """The callback body: float64 rows through the NumPy backend (Numba), one call per distinct
    strength (under ``vmap`` the strength may differ between batch entries)."""
    op = R.get(static.name)
    x = np.asarray(x)
    shape, dt = x.shape, x.dtype
    x2 = np.array(x.reshape(-1, shape[-1]), dtype=np.float64)  # writable float64 for Numba
    s = np.asarray(strength, np.float64)
    s = np.broadcast_to(s.reshape(s.shape + (1,)), shape[:-1]).reshape(-1)
    values, which = np.unique(s, return_inverse=True)
    outs = [np.empty(x2.shape, t) for t in (dt, np.int32, np.int32, dt, dt, dt)]
    for i, value in enumerate(values):
        rows = slice(None) if len(values) == 1 else which.reshape(-1) == i
        y, jac = op.rows(x2[rows], float(value), static.options, R.NUMPY)
        for out, part in zip(outs, (y, jac.in_perm, jac.block, jac.a, jac.b, jac.c)):
            out[rows] = part
    return tuple(o.reshape(shape) for o in outs)


def _callback(static, x2, strength):
    m, n = x2.shape
    ity = jax.ShapeDtypeStruct((m, n), jnp.int32)
    fty = jax.ShapeDtypeStruct((m, n), x2.dtype)
    outs = jax.pure_callback(functools.partial(_host_rows, static), (fty, ity, ity, fty, fty, fty),
                             x2, strength, vmap_method="broadcast_all")
    return match_vma(outs, x2)


def _per_device(fn, x2, strength):
    """``fn(x2, strength)`` (row-wise) run by each device on its own rows under a mesh.

    A host callback in an SPMD program runs once, on device 0, on the whole batch; inside
    ``shard_map`` over every mesh axis it runs per device. The rows are split over the explicit
    axes that already shard them and over every auto axis (padded to a multiple of their size);
    the output then carries the input's sharding.
    """
    sharding = getattr(jax.typeof(x2), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or not mesh.axis_names:
        return fn(x2, strength)
    types = dict(zip(mesh.axis_names, mesh.axis_types))
    free = frozenset(a for a, t in types.items() if t != AxisType.Manual)
    row = sharding.spec[0] if len(sharding.spec) else None
    axes = () if row is None else (row,) if isinstance(row, str) else tuple(row)
    axes += tuple(a for a in mesh.axis_names if types[a] == AxisType.Auto and a not in axes)
    if not axes:
        return fn(x2, strength)
    m = x2.shape[0]
    size = math.prod(mesh.shape[a] for a in axes)
    pad = -m % size
    if pad:
        x2 = jnp.pad(x2, ((0, pad), (0, 0)))
    spec = P(axes, None)
    outs = jax.shard_map(fn, mesh=mesh, in_specs=(spec, P()), out_specs=spec,
                         axis_names=free)(x2, strength)
    return tuple(o[:m] for o in outs) if pad else outs


def _forward(static, x2, strength):
    """``(y2, BlockJacobian)`` of operator ``static.name`` on float rows ``x2 [m, n]``."""
    op = R.get(static.name)
    m, n = x2.shape
    if m == 0 or n == 0:
        z = jnp.zeros((m, n), jnp.int32)
        return x2, BlockJacobian(z, None if op.sorted_output else z, z, x2, x2, x2)
    if static.backend == "callback":
        y, perm, block, a, b, c = _per_device(functools.partial(_callback, static), x2, strength)
        return y, BlockJacobian(perm, None if op.sorted_output else perm, block, a, b, c)
    y, jac = op.rows(x2, strength, static.options, JAX)
    perm = jac.in_perm.astype(jnp.int32)
    return y, BlockJacobian(perm, None if op.sorted_output else perm,
                            jac.block.astype(jnp.int32), jac.a, jac.b, jac.c)


# --------------------------------------------------------------------------------------------
# The one differentiable op.


def _float0_zeros(a):
    # A symbolic zero typed like ``a``'s tangent (float0, with ``a``'s varying mesh axes).
    if a is None:
        return None
    return SymbolicZero(jax.typeof(a).strip_weak_type().to_tangent_aval())


def _zeros(like):
    return match_vma(jnp.zeros_like(like), like)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _core(static, x2, strength):
    return _forward(static, x2, strength)


def _core_jvp(static, primals, tangents):
    (x2, strength), (tx, ts) = primals, tangents
    op, opts = R.get(static.name), static.options
    y, jac = _core(static, x2, strength)
    no_x, no_s = isinstance(tx, SymbolicZero), isinstance(ts, SymbolicZero)
    ty = _zeros(y) if no_x else apply(jac, tx, xp=JAX)
    if not no_s:
        ty = ty + op.strength_tangent(x2, y, jac, strength, opts, xp=JAX) * ts
    if opts.exact_second_order and no_s:
        ta, tb, tc = _zeros(jac.a), _zeros(jac.b), _zeros(jac.c)
    else:  # the residuals' tangent: the JVP of the row function replayed on the saved structure
        def replay(x, s):
            return op.rows(x, s, opts, ReplayBackend(jac.in_perm, jac.block))[1]

        tangent_in = (_zeros(x2) if no_x else tx, jnp.zeros_like(strength) if no_s else ts)
        _, tj = jax.jvp(replay, (x2, strength), tangent_in)
        ta, tb, tc = tj.a, tj.b, tj.c
    tjac = BlockJacobian(_float0_zeros(jac.in_perm), _float0_zeros(jac.out_perm),
                         _float0_zeros(jac.block), ta, tb, tc)
    return (y, jac), (ty, tjac)


_core.defjvp(_core_jvp, symbolic_zeros=True)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _apply(static, x, strength, ax):
    # Jitted (and inlined into callers' jit): eager calls, grads and jvps run compiled code.
    # ``strength`` is an operand: a new value reuses the executable.
    x2, shape = _to_rows(x, ax)
    y2, _ = _core(static, x2, jnp.asarray(strength).astype(x2.dtype))
    return _from_rows(y2, shape, ax, x.dtype)


def _call(name, x, k, *, axis, regularization_strength, backend, **options):
    op = R.get(name)
    x = _as_float(x)
    ax = V.check_axis(axis, x.ndim, x.shape)
    if op.takes_k:
        options["k"] = k
    for key in ("p", "tol"):
        if key in options:
            _static_number(options[key], key)
    opts = op.make_options(shape=x.shape, axis=axis, **options)
    strength = _check_strength(regularization_strength)
    return _apply(_Static(name, opts, _check_backend(backend)), x, strength, ax)


# --------------------------------------------------------------------------------------------
# Public operators (same options, defaults and numbers as softorder.numpy).

_BACKEND_ARG = """backend: ``"callback"`` (Numba on the host, per device under a mesh), ``"jax"``
    (pure JAX, any device) or None (automatic: callback on CPU, pure JAX elsewhere)."""


def soft_rank(x: Any, *, axis: int = -1, descending: bool = False, regularization: str = "l2",
              regularization_strength: Any = 1.0, p: float = 4 / 3,
              straight_through: bool = False, backend: str | None = None) -> jax.Array:
    return _call("soft_rank", x, None, axis=axis, regularization_strength=regularization_strength,
                 backend=backend, descending=descending, regularization=regularization, p=p,
                 straight_through=straight_through)


def soft_sort(x: Any, *, axis: int = -1, descending: bool = False, regularization: str = "l2",
              regularization_strength: Any = 1.0, p: float = 4 / 3,
              straight_through: bool = False, backend: str | None = None) -> jax.Array:
    return _call("soft_sort", x, None, axis=axis, regularization_strength=regularization_strength,
                 backend=backend, descending=descending, regularization=regularization, p=p,
                 straight_through=straight_through)


def soft_topk_mask(x: Any, k: int, *, axis: int = -1, regularization_strength: Any = 1.0,
                   p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000,
                   tol: float = 1e-9, straight_through: bool = False,
                   backend: str | None = None) -> jax.Array:
    return _call("soft_topk_mask", x, k, axis=axis,
                 regularization_strength=regularization_strength, backend=backend, p=p,
                 solver=solver, max_iter=max_iter, tol=tol, straight_through=straight_through)


def soft_topk_magnitude(x: Any, k: int, *, axis: int = -1, regularization_strength: Any = 1.0,
                        p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000,
                        tol: float = 1e-9, straight_through: bool = False,
                        backend: str | None = None) -> jax.Array:
    return _call("soft_topk_magnitude", x, k, axis=axis,
                 regularization_strength=regularization_strength, backend=backend, p=p,
                 solver=solver, max_iter=max_iter, tol=tol, straight_through=straight_through)


soft_rank.__doc__ = R.docstring("soft_rank", "jax", """
>>> import jax, jax.numpy as jnp
>>> from softorder.jax import soft_rank
>>> x = jnp.array([5.0, 1.0, 2.0], jnp.float32)
>>> soft_rank(x, regularization_strength=2.0)
Array([3.  , 1.25, 1.75], dtype=float32)
>>> soft_rank(x, regularization_strength=2.0, straight_through=True)
Array([3., 1., 2.], dtype=float32)
>>> # the strength is an operand: traced, scheduled or learned without recompiling
>>> jax.grad(lambda eps: soft_rank(x, regularization_strength=eps)[0])(2.0)
Array(-0.125, dtype=float32, weak_type=True)
""", _BACKEND_ARG)
soft_sort.__doc__ = R.docstring("soft_sort", "jax", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_sort
>>> soft_sort(jnp.array([5.0, 1.0, 2.0], jnp.float32)).round(4)
Array([1.6667, 2.6667, 3.6667], dtype=float32)
""", _BACKEND_ARG)
soft_topk_mask.__doc__ = R.docstring("soft_topk_mask", "jax", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_topk_mask
>>> x = jnp.array([-5.0, -2.0, 3.0, 1.0], jnp.float32)
>>> soft_topk_mask(x, 2, regularization_strength=0.01)
Array([0., 0., 1., 1.], dtype=float32)
""", _BACKEND_ARG)
soft_topk_magnitude.__doc__ = R.docstring("soft_topk_magnitude", "jax", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_topk_magnitude
>>> x = jnp.array([-5.0, -2.0, 3.0, 1.0], jnp.float32)
>>> soft_topk_magnitude(x, 2, regularization_strength=0.01).round(4)
Array([-5.,  0.,  3.,  0.], dtype=float32)
""", _BACKEND_ARG)


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
    csum = block_sum(c2, block)
    v = block_sum(c2 * y2, block) / csum
    v = v + block_sum(c2 * (y2 - v), block) / csum  # one correction pass, as the Numba mean
    if lo is not None or hi is not None:
        free = jnp.ones(v.shape, bool)
        if lo is not None:
            free = free & (v > lo)
        if hi is not None:
            free = free & (v < hi)
        v = jnp.where(free, v, jnp.clip(jax.lax.stop_gradient(v), lo, hi))
    v = jnp.where(bad, jnp.nan, v)
    return _from_rows(v, shape, ax, y.dtype), _from_rows(block, shape, ax, jnp.int32)
