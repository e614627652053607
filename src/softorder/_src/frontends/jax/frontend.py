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
from .backend import JAX, ReplayBackend, match_vma

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
    """A floating jax array (or tracer): integer and boolean arrays become JAX's default float
    dtype (float32, float64 under ``jax_enable_x64``), as ``jnp.mean`` does; NumPy arrays and
    lists are converted as NumPy does (then JAX's canonical dtype)."""
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        kind = "f" if x.dtype in _FLOAT_DTYPES else np.dtype(x.dtype).kind
        if V.promotes_to_float(name, kind, x.dtype, x.shape, f"{name}.astype(jnp.float32)"):
            return x.astype(_compute_dtype())
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


# The residuals cross the host boundary as a flat tuple: per BlockJacobian ``in_perm`` (for
# operators of one input, which sort it; those of several inputs act in place: identity
# permutations), ``block``, ``a``, ``b``, ``c``.


def _flatten(op, jacs):
    jacs = jacs if op.n_inputs > 1 else (jacs,)
    return tuple(a for j in jacs for a in ((j.in_perm,) if op.n_inputs == 1 else ()) + j[2:])


def _unflatten(op, flat):
    if op.n_inputs == 1:
        perm, block, a, b, c = flat
        return BlockJacobian(perm, None if op.sorted_output else perm, block, a, b, c)
    return tuple(BlockJacobian(None, None, *flat[4 * i:4 * i + 4]) for i in range(op.n_inputs))


def _host_rows(static, *arrays):
    """The callback body: float64 rows through the NumPy backend (Numba), one call per distinct
    strength (under ``vmap`` the strength may differ between batch entries)."""
    op = R.get(static.name)
    xs = [np.asarray(a) for a in arrays[:op.n_inputs]]
    shape, dt = xs[0].shape, xs[0].dtype
    x2 = [np.array(a.reshape(-1, shape[-1]), dtype=np.float64) for a in xs]  # writable float64
    s = np.asarray(arrays[op.n_inputs] if len(arrays) > op.n_inputs else 0.0, np.float64)
    if s.size == 1 or s.min() == s.max():  # one strength (always, unless vmapped over it)
        values, which = s.reshape(-1)[:1], None
    else:
        s = np.broadcast_to(s.reshape(s.shape + (1,)), shape[:-1]).reshape(-1)
        values, which = np.unique(s, return_inverse=True)
    outs = None
    for i, value in enumerate(values):
        rows = slice(None) if which is None else which.reshape(-1) == i
        xr = [a[rows] for a in x2]
        y, jac = op.rows(xr[0] if op.n_inputs == 1 else tuple(xr),
                         None if op.n_inputs > 1 else float(value), static.options, R.NUMPY)
        parts = (y,) + _flatten(op, jac)
        if outs is None:
            outs = [np.empty(x2[0].shape, np.int32 if p.dtype.kind in "iu" else dt)
                    for p in parts]
        for out, part in zip(outs, parts):
            out[rows] = part
    return tuple(o.reshape(shape) for o in outs)


def _callback(static, xs, strength):
    op = R.get(static.name)
    m, n = xs[0].shape
    ity = jax.ShapeDtypeStruct((m, n), jnp.int32)
    fty = jax.ShapeDtypeStruct((m, n), xs[0].dtype)
    shapes = (fty,) + ((ity, ity, fty, fty, fty) if op.n_inputs == 1
                       else (ity, fty, fty, fty) * op.n_inputs)
    args = tuple(xs) + (() if strength is None else (strength,))
    outs = jax.pure_callback(functools.partial(_host_rows, static), shapes, *args,
                             vmap_method="broadcast_all")
    return match_vma(outs, xs[0])


