r"""TensorFlow front end: the NumPy/Numba row cores behind ``tf.numpy_function``, with
gradients written in TensorFlow ops.

Each public function canonicalizes the axis, moves it last, reshapes to ``[m, n]`` float64 rows,
and calls one ``tf.custom_gradient`` op. Its forward runs the row core of `ops.py` (Numba PAV or
Dykstra) through ``tf.numpy_function`` and returns the output with the residuals of the
operator's `BlockJacobian` (permutations, row-global block ids, three float vectors). Its
gradient is the BlockJacobian's transpose written in TensorFlow ops:

    h = y_bar[out_perm],  r_k = a_k h_k + c_k * sum_{j in B(k)} b_j h_j,  x_bar[in_perm] = r,

with ``tf.gather(..., batch_dims=1)`` and ``tf.math.unsorted_segment_sum``. It is linear in
``y_bar`` and differentiable, so forward accumulators derive exact JVPs from it by
transposition; `_attach_forward_mode` registers it for them explicitly, because a
``tf.custom_gradient`` alone gives zero tangents inside a tf.function. The residuals
themselves are constants to TensorFlow: the derivative of the *gradient* with respect to ``x``
(a Hessian) is only exact where the residuals are locally constant in ``x`` (``l2``, and
``pnorm`` with ``p = 2``); elsewhere such a request raises a clear error (`_make_guard`)
instead of returning a silently truncated Hessian.
"""

from __future__ import annotations

import numbers
import sys
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import record  # noqa: PLC2701 - forward-mode recording

from ...core import ops
from ...core import validation as V
from ...core.jacobian import segment_ids
from ...isotonic import pav
from ...isotonic.dykstra import block_alpha

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
]

_FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)

# Library code: AutoGraph must not rewrite it (nor the NumPy callbacks it creates) when a user's
# tf.function calls it; it has no tensor-dependent Python control flow.
_no_autograph = tf.autograph.experimental.do_not_convert


# --------------------------------------------------------------------------------------------
# The TensorFlow / Triton clash (an LLVM option registered twice aborts the process).

_CLASH_MESSAGE = (
    "softorder.tensorflow: 'triton' is being imported after TensorFlow. With TensorFlow 2.21 "
    "and Triton 3.x this aborts the whole process ('LLVM ERROR: inconsistency in registered "
    "CommandLine options'). Import triton (or run what loads it, such as torch.compile) before "
    "tensorflow, or run TensorFlow and Triton code in separate processes."
)


class _TritonAfterTensorFlowWarner:
    """A meta-path finder that only warns when ``triton`` is first imported after TensorFlow.

    It finds nothing itself (returns None), so the import proceeds unchanged; the warning is
    printed (and stderr flushed) before the process can abort.
    """

    def find_spec(self, name, path=None, target=None):
        if name == "triton" and "triton" not in sys.modules:
            warnings.warn(_CLASH_MESSAGE, RuntimeWarning, stacklevel=2)
            try:
                sys.stderr.flush()
            except Exception:  # pragma: no cover - a closed stderr
                pass
        return None


def _install_clash_warner():
    if "triton" in sys.modules:  # the safe order: Triton first, then TensorFlow
        return
    if not any(isinstance(f, _TritonAfterTensorFlowWarner) for f in sys.meta_path):
        sys.meta_path.insert(0, _TritonAfterTensorFlowWarner())


_install_clash_warner()


# --------------------------------------------------------------------------------------------
# Inputs, axes, rows.


def _as_float_tensor(x, name="x"):
    """A floating tf.Tensor; NumPy arrays and lists are checked as `softorder.numpy` does."""
    if isinstance(x, (tf.Tensor, tf.Variable)) or tf.is_tensor(x):
        x = tf.convert_to_tensor(x)
        if x.dtype not in _FLOAT_DTYPES:
            raise V.float_dtype_error(name, x.dtype.name, x.shape, f"tf.cast({name}, tf.float32)")
        return x
    return tf.convert_to_tensor(V.as_float_array(x, name))


def _canonical_axis(x, axis):
    rank = x.shape.rank
    if rank is None:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an integer; got {axis!r}.")
        if axis != -1:
            raise ValueError(
                f"axis={axis} needs an input of known rank; this input's rank is unknown "
                "(give the tf.function input_signature a rank, e.g. TensorSpec([None, None])), "
                "or use axis=-1."
            )
        return None
    return V.check_axis(axis, rank, x.shape)


