"""Array backends: the few primitives the row-level operators are written in.

The operators (`registry`), the projections (`projection`), the derivative map
(`jacobian.apply`) and Dykstra are written once against the `Backend` protocol below; NumPy
(with the Numba kernels) is the reference backend, and the framework front ends provide their
own (torch with Triton, pure ``jnp``) with the same methods. Every array is ``[m, n]`` (rows);
``take``/``put``/``segment_sum`` act along the last axis and keep the row axis, so a batch
sharded over rows stays sharded.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..isotonic import pav as _pav

Array = Any  # an [m, n] array of the backend's own type (ndarray, torch.Tensor, jax.Array, ...)


class Backend(Protocol):
    """The primitives the core is written in (one implementation per array library)."""

    name: str

    def argsort_desc(self, a: Array) -> Array:
        """Per-row permutation sorting ``a`` in descending order (NaN last)."""

    def take(self, a: Array, idx: Array) -> Array:
        """``a[row, idx[row, k]]`` (a gather along the last axis)."""

    def put(self, vals: Array, idx: Array) -> Array:
        """``out[row, idx[row, k]] = vals[row, k]`` for a permutation ``idx`` (a scatter)."""

    def segment_sum(self, vals: Array, block: Array) -> Array:
        """At each position, the sum of ``vals`` over its block (integer ids, per row)."""

    def pav(self, s: Array, w: Array, cw: Array, kind: int, r: float, lam: float,
            write_v: bool, need_beta: bool) -> tuple[Array, Array, Array, Array, Array]:
        """Decreasing isotonic regression (`isotonic.pav`): ``(out, d, alpha, beta, block)``."""

    # Reductions and control flow (Dykstra, `core.dykstra`, is written with these).
    def row_max(self, a: Array) -> Array:
        """Per-row maximum, ``[m, 1]`` (``-inf`` for empty rows)."""

    def row_any(self, a: Array) -> Array:
        """Per-row any of a boolean array, ``[m, 1]``."""

    def all(self, a: Array) -> Any:
        """Whether every entry is true (a Python bool, or a 0-d array under tracing)."""

    def max(self, a: Array) -> Any:
        """The largest entry (a scalar)."""

    def cumsum_int32(self, a: Array) -> Array:
        """Cumulative sum along the last axis, as int32."""

    def while_loop(self, cond: Any, body: Any, state: tuple) -> tuple:
        """``while cond(state): state = body(state)`` (JAX: ``lax.while_loop``)."""

    def interleave(self, a: Array, b: Array) -> Array:
        """``[a0, b0, a1, b1, ...]`` along the last axis (a and b of one shape)."""

    def concat(self, parts: list) -> Array:
        """Concatenation along the last axis."""

    def isnan(self, a: Array) -> Array: ...
    def maximum(self, a: Array, b: Any) -> Array: ...
    def minimum(self, a: Array, b: Any) -> Array: ...
    def rho(self, like: Array) -> Array: ...
    def topk_weights(self, like: Array, k: int) -> Array: ...
    def identity_perm(self, like: Array) -> Array: ...
    def log(self, a: Array) -> Array: ...
    def exp(self, a: Array) -> Array: ...
    def ones_like(self, a: Array) -> Array: ...
    def zeros_like(self, a: Array) -> Array: ...
    def abs(self, a: Array) -> Array: ...
    def sign(self, a: Array) -> Array: ...
    def where(self, cond: Array, a: Array, b: Array) -> Array: ...

    # For the losses (`_src/losses`), written once over these primitives and a front end's
    # differentiable operators.
    def row_sum(self, a: Array) -> Array:
        """Per-row sum, ``[m, 1]``."""

    def sqrt(self, a: Array) -> Array: ...



class NumpyBackend:
    """float64 NumPy arrays; PAV by the Numba kernels, Dykstra vectorized."""

    name = "numpy"

    @staticmethod
    def argsort_desc(a):
        return np.argsort(-a, axis=-1)

    @staticmethod
    def take(a, idx):
        return np.take_along_axis(a, idx, -1)

    @staticmethod
    def put(vals, idx):
        out = np.empty_like(vals)
        np.put_along_axis(out, idx, vals, -1)
        return out

    @staticmethod
    def segment_sum(vals, block):
        m, n = vals.shape
        gid = (np.arange(m, dtype=np.int64)[:, None] * n + block).ravel()
        sums = np.bincount(gid, weights=np.asarray(vals, np.float64).ravel(), minlength=m * n)
        return sums[gid].reshape(m, n)

    @staticmethod
    def pav(s, w, cw, kind, r, lam, write_v, need_beta):
        return _pav.pav_batch(s, w, cw, kind, r, lam, write_v, need_beta)

    @staticmethod
    def row_max(a):
        return np.max(a, axis=-1, keepdims=True, initial=-np.inf)

    @staticmethod
    def row_any(a):
        return np.any(a, axis=-1, keepdims=True)

    @staticmethod
    def all(a):
        return bool(np.all(a))

    @staticmethod
    def max(a):
        return float(np.max(a))

    @staticmethod
    def cumsum_int32(a):
        return np.cumsum(a, axis=-1, dtype=np.int32)

    @staticmethod
    def interleave(a, b):
        return np.stack([a, b], axis=-1).reshape(*a.shape[:-1], 2 * a.shape[-1])

    @staticmethod
    def concat(parts):
        return np.concatenate(parts, axis=-1)

    @staticmethod
    def while_loop(cond, body, state):
        while cond(state):
            state = body(state)
        return state

    isnan = staticmethod(np.isnan)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def rho(like):
        m, n = like.shape
        return np.ascontiguousarray(np.broadcast_to(np.arange(n, 0, -1, dtype=np.float64), (m, n)))

    @staticmethod
    def topk_weights(like, k):
        m, n = like.shape
        return np.ascontiguousarray(np.broadcast_to((np.arange(n) < k).astype(np.float64), (m, n)))

    @staticmethod
    def identity_perm(like):
        m, n = like.shape
        return np.ascontiguousarray(np.broadcast_to(np.arange(n, dtype=np.int64), (m, n)))

    @staticmethod
    def log(a):
        with np.errstate(divide="ignore"):
            return np.log(a)

    exp = staticmethod(np.exp)
    ones_like = staticmethod(np.ones_like)
    zeros_like = staticmethod(np.zeros_like)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    where = staticmethod(np.where)
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def row_sum(a):
        return np.sum(a, axis=-1, keepdims=True)


NUMPY = NumpyBackend()
