r"""PyTorch front end: the registry's operators as torch custom operators, with autograd.

Each public operator is a few lines: it looks its operator up (`registry.get`), which
validates the options once (``op.make_options``), and calls `_call`, which lays ``dim`` out as
``[m, n]`` rows and applies one `torch.autograd.Function` built on raw custom operators
(TOOLCHAIN.md, "PyTorch 2.13 custom operators"), each with a fake kernel (``torch.compile``,
meta tensors) and a vmap rule, and no autograd of its own:

* ``softorder::forward(x2, strength, name, <options>) -> (y2, in_perm, block, a, b, c)``: the
  operator's row function ``op.rows`` and the residuals of its `BlockJacobian`. ``out_perm``
  is not stored: it is None for sorts and ``in_perm`` otherwise (``op.sorted_output``). CPU
  tensors run the fused Numba kernels on zero-copy float64 views (``xp=NUMPY``); CUDA tensors
  (and CPU tensors under ``TRITON_INTERPRET=1``) the same row function with ``xp=TORCH``.
* ``softorder::block_jvp`` and ``softorder::block_vjp``: the one derivative map
  `jacobian.apply` and its transpose, O(n) per row (the Numba fast path on CPU, ``xp=TORCH``
  elsewhere).
* ``softorder::strength_tangent``: ``dy2 / d strength`` from the same residuals
  (``op.strength_tangent``), run only when the strength needs a derivative.

Custom-op schemas take no dataclass: the frozen options travel as the operator's name and its
primitive option fields (`_FIELDS`), and `_decode` rebuilds them inside the kernels.

**The strength is an operand**: a 0-d float64 tensor on ``x``'s device, not a constant baked
into a graph, so a schedule of strengths does not recompile a ``torch.compile``d function, and
a strength tensor that requires grad gets its gradient (forward mode too).

The autograd Function is a setup-context one (``generate_vmap_rule=True``); a variant without
``jvp`` runs while ``torch.compile`` traces (Dynamo refuses Functions with a custom jvp).
Plain tensors in eager mode (no compile, no ``torch.func`` transform, no dispatch mode, not
meta) call the kernels directly through an old-style Function (`_plain_eager`): the same code,
less per-call overhead, and ``torch._dynamo`` (which imports Triton) is not loaded.

Second order. The residuals ``(a, b, c)`` are constants to autograd. Where they are locally
constant in ``x`` (``options.exact_second_order``: ``l2``, ``pnorm`` with ``p = 2``, top-k
with ``p = 2``) the Hessian is 0 almost everywhere and differentiating a gradient (or a JVP)
again is exact; elsewhere it raises `NotImplementedError` (never a silently truncated
Hessian), as does differentiating the strength's derivative again. Differentiating again with
respect to the *cotangent* (the linear map's own transpose) is exact for every option.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import torch

from ...core import registry as R
from ...core import validation as V
from ...core.backend import NUMPY, NUMPY_WINDOWS
from ...core.jacobian import BlockJacobian, apply
from .backend import TORCH, TorchBackend

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

Strength = float | torch.Tensor  # a Python number or a 0-d floating tensor


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


def _plain_eager(*tensors) -> bool:
    """True for plain tensors in eager mode: no compile, no torch.func transform, no dispatch
    mode, no tensor subclass, no meta tensor. Then the kernels are called directly, skipping
    the custom-op dispatcher: less per-call overhead, and no import of torch._dynamo (which
    imports Triton, fatal in a process that imported TensorFlow first). Meta tensors go through
    the dispatcher to the fake kernels (shape propagation, as for built-in ops)."""
    return (not torch.compiler.is_compiling()
            and torch._C._functorch.peek_interpreter_stack() is None
            and torch._C._len_torch_dispatch_stack() == 0
            and all(type(t) is torch.Tensor and not t.is_meta for t in tensors))


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
# Options as custom-op arguments: every option field of the registered operators, in one
# order, with its schema type and the value passed for operators that lack it. A new option
# field is one entry here.

_FIELDS = (("k", "int", 0), ("descending", "bool", False), ("regularization", "str", "l2"),
           ("p", "float", 4 / 3), ("solver", "str", "pav"), ("max_iter", "int", 1000),
           ("tol", "float", 0.0), ("straight_through", "bool", False),
           ("partial", "bool?", None))
_SCHEMA = ", ".join(f"{kind} {name}" for name, kind, _ in _FIELDS)


def _fields(opts):
    """The primitive option fields of frozen ``opts``, in `_FIELDS` order."""
    return tuple([getattr(opts, name, default) for name, _, default in _FIELDS])


@functools.cache
def _decode(name, fields):
    """``(operator, frozen options)`` from the operator's name and its `_fields`."""
    op = R.get(name)
    own = {f.name for f in dataclasses.fields(op.options)}
    return op, op.options(**{n: v for (n, _, _), v in zip(_FIELDS, fields) if n in own})