def _to_rows(x, ax):
    """``x`` with ``ax`` moved last, as float64 ``[m, n]`` rows, and how to undo it."""
    if ax is None or ax == x.shape.rank - 1:
        perm = None
        xm = x
    else:
        perm = [i for i in range(x.shape.rank) if i != ax] + [ax]
        xm = tf.transpose(x, perm)
    shape = tf.shape(xm, out_type=tf.int64)
    n = shape[-1]
    x2 = tf.reshape(tf.cast(xm, tf.float64), tf.stack([tf.constant(-1, tf.int64), n]))
    return x2, (perm, shape, xm.shape, x.dtype)


def _from_rows(y2, layout, dtype=None):
    perm, shape, static_shape, xdtype = layout
    y = tf.reshape(y2, shape)
    y.set_shape(static_shape)
    if perm is not None:
        y = tf.transpose(y, np.argsort(perm).tolist())
    return tf.cast(y, xdtype if dtype is None else dtype)


# --------------------------------------------------------------------------------------------
# The differentiable op: forward by numpy_function, VJP in TensorFlow ops.


def _inverse_perm(perm):
    m, n = perm.shape
    inv = np.empty_like(perm)
    np.put_along_axis(inv, perm, np.broadcast_to(np.arange(n, dtype=perm.dtype), (m, n)), -1)
    return inv


def _residual_arrays(jac):
    """(in_perm, inv_in_perm, out_perm, gid, a, b, c) from a BlockJacobian; out_perm may be None."""
    in_perm = np.ascontiguousarray(jac.in_perm, np.int64)
    out_perm = None if jac.out_perm is None else np.ascontiguousarray(jac.out_perm, np.int64)
    gid = segment_ids(np.asarray(jac.block)).astype(np.int64)
    f64 = lambda a: np.ascontiguousarray(a, np.float64)
    return in_perm, _inverse_perm(in_perm), out_perm, gid, f64(jac.a), f64(jac.b), f64(jac.c)


def _vjp(h_in, res, num_segments):
    """x_bar for y_bar = h_in ([m, n] float64): gathers and segment sums, linear in h_in."""
    inv_in, out_perm, gid, a, b, c = res
    h = h_in if out_perm is None else tf.gather(h_in, out_perm, batch_dims=1)
    seg = tf.math.unsorted_segment_sum(b * h, gid, num_segments)
    r = a * h + c * tf.gather(seg, gid)
    return tf.gather(r, inv_in, batch_dims=1)


def _building_function_jvp():
    """True while TensorFlow builds the JVP of a tf.function call (see `_make_guard`).

    Looks for TensorFlow's ``_wrap_forward_function_with_jvps`` on the Python stack (trace
    time only). Should TensorFlow rename it, forward mode across a tf.function call raises
    the clear NotImplementedError below for kl/pnorm; the tests would show it.
    """
    frame = sys._getframe(1)  # noqa: SLF001
    while frame is not None:
        if frame.f_code.co_name == "_wrap_forward_function_with_jvps":
            return True
        frame = frame.f_back
    return False


def _make_guard(name, exact_second_order):
    """Identity on a residual ``t``, tied to the input ``x2`` for second-order requests.

    Its gradient in ``x2`` is 0 where that is exact (residuals piecewise constant in ``x``);
    elsewhere asking for it raises NotImplementedError (eagerly, or while tracing). One
    exception: when a ForwardAccumulator differentiates a *call* of a tf.function, TensorFlow
    also builds this derivative (for a possible reverse-over-forward pass) although plain
    forward mode does not use it; refusing there would break forward mode, so it is 0 there.
    """
    message = (
        f"softorder.tensorflow.{name}: second-order derivatives in x (differentiating the "
        "gradient again with respect to the input) are implemented only where they are exact "
        "here: regularization='l2' (and 'pnorm' with p=2; isotonic_regression without "
        "sample_weight). First-order gradients and forward-mode JVPs are exact for every "
        "option; use softorder.jax for Hessians."
    )

    @tf.custom_gradient
    def guard(t, x2):
        def grad(dt):
            if exact_second_order or _building_function_jvp():
                return None, tf.zeros_like(dt)  # t and x2 share shape and dtype
            raise NotImplementedError(message)

        return tf.identity(t), grad

    return guard


