"""Array backends: the few primitives the row-level operators are written in.

The operators in `ops.py` and `projection.py` are written once against this interface; NumPy
(with the Numba kernels) is the reference backend, and the framework front ends provide their
own (``torch`` on CUDA with Triton, pure ``jnp`` on accelerators) with the same methods. Every
array is ``[m, n]``; ``take``/``put`` act along the last axis.
"""

from __future__ import annotations

import numpy as np

from ..isotonic import pav as _pav
from ..isotonic.dykstra import block_alpha as _block_alpha
from ..isotonic.dykstra import dykstra_decreasing


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
    def pav(s, w, cw, kind, r, lam, write_v, need_beta):
        return _pav.pav_batch(s, w, cw, kind, r, lam, write_v, need_beta)

    @staticmethod
    def dykstra(y, weights, max_iter, tol):
        st = dykstra_decreasing(y, weights, max_iter=max_iter, tol=tol)
        return st.solution, st.block

    @staticmethod
    def block_alpha(block, weights):
        return _block_alpha(block, weights)

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


NUMPY = NumpyBackend()