def _jacobian(op, in_perm, block, a, b, c, host):
    """The operator's `BlockJacobian` from its stored residuals (NumPy views when ``host``)."""
    if host:
        in_perm, block, a, b, c = [t.detach().contiguous().numpy()
                                   for t in (in_perm, block, a, b, c)]
    return BlockJacobian(in_perm, None if op.sorted_output else in_perm, block, a, b, c)


# --------------------------------------------------------------------------------------------
# The kernels, on [m, n] rows of real tensors.


def _forward_impl(x, strength, name, fields, windows=False, host_jac=None):
    """``(y2, in_perm, block, a, b, c)``: the operator on rows and its residuals.

    ``host_jac``: a list that receives the NumPy `BlockJacobian` on the CPU path (the eager
    Function keeps it for its backward, skipping the tensor -> array conversions there);
    then the outputs are returned as made (no alias check: only a custom op's outputs must
    not alias).

    ``strength`` is a Python float or a 0-d float64 tensor. The CPU path reads its value (and
    checks it, as tensors are not checked at the boundary); the device path keeps it a tensor
    (no host sync: a strength tensor on an accelerator is not checked for positivity).
    ``windows`` (plain eager CPU only, never behind a custom op's fixed output shapes): the
    partial top-k rows may return window residuals, narrower than ``x``
    (`backend.NumpyWindowBackend`), and read float32 rows without a float64 copy.
    """
    op, opts = _decode(name, fields)
    m, n = x.shape
    rdt = _res_dtype(x)
    if m == 0 or n == 0:
        e = lambda dt: torch.empty((m, n), dtype=dt, device=x.device)
        return e(x.dtype), e(torch.int64), e(torch.int32), e(rdt), e(rdt), e(rdt)
    if _device_path(x):
        y, jac = op.rows(x.detach().to(rdt).contiguous(), strength, opts, TORCH)
        res = (jac.in_perm.to(torch.int64), jac.block.to(torch.int32), jac.a.to(rdt),
               jac.b.to(rdt), jac.c.to(rdt))
    else:
        eps = float(strength)
        if isinstance(strength, torch.Tensor):  # a Python float was checked at the boundary
            V.check_strength(eps)
        if windows and op.takes_k:
            xin = _np64(x) if x.dtype != torch.float32 else np.ascontiguousarray(x.detach())
            y, jac = op.rows(xin, eps, opts, NUMPY_WINDOWS)
        else:
            y, jac = op.rows(_np64(x), eps, opts, NUMPY)
        y = _from_np(y, x.dtype)
        res = tuple(torch.from_numpy(np.asarray(r)) for r in
                    (jac.in_perm, jac.block, jac.a, jac.b, jac.c))
        if host_jac is not None:
            host_jac.append(jac)
            return (y, *res)
    y = y.to(x.dtype)
    if y.data_ptr() == x.data_ptr():  # pragma: no cover - the cores never return their input
        y = y.clone()
    return tuple(_fresh((y, *res)))


def _linear_impl(transpose, v, in_perm, block, a, b, c, name):
    """``J v`` (or ``J^T v``) by `jacobian.apply`: Numba on CPU, ``xp=TORCH`` elsewhere."""
    m, n = a.shape
    if m == 0 or n == 0:
        return torch.zeros(v.shape, dtype=v.dtype, device=v.device)
    host = not _device_path(a)
    jac = _jacobian(R.get(name), in_perm, block, a, b, c, host)
    if host:
        # Window residuals (`_forward_impl`): a float32 cotangent is read as it is.
        window = n < v.shape[-1] and v.dtype == torch.float32
        vin = np.ascontiguousarray(v.detach()) if window else _np64(v)
        return _from_np(apply(jac, vin, transpose=transpose), v.dtype)
    return apply(jac, v.to(a.dtype), transpose=transpose, xp=TORCH).to(v.dtype).contiguous()