def _differentiable(name, np_rows, has_out, exact_second_order):
    """A custom-gradient op ``x2 [m, n] float64 -> y2`` running ``np_rows(x2) -> (y2, jac)``."""

    def np_fn(x2):
        y2, jac = np_rows(np.asarray(x2, np.float64))
        in_perm, inv_in, out_perm, gid, a, b, c = _residual_arrays(jac)
        outs = [np.ascontiguousarray(y2, np.float64), inv_in, gid, a, b, c]
        if has_out:
            outs.append(out_perm)
        return outs

    tout = [tf.float64, tf.int64, tf.int64, tf.float64, tf.float64, tf.float64]
    if has_out:
        tout.append(tf.int64)
    guard = _make_guard(name, exact_second_order)

    def op(x2, saved):
        outs = tf.numpy_function(np_fn, [x2], tout, stateful=False, name=f"softorder_{name}")
        for o in outs:
            o.set_shape(x2.shape)
        y2, inv_in, gid, a, b, c = outs[:6]
        out_perm = outs[6] if has_out else None
        num_segments = tf.size(x2, out_type=tf.int64)
        def grad(dy):
            # Tie the residuals to x2 here, in the backward pass only (never in the forward
            # pass, where a ForwardAccumulator would differentiate the tie itself), so that
            # differentiating the gradient, or a JVP, again in x is exact or raises.
            a_, b_, c_ = (guard(t, x2) for t in (a, b, c))
            return _vjp(tf.cast(dy, tf.float64), (inv_in, out_perm, gid, a_, b_, c_),
                        num_segments)

        saved["grad"] = grad
        return y2, grad

    def apply(x2):
        saved = {}
        y2 = tf.custom_gradient(lambda x2: op(x2, saved))(x2)
        return _attach_forward_mode(name, y2, [x2], lambda dy: [saved["grad"](dy)])

    return apply


def _attach_forward_mode(name, y, inputs, vjp):
    """``y`` again, with its tangent for forward accumulators given by transposing ``vjp``.

    ``tf.custom_gradient`` serves GradientTapes and graph gradients, but inside a tf.function a
    ForwardAccumulator sees only its IdentityN op and silently gets a zero tangent. Here a fresh
    identity of ``y`` is recorded by hand: on tapes as an identity of ``y``, and on
    accumulators as an op of ``inputs`` whose backward function is ``vjp`` (written in TF ops,
    linear in its argument, so TensorFlow transposes it into the JVP).
    """
    with record.stop_recording():
        out = tf.identity(y)
    record.record_operation_backprop_only("Identity", [out], [y], lambda dy: [dy])
    record.record_operation_forwardprop_only(f"softorder_{name}", [out], inputs, vjp, None)
    return out


def _run(name, x, axis, np_rows, has_out, exact_second_order):
    x = _as_float_tensor(x)
    ax = _canonical_axis(x, axis)
    x2, layout = _to_rows(x, ax)
    op = _differentiable(name, np_rows, has_out, exact_second_order)
    return _from_rows(op(x2), layout)


def _check_jit(name):
    """numpy_function has no XLA kernel: say so at trace time, before XLA fails opaquely."""
    try:
        from tensorflow.python.ops import control_flow_util  # noqa: PLC0415

        xla = control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    except Exception:  # pragma: no cover - a TF without this internal helper
        xla = False
    if xla:
        raise NotImplementedError(
            f"softorder.tensorflow.{name} cannot run inside tf.function(jit_compile=True): its "
            "forward pass is a NumPy/Numba kernel (tf.numpy_function), which XLA cannot compile. "
            "Use tf.function without jit_compile (graph mode works), or softorder.jax."
        )


# --------------------------------------------------------------------------------------------
# Public operators (same options, defaults and numbers as softorder.numpy).


def _static_number(value, name):
    """Hyperparameters are Python numbers: a tensor would be silently non-differentiable."""
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        raise V.static_number_error(name, value, "softorder.tensorflow")
    return value


def _sort_rank_args(regularization, regularization_strength, p):
    V.check_regularization(regularization)
    eps = V.check_strength(_static_number(regularization_strength, "regularization_strength"))
    p = V.check_p(_static_number(p, "p")) if regularization == "pnorm" else p
    exact2 = regularization == "l2" or (regularization == "pnorm" and p == 2.0)
    return eps, p, exact2


