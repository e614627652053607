"""Checks at the public boundary: clear ValueError/TypeError naming the argument, value, shape."""

from __future__ import annotations

import math
import numbers

import numpy as np

REGULARIZATIONS = ("l2", "kl", "pnorm")
SOLVERS = ("pav", "dykstra")


def promotes_to_float(name, kind, dtype, shape, cast):
    """The one dtype rule of every front end's input boundary (``x``, ``y``, ``sample_weight``
    and the losses' arrays), as ``np.mean`` and ``jnp`` functions have it.

    ``kind`` is the dtype's NumPy kind letter (each front end maps its framework's dtype to
    one): ``"f"`` (floating, bfloat16 included) is kept and gives False; ``"b"``, ``"i"`` and
    ``"u"`` (bool, signed and unsigned integers) give True: the caller promotes the array to
    its framework's default float dtype. Complex and anything else (strings, objects) raise a
    TypeError naming ``name`` (``cast``: how to fix it).
    """
    if kind == "f":
        return False
    if kind and kind in "biu":
        return True
    shape = _shape(shape)
    if kind == "c":
        raise TypeError(
            f"{name} must be real (a floating, integer or boolean dtype); got complex dtype "
            f"{dtype} with shape {shape}. Pass its real part or its modulus, e.g. "
            f"{name}.real or abs({name})."
        )
    raise TypeError(
        f"{name} must have a floating, integer or boolean dtype; got dtype {dtype} with shape "
        f"{shape}. Cast it first, e.g. {cast}."
    )


def as_float_array(x, name="x"):
    """``x`` as an ndarray with a floating dtype.

    Floating arrays keep their dtype; integer and boolean arrays, and Python lists and
    scalars (which carry no dtype of their own), become float64 (as ``np.mean`` does);
    complex arrays raise a TypeError (`promotes_to_float`).
    """
    if getattr(x, "requires_grad", False):
        raise TypeError(
            f"{name} is a {type(x).__module__}.{type(x).__name__} that requires grad: "
            "softorder.numpy does not differentiate through other frameworks. Use the "
            "framework's front end (softorder.torch, ...) for gradients, or pass "
            f"{name}.detach().numpy()."
        )
    arr = np.asarray(x)
    if not arr.dtype.isnative:  # big-endian data: every framework wants native order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    promote = promotes_to_float(name, arr.dtype.kind, arr.dtype, arr.shape,
                                f"{name}.astype(np.float64)")
    if promote or not (isinstance(x, np.ndarray) or hasattr(x, "dtype")):
        arr = arr.astype(np.float64)
    return arr


def check_axis(axis, ndim, shape, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {axis!r}.")
    if ndim == 0:
        raise ValueError(f"{name}={axis} is invalid for a 0-d input; the input needs an axis to act on.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an input of shape {tuple(shape)}.")
    return int(axis) % ndim


def _real_number(value, name, what):
    """``float(value)`` for a real number (Python, NumPy or a 0-d array); strings, bools,
    None and complex numbers are refused with a TypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be {what}; got {value!r}.")
    if isinstance(value, numbers.Real) or type(value).__name__ == "SymFloat":
        return float(value)
    if getattr(value, "shape", None) == () and "float" in str(getattr(value, "dtype", "")):
        return float(value)  # a 0-d floating array (NumPy, or a concrete framework scalar)
    raise TypeError(f"{name} must be {what}; got {value!r}.")


def check_strength(value, name="regularization_strength"):
    v = _real_number(value, name, "a positive number")
    # `v < inf` rather than math.isfinite: Dynamo traces it on the symbolic floats of
    # torch.compile(dynamic=True); NaN fails `v > 0`.
    if not (v > 0 and v < math.inf):
        raise ValueError(f"{name} must be positive and finite; got {value!r}.")
    return v


def check_real(value, name):
    v = _real_number(value, name, "a real number")
    if v != v:
        raise ValueError(f"{name} must not be NaN.")
    return v


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def check_tol(value, name="tol"):
    v = _real_number(value, name, "a number >= 0")
    if not (v >= 0 and v < math.inf):
        raise ValueError(f"{name} must be >= 0 and finite; got {value!r}.")
    return v


def check_regularization(regularization):
    if regularization not in REGULARIZATIONS:
        raise ValueError(
            f"regularization must be one of {REGULARIZATIONS}; got {regularization!r}."
        )
    return regularization


def check_p(p, name="p"):
    v = _real_number(p, name, "a number > 1")
    if not (v > 1 and v < math.inf):  # as in check_strength
        raise ValueError(f"{name} must be > 1 and finite (p = 2 is quadratic, p = 4/3 smooth); got {p!r}.")
    return v


def check_k(k, n, shape, axis):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer; got {k!r}.")
    if not 0 <= k <= n:
        raise ValueError(
            f"k={k} is out of range: it must lie in 0..{n}, the length of axis {axis} of the "
            f"input of shape {tuple(shape)}."
        )
    return int(k)


def check_solver(solver, p):
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}.")
    if solver == "dykstra" and p != 2:
        raise ValueError(
            f"solver='dykstra' solves the quadratic case only: it needs p=2; got p={p!r}."
        )
    return solver


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


# The framework front ends' boundary errors, one wording for all.


def _shape(shape):
    try:
        return tuple(shape)
    except (TypeError, ValueError):  # a TensorShape of unknown rank
        return shape


def float_dtype_error(name, dtype, shape, cast, kind=""):
    """The TypeError for a strength tensor of a non-floating dtype (``cast``: how to fix it)."""
    shape = _shape(shape)
    return TypeError(
        f"{name} must have a floating dtype (float16, bfloat16, float32 or float64); got "
        f"{kind + ' ' if kind else ''}dtype {dtype} with shape {shape}. Cast it first, "
        f"e.g. {cast}."
    )


def static_number_error(name, value, module, what="a tensor", fix="Pass float(...) if it is a "
                        "constant."):
    """The TypeError for a hyperparameter given as a tensor: it would get no gradient."""
    return TypeError(
        f"{name} must be a Python number, not {what} ({value!r}): {module} does not "
        f"differentiate with respect to it. {fix}"
    )