def _tangent_impl(x, y, strength, in_perm, block, a, b, c, name, fields):
    """``dy / d strength`` on rows (``[m, n]``, the residuals' dtype)."""
    op, opts = _decode(name, fields)
    m, n = a.shape
    if m == 0 or n == 0:
        return torch.zeros((m, n), dtype=a.dtype, device=a.device)
    host = not _device_path(a)
    jac = _jacobian(op, in_perm, block, a, b, c, host)
    if host:
        t = op.strength_tangent(_np64(x), _np64(y), jac, float(strength), opts, NUMPY)
        return torch.from_numpy(np.ascontiguousarray(t, np.float64))
    rdt = a.dtype
    t = op.strength_tangent(x.detach().to(rdt), y.detach().to(rdt), jac, strength, opts,
                            TORCH)
    return t.to(rdt).contiguous()


# --------------------------------------------------------------------------------------------
# Raw custom operators (no autograd), their fake kernels and vmap rules.


def _custom_op(name, schema):
    return lambda fn: torch.library.custom_op(name, fn, mutates_args=(), schema=schema)


_ROWS6 = "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)"
_RES = "Tensor in_perm, Tensor block, Tensor a, Tensor b, Tensor c"


@_custom_op("softorder::forward", f"(Tensor x, Tensor strength, str name, {_SCHEMA}) -> {_ROWS6}")
def _forward_op(x, strength, name, *fields):
    return _forward_impl(x, strength, name, fields)


@_custom_op("softorder::block_jvp", f"(Tensor v, {_RES}, str name) -> Tensor")
def _jvp_op(v, in_perm, block, a, b, c, name):
    return _linear_impl(False, v, in_perm, block, a, b, c, name)


@_custom_op("softorder::block_vjp", f"(Tensor v, {_RES}, str name) -> Tensor")
def _vjp_op(v, in_perm, block, a, b, c, name):
    return _linear_impl(True, v, in_perm, block, a, b, c, name)


@_custom_op("softorder::strength_tangent",
            f"(Tensor x, Tensor y, Tensor strength, {_RES}, str name, {_SCHEMA}) -> Tensor")
def _tangent_op(x, y, strength, in_perm, block, a, b, c, name, *fields):
    return _tangent_impl(x, y, strength, in_perm, block, a, b, c, name, fields)


@_forward_op.register_fake
def _(x, strength, name, *fields):
    rdt = _res_dtype(x)
    e = lambda dt: x.new_empty(x.shape, dtype=dt)
    return e(x.dtype), e(torch.int64), e(torch.int32), e(rdt), e(rdt), e(rdt)


def _linear_fake(v, *args):
    return torch.empty_like(v, memory_format=torch.contiguous_format)


_jvp_op.register_fake(_linear_fake)
_vjp_op.register_fake(_linear_fake)


@_tangent_op.register_fake
def _(x, y, strength, in_perm, block, a, *args):
    return torch.empty_like(a, memory_format=torch.contiguous_format)


def _vmap_rule(op, strength_at=None):
    """A vmap rule for ``op`` on ``[m, n]`` row tensors: the batch folds into the rows (one
    call). A batched strength (a 0-d operand, at ``strength_at``) takes one call per value."""

    def rule(info, in_dims, *args):
        size = info.batch_size
        if strength_at is not None and in_dims[strength_at] is not None:
            outs = [op(*(a if d is None else a.select(d, i) for a, d in zip(args, in_dims)))
                    for i in range(size)]
            if isinstance(outs[0], torch.Tensor):
                return torch.stack(outs), 0
            return tuple(torch.stack(o) for o in zip(*outs)), (0,) * len(outs[0])
        m = None
        rows = list(args)
        for i, (a, d) in enumerate(zip(args, in_dims)):
            if isinstance(a, torch.Tensor) and i != strength_at:
                t = a.unsqueeze(0).expand(size, *a.shape) if d is None else a.movedim(d, 0)
                m = t.shape[1]
                rows[i] = t.reshape(size * m, t.shape[2])
        out = op(*rows)
        if isinstance(out, torch.Tensor):
            return out.reshape(size, m, out.shape[-1]), 0
        return tuple(o.reshape(size, m, o.shape[-1]) for o in out), (0,) * len(out)

    return rule


