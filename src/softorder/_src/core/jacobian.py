"""The one linear map every operator's derivative reduces to, and its O(n) JVP and VJP.

In sorted coordinates, each operator's Jacobian is block diagonal with blocks of rank-one
corrections (DESIGN §1, "Derivatives in O(n)"). With ``g = x_dot[in_perm]`` (a gather), the
tangent is

    t_k = a_k g_k + b_k * sum_{j in B(k)} c_j g_j          (B(k): the PAV block of position k)

and ``y_dot[out_perm] = t`` (a scatter; or ``y_dot = t`` when ``out_perm`` is None, for sorts,
whose output is already in sorted order). The transpose is the same map with ``b`` and ``c``
swapped and the permutations reversed:

    r_k = a_k h_k + c_k * sum_{j in B(k)} b_j h_j,   h = y_bar[out_perm],   x_bar[in_perm] = r.

Framework front ends store ``(in_perm, out_perm, block, a, b, c)`` as residuals and apply this
map with their own gathers and segment sums (or call these kernels on CPU).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from .._numba import njit
from ..isotonic.pav import use_parallel
from .backend import NumpyBackend


class BlockJacobian(NamedTuple):
    """Residuals of one operator for one differentiable input; arrays are ``[m, n]`` (rows)."""

    in_perm: np.ndarray | None  # int: sorted position k reads input in_perm[k]; None: identity
    out_perm: np.ndarray | None  # int64 or None: output index of sorted position k
    block: np.ndarray  # int32: block id of sorted position k (nondecreasing along the row)
    a: np.ndarray  # float64
    b: np.ndarray  # float64
    c: np.ndarray  # float64


class WindowJacobian(BlockJacobian):
    """A `BlockJacobian` of **window residuals** (`core.partial`, on
    `backend.NumpyWindowBackend`): ``[m, w]`` over each row's window, applied to ``[m, n]``
    tangents with ``n >= w`` (the other entries' Jacobian rows and columns are 0). Only this
    type is applied to a wider tangent: a plain `BlockJacobian` requires the tangent's exact
    shape, so a mismatched tangent is refused, never padded."""

    __slots__ = ()


@njit
def _jvp_row(g_in, in_perm, out_perm, has_out, block, a, b, c, out):
    n = a.shape[0]
    g = np.empty(n, np.float64)
    for k in range(n):
        g[k] = g_in[in_perm[k]]
    i = 0
    while i < n:
        j = i
        acc = 0.0
        bid = block[i]
        while j < n and block[j] == bid:
            acc += c[j] * g[j]
            j += 1
        for k in range(i, j):
            t = a[k] * g[k] + b[k] * acc
            if has_out:
                out[out_perm[k]] = t
            else:
                out[k] = t
        i = j


@njit
def _vjp_row(h_in, in_perm, out_perm, has_out, block, a, b, c, out):
    n = a.shape[0]
    h = np.empty(n, np.float64)
    for k in range(n):
        h[k] = h_in[out_perm[k]] if has_out else h_in[k]
    i = 0
    while i < n:
        j = i
        acc = 0.0
        bid = block[i]
        while j < n and block[j] == bid:
            acc += b[j] * h[j]
            j += 1
        for k in range(i, j):
            out[in_perm[k]] = a[k] * h[k] + c[k] * acc
        i = j


@njit(parallel=True)
def _jvp_par(g, in_perm, out_perm, has_out, block, a, b, c, out):
    for r in prange(a.shape[0]):
        _jvp_row(g[r], in_perm[r], out_perm[r], has_out, block[r], a[r], b[r], c[r], out[r])


@njit
def _jvp_ser(g, in_perm, out_perm, has_out, block, a, b, c, out):
    for r in range(a.shape[0]):
        _jvp_row(g[r], in_perm[r], out_perm[r], has_out, block[r], a[r], b[r], c[r], out[r])


@njit(parallel=True)
def _vjp_par(h, in_perm, out_perm, has_out, block, a, b, c, out):
    for r in prange(a.shape[0]):
        _vjp_row(h[r], in_perm[r], out_perm[r], has_out, block[r], a[r], b[r], c[r], out[r])


@njit
def _vjp_ser(h, in_perm, out_perm, has_out, block, a, b, c, out):
    for r in range(a.shape[0]):
        _vjp_row(h[r], in_perm[r], out_perm[r], has_out, block[r], a[r], b[r], c[r], out[r])


def _out_perm(jac):
    if jac.out_perm is None:
        return jac.in_perm, False
    return jac.out_perm, True


_CHECKED_FIELDS = ("in_perm", "out_perm", "block", "b", "c")


def _checked(jac: BlockJacobian, t, name):
    """``t`` as C-contiguous ``[m, n]`` (float64; float32 kept for window residuals), after
    checking it and the residuals against each other: the kernels index with
    ``in_perm``/``out_perm``/``block`` without bounds checks, so a mismatch must never reach
    them. Window residuals (`is_window`: ``[m, w]`` with ``w < n``, both permutations given)
    have their indices checked against ``n`` (``O(w)``)."""
    t = np.asarray(t)
    kind = t.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real, got dtype {t.dtype} (shape {t.shape})")
    if kind not in "fiub":
        raise TypeError(f"{name} must be a real array, got dtype {t.dtype} (shape {t.shape})")
    shape = jac.a.shape
    window = is_window(jac, t.shape)
    if t.shape != shape and not window:
        raise ValueError(f"{name} has shape {t.shape}; the residuals are for shape {shape}")
    for field, arr in zip(_CHECKED_FIELDS, (jac.in_perm, jac.out_perm, jac.block, jac.b, jac.c)):
        if arr is not None and arr.shape != shape:
            raise ValueError(f"residual {field} has shape {arr.shape}, expected {shape}")
    if window:
        for perm in (jac.in_perm, jac.out_perm):
            if perm is not None and perm.size and (perm.min() < 0 or perm.max() >= t.shape[-1]):
                raise ValueError(f"window residuals index outside the {name}'s {t.shape[-1]} "
                                 "columns")
        if t.dtype == np.float32:
            return np.ascontiguousarray(t)
    return np.ascontiguousarray(t, np.float64)


def is_window(jac: BlockJacobian, shape) -> bool:
    """True for window residuals (`backend.NumpyWindowBackend`) applied to ``[m, n]`` tangents:
    ``[m, w]`` residuals, ``w < n``, with both permutations; the other entries' Jacobian rows
    and columns are 0."""
    a = jac.a.shape
    return (isinstance(jac, WindowJacobian) and len(shape) == 2 and len(a) == 2
            and a[0] == shape[0] and a[1] < shape[1]
            and jac.in_perm is not None and jac.out_perm is not None)


def _out(jac, t):
    """The output: uninitialized ``[m, n]`` float64, or zeros of the tangent's shape and dtype
    (float32/float64) for window residuals, whose kernels write only the ``w`` window
    entries (computed in float64, rounded once on the store, as the full layout's cast)."""
    if t.shape == jac.a.shape:
        return np.empty(jac.a.shape)
    out = np.empty(t.shape, t.dtype)
    out.fill(0.0)  # written now (NumPy's huge pages), not calloc's pages faulting in later
    return out


def jvp_rows(jac: BlockJacobian, x_dot):
    """Tangent of the output for the input tangent ``x_dot`` (``[m, n]``), in O(n) per row."""
    out_perm, has_out = _out_perm(jac)
    x_dot = _checked(jac, x_dot, "tangent")
    out: np.ndarray = _out(jac, x_dot)
    run = _jvp_par if use_parallel(*jac.a.shape) else _jvp_ser
    run(x_dot, jac.in_perm, out_perm, has_out, jac.block, jac.a, jac.b, jac.c, out)
    return out


def vjp_rows(jac: BlockJacobian, y_bar):
    """Cotangent of the input for the output cotangent ``y_bar`` (``[m, n]``), in O(n) per row."""
    out_perm, has_out = _out_perm(jac)
    y_bar = _checked(jac, y_bar, "cotangent")
    out: np.ndarray = _out(jac, y_bar)
    run = _vjp_par if use_parallel(*jac.a.shape) else _vjp_ser
    run(y_bar, jac.in_perm, out_perm, has_out, jac.block, jac.a, jac.b, jac.c, out)
    return out


def apply(jac: BlockJacobian, tangent, *, transpose: bool = False, xp=None):
    """The one derivative map: ``J tangent`` (JVP), or ``J^T tangent`` with ``transpose``.

    Written once over a `backend.Backend` ``xp`` (gathers, a segment sum, a scatter); every
    front end saves a `BlockJacobian` of its own arrays and calls this. ``xp=None`` or the
    NumPy backend instance ``NUMPY`` takes the fused Numba kernels (`jvp_rows`/`vjp_rows`),
    which compute the same map in one pass per row (tested equal). ``in_perm``/``out_perm``
    of None mean the identity. Window residuals (`is_window`, from the partial top-k rows on
    `backend.NumpyWindowBackend`) take the NumPy kernels: they read and write the ``w``
    window entries of a zeroed ``[m, n]`` output (float32 tangents give float32 outputs).
    """
    if xp is None or isinstance(xp, NumpyBackend):
        if jac.in_perm is None:
            ident = NumpyBackend.identity_perm(jac.a)
            jac = jac._replace(in_perm=ident, out_perm=ident if jac.out_perm is None
                               else jac.out_perm)
        return (vjp_rows if transpose else jvp_rows)(jac, tangent)
    if not transpose:
        g = tangent if jac.in_perm is None else xp.take(tangent, jac.in_perm)
        t = jac.a * g + jac.b * xp.segment_sum(jac.c * g, jac.block)
        return t if jac.out_perm is None else xp.put(t, jac.out_perm)
    h = tangent if jac.out_perm is None else xp.take(tangent, jac.out_perm)
    r = jac.a * h + jac.c * xp.segment_sum(jac.b * h, jac.block)
    return r if jac.in_perm is None else xp.put(r, jac.in_perm)
