"""Integer and boolean inputs are promoted to the framework's default float dtype (as ``np.mean``
and ``jnp`` functions do) and give exactly the values of that float version; complex inputs
raise a TypeError naming the argument. Every operator, every front end (TensorFlow: in
tests/tf/test_cross_tf.py)."""

import numpy as np
import pytest
from adapters import ADAPTERS
from numpy.testing import assert_array_equal

NUMPY = ADAPTERS["numpy"]

INTS = np.array([[3, -1, 2, 7, 0, 2], [5, 5, 1, -2, 4, 9]], dtype=np.int32)
BOOLS = np.array([[True, False, False, True, True, False], [False] * 6])
OPS = [("soft_rank", ()), ("soft_sort", ()), ("soft_topk_mask", (2,)),
       ("soft_topk_magnitude", (2,)), ("isotonic_regression", ())]
IDS = [op for op, _ in OPS]


def direct(backend, op, x, *args, **kw):
    """``backend``'s ``op`` on ``x`` as given (a NumPy array or a list is not converted)."""
    return getattr(backend.module, op)(x, *args, **backend.kw(-1, kw))


def default_float(backend):
    """The dtype an integer tensor of ``backend``'s own becomes (JAX: x64 is on in these tests;
    the float32 default without it is checked in tests/jax/test_jax_subprocess.py)."""
    if backend.name == "torch":
        import torch

        return np.dtype(str(torch.get_default_dtype()).removeprefix("torch."))
    return np.dtype(np.float32 if backend.name == "tensorflow" else np.float64)


@pytest.mark.parametrize("op,args", OPS, ids=IDS)
@pytest.mark.parametrize("data", [INTS, INTS.astype(np.int64), INTS.astype(np.uint8) + 2, BOOLS],
                         ids=["int32", "int64", "uint8", "bool"])
def test_integer_and_boolean_tensors_give_the_values_of_the_default_float_version(
        backend, op, args, data):
    dt = default_float(backend)
    strengths = [None] if op == "isotonic_regression" else [0.5, 1e-3]
    for strength in strengths:
        kw = {} if strength is None else {"regularization_strength": strength}
        got = backend(op, backend.to_native(data), *args, **kw)
        want = backend(op, backend.to_native(data.astype(dt)), *args, **kw)
        assert got.dtype == dt
        assert_array_equal(got, want)


def test_an_integer_arange_has_the_hard_ranks_and_sort_in_the_hard_limit(backend):
    x = backend.to_native(np.arange(6)[::-1].copy())  # 5, 4, ..., 0
    assert_array_equal(backend.to_numpy(backend.call("soft_rank", x, regularization_strength=1e-3)),
                       np.arange(6, 0, -1))
    assert_array_equal(backend.to_numpy(backend.call("soft_sort", x, regularization_strength=1e-3)),
                       np.arange(6))
    assert_array_equal(backend.to_numpy(backend.call("soft_topk_mask", x, 2,
                                                     regularization_strength=1e-3)),
                       [1, 1, 0, 0, 0, 0])


def test_numpy_integer_arrays_and_lists_become_float64_as_in_softorder_numpy(backend):
    for x in (INTS, INTS.tolist(), BOOLS):
        got = backend.to_numpy(direct(backend, "soft_rank", x, regularization_strength=0.5))
        assert got.dtype == np.float64
        assert_array_equal(got, NUMPY("soft_rank", np.asarray(x, np.float64),
                                      regularization_strength=0.5))


def test_integer_sample_weights_are_promoted_too(backend):
    y = backend.to_native(np.array([[3.0, 1.0, 2.0, 5.0]]))
    w = np.array([[1, 3, 1, 2]])
    got = backend("isotonic_regression", y, sample_weight=backend.to_native(w))
    want = backend("isotonic_regression", y, sample_weight=backend.to_native(w.astype(np.float64)))
    assert_array_equal(got, want)
    assert_array_equal(got, [[1.5, 1.5, 2.0, 5.0]])  # (3 * 1 + 1 * 3) / (1 + 3) = 1.5


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("op,args", OPS, ids=IDS)
def test_complex_inputs_are_type_errors_naming_the_argument_the_dtype_and_the_shape(
        backend, op, args, dtype):
    name = "y" if op == "isotonic_regression" else "x"
    for x in (backend.to_native(np.ones((2, 3), dtype)), np.ones((2, 3), dtype)):
        with pytest.raises(TypeError, match=rf"^{name} must be real .*complex dtype "
                                            rf".*{dtype}.* with shape \(2, 3\)"):
            direct(backend, op, x, *args)
    if op == "isotonic_regression":
        with pytest.raises(TypeError, match=r"^sample_weight must be real"):
            direct(backend, op, backend.to_native(np.ones((2, 3))),
                   sample_weight=np.ones((2, 3), dtype))


def test_strings_are_type_errors_naming_the_argument(backend):
    with pytest.raises(TypeError, match=r"^x must have a floating, integer or boolean dtype; "
                                        r"got dtype <U1 with shape \(3,\)"):
        direct(backend, "soft_rank", np.array(["a", "b", "c"]))
