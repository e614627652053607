r"""The torch backend: `NumpyBackend`'s primitives on torch tensors, on any device.

With ``xp=TORCH`` the registry's row functions (``R.get(name).rows``) run unchanged on
``[m, n]`` tensors and return a `BlockJacobian` of tensors, which the one derivative map
`jacobian.apply(jac, t, xp=TORCH)` applies with gathers and per-row segment sums in pure torch.

Where each primitive runs:

* sorts, gathers, scatters, per-row segment sums, Dykstra: torch ops, so any device (CPU, CUDA, MPS);
* PAV: the Triton kernel (`triton_pav`) for CUDA tensors, and for CPU tensors when
  ``TRITON_INTERPRET=1`` is set (how the kernel is tested without a GPU); otherwise, on CPU,
  the Numba kernel on a zero-copy NumPy view; on other devices (MPS, or CUDA without Triton)
  the Numba kernel through a host copy, with one warning.

Tensors keep their dtype (PAV computes in float64 in both kernels; the Triton kernel reads
float32 or float64, and float16/bfloat16 rows are widened to float32 for it).
Triton is imported only when a PAV actually runs through it.

Example:
  >>> import torch
  >>> from softorder._src.core import registry as R
  >>> from softorder._src.core.jacobian import apply
  >>> from softorder._src.frontends.torch.backend import TORCH
  >>> op = R.get("soft_rank")
  >>> x = torch.tensor([[5.0, 1.0, 2.0]], dtype=torch.float64)
  >>> y, jac = op.rows(x, 2.0, op.make_options(), TORCH)
  >>> y
  tensor([[3.0000, 1.2500, 1.7500]], dtype=torch.float64)
  >>> apply(jac, torch.ones_like(x), transpose=True, xp=TORCH)  # x_bar for y_bar = 1
  tensor([[0., 0., 0.]], dtype=torch.float64)
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

from ...core.backend import redo_rows_eager
from ...isotonic import pav as _pav

__all__ = ["TorchBackend", "TORCH", "segment_sum"]

_warned_host = False


def _interpret_requested() -> bool:
    """``TRITON_INTERPRET=1`` is set and the kernel is (or will be) decorated under it."""
    if os.environ.get("TRITON_INTERPRET", "0") != "1":
        return False
    mod = sys.modules.get("softorder._src.isotonic.triton_pav")
    return mod is None or mod.is_interpreted()


def _pav_numba(s, w, cw, kind, r, lam, write_v, need_beta):
    """The Numba kernel on a float64 host view; results moved back to ``s``'s device/dtype."""
    dev, dt = s.device, s.dtype

    def host(t):
        t = t.detach().to(device="cpu", dtype=torch.float64).expand(s.shape).contiguous()
        return t.numpy()

    res = _pav.pav_batch(host(s), host(w), host(cw), kind, float(r), float(lam), bool(write_v),
                         bool(need_beta))
    out = [torch.from_numpy(a).to(device=dev, dtype=dt) for a in res[:4]]
    return (*out, torch.from_numpy(res[4]).to(device=dev))


def _pav_triton(s, w, cw, kind, r, lam, write_v, need_beta):
    from ...isotonic import triton_parallel, triton_pav  # lazy: imports triton

    if triton_parallel.use_parallel(s.shape[0], s.shape[-1], s, w, cw):  # long rows
        return triton_parallel.pav_batch_triton_parallel(s, w, cw, kind, float(r), float(lam),
                                                         write_v, need_beta)
    return triton_pav.pav_batch_triton(s, w, cw, kind, float(r), float(lam), write_v, need_beta)


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Segment sums in pure torch (Dykstra is `core.dykstra`, written once over these primitives).


def segment_sum(vals, block):
    """At each position, the sum of ``vals`` over its block: ``[m, n]``, the row axis kept.

    ``block`` holds integer ids in ``0..n-1`` per row (nondecreasing, as PAV and Dykstra write
    them); one ``scatter_add`` and one ``gather`` along the last axis.
    """
    idx = block.to(torch.int64)
    sums = torch.zeros_like(vals).scatter_add(-1, idx, vals)
    return torch.gather(sums, -1, idx)


# --------------------------------------------------------------------------------------------
# The backend.