torch.library.register_vmap("softorder::forward", _vmap_rule(_forward_op, strength_at=1))
torch.library.register_vmap("softorder::block_jvp", _vmap_rule(_jvp_op))
torch.library.register_vmap("softorder::block_vjp", _vmap_rule(_vjp_op))
torch.library.register_vmap("softorder::strength_tangent",
                            _vmap_rule(_tangent_op, strength_at=2))


# --------------------------------------------------------------------------------------------
# Autograd.


def _second_order_error(name):
    return NotImplementedError(
        f"softorder.torch.{name}: second-order derivatives (differentiating a gradient or a "
        "JVP again with respect to the input, or the derivative in regularization_strength "
        "at all) are implemented only where they are exact: regularization='l2', 'pnorm' with "
        "p=2, top-k with p=2, in x (the Hessian is 0 almost everywhere there). First-order "
        "reverse and forward mode are exact for every option; use softorder.jax for Hessians "
        "of the other regularizers."
    )


def _apply_map(transpose, v, in_perm, block, a, b, c, name):
    if _plain_eager(v, a):
        return _linear_impl(transpose, v, in_perm, block, a, b, c, name)
    return (_vjp_op if transpose else _jvp_op)(v, in_perm, block, a, b, c, name)


def _linear(transpose, v, x2, res, name, exact2):
    """``J^T v`` (transpose) or ``J v``; differentiable again when grad mode is on."""
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        xg = x2 if exact2 else _RefuseSecondOrder.apply(x2, name)
        return _LinearNode.apply(v, xg, *res, transpose, name, exact2)
    return _apply_map(transpose, v, *res, name)


def _tangent_call(x2, s, y2, in_perm, block, a, b, c, name, fields):
    if _plain_eager(x2, y2, s, a):
        return _tangent_impl(x2, y2, s, in_perm, block, a, b, c, name, fields)
    return _tangent_op(x2, y2, s, in_perm, block, a, b, c, name, *fields)


def _strength_tangent(x2, y2, s, res, name, fields):
    """``dy2 / d strength`` (``[m, n]``); differentiating it again raises."""
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        return _TangentNode.apply(_RefuseSecondOrder.apply(x2, name),
                                  _RefuseSecondOrder.apply(s, name), y2.detach(), *res, name,
                                  fields)
    return _tangent_call(x2, s, y2, *res, name, fields)


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
    def forward(v, x2, in_perm, block, a, b, c, transpose, name, exact2):
        return _apply_map(transpose, v, in_perm, block, a, b, c, name)

    @staticmethod
    def setup_context(ctx, inputs, output):
        v, x2, in_perm, block, a, b, c, transpose, name, exact2 = inputs
        ctx.save_for_backward(x2, in_perm, block, a, b, c)
        ctx.save_for_forward(x2, in_perm, block, a, b, c)
        ctx.flags = (transpose, name, exact2)

    @staticmethod
    def backward(ctx, g):
        x2, *res = ctx.saved_tensors
        transpose, name, exact2 = ctx.flags
        gv = _linear(not transpose, g, x2, res, name, exact2) if ctx.needs_input_grad[0] else None
        # Not exact2: a placeholder that reaches _RefuseSecondOrder, which raises if needed.
        gx = torch.zeros_like(x2) if ctx.needs_input_grad[1] and not exact2 else None
        return (gv, gx) + (None,) * 8

    @staticmethod
    def jvp(ctx, v_dot, x_dot, *_):
        # A tangent in x is 0 where exact2; otherwise _RefuseSecondOrder.jvp has raised.
        x2, *res = ctx.saved_tensors
        transpose, name, exact2 = ctx.flags
        if v_dot is None:
            return torch.zeros_like(x2)
        return _linear(transpose, v_dot, x2, res, name, exact2)