@_no_autograph
def soft_rank(x, *, axis=-1, descending=False, regularization="l2", regularization_strength=1.0,
              p=4 / 3):
    r"""Soft ranks along ``axis``, 1-based, ascending by default (`softorder.numpy.soft_rank`).

    .. math::

        r_\varepsilon(x) = P_R(\pm x / \varepsilon, \rho)
        = \arg\max_{y \in \mathcal{P}(\rho)} \langle \pm x / \varepsilon, y \rangle - R(y).

    Args:
      x: floating tensor ``[..., n, ...]`` (float16, bfloat16, float32 or float64).
      axis: the axis to rank along (default last).
      descending: if True, rank 1 is the largest entry.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0` in the units of ``x``; larger is softer.
      p: the exponent for ``regularization="pnorm"``.

    Returns:
      A tensor of the shape and dtype of ``x``.

    Example:
      >>> import tensorflow as tf
      >>> from softorder.tensorflow import soft_rank
      >>> soft_rank(tf.constant([5.0, 1.0, 2.0]), regularization_strength=2.0).numpy()
      array([3.  , 1.25, 1.75], dtype=float32)

    References:
      Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020.
    """
    _check_jit("soft_rank")
    eps, p, exact2 = _sort_rank_args(regularization, regularization_strength, p)
    desc = bool(descending)
    rows = lambda x2: ops.soft_rank_rows(x2, eps, desc, regularization, p)
    return _run("soft_rank", x, axis, rows, True, exact2)


@_no_autograph
def soft_sort(x, *, axis=-1, descending=False, regularization="l2", regularization_strength=1.0,
              p=4 / 3):
    r"""Soft sort along ``axis``, ascending by default (`softorder.numpy.soft_sort`).

    .. math::

        s_\varepsilon(x) = P_R(\rho / \varepsilon, x)\ \text{(descending)},\qquad
        \text{ascending: } -s_\varepsilon(-x),

    with ``kl`` in the paper's log-space form. ``regularization_strength`` multiplies
    :math:`\rho`, as in the paper (units of ``1 / x``).

    Args:
      x: floating tensor ``[..., n, ...]``.
      axis: the axis to sort along (default last).
      descending: sort largest first.
      regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (exponent ``p``).
      regularization_strength: :math:`\varepsilon > 0`; larger is softer.
      p: the exponent for ``regularization="pnorm"``.

    Returns:
      A tensor of the shape and dtype of ``x``.

    Example:
      >>> import tensorflow as tf
      >>> from softorder.tensorflow import soft_sort
      >>> soft_sort(tf.constant([5.0, 1.0, 2.0], tf.float64)).numpy().round(4)
      array([1.6667, 2.6667, 3.6667])
    """
    _check_jit("soft_sort")
    eps, p, exact2 = _sort_rank_args(regularization, regularization_strength, p)
    desc = bool(descending)
    rows = lambda x2: ops.soft_sort_rows(x2, eps, desc, regularization, p)
    return _run("soft_sort", x, axis, rows, False, exact2)


def _topk_args(name, x, k, axis, regularization_strength, p, solver, max_iter, tol):
    _check_jit(name)
    x = _as_float_tensor(x)
    ax = _canonical_axis(x, axis)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer; got {k!r}.")
    n = x.shape[ax] if ax is not None else None
    if n is not None:
        k = V.check_k(k, n, x.shape, axis)
    elif k < 0:
        raise ValueError(f"k={k} is out of range: it must be >= 0 (input shape {x.shape}).")
    lam = V.check_strength(_static_number(regularization_strength, "regularization_strength"))
    p = V.check_p(_static_number(p, "p"))
    V.check_solver(solver, p)
    max_iter = V.check_positive_int(max_iter, "max_iter")
    tol = float(tol)
    exact2 = p == 2.0
    k = int(k)
    shape_str = str(x.shape)

    def check_runtime_k(x2):
        if k > x2.shape[1]:
            raise ValueError(
                f"k={k} is out of range: it must lie in 0..{x2.shape[1]}, the length of axis "
                f"{axis} of the input (static shape {shape_str})."
            )

    return x, ax, k, lam, p, max_iter, tol, exact2, check_runtime_k


