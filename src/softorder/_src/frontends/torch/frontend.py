r"""PyTorch front end: the row cores of `ops.py` as torch custom operators, with autograd.

Layout (TOOLCHAIN.md, "PyTorch 2.13 custom operators"):

* three raw custom operators, no autograd of their own, each with a fake (meta) kernel for
  ``torch.compile`` and a vmap rule:

  - ``softorder::forward(x2, op, ...) -> (y2, in_perm, block, a, b, c)``: the operator on
    ``[m, n]`` rows and the residuals of its `BlockJacobian` (DESIGN §1). CPU tensors run the
    NumPy/Numba row cores on zero-copy float64 views (the fused kernels, rows in parallel);
    CUDA tensors run the same row cores with ``xp=TORCH`` (torch sort, the Triton PAV kernel,
    Dykstra in torch). With ``TRITON_INTERPRET=1`` CPU tensors take the CUDA path too.
  - ``softorder::block_jvp`` and ``softorder::block_vjp``: the linear maps

    .. math:: \dot y[\pi] = a \odot g + b \odot \mathrm{segsum}_B(c \odot g),\ g = \dot x[\pi]

    and their transposes, in O(n) per row (Numba on CPU, gathers and ``index_add`` on CUDA).

* a setup-context `torch.autograd.Function` (``generate_vmap_rule=True``) whose backward and
  jvp call those maps; a variant without ``jvp`` is used while ``torch.compile`` traces (Dynamo
  refuses Functions with a custom jvp).

Plain tensors in eager mode (no compile, no ``torch.func`` transform, no dispatch mode) call
the kernels directly instead of through the dispatcher (`_plain_eager`): the same code, less
per-call overhead, and ``torch._dynamo`` (which imports Triton) is not loaded.

Second order. The residuals ``(a, b, c)`` are constants to autograd. Where they are locally
constant in ``x`` (``l2``, ``pnorm`` with ``p = 2``, top-k with ``p = 2``) the Hessian is 0
almost everywhere and differentiating a gradient (or a JVP) again is exact; elsewhere it raises
`NotImplementedError` (never a silently truncated Hessian). Differentiating again with
respect to the *cotangent* (the linear map's own transpose) is exact for every option.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...core import ops
from ...core import validation as V
from ...core.backend import NUMPY
from ...core.jacobian import BlockJacobian, jvp_rows, vjp_rows
from ...isotonic import pav as _pav
from .backend import TORCH, jvp_rows_torch, vjp_rows_torch

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "hard_sort",
    "hard_rank",
    "hard_topk_mask",
    "hard_topk_magnitude",
]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# --------------------------------------------------------------------------------------------
# Where the kernels run and in which dtype.


def _device_path(t) -> bool:
    """True when ``t`` takes the accelerator path (``xp=TORCH``: Triton PAV, torch maps)."""
    if t.device.type != "cpu":
        return True
    return TORCH.pav_kernel_for(t) == "triton"  # CPU under TRITON_INTERPRET=1


def _res_dtype(x):
    """The dtype of the float residuals: float64 on CPU (the Numba kernels' own), else at
    least float32 (float64 for float64 inputs)."""
    if x.device.type == "cpu" or x.dtype == torch.float64:
        return torch.float64
    return torch.float32


def _rows_call(op, x, k, strength, descending, regularization, p, solver, max_iter, tol, xp):
    if op == "rank":
        return ops.soft_rank_rows(x, strength, descending, regularization, p, xp=xp)
    if op == "sort":
        return ops.soft_sort_rows(x, strength, descending, regularization, p, xp=xp)
    if op == "topk_mask":
        return ops.soft_topk_mask_rows(x, k, strength, p, solver, max_iter, tol, xp=xp)
    return ops.soft_topk_magnitude_rows(x, k, strength, p, solver, max_iter, tol, xp=xp)


def _np64(t):
    """A float64 NumPy view (zero-copy for contiguous float64 CPU tensors). The conversion of
    other dtypes is NumPy's (single-threaded), not torch's thread pool: on small CPUs shared
    with Numba's threads that is faster and steadier."""
    t = t.detach()
    if t.dtype == torch.bfloat16:  # NumPy has no bfloat16
        return t.to(torch.float64).contiguous().numpy()
    return np.ascontiguousarray(t.numpy(), dtype=np.float64)


_NP_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _from_np(a, dtype):
    """A tensor of ``dtype`` from a float64 array (zero-copy for float64)."""
    if dtype in _NP_DTYPES:
        return torch.from_numpy(a.astype(_NP_DTYPES[dtype], copy=False))
    return torch.from_numpy(a).to(dtype)


def _fresh(tensors):
    """The tensors, cloning any that shares storage with an earlier one (custom-op outputs must
    not alias each other)."""
    seen = set()
    out = []
    for t in tensors:
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()
        elif ptr is not None:
            seen.add(ptr)
        out.append(t.contiguous())
    return out


# --------------------------------------------------------------------------------------------
# Raw custom operators (no autograd): forward, JVP map, VJP map.


def _plain_eager(*tensors) -> bool:
    """True for plain tensors in eager mode: no compile, no torch.func transform, no dispatch
    mode, no tensor subclass. Then the kernels are called directly, skipping the custom-op
    dispatcher: less per-call overhead, and no import of torch._dynamo (which imports Triton,
    fatal in a process that imported TensorFlow first)."""
    return (not torch.compiler.is_compiling()
            and torch._C._functorch.peek_interpreter_stack() is None
            and torch._C._len_torch_dispatch_stack() == 0
            and all(type(t) is torch.Tensor for t in tensors))


def _forward_impl(x, op, k, strength, descending, regularization, p, solver, max_iter, tol):
    m, n = x.shape
    rdt = _res_dtype(x)
    if m == 0 or n == 0:
        e = lambda dt: torch.empty((m, n), dtype=dt, device=x.device)
        return e(x.dtype), e(torch.int64), e(torch.int32), e(rdt), e(rdt), e(rdt)
    args = (k, strength, descending, regularization, p, solver, max_iter, tol)
    if _device_path(x):
        y, jac = _rows_call(op, x.detach().to(rdt).contiguous(), *args, xp=TORCH)
        res = (jac.in_perm.to(torch.int64), jac.block.to(torch.int32), jac.a.to(rdt),
               jac.b.to(rdt), jac.c.to(rdt))
    else:
        y, jac = _rows_call(op, _np64(x), *args, xp=NUMPY)
        y = _from_np(y, x.dtype)
        res = tuple(torch.from_numpy(np.asarray(r)) for r in
                    (jac.in_perm, jac.block, jac.a, jac.b, jac.c))
    if jac.out_perm is not None and jac.out_perm is not jac.in_perm:  # pragma: no cover
        raise AssertionError("softorder: unexpected output permutation")
    y = y.to(x.dtype)
    if y.data_ptr() == x.data_ptr():  # pragma: no cover - the cores never return their input
        y = y.clone()
    return tuple(_fresh((y, *res)))


@torch.library.custom_op("softorder::forward", mutates_args=())
def _forward_op(x: torch.Tensor, op: str, k: int, strength: float, descending: bool,
                regularization: str, p: float, solver: str, max_iter: int, tol: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                           torch.Tensor]:
    return _forward_impl(x, op, k, strength, descending, regularization, p, solver, max_iter,
                         tol)


def _forward(x, *args):
    return _forward_impl(x, *args) if _plain_eager(x) else _forward_op(x, *args)


def _apply_map(transpose, v, in_perm, block, a, b, c, same_perm):
    if _plain_eager(v, a):
        return _linear_impl(transpose, v, in_perm, block, a, b, c, same_perm)
    return (_vjp_op if transpose else _jvp_op)(v, in_perm, block, a, b, c, same_perm)


@_forward_op.register_fake
def _(x, op, k, strength, descending, regularization, p, solver, max_iter, tol):
    rdt = _res_dtype(x)
    e = lambda dt: x.new_empty(x.shape, dtype=dt)
    return e(x.dtype), e(torch.int64), e(torch.int32), e(rdt), e(rdt), e(rdt)


def _linear_impl(transpose, v, in_perm, block, a, b, c, same_perm):
    m, n = a.shape
    if m == 0 or n == 0:
        return torch.zeros(v.shape, dtype=v.dtype, device=v.device)
    if _device_path(a):
        jac = BlockJacobian(in_perm, in_perm if same_perm else None, block, a, b, c)
        out = (vjp_rows_torch if transpose else jvp_rows_torch)(jac, v.to(a.dtype))
    else:
        f = lambda t: t.detach().contiguous().numpy()
        pn = f(in_perm)
        jac = BlockJacobian(pn, pn if same_perm else None, f(block), f(a), f(b), f(c))
        return _from_np((vjp_rows if transpose else jvp_rows)(jac, _np64(v)), v.dtype)
    return out.to(v.dtype).contiguous()


@torch.library.custom_op("softorder::block_jvp", mutates_args=())
def _jvp_op(v: torch.Tensor, in_perm: torch.Tensor, block: torch.Tensor, a: torch.Tensor,
            b: torch.Tensor, c: torch.Tensor, same_perm: bool) -> torch.Tensor:
    return _linear_impl(False, v, in_perm, block, a, b, c, same_perm)


@torch.library.custom_op("softorder::block_vjp", mutates_args=())
def _vjp_op(v: torch.Tensor, in_perm: torch.Tensor, block: torch.Tensor, a: torch.Tensor,
            b: torch.Tensor, c: torch.Tensor, same_perm: bool) -> torch.Tensor:
    return _linear_impl(True, v, in_perm, block, a, b, c, same_perm)


@_jvp_op.register_fake
def _(v, in_perm, block, a, b, c, same_perm):
    return torch.empty_like(v, memory_format=torch.contiguous_format)


@_vjp_op.register_fake
def _(v, in_perm, block, a, b, c, same_perm):
    return torch.empty_like(v, memory_format=torch.contiguous_format)


def _batched_rows(t, d, size):
    """``t`` (``[m, n]``, batch dim ``d`` or None) as ``[size * m, n]`` rows."""
    t = t.unsqueeze(0).expand(size, *t.shape) if d is None else t.movedim(d, 0)
    return t.reshape(size * t.shape[1], t.shape[2]), t.shape[1]


@torch.library.register_vmap("softorder::forward")
def _(info, in_dims, x, *rest):
    rows, m = _batched_rows(x, in_dims[0], info.batch_size)
    outs = _forward_op(rows, *rest)
    return tuple(o.reshape(info.batch_size, m, o.shape[-1]) for o in outs), (0,) * 6


def _linear_vmap(op):
    def rule(info, in_dims, *args):
        tensors = args[:6]
        batched = [_batched_rows(t, d, info.batch_size) for t, d in zip(tensors, in_dims[:6])]
        out = op(*(rows for rows, _ in batched), args[6])
        return out.reshape(info.batch_size, batched[0][1], out.shape[-1]), 0

    return rule


torch.library.register_vmap("softorder::block_jvp", _linear_vmap(_jvp_op))
torch.library.register_vmap("softorder::block_vjp", _linear_vmap(_vjp_op))


# --------------------------------------------------------------------------------------------
# Autograd.


def _second_order_error(name):
    return NotImplementedError(
        f"softorder.torch.{name}: second-order derivatives in x (differentiating a gradient or "
        "a JVP again with respect to the input) are implemented only where they are exact: "
        "regularization='l2', 'pnorm' with p=2, top-k with p=2 (the Hessian is 0 almost "
        "everywhere there). First-order reverse and forward mode are exact for every option; "
        "use softorder.jax for Hessians of the other regularizers."
    )


def _linear(transpose, v, x2, res, same, exact2, name):
    """``J^T v`` (transpose) or ``J v``; differentiable again when grad mode is on."""
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        xg = x2 if exact2 else _RefuseSecondOrder.apply(x2, name)
        return _LinearNode.apply(v, xg, *res, transpose, same, exact2, name)
    return _apply_map(transpose, v, *res, same)


class _RefuseSecondOrder(torch.autograd.Function):
    """Identity on ``x``, whose derivative raises: placed between ``x`` and a linear map whose
    residuals depend on ``x`` in a way autograd does not see. Autograd reaches it only when a
    derivative *in x* of that map is really requested (not for derivatives in the cotangent)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, name):
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.name = inputs[1]

    @staticmethod
    def backward(ctx, g):
        raise _second_order_error(ctx.name)

    @staticmethod
    def jvp(ctx, x_dot, _):
        raise _second_order_error(ctx.name)


class _LinearNode(torch.autograd.Function):
    """The linear map ``v -> J v`` (or ``J^T v``) as a function of ``v`` and of ``x``.

    Exact in ``v`` to any order (its derivative is the map itself or its transpose). Its
    derivative in ``x`` (through the residuals) is 0 where the residuals are locally constant
    (``exact2``); elsewhere ``x`` arrives through `_RefuseSecondOrder`, which raises.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(v, x2, in_perm, block, a, b, c, transpose, same, exact2, name):
        return _apply_map(transpose, v, in_perm, block, a, b, c, same)

    @staticmethod
    def setup_context(ctx, inputs, output):
        v, x2, in_perm, block, a, b, c, transpose, same, exact2, name = inputs
        ctx.save_for_backward(x2, in_perm, block, a, b, c)
        ctx.save_for_forward(x2, in_perm, block, a, b, c)
        ctx.flags = (transpose, same, exact2, name)

    @staticmethod
    def backward(ctx, g):
        x2, *res = ctx.saved_tensors
        transpose, same, exact2, name = ctx.flags
        gv = (_linear(not transpose, g, x2, res, same, exact2, name)
              if ctx.needs_input_grad[0] else None)
        # Not exact2: a placeholder that reaches _RefuseSecondOrder, which raises if needed.
        gx = torch.zeros_like(x2) if ctx.needs_input_grad[1] and not exact2 else None
        return (gv, gx) + (None,) * 9

    @staticmethod
    def jvp(ctx, v_dot, x_dot, *_):
        # A tangent in x is 0 where exact2; otherwise _RefuseSecondOrder.jvp has raised.
        x2, *res = ctx.saved_tensors
        transpose, same, exact2, name = ctx.flags
        if v_dot is None:
            return torch.zeros_like(x2)
        return _linear(transpose, v_dot, x2, res, same, exact2, name)


class _SoftOpCompiled(torch.autograd.Function):
    """``y2 = op(x2)`` with its residuals as extra (non-differentiable) outputs; reverse mode.

    Used while ``torch.compile`` traces; `_SoftOp` adds forward mode. The options are plain
    Python scalars (``op, k, strength, descending, regularization, p, solver, max_iter, tol``,
    then ``exact2``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x2, op, k, strength, descending, regularization, p, solver, max_iter, tol,
                exact2):
        return _forward(x2, op, k, strength, descending, regularization, p, solver, max_iter,
                        tol)

    @staticmethod
    def setup_context(ctx, inputs, output):
        y, *res = output
        ctx.mark_non_differentiable(*res)
        ctx.save_for_backward(inputs[0], *res)
        op = inputs[1]
        ctx.flags = (op != "sort", inputs[-1], _PUBLIC[op])

    @staticmethod
    def backward(ctx, gy, *_):
        x2, *res = ctx.saved_tensors
        return (_linear(True, gy, x2, res, *ctx.flags),) + (None,) * 10


class _SoftOp(_SoftOpCompiled):
    """`_SoftOpCompiled` with forward mode (``torch.func.jvp``, ``forward_ad``, ``jacfwd``)."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        _SoftOpCompiled.setup_context(ctx, inputs, output)
        ctx.save_for_forward(inputs[0], *output[1:])

    @staticmethod
    def jvp(ctx, x_dot, *_):
        x2, *res = ctx.saved_tensors
        return (_linear(False, x_dot, x2, res, *ctx.flags), None, None, None, None, None)


class _SoftOpEager(torch.autograd.Function):
    """`_SoftOp` for plain eager tensors (`_plain_eager`): an old-style Function that returns
    only ``y`` (less per-call overhead); reverse and forward mode as `_SoftOp`. ``torch.func``
    transforms and ``torch.compile`` use the setup-context variants."""

    @staticmethod
    def forward(ctx, x2, op, k, strength, descending, regularization, p, solver, max_iter, tol,
                exact2):
        y, *res = _forward_impl(x2, op, k, strength, descending, regularization, p, solver,
                                max_iter, tol)
        ctx.save_for_backward(x2, *res)
        ctx.save_for_forward(x2, *res)
        ctx.flags = (op != "sort", exact2, _PUBLIC[op])
        return y

    @staticmethod
    def backward(ctx, gy):
        x2, *res = ctx.saved_tensors
        return (_linear(True, gy, x2, res, *ctx.flags),) + (None,) * 10

    @staticmethod
    def jvp(ctx, x_dot, *_):
        x2, *res = ctx.saved_tensors
        return _linear(False, x_dot, x2, res, *ctx.flags)


# --------------------------------------------------------------------------------------------
# Boundary: inputs, dims, rows.


def _as_float_tensor(x, name="x"):
    """A floating tensor; NumPy arrays and lists are checked as `softorder.numpy` does."""
    if isinstance(x, torch.Tensor):
        if x.dtype not in _FLOATS:
            kind = "complex" if x.is_complex() else "non-floating"
            raise V.float_dtype_error(name, x.dtype, x.shape, f"{name}.float()", kind)
        return x
    return torch.as_tensor(V.as_float_array(x, name))


def _static_number(value, name):
    """Hyperparameters are Python numbers: a tensor would be silently non-differentiable."""
    if isinstance(value, torch.Tensor):
        raise V.static_number_error(name, value, "softorder.torch")
    return value


def _check_strength(value, name="regularization_strength"):
    return V.check_strength(_static_number(value, name), name)


def _check_p(p, name="p"):
    return V.check_p(_static_number(p, name), name)


def _run(x, dim, spec, exact2):
    """Canonicalize ``dim``, move it last, reshape to ``[m, n]``, apply, undo."""
    ax = V.check_axis(dim, x.ndim, x.shape, "dim")
    xm = x.movedim(ax, -1)
    shape = xm.shape
    n = shape[-1]
    m = math.prod(shape[:-1])
    x2 = xm.reshape(m, n)
    if _plain_eager(x2):
        y2 = _SoftOpEager.apply(x2, *spec, bool(exact2))
    else:
        fn = _SoftOpCompiled if torch.compiler.is_compiling() else _SoftOp
        y2 = fn.apply(x2, *spec, bool(exact2))[0]
    return y2.reshape(shape).movedim(-1, ax)


_PUBLIC = {"sort": "soft_sort", "rank": "soft_rank", "topk_mask": "soft_topk_mask",
           "topk_magnitude": "soft_topk_magnitude"}


def _sort_rank_spec(op, regularization, regularization_strength, p, descending):
    V.check_regularization(regularization)
    eps = _check_strength(regularization_strength)
    p = _check_p(p) if regularization == "pnorm" else 4 / 3  # p is unused by l2 and kl
    exact2 = regularization == "l2" or (regularization == "pnorm" and p == 2.0)
    return (op, 0, eps, bool(descending), regularization, p, "pav", 1, 0.0), exact2


def _topk_spec(op, x, k, dim, regularization_strength, p, solver, max_iter, tol):
    ax = V.check_axis(dim, x.ndim, x.shape, "dim")
    k = V.check_k(_static_number(k, "k"), x.shape[ax], tuple(x.shape), dim)
    lam = _check_strength(regularization_strength)
    p = _check_p(p)
    V.check_solver(solver, p)
    max_iter = V.check_positive_int(max_iter, "max_iter")
    tol = float(_static_number(tol, "tol"))
    return (op, k, lam, False, "pnorm", p, solver, max_iter, tol), p == 2.0


# --------------------------------------------------------------------------------------------
# Public operators.


def soft_rank(x, *, dim=-1, descending=False, regularization="l2", regularization_strength=1.0,
              p=4 / 3):
    r"""Soft ranks along ``dim``: 1-based, ascending by default (rank 1 = smallest).

    .. math::

        r_\varepsilon(x) = P_R(\pm x / \varepsilon, \rho)
        = \arg\max_{y \in \mathcal{P}(\rho)} \langle \pm x / \varepsilon, y \rangle - R(y),
        \qquad \rho = (n, \dots, 1),

    with ``l2`` (:math:`R = \tfrac12\|y\|^2`), ``kl`` (:math:`R = \langle y, \log y - 1
    \rangle`) or ``pnorm`` (:math:`R = \tfrac1p\|y\|_p^p`). Sort and PAV: :math:`O(n \log n)`
    forward, :math:`O(n)` JVP/VJP. The same options, defaults and numbers as
    `softorder.numpy.soft_rank`, with ``dim`` for ``axis``.

    Args:
      x: floating tensor ``[..., n, ...]`` (float16, bfloat16, float32 or float64), any device.
      dim: the dimension to rank along (default last).
      descending: if True, rank 1 is the largest entry.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0` in the units of ``x``; larger is softer.
        l2 soft ranks are exact when :math:`\varepsilon` is at most the smallest gap.
      p: the exponent for ``regularization="pnorm"`` (``p > 1``).

    Returns:
      Soft ranks, the shape and dtype of ``x``; each row sums to :math:`n(n+1)/2`.

    Example:
      >>> import torch
      >>> from softorder.torch import soft_rank
      >>> soft_rank(torch.tensor([5.0, 1.0, 2.0]), regularization_strength=2.0)
      tensor([3.0000, 1.2500, 1.7500])

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    x = _as_float_tensor(x)
    spec, exact2 = _sort_rank_spec("rank", regularization, regularization_strength, p,
                                   descending)
    return _run(x, dim, spec, exact2)


def soft_sort(x, *, dim=-1, descending=False, regularization="l2", regularization_strength=1.0,
              p=4 / 3):
    r"""Soft sort along ``dim``, ascending by default (`softorder.numpy.soft_sort`).

    .. math::

        s_\varepsilon(x) = P_R(\rho / \varepsilon, x)
        = \arg\max_{y \in \mathcal{P}(x)} \langle \rho / \varepsilon, y \rangle - R(y)
        \quad\text{(descending)},

    ``kl`` in the log-space form :math:`\log P_R(\rho/\varepsilon, e^x)`; ascending is
    :math:`-s_\varepsilon(-x)`. The output is monotone along ``dim`` and, for ``l2``, keeps the
    sum of each row.

    Args:
      x: floating tensor ``[..., n, ...]``.
      dim: the dimension to sort along (default last).
      descending: sort largest first.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0`, multiplying ``rho`` (units of
        ``1 / x``); l2 soft sort is exact when :math:`\varepsilon \le 1 /` (largest gap).
      p: the exponent for ``regularization="pnorm"``.

    Returns:
      Softly sorted values, the shape and dtype of ``x``.

    Example:
      >>> import torch
      >>> from softorder.torch import soft_sort
      >>> soft_sort(torch.tensor([5.0, 1.0, 2.0], dtype=torch.float64))
      tensor([1.6667, 2.6667, 3.6667], dtype=torch.float64)

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    x = _as_float_tensor(x)
    spec, exact2 = _sort_rank_spec("sort", regularization, regularization_strength, p,
                                   descending)
    return _run(x, dim, spec, exact2)


def soft_topk_mask(x, k, *, dim=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                   max_iter=1000, tol=1e-9):
    r"""Sparse soft top-k mask along ``dim`` (`softorder.numpy.soft_topk_mask`).

    .. math::

        m_\lambda(x) = \arg\max_{y \in [0,1]^n,\ \sum y = k} \langle x, y\rangle
        - \frac{\lambda}{p}\|y\|_p^p.

    Sums to ``k``, lies in ``[0, 1]``, exactly 0 or 1 away from the top-k boundary; ``p = 4/3``
    (default) is continuously differentiable, ``p = 2`` piecewise linear.

    Args:
      x: floating tensor ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n`` (a Python int).
      dim: the dimension to select along (default last).
      regularization_strength: :math:`\lambda > 0`, in the units of ``x``.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (parallel, approximate, ``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and tolerance.

    Returns:
      The soft mask, the shape and dtype of ``x``.

    Example:
      >>> import torch
      >>> from softorder.torch import soft_topk_mask
      >>> soft_topk_mask(torch.tensor([-5.0, -2.0, 3.0, 1.0]), 2, regularization_strength=0.01)
      tensor([0., 0., 1., 1.])

    References:
      Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
      Convex Analysis Perspective. ICML 2023.
    """
    x = _as_float_tensor(x)
    spec, exact2 = _topk_spec("topk_mask", x, k, dim, regularization_strength, p, solver,
                              max_iter, tol)
    return _run(x, dim, spec, exact2)


def soft_topk_magnitude(x, k, *, dim=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                        max_iter=1000, tol=1e-9):
    r"""Sparse soft top-k in magnitude along ``dim`` (`softorder.numpy.soft_topk_magnitude`).

    The hard operator is :math:`x \odot \mathrm{topk\_mask}(|x|)`; the soft one is
    :math:`y = u + \nabla R(u)`, :math:`u = \arg\max_u \langle u, x\rangle - f^*(u) - R(u)`,
    :math:`R = \frac{\lambda}{p}\|\cdot\|_p^p`. Entries outside the soft support are exactly 0.

    Args:
      x: floating tensor ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n``.
      dim: the dimension to select along (default last).
      regularization_strength: :math:`\lambda > 0`.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and tolerance.

    Returns:
      The shape and dtype of ``x``.

    Example:
      >>> import torch
      >>> from softorder.torch import soft_topk_magnitude
      >>> x = torch.tensor([-5.0, -2.0, 3.0, 1.0], dtype=torch.float64)
      >>> soft_topk_magnitude(x, 2, regularization_strength=0.01).round(decimals=6)
      tensor([-5.,  0.,  3.,  0.], dtype=torch.float64)
    """
    x = _as_float_tensor(x)
    spec, exact2 = _topk_spec("topk_magnitude", x, k, dim, regularization_strength, p, solver,
                              max_iter, tol)
    return _run(x, dim, spec, exact2)


# --------------------------------------------------------------------------------------------
# Isotonic regression: PAV gives the value and the integer blocks; the derivatives (all orders)
# come from autograd on the closed form v_B = sum_B c y / sum_B c over those fixed blocks.


class IsotonicResult(tuple):
    """``(solution, block)``: the fit and its int32 block ids (like `softorder.isotonic`)."""

    __slots__ = ()

    def __new__(cls, solution, block):
        return tuple.__new__(cls, (solution, block))

    solution = property(lambda self: self[0])
    block = property(lambda self: self[1])


def _isotonic_impl(y, c, increasing):
    m, n = y.shape
    rdt = _res_dtype(y)
    if m == 0 or n == 0:
        return (torch.empty((m, n), dtype=rdt, device=y.device),
                torch.empty((m, n), dtype=torch.int32, device=y.device))
    yd = y.detach().to(rdt).contiguous()
    cd = c.detach().to(rdt).contiguous()
    if not bool((cd > 0).all()):  # checked here, on the data, also under vmap and compile
        raise ValueError("sample_weight must be positive.")
    target = -yd if increasing else yd
    zero = torch.zeros_like(yd)
    if _device_path(y):
        v, _, _, _, block = TORCH.pav(target, zero, cd, _pav.KIND_L2, 1.0, 1.0, True, False)
    else:
        v, _, _, _, block = (torch.from_numpy(np.asarray(a)) for a in _pav.pav_batch(
            target.numpy(), zero.numpy(), cd.numpy(), _pav.KIND_L2, 1.0, 1.0, True, False))
    v = -v if increasing else v
    return v.to(rdt).contiguous(), block.to(torch.int32).contiguous()


@torch.library.custom_op("softorder::isotonic_pav", mutates_args=())
def _isotonic_op(y: torch.Tensor, c: torch.Tensor, increasing: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    return _isotonic_impl(y, c, increasing)


@_isotonic_op.register_fake
def _(y, c, increasing):
    return y.new_empty(y.shape, dtype=_res_dtype(y)), y.new_empty(y.shape, dtype=torch.int32)


@torch.library.register_vmap("softorder::isotonic_pav")
def _(info, in_dims, y, c, increasing):
    yr, m = _batched_rows(y, in_dims[0], info.batch_size)
    cr, _ = _batched_rows(c, in_dims[1], info.batch_size)
    v, block = _isotonic_op(yr, cr, increasing)
    return (v.reshape(info.batch_size, m, -1), block.reshape(info.batch_size, m, -1)), (0, 0)


def _block_sums(vals, block):
    """Per-position sum of ``vals`` over its block (row-global segment ids, ``index_add``)."""
    m, n = vals.shape
    gid = (torch.arange(m, device=vals.device)[:, None] * n + block.to(torch.int64)).reshape(-1)
    sums = torch.zeros(m * n, dtype=vals.dtype, device=vals.device).index_add(
        0, gid, vals.reshape(-1))
    return sums[gid].reshape(m, n)


def isotonic_regression(y, *, sample_weight=None, y_min=None, y_max=None, increasing=True,
                        dim=-1, return_blocks=False):
    r"""Least-squares isotonic regression along ``dim`` (`softorder.isotonic`), differentiable.

    .. math::

        \min_{v_1 \le \dots \le v_n} \sum_i c_i (y_i - v_i)^2,\qquad
        y_{\min} \le v_i \le y_{\max}.

    PAV gives the solution and its blocks; on each block :math:`v_B = \sum_B c_j y_j / \sum_B
    c_j`, so derivatives in ``y`` and ``sample_weight`` (every order, forward and reverse mode)
    follow from that closed form with the blocks held fixed (0 where a bound is active).

    Args:
      y: floating tensor ``[..., n, ...]``.
      sample_weight: positive weights, the shape of ``y`` (default ones).
      y_min, y_max: optional bounds (Python numbers).
      increasing: the direction of the order constraint.
      dim: the dimension of the sequences.
      return_blocks: also return the int32 block ids (an `IsotonicResult`).

    Example:
      >>> import torch
      >>> from softorder.torch import isotonic_regression
      >>> isotonic_regression(torch.tensor([1.0, 3.0, 2.0, 4.0]))
      tensor([1.0000, 2.5000, 2.5000, 4.0000])
    """
    y = _as_float_tensor(y, "y")
    ax = V.check_axis(dim, y.ndim, y.shape, "dim")
    if sample_weight is not None:
        w = _as_float_tensor(sample_weight, "sample_weight")
        if w.shape != y.shape:
            raise ValueError(
                f"sample_weight must have the shape of y {tuple(y.shape)}; got {tuple(w.shape)}.")
    lo = None if y_min is None else float(_static_number(y_min, "y_min"))
    hi = None if y_max is None else float(_static_number(y_max, "y_max"))
    ym = y.movedim(ax, -1)
    shape = ym.shape
    n = shape[-1]
    m = math.prod(shape[:-1])
    rdt = _res_dtype(y)
    y2 = ym.reshape(m, n).to(rdt)
    c2 = (torch.ones_like(y2) if sample_weight is None
          else w.movedim(ax, -1).reshape(m, n).to(rdt))
    yd, cd = y2.detach(), c2.detach()
    iso = _isotonic_impl if _plain_eager(yd, cd) else _isotonic_op
    v, block = iso(yd, cd, bool(increasing))
    # The value is PAV's; the derivatives are those of the closed form on the fixed blocks.
    rec = _block_sums(c2 * y2, block) / _block_sums(c2, block)
    out = v + (rec - rec.detach())
    if lo is not None or hi is not None:
        clipped = v.clamp(lo, hi)
        free = (v > (-math.inf if lo is None else lo)) & (v < (math.inf if hi is None else hi))
        out = torch.where(free, out, clipped)
    sol = out.to(y.dtype).reshape(shape).movedim(-1, ax)
    if return_blocks:
        return IsotonicResult(sol, block.reshape(shape).movedim(-1, ax))
    return sol


# --------------------------------------------------------------------------------------------
# Hard operators (the limits; piecewise constant or linear, differentiable by torch).


def hard_sort(x, *, dim=-1, descending=False):
    """Sorted values along ``dim`` (``torch.sort``); gradients flow to the sorted entries."""
    x = _as_float_tensor(x)
    ax = V.check_axis(dim, x.ndim, x.shape, "dim")
    return torch.sort(x, dim=ax, descending=bool(descending), stable=True).values


def hard_rank(x, *, dim=-1, descending=False):
    """1-based ranks ``argsort(argsort(x)) + 1`` (ties by position), in ``x``'s dtype."""
    x = _as_float_tensor(x)
    ax = V.check_axis(dim, x.ndim, x.shape, "dim")
    order = torch.argsort(x, dim=ax, descending=bool(descending), stable=True)
    return (torch.argsort(order, dim=ax) + 1).to(x.dtype)


def hard_topk_mask(x, k, *, dim=-1):
    """1 on the ``k`` largest entries along ``dim`` (ties by position), else 0."""
    x = _as_float_tensor(x)
    ax = V.check_axis(dim, x.ndim, x.shape, "dim")
    k = V.check_k(_static_number(k, "k"), x.shape[ax], tuple(x.shape), dim)
    order = torch.argsort(x, dim=ax, descending=True, stable=True)
    ranks = torch.argsort(order, dim=ax)
    return (ranks < k).to(x.dtype)


def hard_topk_magnitude(x, k, *, dim=-1):
    """``x`` on the ``k`` entries of largest magnitude along ``dim``, else 0."""
    x = _as_float_tensor(x)
    return x * hard_topk_mask(x.abs(), k, dim=dim) + 0.0
