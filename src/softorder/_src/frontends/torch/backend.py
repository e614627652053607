r"""The torch backend: `NumpyBackend`'s primitives on torch tensors, on any device.

With ``xp=TORCH`` the row-level operators of `ops` (``soft_rank_rows``, ``soft_sort_rows``,
``soft_topk_mask_rows``, ``soft_topk_magnitude_rows``) run unchanged on ``[m, n]`` tensors and
return a `BlockJacobian` of tensors; `jvp_rows_torch` and `vjp_rows_torch` apply it with
gathers and segment sums (``index_add``) in pure torch.

Where each primitive runs:

* sorts, gathers, scatters, segment sums, Dykstra: torch ops, so any device (CPU, CUDA, MPS);
* PAV: the Triton kernel (`triton_pav`) for CUDA tensors, and for CPU tensors when
  ``TRITON_INTERPRET=1`` is set (how the kernel is tested without a GPU); otherwise, on CPU,
  the Numba kernel on a zero-copy NumPy view; on other devices (MPS, or CUDA without Triton)
  the Numba kernel through a host copy, with one warning.

Tensors keep their dtype (PAV computes in float64 in both kernels; the Triton kernel reads
float32 or float64, and float16/bfloat16 rows are widened to float32 for it).
Triton is imported only when a PAV actually runs through it.

Example:
  >>> import torch
  >>> from softorder._src.core import ops
  >>> from softorder._src.frontends.torch.backend import TORCH
  >>> x = torch.tensor([[5.0, 1.0, 2.0]], dtype=torch.float64)
  >>> y, jac = ops.soft_rank_rows(x, 2.0, xp=TORCH)
  >>> y
  tensor([[3.0000, 1.2500, 1.7500]], dtype=torch.float64)
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import torch

from ...core.jacobian import BlockJacobian
from ...isotonic import pav as _pav

__all__ = ["TorchBackend", "TORCH", "jvp_rows_torch", "vjp_rows_torch", "dykstra_torch",
           "block_alpha_torch"]

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
    from ...isotonic import triton_pav  # lazy: imports triton

    return triton_pav.pav_batch_triton(s, w, cw, kind, float(r), float(lam), write_v, need_beta)


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Dykstra and segment sums in pure torch.


def _segment_ids(block):
    m, n = block.shape
    return (torch.arange(m, device=block.device, dtype=torch.int64)[:, None] * n
            + block.to(torch.int64)).reshape(-1)


def _segment_sum(vals, gid, size):
    """``out[g] = sum vals[gid == g]`` (``index_add``), then gathered back at ``gid``."""
    flat = vals.reshape(-1)
    sums = torch.zeros(size, dtype=flat.dtype, device=flat.device).index_add_(0, gid, flat)
    return sums[gid].reshape(vals.shape)


def block_alpha_torch(block, weights):
    """``weights / (sum of weights over the block)`` for integer block ids per row."""
    m, n = block.shape
    gid = _segment_ids(block)
    return weights / _segment_sum(weights, gid, m * n)


def _project_pairs(z, weights, offset):
    out = z.clone()
    n = z.shape[-1]
    npairs = (n - offset) // 2
    if npairs <= 0:
        return out, torch.zeros(z.shape[:-1] + (0,), dtype=torch.bool, device=z.device)
    stop = offset + 2 * npairs
    za, zb = z[..., offset:stop:2], z[..., offset + 1:stop:2]
    wa, wb = weights[..., offset:stop:2], weights[..., offset + 1:stop:2]
    active = za < zb
    mean = (wa * za + wb * zb) / (wa + wb)
    out[..., offset:stop:2] = torch.where(active, mean, za)
    out[..., offset + 1:stop:2] = torch.where(active, mean, zb)
    return out, active


def dykstra_torch(y, weights, max_iter=1000, tol=1e-9):
    """Weighted l2 projection of each row onto decreasing sequences by Dykstra, in torch.

    Mirrors `isotonic.dykstra.dykstra_decreasing` (same sweeps, same stopping rule: one sweep
    changes no entry by more than ``tol`` times the largest ``|y|``) on any device. The
    stopping test reads one scalar per sweep (a device sync on accelerators).

    Returns:
      ``(solution, block, n_iter, residual)``: ``[m, n]`` tensors (``block`` int32, the ids of
      the blocks of active pair constraints), the sweep count and the largest violation
      ``max (v_{i+1} - v_i)_+``.
    """
    m, n = y.shape
    weights = weights.to(y.dtype).expand(m, n)
    # As the NumPy version: NaN rows solved as zeros then set to NaN; per-row stopping test.
    nanrow = torch.isnan(y).any(dim=1) | torch.isnan(weights).any(dim=1)
    y = torch.where(nanrow[:, None], torch.zeros_like(y), y)
    weights = torch.where(nanrow[:, None], torch.ones_like(weights), weights)
    x = y.clone()
    p = torch.zeros_like(x)
    q = torch.zeros_like(x)
    act1 = torch.zeros((m, max(n // 2, 0)), dtype=torch.bool, device=y.device)
    act2 = torch.zeros((m, max((n - 1) // 2, 0)), dtype=torch.bool, device=y.device)
    if y.numel() == 0:
        max_iter = min(max_iter, 1)
    scale = (y.abs().amax(dim=1) if y.numel() else y.new_zeros(m)).clamp(min=1e-300)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        t, act1 = _project_pairs(x + p, weights, 0)
        p = x + p - t
        xn, act2 = _project_pairs(t + q, weights, 1)
        q = t + q - xn
        change = (xn - x).abs().amax(dim=1) if x.numel() else x.new_zeros(m)
        x = xn
        if bool((change <= tol * scale).all()):
            break
    link = torch.zeros((m, max(n - 1, 0)), dtype=torch.bool, device=y.device)
    link[:, 0::2] = act1
    link[:, 1::2] = act2
    block = torch.zeros((m, n), dtype=torch.int32, device=y.device)
    if n > 1:
        block[:, 1:] = torch.cumsum((~link).to(torch.int32), dim=1).to(torch.int32)
    viol = torch.diff(x, dim=1) if n > 1 else x.new_zeros((m, 0))
    residual = float(viol.clamp(min=0.0).max()) if viol.numel() else 0.0
    x = torch.where(nanrow[:, None], torch.full_like(x, float("nan")), x)
    return x, block, it, residual


# --------------------------------------------------------------------------------------------
# The backend.


class TorchBackend:
    """`NumpyBackend`'s primitives for torch tensors ``[m, n]`` on any device.

    Args:
      pav: ``"auto"`` (Triton for CUDA tensors, and for CPU tensors when ``TRITON_INTERPRET=1``;
        Numba otherwise), ``"triton"`` or ``"numba"`` to force one kernel.
    """

    name = "torch"

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

    @staticmethod
    def dykstra(y, weights, max_iter, tol):
        sol, block, _, _ = dykstra_torch(y, weights, max_iter=max_iter, tol=tol)
        return sol, block

    @staticmethod
    def block_alpha(block, weights):
        return block_alpha_torch(block, weights)

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
    def segment_sum(vals, block):
        m, n = vals.shape
        return _segment_sum(vals, _segment_ids(block), m * n)

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

    @staticmethod
    def maximum(a, b):
        return torch.clamp(a, min=b) if not isinstance(b, torch.Tensor) else torch.maximum(a, b)

    @staticmethod
    def minimum(a, b):
        return torch.clamp(a, max=b) if not isinstance(b, torch.Tensor) else torch.minimum(a, b)


TORCH = TorchBackend()


# --------------------------------------------------------------------------------------------
# The BlockJacobian map in torch.


def _as_float(t, like):
    return t.to(dtype=like.dtype, device=like.device)


def jvp_rows_torch(jac: BlockJacobian, x_dot):
    r"""Output tangent ``J x_dot`` for a `BlockJacobian` of tensors, in O(n) per row.

    .. math:: g = \dot x[\pi_{in}],\quad t_k = a_k g_k + b_k \sum_{j \in B(k)} c_j g_j,
              \quad \dot y[\pi_{out}] = t

    Gathers, one ``index_add`` over the row-global segment ids ``row * n + block`` and one
    scatter: any device, differentiable by autograd in the tangent.
    """
    m, n = jac.a.shape
    g = torch.gather(_as_float(x_dot, jac.a), -1, jac.in_perm)
    seg = _segment_sum(jac.c * g, _segment_ids(jac.block), m * n)
    t = jac.a * g + jac.b * seg
    if jac.out_perm is None:
        return t
    return torch.empty_like(t).scatter_(-1, jac.out_perm, t)


def vjp_rows_torch(jac: BlockJacobian, y_bar):
    r"""Input cotangent ``J^T y_bar`` for a `BlockJacobian` of tensors, in O(n) per row.

    .. math:: h = \bar y[\pi_{out}],\quad r_k = a_k h_k + c_k \sum_{j \in B(k)} b_j h_j,
              \quad \bar x[\pi_{in}] = r
    """
    m, n = jac.a.shape
    y_bar = _as_float(y_bar, jac.a)
    h = y_bar if jac.out_perm is None else torch.gather(y_bar, -1, jac.out_perm)
    seg = _segment_sum(jac.b * h, _segment_ids(jac.block), m * n)
    r = jac.a * h + jac.c * seg
    return torch.empty_like(r).scatter_(-1, jac.in_perm, r)


def to_numpy_jacobian(jac: BlockJacobian) -> BlockJacobian:
    """A `BlockJacobian` of tensors as NumPy arrays (float64, int64 perms) for the Numba maps."""

    def f(t, dt):
        return None if t is None else np.ascontiguousarray(t.detach().cpu().numpy(), dt)

    return BlockJacobian(f(jac.in_perm, np.int64), f(jac.out_perm, np.int64),
                         f(jac.block, np.int32), f(jac.a, np.float64), f(jac.b, np.float64),
                         f(jac.c, np.float64))