@_no_autograph
def soft_topk_mask(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                   max_iter=1000, tol=1e-9):
    r"""Sparse soft top-k mask along ``axis`` (`softorder.numpy.soft_topk_mask`).

    .. math::

        m_\lambda(x) = \arg\max_{y \in [0,1]^n,\ \sum y = k} \langle x, y\rangle
        - \frac{\lambda}{p}\|y\|_p^p.

    Args:
      x: floating tensor ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n``.
      axis: the axis to select along (default last).
      regularization_strength: :math:`\lambda > 0`, in the units of ``x``.
      p: the norm exponent, ``p > 1`` (default 4/3: continuously differentiable).
      solver: ``"pav"`` (exact) or ``"dykstra"`` (``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and tolerance.

    Returns:
      The soft mask, shape and dtype of ``x``; it sums to ``k`` along ``axis``.

    Example:
      >>> import tensorflow as tf
      >>> from softorder.tensorflow import soft_topk_mask
      >>> x = tf.constant([-5.0, -2.0, 3.0, 1.0])
      >>> soft_topk_mask(x, 2, regularization_strength=0.01).numpy()
      array([0., 0., 1., 1.], dtype=float32)

    References:
      Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
      Convex Analysis Perspective. ICML 2023.
    """
    x, ax, k, lam, p, max_iter, tol, exact2, check = _topk_args(
        "soft_topk_mask", x, k, axis, regularization_strength, p, solver, max_iter, tol)

    def rows(x2):
        check(x2)
        return ops.soft_topk_mask_rows(x2, k, lam, p, solver, max_iter, tol)

    x2, layout = _to_rows(x, ax)
    op = _differentiable("soft_topk_mask", rows, True, exact2)
    return _from_rows(op(x2), layout)


@_no_autograph
def soft_topk_magnitude(x, k, *, axis=-1, regularization_strength=1.0, p=4 / 3, solver="pav",
                        max_iter=1000, tol=1e-9):
    r"""Sparse soft top-k in magnitude along ``axis`` (`softorder.numpy.soft_topk_magnitude`).

    The hard operator is :math:`x \odot \mathrm{topk\_mask}(|x|)`; the soft one is
    :math:`y = u + \nabla R(u)`, :math:`u = \arg\max_u \langle u, x\rangle - f^*(u) - R(u)`,
    :math:`R = \frac{\lambda}{p}\|\cdot\|_p^p`.

    Args:
      x: floating tensor ``[..., n, ...]``.
      k: how many entries to keep, ``0 <= k <= n``.
      axis: the axis to select along (default last).
      regularization_strength: :math:`\lambda > 0`.
      p: the norm exponent, ``p > 1``.
      solver: ``"pav"`` (exact) or ``"dykstra"`` (``p = 2`` only).
      max_iter, tol: Dykstra's sweep limit and tolerance.

    Returns:
      Shape and dtype of ``x``.

    Example:
      >>> import tensorflow as tf
      >>> from softorder.tensorflow import soft_topk_magnitude
      >>> x = tf.constant([-5.0, -2.0, 3.0, 1.0], tf.float64)
      >>> soft_topk_magnitude(x, 2, regularization_strength=0.01).numpy().round(6)
      array([-5.,  0.,  3.,  0.])
    """
    x, ax, k, lam, p, max_iter, tol, exact2, check = _topk_args(
        "soft_topk_magnitude", x, k, axis, regularization_strength, p, solver, max_iter, tol)

    def rows(x2):
        check(x2)
        return ops.soft_topk_magnitude_rows(x2, k, lam, p, solver, max_iter, tol)

    x2, layout = _to_rows(x, ax)
    op = _differentiable("soft_topk_magnitude", rows, True, exact2)
    return _from_rows(op(x2), layout)


# --------------------------------------------------------------------------------------------
# Isotonic regression (differentiable in y and in sample_weight).


class IsotonicResult(tuple):
    """``(solution, block)``: the fit and its int32 block ids (like `softorder.isotonic`)."""

    __slots__ = ()

    def __new__(cls, solution, block):
        return tuple.__new__(cls, (solution, block))

    solution = property(lambda self: self[0])
    block = property(lambda self: self[1])


def _isotonic_np(y2, c2, increasing, y_min, y_max):
    """The PAV fit of `softorder.isotonic.isotonic_regression` with the residuals of its
    derivatives: v_B = sum_B c y / sum_B c, clipped to [y_min, y_max]."""
    target = -y2 if increasing else y2
    v, _, _, _, block = pav.pav_batch(target, np.zeros_like(y2), c2, pav.KIND_L2, 1.0, 1.0, True,
                                      False)
    if increasing:
        v = -v
    free = np.ones_like(v)
    if y_min is not None or y_max is not None:
        lo = -np.inf if y_min is None else y_min
        hi = np.inf if y_max is None else y_max
        free = ((v > lo) & (v < hi)).astype(np.float64)
        v = np.clip(v, y_min, y_max)
    alpha = block_alpha(block, c2)  # c_j / sum_B c
    csum = c2 / alpha  # sum_B c on every position of the block
    return v, block, free, alpha, csum