def _per_device(fn, xs, strength):
    """``fn(x2, strength)`` (row-wise) run by each device on its own rows under a mesh.

    A host callback in an SPMD program runs once, on device 0, on the whole batch; inside
    ``shard_map`` over every mesh axis it runs per device. The rows are split over the explicit
    axes that already shard them and over every auto axis (padded to a multiple of their size);
    the output then carries the input's sharding.
    """
    sharding = getattr(jax.typeof(xs[0]), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or not mesh.axis_names:
        return fn(xs, strength)
    types = dict(zip(mesh.axis_names, mesh.axis_types))
    free = frozenset(a for a, t in types.items() if t != AxisType.Manual)
    row = sharding.spec[0] if len(sharding.spec) else None
    axes = () if row is None else (row,) if isinstance(row, str) else tuple(row)
    axes += tuple(a for a in mesh.axis_names if types[a] == AxisType.Auto and a not in axes)
    if not axes:
        return fn(xs, strength)
    m = xs[0].shape[0]
    size = math.prod(mesh.shape[a] for a in axes)
    pad = -m % size
    if pad:
        xs = tuple(jnp.pad(x, ((0, pad), (0, 0)), constant_values=1.0) for x in xs)
    spec = P(axes, None)
    outs = jax.shard_map(fn, mesh=mesh, in_specs=(spec, P()), out_specs=spec,
                         axis_names=free)(xs, strength)
    return tuple(o[:m] for o in outs) if pad else outs


def _forward(static, xs, strength):
    """``(y2, jac)`` of operator ``static.name`` on float rows ``xs`` (one ``[m, n]`` array per
    input); ``jac`` is a `BlockJacobian`, or a tuple of them for several inputs."""
    op = R.get(static.name)
    x2 = xs[0]
    m, n = x2.shape
    if m == 0 or n == 0:
        z = jnp.zeros((m, n), jnp.int32)
        if op.n_inputs == 1:
            return x2, _unflatten(op, (z, z, x2, x2, x2))
        return x2, _unflatten(op, (z, x2, x2, x2) * op.n_inputs)
    if static.backend == "callback":
        y, *flat = _per_device(functools.partial(_callback, static), xs, strength)
        return y, _unflatten(op, flat)
    y, jac = op.rows(x2 if op.n_inputs == 1 else xs, strength, static.options, JAX)
    flat = tuple(a.astype(jnp.int32) if jnp.issubdtype(a.dtype, jnp.integer) else a
                 for a in _flatten(op, jac))
    return y, _unflatten(op, flat)


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
def _core(static, xs, strength):
    return _forward(static, xs, strength)


def _core_jvp(static, primals, tangents):
    (xs, strength), (txs, ts) = primals, tangents
    op, opts = R.get(static.name), static.options
    y, jac = _core(static, xs, strength)
    jacs = jac if op.n_inputs > 1 else (jac,)
    zero = [isinstance(t, SymbolicZero) for t in txs]
    no_s = strength is None or isinstance(ts, SymbolicZero)
    parts = [apply(j, t, xp=JAX) for j, t, z in zip(jacs, txs, zero) if not z]
    if not no_s:
        parts.append(op.strength_tangent(xs[0], y, jac, strength, opts, xp=JAX) * ts)
    ty = functools.reduce(jnp.add, parts) if parts else _zeros(y)
    if opts.exact_second_order and op.n_inputs == 1 and no_s:
        tabc = [(_zeros(j.a), _zeros(j.b), _zeros(j.c)) for j in jacs]
    else:  # the residuals' tangent: the JVP of the row function replayed on the saved structure
        def replay(xs, s):
            replay_xp = ReplayBackend(jacs[0].in_perm, jacs[0].block)
            out = op.rows(xs[0] if op.n_inputs == 1 else xs, s, opts, replay_xp)[1]
            return out if op.n_inputs > 1 else (out,)

        t_in = tuple(_zeros(x) if z else t for x, t, z in zip(xs, txs, zero))
        if strength is None:
            _, tj = jax.jvp(lambda xs: replay(xs, None), (xs,), (t_in,))
        else:
            _, tj = jax.jvp(replay, (xs, strength),
                            (t_in, jnp.zeros_like(strength) if no_s else ts))
        tabc = [(j.a, j.b, j.c) for j in tj]
    tjacs = tuple(BlockJacobian(_float0_zeros(j.in_perm), _float0_zeros(j.out_perm),
                                _float0_zeros(j.block), *t) for j, t in zip(jacs, tabc))
    return (y, jac), (ty, tjacs if op.n_inputs > 1 else tjacs[0])


_core.defjvp(_core_jvp, symbolic_zeros=True)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _apply(static, xs, strength, ax, with_blocks=False):
    # Jitted (and inlined into callers' jit): eager calls, grads and jvps run compiled code.
    # ``strength`` is an operand: a new value reuses the executable.
    rows = [_to_rows(x, ax) for x in xs]
    x2s = tuple(r[0] for r in rows)
    if strength is not None:
        strength = jnp.asarray(strength).astype(x2s[0].dtype)
    y2, jac = _core(static, x2s, strength)
    shape = rows[0][1]
    y = _from_rows(y2, shape, ax, xs[0].dtype)
    if not with_blocks:
        return y
    block = (jac if isinstance(jac, BlockJacobian) else jac[0]).block
    return y, _from_rows(block, shape, ax, jnp.int32)


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
    return _apply(_Static(name, opts, _check_backend(backend)), (x,), strength, ax)


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
>>> jax.grad(lambda eps: soft_rank(x, regularization_strength=eps)[1])(jnp.float32(2.0))
Array(0.125, dtype=float32)
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


def isotonic_regression(y: Any, *, sample_weight: Any = None, y_min: float | None = None,
                        y_max: float | None = None, increasing: bool = True, axis: int = -1,
                        return_blocks: bool = False,
                        backend: str | None = None) -> jax.Array | IsotonicResult:
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
    opts = R.get("isotonic_regression").make_options(
        increasing=increasing, y_min=None if y_min is None else _static_number(y_min, "y_min"),
        y_max=None if y_max is None else _static_number(y_max, "y_max"))
    static = _Static("isotonic_regression", opts, backend)
    v, block = _apply(static, (y, c.astype(y.dtype)), None, ax, True)
    return IsotonicResult(v, block) if return_blocks else v


isotonic_regression.__doc__ = R.docstring("isotonic_regression", "jax", """
>>> import jax, jax.numpy as jnp
>>> from softorder.jax import isotonic_regression
>>> y = jnp.array([1.0, 3.0, 2.0, 4.0], jnp.float32)
>>> isotonic_regression(y)
Array([1. , 2.5, 2.5, 4. ], dtype=float32)
>>> jax.grad(lambda c: isotonic_regression(y, sample_weight=c)[1])(jnp.ones(4, y.dtype))
Array([ 0.  ,  0.25, -0.25,  0.  ], dtype=float32)
""", _BACKEND_ARG)