class _TangentNode(torch.autograd.Function):
    """``dy / d strength`` as a function of ``x`` and the strength, both arriving through
    `_RefuseSecondOrder`: its own derivatives raise (it is exact to first order only)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x2, s, y2, in_perm, block, a, b, c, name, fields):
        return _tangent_call(x2, s, y2, in_perm, block, a, b, c, name, fields)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, g):
        x2_grad = None if g is None else torch.zeros_like(g)  # reaches _RefuseSecondOrder
        return (x2_grad, None if g is None else g.new_zeros(())) + (None,) * 8

    @staticmethod
    def jvp(ctx, *tangents):  # reached only without tangents in x and s (else: raised)
        return None


def _saved(ctx):
    """``(x2, residuals, strength, y2)`` saved by the operator Functions (``strength`` and
    ``y2`` only for a strength given as a tensor, which may have a derivative)."""
    x2, *rest = ctx.saved_tensors
    return x2, rest[:5], *(rest[5:] if len(rest) > 5 else (None, None))


def _backward(ctx, gy):
    x2, res, s, y2 = _saved(ctx)
    name, fields, exact2 = ctx.flags
    gx = _linear(True, gy, x2, res, name, exact2) if ctx.needs_input_grad[0] else None
    gs = None
    if s is not None and ctx.needs_input_grad[1]:
        t = _strength_tangent(x2, y2, s, res, name, fields)
        gs = (gy.to(t.dtype) * t).sum().to(s.dtype)
    return gx, gs


def _jvp(ctx, x_dot, s_dot):
    # torch.func passes a zero s_dot for a constant strength: only a strength given as a
    # tensor (s saved) has a tangent term.
    x2, res, s, y2 = _saved(ctx)
    name, fields, exact2 = ctx.flags
    y_dot = None if x_dot is None else _linear(False, x_dot, x2, res, name, exact2)
    if s is not None and s_dot is not None:
        ts = (_strength_tangent(x2, y2, s, res, name, fields) * s_dot).to(y2.dtype)
        y_dot = ts if y_dot is None else y_dot + ts
    return torch.zeros_like(x2) if y_dot is None else y_dot


class _SoftOpCompiled(torch.autograd.Function):
    """``y2 = op(x2, strength)`` with its residuals as extra (non-differentiable) outputs;
    reverse mode in ``x2`` and the strength. Used while ``torch.compile`` traces; `_SoftOp`
    adds forward mode. ``name, fields`` are the operator and its options (`_fields`);
    ``learn``: the strength was given as a tensor (it may have a derivative; a Python float
    has none)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x2, s, name, fields, exact2, learn):
        if _plain_eager(x2, s):
            return _forward_impl(x2, s, name, fields)
        return _forward_op(x2, s, name, *fields)

    @staticmethod
    def setup_context(ctx, inputs, output, forward_mode=False):
        x2, s, name, fields, exact2, learn = inputs
        y, *res = output
        ctx.mark_non_differentiable(*res)
        saved = (x2, *res, s, y) if learn else (x2, *res)
        ctx.save_for_backward(*saved)
        if forward_mode:
            ctx.save_for_forward(*saved)
        ctx.flags = (name, fields, exact2)

    @staticmethod
    def backward(ctx, gy, *_):
        return _backward(ctx, gy) + (None,) * 4


class _SoftOp(_SoftOpCompiled):
    """`_SoftOpCompiled` with forward mode (``torch.func.jvp``, ``forward_ad``, ``jacfwd``)."""

    @staticmethod
    def setup_context(ctx, inputs, output):
        _SoftOpCompiled.setup_context(ctx, inputs, output, forward_mode=True)

    @staticmethod
    def jvp(ctx, x_dot, s_dot, *_):
        return (_jvp(ctx, x_dot, s_dot), None, None, None, None, None)


class _SoftOpEager(torch.autograd.Function):
    """`_SoftOp` for plain eager tensors (`_plain_eager`): an old-style Function that returns
    only ``y`` (less per-call overhead); the strength is a Python float, or a tensor (then
    ``y`` is saved for its derivative). ``torch.func`` and ``torch.compile`` use the
    setup-context variants."""

    @staticmethod
    def forward(ctx, x2, s, name, fields, exact2, learn):
        host: list = []
        y, *res = _forward_impl(x2, s, name, fields, windows=True, host_jac=host)
        saved = (x2, *res, s, y) if isinstance(s, torch.Tensor) else (x2, *res)
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)
        ctx.flags = (name, fields, exact2)
        ctx.host_jac = host[0] if host else None
        return y

    @staticmethod
    def backward(ctx, gy):
        jac = ctx.host_jac
        if (jac is not None and not torch.is_grad_enabled() and ctx.needs_input_grad[0]
                and not ctx.needs_input_grad[1]
                and _plain_eager(gy)):
            # The CPU fast path: J^T gy with the NumPy residuals kept by forward (no graph to
            # build: grad mode is off, as in a plain ``backward()``).
            # Window residuals (`_forward_impl`): a float32 cotangent is read as it is.
            window = jac.a.shape[-1] < gy.shape[-1] and gy.dtype == torch.float32
            gin = np.ascontiguousarray(gy.detach()) if window else _np64(gy)
            return (_from_np(apply(jac, gin, transpose=True), gy.dtype),) + (None,) * 5
        return _backward(ctx, gy) + (None,) * 4

    @staticmethod
    def jvp(ctx, x_dot, s_dot, *_):
        return _jvp(ctx, x_dot, s_dot)


