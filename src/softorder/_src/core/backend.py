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

from .._numba import njit
from ..buffers import carve
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

    # Partial sorts (`core.partial`: top-k operators on the m largest entries only).
    partial_topk: bool  # False: the top-k row functions always sort the whole row
    static_shapes: bool  # True: array shapes cannot depend on data (JAX under jit)

    def top_perm(self, key: Array, m: int) -> Array:
        """A per-row permutation of ``0..n-1`` whose first ``m`` entries index the ``m``
        largest keys (in any order), the others after them (any order); ``O(n)``."""

    def with_head(self, a: Array, head: Array) -> Array:
        """``a`` (``[m, n]``) with its first ``w`` columns replaced by ``head`` (``[m, w]``);
        may write into ``a`` (NumPy and torch do)."""

    def put_window(self, vals: Array, idx: Array, like: Array) -> Array:
        """Zeros shaped like ``like`` (``[m, n]``) but ``out[r, idx[r, j]] = vals[r, j]``
        (``idx``: ``[m, w]``, distinct in each row)."""

    def iota_int32(self, like: Array, start: Array) -> Array:
        """``start + (0, 1, 2, ...)`` in each row, int32, shaped like ``like`` (``start``:
        ``[m, 1]`` int32)."""

    def row_count(self, cond: Array) -> Array:
        """Per-row number of true entries, ``[m]``."""

    def redo_rows(self, ok: Array, result: Any, fn: Any, *arrays: Array) -> Any:
        """``result`` (a tuple of ``[m, ...]`` arrays, nested tuples allowed) with the rows
        where ``ok`` (``[m]``) is false replaced by ``fn(*rows of arrays)``; ``fn`` runs only
        when some row fails (on the failing rows, or on every row with static shapes)."""



@njit
def _complete_perm(head, out, seen):
    """``out[r] = (head[r], then 0..n-1 without head[r])``: the identity, with the head's
    entries moved to the front and the indices ``< m`` they displace moved into their places
    (so the tail increases, apart from those ``<= m`` moved entries). ``seen``: ``m`` bools."""
    m = head.shape[1]
    n = out.shape[1]
    for r in range(head.shape[0]):
        o = out[r]
        h = head[r]
        seen[:] = False
        for i in range(m, n):
            o[i] = i
        for j in range(m):
            o[j] = h[j]
            if h[j] < m:
                seen[h[j]] = True
        d = 0
        for j in range(m):
            if h[j] >= m:
                while seen[d]:
                    d += 1
                o[h[j]] = d
                d += 1


@njit
def _iota(start, out):
    for r in range(out.shape[0]):
        for i in range(out.shape[1]):
            out[r, i] = start[r, 0] + i


def _leaves(tree):
    if isinstance(tree, tuple):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [tree]


def redo_rows_eager(ok, result, fn, *arrays):
    """`Backend.redo_rows` for eager array libraries (NumPy, torch): only the failing rows are
    recomputed, and written back into ``result``'s arrays (each array once)."""
    bad = (~ok).nonzero()[0] if isinstance(ok, np.ndarray) else (~ok).nonzero()[:, 0]
    if len(bad) == 0:
        return result
    sub = fn(*(a[bad] for a in arrays))
    seen = set()
    for dst, src in zip(_leaves(result), _leaves(sub)):
        if dst is None or id(dst) in seen:
            continue
        seen.add(id(dst))
        dst[bad] = src
    return result


class NumpyBackend:
    """float64 NumPy arrays; PAV by the Numba kernels, Dykstra vectorized."""

    name = "numpy"
    partial_topk = True
    static_shapes = False
    # Partial top-k residuals in the full ``[m, n]`` layout (see `NumpyWindowBackend`).
    window_layout = False

    @staticmethod
    def top_perm(key, m):
        # The window by argpartition (O(n); NaN, never in a row that uses the window, would
        # sort last); the other indices almost in increasing order (`_complete_perm`), so
        # that gathers and scatters over them stream through memory.
        rows, n = key.shape
        head = np.ascontiguousarray(np.argpartition(key, n - m, axis=-1)[:, n - m:])
        (out,) = carve([((rows, n), np.int64)])
        _complete_perm(head, out, np.zeros(m, np.bool_))
        return out

    @staticmethod
    def with_head(a, head):
        a[:, :head.shape[-1]] = head
        return a

    @staticmethod
    def put_window(vals, idx, like):
        # zeros_like writes its zeros (NumPy's huge pages); np.zeros is calloc, whose pages
        # fault in one by one when read.
        out = np.zeros_like(like, np.result_type(vals, np.float64))
        np.put_along_axis(out, idx, vals, -1)
        return out

    @staticmethod
    def iota_int32(like, start):
        # From `carve` (huge pages): int32 rows of 1e6 entries are just under NumPy's 4 MiB
        # huge-page threshold, and faulting 4 KiB pages in one by one costs more than the fill.
        (out,) = carve([(like.shape, np.int32)])
        _iota(np.ascontiguousarray(np.broadcast_to(start, (like.shape[0], 1)), np.int32), out)
        return out

    @staticmethod
    def row_count(cond):
        return np.count_nonzero(cond, axis=-1)

    redo_rows = staticmethod(redo_rows_eager)

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


class NumpyWindowBackend(NumpyBackend):
    """`NumpyBackend` whose partial top-k rows (`core.partial`) return **window residuals**:
    a `BlockJacobian` ``[m, w]`` over the ``w`` entries of each row's window only (``w`` the
    widest window of the batch, ``w = n`` where a row took the full sort), with ``in_perm``
    (= ``out_perm``) indexing the row's ``n`` columns. Every other entry has a zero Jacobian
    row and column and output exactly 0, so nothing is stored for it: `jacobian.apply`
    writes the ``w`` entries into a zeroed ``[m, n]`` output, with ``n`` from the tangent.
    The forward and backward passes then touch ``O(w)`` entries besides the selection, the
    output's zero fill and the gradient's.

    Only for consumers that apply the residuals with `jacobian.apply` (or the strength
    tangents) on the host: the NumPy API and torch's plain eager CPU path. Static-shape
    consumers (JAX callbacks, torch custom ops under ``torch.compile``, TensorFlow) use
    `NUMPY`. Top-k rows may be float32 here (torch): the windows are solved in float64 and
    the selection reads the float32 row as it is (no float64 copy of the row)."""

    window_layout = True

    @staticmethod
    def top_split(key, m):
        """``(head, rest)``: per row, the indices of the ``m`` largest keys (any order) and
        of the others (any order), both views of one ``np.argpartition``; ``O(n)``."""
        n = key.shape[-1]
        part = np.argpartition(key, n - m, axis=-1)
        return part[:, n - m:], part[:, :n - m]

    @staticmethod
    def as_float64(a):
        return a if a.dtype == np.float64 else a.astype(np.float64)

    @staticmethod
    def put_window(vals, idx, like):
        # In ``like``'s dtype: a float32 row's output rounds the float64 window values once,
        # as the full path's cast of its float64 output does.
        out = np.zeros_like(like)
        np.put_along_axis(out, idx, vals, -1)
        return out


NUMPY_WINDOWS = NumpyWindowBackend()
