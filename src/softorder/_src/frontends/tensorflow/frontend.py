r"""TensorFlow front end: the registry's operators behind ``tf.numpy_function``, with their
derivatives written in TensorFlow ops by the core's one derivative map.

Each public function is a few lines calling `_soft_op`, which looks its operator up in the core
registry (`registry.get`), validates the options once (``op.make_options``), moves ``axis``
last as float64 ``[m, n]`` rows and calls one ``tf.custom_gradient`` op:

* forward: the operator's row function on the NumPy backend (the Numba kernels) through
  ``tf.numpy_function``, with the strength as a tensor operand (a new value is a new input,
  never a new trace); it returns the output and the operator's `BlockJacobian` (permutation,
  block ids, ``a``, ``b``, ``c``);
* backward: ``jacobian.apply(jac, dy, transpose=True, xp=TF)`` over the small `TFBackend`
  below (``tf.gather(batch_dims=1)``, a scatter, a segment sum that keeps the rows), and the
  strength's cotangent from ``op.strength_tangent`` when the strength is a differentiable
  tensor.

The backward pass is linear in the upstream gradient and written in TensorFlow ops, so forward
accumulators get exact JVPs by transposing it; `_attach_forward_mode` registers it for them,
because a ``tf.custom_gradient`` alone gives zero tangents inside a tf.function. The residuals
are constants to TensorFlow: differentiating a gradient again in ``x`` is exact only where they
are locally constant (``options.exact_second_order``); elsewhere, and in the strength, such a
request raises (`_make_guard`) instead of returning a silently truncated Hessian.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import record  # noqa: PLC2701 - forward-mode recording
from tensorflow.python.ops import gradients_util  # noqa: PLC2701 - is a tensor watched?

from ...core import registry as R
from ...core import validation as V
from ...core.jacobian import BlockJacobian, apply

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "TFBackend",
    "TF",
]

_FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
_F64, _I64, _I32 = tf.float64, tf.int64, tf.int32
_f64 = lambda a: np.ascontiguousarray(a, np.float64)  # noqa: E731
TensorLike = Any  # tf.Tensor, tf.Variable, np.ndarray, or a nested list of numbers
Strength = Any  # a Python or NumPy number, or a 0-d floating tf.Tensor / tf.Variable

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
# The backend: the few `core.backend.Backend` primitives that `jacobian.apply` and the
# strength tangents use, on [m, n] tensors.


class TFBackend:
    """`core.backend.Backend` primitives in TensorFlow ops (rows kept: ``[m, n]`` in and out)."""

    name = "tensorflow"

    @staticmethod
    def take(a, idx):
        return tf.gather(a, idx, batch_dims=1)

    @staticmethod
    def put(vals, idx):
        """``out[row, idx[row, k]] = vals[row, k]`` for per-row permutations ``idx``."""
        shape = tf.shape(idx, out_type=_I64)
        rows = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
        return tf.scatter_nd(tf.stack([rows, tf.cast(idx, _I64)], -1), vals, shape)

    @staticmethod
    def segment_sum(vals, block):
        """At each position, the sum of ``vals`` over its block (ids ``0 <= block < n`` per row)."""
        shape = tf.shape(block, out_type=_I64)
        gid = tf.cast(block, _I64) + tf.range(shape[0])[:, None] * shape[1]
        return tf.gather(tf.math.unsorted_segment_sum(vals, gid, shape[0] * shape[1]), gid)

    @staticmethod
    def rho(like):
        n = tf.shape(like)[-1]
        return tf.broadcast_to(tf.cast(tf.range(n, 0, -1), like.dtype), tf.shape(like))

    @staticmethod
    def topk_weights(like, k):
        n = tf.shape(like)[-1]
        return tf.broadcast_to(tf.cast(tf.range(n) < k, like.dtype), tf.shape(like))

    exp = staticmethod(tf.exp)
    log = staticmethod(tf.math.log)
    abs = staticmethod(tf.abs)
    sign = staticmethod(tf.sign)
    where = staticmethod(tf.where)
    ones_like = staticmethod(tf.ones_like)
    zeros_like = staticmethod(tf.zeros_like)

    # For the losses (`_src/losses`).
    @staticmethod
    def argsort_desc(a):
        return tf.argsort(a, axis=-1, direction="DESCENDING", stable=True)

    @staticmethod
    def row_sum(a):
        return tf.reduce_sum(a, axis=-1, keepdims=True)

    @staticmethod
    def row_max(a):
        return tf.reduce_max(a, axis=-1, keepdims=True)

    sqrt = staticmethod(tf.sqrt)
    maximum = staticmethod(tf.maximum)
    minimum = staticmethod(tf.minimum)


TF = TFBackend()


# --------------------------------------------------------------------------------------------
# Inputs, axes, rows.


def _as_float_tensor(x, name="x"):
    """A floating tf.Tensor; NumPy arrays and lists are checked as `softorder.numpy` does."""
    if isinstance(x, tf.Variable) or tf.is_tensor(x):
        x = tf.convert_to_tensor(x)
        if x.dtype not in _FLOAT_DTYPES:
            raise V.float_dtype_error(name, x.dtype.name, x.shape, f"tf.cast({name}, tf.float32)")
        return x
    arr = V.as_float_array(x, name)
    if not arr.dtype.isnative:  # big-endian data: native byte order, same values
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return tf.convert_to_tensor(arr)


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
    shape = tf.shape(xm, out_type=_I64)
    x2 = tf.reshape(tf.cast(xm, _F64), tf.stack([tf.constant(-1, _I64), shape[-1]]))
    return x2, (perm, shape, xm.shape, x.dtype)


def _from_rows(y2, layout, dtype=None):
    perm, shape, static_shape, xdtype = layout
    y = tf.reshape(y2, shape)
    y.set_shape(static_shape)
    if perm is not None:
        y = tf.transpose(y, np.argsort(perm).tolist())
    return tf.cast(y, xdtype if dtype is None else dtype)


def _static(value, name):
    """``p`` and ``tol`` choose the kernel: a tensor would be silently non-differentiable."""
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        raise V.static_number_error(name, value, "softorder.tensorflow")
    return value


def _options(op, x, ax, axis, k, kwargs):
    """``op.make_options``; with an unknown length along ``axis``, ``k`` is checked at run time."""
    for name in ("p", "tol"):
        if name in kwargs:
            _static(kwargs[name], name)
    if not op.takes_k:
        return op.make_options(**kwargs)
    shape = [None] if ax is None else x.shape.as_list()
    ax = -1 if ax is None else ax
    if shape[ax] is None:  # stand in n = k (k <= n is checked by the kernel's callback)
        is_int = isinstance(k, numbers.Integral) and not isinstance(k, bool)
        if is_int and k < 0:
            raise ValueError(f"k={k} is out of range: it must be >= 0 (input shape {x.shape}).")
        shape[ax] = k if is_int else 0
    return op.make_options(shape=shape, axis=axis, k=k, **kwargs)


def _watched(t):
    """Whether ``t`` may need a gradient: some tape or accumulator watches it (always while
    tracing a tf.function, whose gradients are built later)."""
    return (not tf.executing_eagerly()) or gradients_util.PossibleTapeGradientTypes([t]) != 0


def _strength(value, options):
    """``(s, differentiable)``: the strength as a float64 0-d tensor operand.

    Python and NumPy numbers are checked here. A tensor or tf.Variable is checked here when
    eager, and by the kernel's callback otherwise (a traced value has no value yet); it gets a
    gradient when some tape or accumulator watches it (always while tracing), except in
    straight-through mode, whose value does not depend on it.
    """
    if not (tf.is_tensor(value) or isinstance(value, tf.Variable)):
        return tf.constant(V.check_strength(value), _F64), False
    s = tf.convert_to_tensor(value)
    if s.dtype not in _FLOAT_DTYPES:
        raise V.float_dtype_error("regularization_strength", s.dtype.name, s.shape,
                                  "tf.cast(regularization_strength, tf.float32)")
    if s.shape.rank not in (None, 0):
        raise ValueError(f"regularization_strength must be a 0-d tensor (one value for every "
                         f"row); got shape {s.shape}.")
    if tf.executing_eagerly():
        V.check_strength(s.numpy().astype(np.float64))
    s = tf.reshape(tf.cast(s, _F64), [])
    if options.straight_through:
        return tf.stop_gradient(s), False
    return s, _watched(s)


# --------------------------------------------------------------------------------------------
# The differentiable op.


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


_SECOND_ORDER = (
    "softorder.tensorflow.{name}: second-order derivatives {what} are implemented only where "
    "they are exact here: in x for regularization='l2' (and 'pnorm' with p=2; "
    "isotonic_regression without sample_weight). First-order gradients (in x and in the "
    "strength) and forward-mode JVPs are exact for every option; use softorder.jax for "
    "Hessians."
)


def _make_guard(name, exact, what="in x (differentiating the gradient again with respect to "
                "the input)"):
    """Identity on ``t``, tied to ``dep`` (``t``'s shape) for second-order requests.

    In the backward pass a residual ``t`` is tied to the input it depends on (or a zero to the
    strength or weights): the guard's gradient in ``dep`` is 0 where that is exact
    (``exact``: residuals piecewise constant in ``dep``); elsewhere asking for it raises
    NotImplementedError (eagerly, or while tracing). One exception: when a ForwardAccumulator
    differentiates a *call* of a tf.function, TensorFlow also builds this derivative (for a
    possible reverse-over-forward pass) although plain forward mode does not use it; refusing
    there would break forward mode, so it is 0 there.
    """
    message = _SECOND_ORDER.format(name=name, what=what)

    @tf.custom_gradient
    def guard(t, dep):
        def grad(dt):
            if exact or _building_function_jvp():
                # Zeros built from dt, not dep: inside a tf.function's JVP, dep belongs to
                # another graph (capturing it breaks TensorFlow's forward wrapper).
                return None, tf.zeros_like(dt)
            raise NotImplementedError(message)

        return tf.identity(t), grad

    return guard


def _zero_tied_to(guard, dep):
    """A zero of ``dep``'s shape whose derivative in ``dep`` is refused: added to a gradient,
    it refuses second order in ``dep`` without lying on any path to the other inputs."""
    return guard(tf.zeros(tf.shape(dep), _F64), dep)


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


def _custom_op(name, np_fn, np_args, tout, inputs, make_grad):
    """``outs = tf.numpy_function(np_fn, np_args)`` as one op of ``inputs`` whose gradient is
    ``make_grad(outs)`` (a VJP in TF ops, linear in its argument, also given to forward
    accumulators). Returns ``(outs[0] differentiable, outs)``."""
    saved = {}

    def fn(*_inputs):  # the op's inputs are `inputs`; np_args hold them (and constants)
        outs = tf.numpy_function(np_fn, np_args, tout, stateful=False, name=f"softorder_{name}")
        for o in outs:
            o.set_shape(np_args[0].shape)
        saved["outs"], saved["grad"] = outs, make_grad(outs)
        return tf.identity(outs[0]), saved["grad"]

    def vjp(dy):
        grads = saved["grad"](dy)
        return list(grads) if isinstance(grads, (list, tuple)) else [grads]

    y = tf.custom_gradient(fn)(*inputs)
    return _attach_forward_mode(name, y, inputs, vjp), saved["outs"]


def _differentiable(op, options, x2, s, s_differentiable):
    """``y2 = op(x2 [m, n] float64, s)`` with its VJP (in ``x2``, and in ``s`` if asked)."""

    def np_fn(x2n, sn):
        eps = V.check_strength(sn)  # a traced strength is checked here, when it has a value
        if op.takes_k and options.k > x2n.shape[1]:
            raise ValueError(f"k={options.k} is out of range: it must lie in 0..{x2n.shape[1]}, "
                             "the length of the operator's axis of the input.")
        y2, jac = op.rows(np.asarray(x2n, np.float64), eps, options, R.NUMPY)
        return (_f64(y2), np.ascontiguousarray(jac.in_perm, np.int64),
                np.ascontiguousarray(jac.block, np.int32), _f64(jac.a), _f64(jac.b), _f64(jac.c))

    guard_x = _make_guard(op.name, options.exact_second_order)
    guard_s = _make_guard(op.name, False, "in regularization_strength")

    def make_grad(outs):
        y2, perm, block, a, b, c = outs

        def grad(dy):
            # Tie the residuals to x2 here, in the backward pass only (never in the forward
            # pass, where a ForwardAccumulator would differentiate the tie itself), so that
            # differentiating the gradient, or a JVP, again is exact or raises.
            jac = BlockJacobian(perm, None if op.sorted_output else perm, block,
                                *(guard_x(t, x2) for t in (a, b, c)))
            dy = tf.cast(dy, _F64)
            x_bar = apply(jac, dy, transpose=True, xp=TF)
            if not s_differentiable:
                return x_bar
            s_bar = tf.reduce_sum(dy * op.strength_tangent(x2, y2, jac, s, options, TF))
            zero = _zero_tied_to(guard_s, s)  # the residuals depend on s too
            return x_bar + zero, s_bar + zero

        return grad

    inputs = [x2, s] if s_differentiable else [x2]
    tout = [_F64, _I64, _I32, _F64, _F64, _F64]
    return _custom_op(op.name, np_fn, [x2, s], tout, inputs, make_grad)[0]


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


def _soft_op(name, x, k, axis, strength, **kwargs):
    """The registered operator ``name`` along ``axis`` of ``x``, differentiable."""
    _check_jit(name)
    op = R.get(name)
    x = _as_float_tensor(x)
    ax = _canonical_axis(x, axis)
    options = _options(op, x, ax, axis, k, kwargs)
    s, s_differentiable = _strength(strength, options)
    x2, layout = _to_rows(x, ax)
    return _from_rows(_differentiable(op, options, x2, s, s_differentiable), layout)


# --------------------------------------------------------------------------------------------
# Public operators (same options, defaults and numbers as softorder.numpy).


@_no_autograph
def soft_rank(x: TensorLike, *, axis: int = -1, descending: bool = False,
              regularization: str = "l2", regularization_strength: Strength = 1.0,
              p: float = 4 / 3, straight_through: bool = False) -> tf.Tensor:
    return _soft_op("soft_rank", x, None, axis, regularization_strength, descending=descending,
                    regularization=regularization, p=p, straight_through=straight_through)


@_no_autograph
def soft_sort(x: TensorLike, *, axis: int = -1, descending: bool = False,
              regularization: str = "l2", regularization_strength: Strength = 1.0,
              p: float = 4 / 3, straight_through: bool = False) -> tf.Tensor:
    return _soft_op("soft_sort", x, None, axis, regularization_strength, descending=descending,
                    regularization=regularization, p=p, straight_through=straight_through)


@_no_autograph
def soft_topk_mask(x: TensorLike, k: int, *, axis: int = -1,
                   regularization_strength: Strength = 1.0, p: float = 4 / 3,
                   solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                   straight_through: bool = False) -> tf.Tensor:
    return _soft_op("soft_topk_mask", x, k, axis, regularization_strength, p=p, solver=solver,
                    max_iter=max_iter, tol=tol, straight_through=straight_through)


@_no_autograph
def soft_topk_magnitude(x: TensorLike, k: int, *, axis: int = -1,
                        regularization_strength: Strength = 1.0, p: float = 4 / 3,
                        solver: str = "pav", max_iter: int = 1000, tol: float = 1e-9,
                        straight_through: bool = False) -> tf.Tensor:
    return _soft_op("soft_topk_magnitude", x, k, axis, regularization_strength, p=p,
                    solver=solver, max_iter=max_iter, tol=tol, straight_through=straight_through)


soft_rank.__doc__ = R.docstring("soft_rank", "tensorflow", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_rank
>>> soft_rank(tf.constant([5.0, 1.0, 2.0]), regularization_strength=2.0).numpy()
array([3.  , 1.25, 1.75], dtype=float32)
>>> strength = tf.Variable(2.0)  # a tensor strength: a new value is no new trace
>>> soft_rank(tf.constant([5.0, 1.0, 2.0]), regularization_strength=strength).numpy()
array([3.  , 1.25, 1.75], dtype=float32)
>>> soft_rank(tf.constant([5.0, 1.0, 2.0]), regularization_strength=2.0,
...           straight_through=True).numpy()
array([3., 1., 2.], dtype=float32)
""")
soft_sort.__doc__ = R.docstring("soft_sort", "tensorflow", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_sort
>>> soft_sort(tf.constant([5.0, 1.0, 2.0], tf.float64)).numpy().round(4)
array([1.6667, 2.6667, 3.6667])
""")
soft_topk_mask.__doc__ = R.docstring("soft_topk_mask", "tensorflow", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_topk_mask
>>> x = tf.constant([-5.0, -2.0, 3.0, 1.0])
>>> soft_topk_mask(x, 2, regularization_strength=0.01).numpy()
array([0., 0., 1., 1.], dtype=float32)
""")
soft_topk_magnitude.__doc__ = R.docstring("soft_topk_magnitude", "tensorflow", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_topk_magnitude
>>> x = tf.constant([-5.0, -2.0, 3.0, 1.0], tf.float64)
>>> soft_topk_magnitude(x, 2, regularization_strength=0.01).numpy().round(6)
array([-5.,  0.,  3.,  0.])
""")


# --------------------------------------------------------------------------------------------
# Isotonic regression (differentiable in y and in sample_weight).


class IsotonicResult(tuple):
    """``(solution, block)``: the fit and its int32 block ids (like `softorder.isotonic`)."""

    __slots__ = ()

    def __new__(cls, solution, block):
        return tuple.__new__(cls, (solution, block))

    solution = property(lambda self: self[0])
    block = property(lambda self: self[1])


@_no_autograph
def isotonic_regression(y: TensorLike, *, sample_weight: TensorLike | None = None,
                        y_min: float | None = None, y_max: float | None = None,
                        increasing: bool = True, axis: int = -1,
                        return_blocks: bool = False) -> tf.Tensor | IsotonicResult:
    _check_jit("isotonic_regression")
    op = R.get("isotonic_regression")
    options = op.make_options(increasing=increasing, y_min=y_min, y_max=y_max)
    y = _as_float_tensor(y, "y")
    ax = _canonical_axis(y, axis)
    y2, layout = _to_rows(y, ax)
    if sample_weight is None:
        c2 = tf.ones_like(y2)
    else:
        w = _as_float_tensor(sample_weight, "sample_weight")
        if w.shape.rank is not None and y.shape.rank is not None and not w.shape.is_compatible_with(
                y.shape):
            raise ValueError(f"sample_weight must have the shape of y {y.shape}; got {w.shape}.")
        c2, _ = _to_rows(w, ax)
    c_differentiable = sample_weight is not None and _watched(c2)

    def np_fn(y2n, c2n):
        if np.any(~(c2n > 0)):
            raise ValueError("sample_weight must be positive.")
        v, (jy, jc) = op.rows((y2n, c2n), None, options, R.NUMPY)
        return (_f64(v), np.ascontiguousarray(jy.block, np.int32),
                *(_f64(r) for j in (jy, jc) for r in (j.a, j.b, j.c)))

    guard_y = _make_guard(op.name, False, "in y of the sample_weight gradient")
    guard_c = _make_guard(op.name, False, "in sample_weight")

    def make_grad(outs):
        _, block, *res = outs
        jy = BlockJacobian(None, None, block, *res[:3])  # residuals: functions of c only
        jc = BlockJacobian(None, None, block, *res[3:])  # (y - v_B): also of y

        def grad(dv):
            dv = tf.cast(dv, _F64)
            y_bar = apply(jy, dv, transpose=True, xp=TF)  # exact second order in y: 0
            if not c_differentiable:
                return y_bar
            zc = _zero_tied_to(guard_c, c2)
            return y_bar + zc, (apply(jc, dv, transpose=True, xp=TF) + zc
                                + _zero_tied_to(guard_y, y2))

        return grad

    inputs = [y2, c2] if c_differentiable else [y2]
    v2, outs = _custom_op(op.name, np_fn, [y2, c2], [_F64, _I32] + [_F64] * 6, inputs,
                          make_grad)
    sol = _from_rows(v2, layout)
    if return_blocks:
        return IsotonicResult(sol, _from_rows(outs[1], layout, tf.int32))
    return sol


isotonic_regression.__doc__ = R.docstring("isotonic_regression", "tensorflow", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import isotonic_regression
>>> isotonic_regression(tf.constant([1.0, 3.0, 2.0, 4.0])).numpy()
array([1. , 2.5, 2.5, 4. ], dtype=float32)
""")