# --------------------------------------------------------------------------------------------
# Boundary: inputs, options, strength, rows.


def _dtype_kind(x):
    """``x``'s dtype as a NumPy kind letter (`validation.promotes_to_float`)."""
    if x.dtype in _FLOATS:
        return "f"
    if x.is_complex():
        return "c"
    if x.dtype == torch.bool:
        return "b"
    return "V" if x.is_quantized or x.is_floating_point() else "i"  # float8: no kernels


def _as_float_tensor(x, name="x"):
    """A floating tensor: integer and boolean tensors become ``torch.get_default_dtype()``;
    NumPy arrays and lists are converted as `softorder.numpy` does (integers to float64, and
    non-native byte orders converted, which torch does not read)."""
    if isinstance(x, torch.Tensor):
        if V.promotes_to_float(name, _dtype_kind(x), x.dtype, x.shape, f"{name}.float()"):
            return x.to(torch.get_default_dtype())
        return x
    arr = V.as_float_array(x, name)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return torch.as_tensor(arr)


def _static_number(value, name, cast="float"):
    """Options other than the strength are Python numbers (they choose the kernel)."""
    if isinstance(value, torch.Tensor):
        raise V.static_number_error(name, value, "softorder.torch",
                                    fix=f"Pass {cast}(...) if it is a constant.")
    return value


def _strength(value, x, as_tensor):
    """The strength operand: a checked Python float (kept a float when not ``as_tensor``), or
    a 0-d float64 tensor on ``x``'s device (a tensor argument keeps its autograd graph; its
    value is checked where the kernels read it, on CPU)."""
    name = "regularization_strength"
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise V.float_dtype_error(name, value.dtype, value.shape, f"{name}.double()",
                                      "complex" if value.is_complex() else "non-floating")
        if value.dim() != 0:
            raise ValueError(f"{name} must be a Python number or a 0-d tensor; got a tensor of "
                             f"shape {tuple(value.shape)}.")
        return value.to(device=x.device, dtype=torch.float64)
    eps = V.check_strength(value)
    if not as_tensor:
        return eps
    return torch.scalar_tensor(eps, dtype=torch.float64, device=x.device)


def _call(name, x, k, dim, strength, **options):
    """Validate, lay ``dim`` out as ``[m, n]`` rows, run operator ``name``, undo the layout."""
    op = R.get(name)
    x = _as_float_tensor(x)
    ax = V.check_axis(dim, x.ndim, x.shape, "dim")
    if op.takes_k:
        options["k"] = _static_number(k, "k", "int")
    for key, cast in (("p", "float"), ("tol", "float"), ("max_iter", "int")):
        if key in options:
            _static_number(options[key], key, cast)
    opts = op.make_options(shape=tuple(x.shape), axis=dim, axis_name="dim",
                           cache=not torch.compiler.is_compiling(), **options)
    last = ax == x.ndim - 1
    xm = x if last else x.movedim(ax, -1)
    shape = xm.shape
    x2 = xm if x.ndim == 2 and last else xm.reshape(math.prod(shape[:-1]), shape[-1])
    args = (name, _fields(opts), opts.exact_second_order, isinstance(strength, torch.Tensor))
    if _plain_eager(x2, *([strength] if isinstance(strength, torch.Tensor) else [])):
        y2 = _SoftOpEager.apply(x2, _strength(strength, x, False), *args)
    else:
        fn = _SoftOpCompiled if torch.compiler.is_compiling() else _SoftOp
        y2 = fn.apply(x2, _strength(strength, x, True), *args)[0]
    if last:
        return y2 if x.ndim == 2 else y2.reshape(shape)
    return y2.reshape(shape).movedim(-1, ax)


# --------------------------------------------------------------------------------------------
# Public operators (docstrings from the registry, with their own examples).


def soft_rank(x: torch.Tensor, *, dim: int = -1, descending: bool = False,
              regularization: str = "l2", regularization_strength: Strength = 1.0,
              p: float = 4 / 3, straight_through: bool = False) -> torch.Tensor:
    return _call("soft_rank", x, None, dim, regularization_strength, descending=descending,
                 regularization=regularization, p=p, straight_through=straight_through)