@_no_autograph
def isotonic_regression(y, *, sample_weight=None, y_min=None, y_max=None, increasing=True,
                        axis=-1, return_blocks=False):
    r"""Least-squares isotonic regression along ``axis`` (`softorder.isotonic`), differentiable.

    .. math::

        \min_{v_1 \le \dots \le v_n} \sum_i c_i (y_i - v_i)^2,\qquad
        y_{\min} \le v_i \le y_{\max}.

    On each PAV block :math:`v_B = \sum_B c_j y_j / \sum_B c_j`, so
    :math:`\partial v_B / \partial y_j = c_j / \sum_B c` and
    :math:`\partial v_B / \partial c_j = (y_j - v_B) / \sum_B c` (0 where a bound is active).
    Gradients flow to ``y`` and to ``sample_weight``.

    Args:
      y: floating tensor ``[..., n, ...]``.
      sample_weight: positive weights, the shape of ``y`` (default ones).
      y_min, y_max: optional bounds (Python numbers).
      increasing: the direction of the order constraint.
      axis: the axis of the sequences.
      return_blocks: also return the int32 block ids (an `IsotonicResult`).

    Example:
      >>> import tensorflow as tf
      >>> from softorder.tensorflow import isotonic_regression
      >>> isotonic_regression(tf.constant([1.0, 3.0, 2.0, 4.0])).numpy()
      array([1. , 2.5, 2.5, 4. ], dtype=float32)
    """
    _check_jit("isotonic_regression")
    y = _as_float_tensor(y, "y")
    ax = _canonical_axis(y, axis)
    has_w = sample_weight is not None
    if has_w:
        w = _as_float_tensor(sample_weight, "sample_weight")
        if w.shape.rank is not None and y.shape.rank is not None and not w.shape.is_compatible_with(
                y.shape):
            raise ValueError(f"sample_weight must have the shape of y {y.shape}; got {w.shape}.")
        w = tf.cast(w, y.dtype)
    else:
        w = tf.ones_like(y)
    lo = None if y_min is None else float(y_min)
    hi = None if y_max is None else float(y_max)
    inc = bool(increasing)
    y2, layout = _to_rows(y, ax)
    w2, _ = _to_rows(w, ax)

    def np_fn(y2n, c2n):
        if np.any(~(c2n > 0)):
            raise ValueError("sample_weight must be positive.")
        v, block, free, alpha, csum = _isotonic_np(y2n, c2n, inc, lo, hi)
        gid = segment_ids(block).astype(np.int64)
        return v, block.astype(np.int32), gid, free, alpha, csum

    guard = _make_guard("isotonic_regression", not has_w)

    c2 = tf.cast(w2, tf.float64)
    v, block2, gid, free, alpha, csum = tf.numpy_function(
        np_fn, [y2, c2], [tf.float64, tf.int32, tf.int64, tf.float64, tf.float64, tf.float64],
        stateful=False, name="softorder_isotonic_regression")
    for t in (v, block2, gid, free, alpha, csum):
        t.set_shape(y2.shape)
    nseg = tf.size(y2, out_type=tf.int64)

    def vjp(dv, y2, alpha, csum):
        # d/dy_j = alpha_j * sum_B dv ; d/dc_j = (y_j - v_B) / C_B * sum_B dv, with the
        # unclipped block value v_B = sum_B alpha y (alpha, csum, free: constants here).
        dv = tf.cast(dv, tf.float64) * free
        seg = tf.gather(tf.math.unsorted_segment_sum(dv, gid, nseg), gid)
        vb = tf.gather(tf.math.unsorted_segment_sum(alpha * y2, gid, nseg), gid)
        return [alpha * seg, (y2 - vb) / csum * seg]

    def grad(dv):  # alpha and csum depend on c2 (not on y2, whose blocks are constant)
        return vjp(dv, y2, guard(alpha, c2), guard(csum, c2))

    op = tf.custom_gradient(lambda y2, c2: (tf.identity(v), grad))
    v2 = _attach_forward_mode("isotonic_regression", op(y2, c2), [y2, c2], grad)
    sol = _from_rows(v2, layout)
    if return_blocks:
        return IsotonicResult(sol, _from_rows(block2, layout, tf.int32))
    return sol