class TorchBackend:
    """`NumpyBackend`'s primitives for torch tensors ``[m, n]`` on any device.

    Args:
      pav: ``"auto"`` (Triton for CUDA tensors, and for CPU tensors when ``TRITON_INTERPRET=1``;
        Numba otherwise), ``"triton"`` or ``"numba"`` to force one kernel.
    """

    name = "torch"
    partial_topk = True
    static_shapes = False

    def __init__(self, pav="auto"):
        if pav not in ("auto", "triton", "numba"):
            raise ValueError(f"pav must be 'auto', 'triton' or 'numba'; got {pav!r}.")
        self.pav_impl = pav

    def pav_kernel_for(self, t) -> str:
        """Which PAV kernel runs for a tensor like ``t``: ``"triton"`` or ``"numba"``."""
        if self.pav_impl != "auto":
            return self.pav_impl
        if t.device.type == "cuda":
            return "triton" if _triton_available() else "numba"
        if t.device.type == "cpu" and _interpret_requested() and _triton_available():
            return "triton"
        return "numba"

    # Sorting and permutations.
    @staticmethod
    def argsort_desc(a):
        # Ascending order of -a puts NaN last, like NumPy's ``argsort(-a)``; ties keep their
        # input order (stable).
        return torch.argsort(-a, dim=-1, stable=True)

    @staticmethod
    def take(a, idx):
        return torch.gather(a, -1, idx)

    @staticmethod
    def put(vals, idx):
        return torch.empty_like(vals).scatter_(-1, idx, vals)

    @staticmethod
    def segment_sum(vals, block):
        return segment_sum(vals, block)

    # Isotonic solvers.
    def pav(self, s, w, cw, kind, r, lam, write_v, need_beta):
        which = self.pav_kernel_for(s)
        if which == "triton":
            if s.dtype in (torch.float32, torch.float64):
                return _pav_triton(s, w, cw, kind, r, lam, write_v, need_beta)
            if s.dtype in (torch.float16, torch.bfloat16):
                # The kernel reads float32 (it computes in float64); outputs cast back.
                f = torch.float32
                res = _pav_triton(s.to(f), w.to(f), cw.to(f), kind, r, lam, write_v, need_beta)
                return (*(a.to(s.dtype) for a in res[:4]), res[4])
        if s.device.type != "cpu":
            global _warned_host
            if not _warned_host:
                warnings.warn(
                    f"softorder: no Triton PAV for {s.device.type} tensors of dtype {s.dtype}; "
                    "running the Numba kernel on a host copy (slow). solver='dykstra' stays "
                    "on the device.", RuntimeWarning, stacklevel=2)
                _warned_host = True
        return _pav_numba(s, w, cw, kind, r, lam, write_v, need_beta)

    # Partial sorts (core.partial).
    @staticmethod
    def top_perm(key, m):
        # torch.topk selects in O(n); the other indices follow in increasing order.
        rows, n = key.shape
        idx = torch.topk(key, m, dim=-1, largest=True, sorted=False).indices
        rest = torch.ones(key.shape, dtype=torch.bool, device=key.device)
        rest.scatter_(-1, idx, False)
        others = rest.nonzero()[:, 1].reshape(rows, n - m)
        return torch.cat([idx, others], dim=-1)

    @staticmethod
    def with_head(a, head):
        a[:, :head.shape[-1]] = head
        return a

    @staticmethod
    def put_window(vals, idx, like):
        return torch.zeros(like.shape, dtype=vals.dtype, device=vals.device).scatter_(-1, idx,
                                                                                      vals)

    @staticmethod
    def iota_int32(like, start):
        return torch.arange(like.shape[-1], dtype=torch.int32, device=like.device) + start.to(
            torch.int32)

    @staticmethod
    def row_count(cond):
        return cond.sum(dim=-1)

    redo_rows = staticmethod(redo_rows_eager)

    # Constant rows.
    @staticmethod
    def rho(like):
        m, n = like.shape
        return torch.arange(n, 0, -1, dtype=like.dtype, device=like.device).expand(m, n)

    @staticmethod
    def topk_weights(like, k):
        m, n = like.shape
        return (torch.arange(n, device=like.device) < k).to(like.dtype).expand(m, n)

    @staticmethod
    def identity_perm(like):
        m, n = like.shape
        return torch.arange(n, dtype=torch.int64, device=like.device).expand(m, n)

    # Elementwise.
    @staticmethod
    def log(a):
        return torch.log(a)

    exp = staticmethod(torch.exp)
    ones_like = staticmethod(torch.ones_like)
    zeros_like = staticmethod(torch.zeros_like)
    abs = staticmethod(torch.abs)

    @staticmethod
    def sign(a):
        # torch.sign(nan) is 0; NumPy's is nan, and a NaN must stay visible.
        return torch.where(torch.isnan(a), a, torch.sign(a))

    @staticmethod
    def where(cond, a, b):
        return torch.where(cond, a, b)

    # Reductions and control flow (for core.dykstra).
    @staticmethod
    def row_max(a):
        if a.shape[-1] == 0:
            return a.new_full((*a.shape[:-1], 1), -float("inf"))
        return a.amax(dim=-1, keepdim=True)

    @staticmethod
    def row_any(a):
        return a.any(dim=-1, keepdim=True)

    @staticmethod
    def all(a):
        return bool(a.all())  # one device sync per Dykstra sweep

    @staticmethod
    def max(a):
        return float(a.max())

    @staticmethod
    def cumsum_int32(a):
        return torch.cumsum(torch.as_tensor(a), dim=-1).to(torch.int32)

    @staticmethod
    def interleave(a, b):
        return torch.stack([a, b], dim=-1).reshape(*a.shape[:-1], 2 * a.shape[-1])

    @staticmethod
    def concat(parts):
        return torch.cat(parts, dim=-1)

    @staticmethod
    def while_loop(cond, body, state):
        while cond(state):
            state = body(state)
        return state

    isnan = staticmethod(torch.isnan)
    sqrt = staticmethod(torch.sqrt)

    @staticmethod
    def row_sum(a):
        return a.sum(dim=-1, keepdim=True)

    @staticmethod
    def maximum(a, b):
        return torch.clamp(a, min=b) if not isinstance(b, torch.Tensor) else torch.maximum(a, b)

    @staticmethod
    def minimum(a, b):
        return torch.clamp(a, max=b) if not isinstance(b, torch.Tensor) else torch.minimum(a, b)


TORCH = TorchBackend()