def soft_sort(x: torch.Tensor, *, dim: int = -1, descending: bool = False,
              regularization: str = "l2", regularization_strength: Strength = 1.0,
              p: float = 4 / 3, straight_through: bool = False) -> torch.Tensor:
    return _call("soft_sort", x, None, dim, regularization_strength, descending=descending,
                 regularization=regularization, p=p, straight_through=straight_through)


def soft_topk_mask(x: torch.Tensor, k: int, *, dim: int = -1,
                   regularization_strength: Strength = 1.0, p: float = 4 / 3,
                   solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                   straight_through: bool = False) -> torch.Tensor:
    return _call("soft_topk_mask", x, k, dim, regularization_strength, p=p, solver=solver,
                 max_iter=max_iter, tol=tol, straight_through=straight_through)


def soft_topk_magnitude(x: torch.Tensor, k: int, *, dim: int = -1,
                        regularization_strength: Strength = 1.0, p: float = 4 / 3,
                        solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                        straight_through: bool = False) -> torch.Tensor:
    return _call("soft_topk_magnitude", x, k, dim, regularization_strength, p=p, solver=solver,
                 max_iter=max_iter, tol=tol, straight_through=straight_through)


soft_rank.__doc__ = R.docstring("soft_rank", "torch", """
>>> import torch
>>> from softorder.torch import soft_rank
>>> soft_rank(torch.tensor([5.0, 1.0, 2.0]), regularization_strength=2.0)
tensor([3.0000, 1.2500, 1.7500])
>>> soft_rank(torch.tensor([5.0, 1.0, 2.0]), regularization_strength=torch.tensor(2.0),
...           straight_through=True)
tensor([3., 1., 2.])
""")
soft_sort.__doc__ = R.docstring("soft_sort", "torch", """
>>> import torch
>>> from softorder.torch import soft_sort
>>> soft_sort(torch.tensor([5.0, 1.0, 2.0], dtype=torch.float64))
tensor([1.6667, 2.6667, 3.6667], dtype=torch.float64)
""")
soft_topk_mask.__doc__ = R.docstring("soft_topk_mask", "torch", """
>>> import torch
>>> from softorder.torch import soft_topk_mask
>>> soft_topk_mask(torch.tensor([-5.0, -2.0, 3.0, 1.0]), 2, regularization_strength=0.01)
tensor([0., 0., 1., 1.])
""")
soft_topk_magnitude.__doc__ = R.docstring("soft_topk_magnitude", "torch", """
>>> import torch
>>> from softorder.torch import soft_topk_magnitude
>>> x = torch.tensor([-5.0, -2.0, 3.0, 1.0], dtype=torch.float64)
>>> soft_topk_magnitude(x, 2, regularization_strength=0.01).round(decimals=6)
tensor([-5.,  0.,  3.,  0.], dtype=torch.float64)
""")


# --------------------------------------------------------------------------------------------
# Isotonic regression: the registry operator (two inputs, y and the weights) run outside the
# kernels over `_ISOTONIC_XP`, whose PAV alone is an opaque custom operator; the rest of its row
# function (segment sums) is torch code that autograd and Dynamo see.


class IsotonicResult(tuple):
    """``(solution, block)``: the fit and its int32 block ids (like `softorder.isotonic`)."""

    __slots__ = ()

    def __new__(cls, solution, block):
        return tuple.__new__(cls, (solution, block))

    solution = property(lambda self: self[0])
    block = property(lambda self: self[1])


def _pav_impl(s, w, cw, kind, r, lam, write_v, need_beta):
    m, n = s.shape
    if m == 0 or n == 0:
        return _pav_fake(s, need_beta)
    if not bool((cw > 0).all()):  # checked here, on the data, also under vmap and compile
        raise ValueError("sample_weight must be positive.")
    out = TORCH.pav(s, w, cw, kind, r, lam, write_v, need_beta)
    beta = out[3] if need_beta else s.new_empty((m, 0))  # [m, 0] unless asked for
    return tuple(_fresh([t.to(s.dtype) for t in (*out[:3], beta)] + [out[4].to(torch.int32)]))


def _pav_fake(s, need_beta):
    m, n = s.shape
    e = lambda dt, cols=n: s.new_empty((m, cols), dtype=dt)
    return e(s.dtype), e(s.dtype), e(s.dtype), e(s.dtype, n if need_beta else 0), e(torch.int32)


@_custom_op("softorder::isotonic_pav", "(Tensor s, Tensor w, Tensor cw, int kind, float r, "
            "float lam, bool write_v, bool need_beta) -> (Tensor, Tensor, Tensor, Tensor, Tensor)")
def _isotonic_op(s, w, cw, kind, r, lam, write_v, need_beta):
    return _pav_impl(s, w, cw, kind, r, lam, write_v, need_beta)


@_isotonic_op.register_fake
def _(s, w, cw, kind, r, lam, write_v, need_beta):
    return _pav_fake(s, need_beta)


torch.library.register_vmap("softorder::isotonic_pav", _vmap_rule(_isotonic_op))


class _IsotonicBackend(TorchBackend):
    """`TORCH` with PAV through ``softorder::isotonic_pav`` (its weights ``cw`` are the sample
    weights, checked positive there): the solver is opaque to autograd and Dynamo (its values
    and integer blocks carry no derivative), everything else in the row function is traced."""

    def pav(self, s, w, cw, kind, r, lam, write_v, need_beta):
        args = (s.detach(), w.detach().expand(s.shape).contiguous(), cw.detach(), int(kind),
                float(r), float(lam), bool(write_v), bool(need_beta))
        return (_pav_impl if _plain_eager(*args[:3]) else _isotonic_op)(*args)


_ISOTONIC_XP = _IsotonicBackend()


def isotonic_regression(y: torch.Tensor, *, sample_weight: torch.Tensor | None = None,
                        y_min: float | None = None, y_max: float | None = None,
                        increasing: bool = True, dim: int = -1,
                        return_blocks: bool = False) -> torch.Tensor | IsotonicResult:
    op = R.get("isotonic_regression")
    y = _as_float_tensor(y, "y")
    ax = V.check_axis(dim, y.ndim, y.shape, "dim")
    if sample_weight is not None:
        w = _as_float_tensor(sample_weight, "sample_weight")
        if w.shape != y.shape:
            raise ValueError(
                f"sample_weight must have the shape of y {tuple(y.shape)}; got {tuple(w.shape)}.")
    opts = op.make_options(increasing=increasing, y_min=_static_number(y_min, "y_min"),
                           y_max=_static_number(y_max, "y_max"),
                           cache=not torch.compiler.is_compiling())
    ym = y.movedim(ax, -1)
    shape = ym.shape
    rdt = _res_dtype(y)
    y2 = ym.reshape(math.prod(shape[:-1]), shape[-1]).to(rdt)
    c2 = (torch.ones_like(y2) if sample_weight is None
          else w.movedim(ax, -1).reshape(y2.shape).to(rdt))
    v, (jy, _) = op.rows((y2, c2), None, opts, _ISOTONIC_XP)
    # The value and the blocks are the operator's. Its BlockJacobians are first-order
    # residuals; on the fixed blocks v is the closed form v_B = sum_B c y / sum_B c (the bound
    # where one is active: jy.b = 0 there), which autograd differentiates to every order, in
    # both inputs, with the same first derivatives.
    seg = TORCH.segment_sum
    rec = jy.b * seg(c2 * y2, jy.block) / seg(c2, jy.block)
    out = v.detach() + (rec - rec.detach())
    sol = out.to(y.dtype).reshape(shape).movedim(-1, ax)
    if return_blocks:
        return IsotonicResult(sol, jy.block.reshape(shape).movedim(-1, ax))
    return sol


isotonic_regression.__doc__ = R.docstring("isotonic_regression", "torch", """
>>> import torch
>>> from softorder.torch import isotonic_regression
>>> isotonic_regression(torch.tensor([1.0, 3.0, 2.0, 4.0]))
tensor([1.0000, 2.5000, 2.5000, 4.0000])
""")


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
    k = V.check_k(_static_number(k, "k", "int"), x.shape[ax], tuple(x.shape), dim)
    order = torch.argsort(x, dim=ax, descending=True, stable=True)
    ranks = torch.argsort(order, dim=ax)
    return (ranks < k).to(x.dtype)


def hard_topk_magnitude(x, k, *, dim=-1):
    """``x`` on the ``k`` entries of largest magnitude along ``dim``, else 0."""
    x = _as_float_tensor(x)
    return x * hard_topk_mask(x.abs(), k, dim=dim) + 0.0
