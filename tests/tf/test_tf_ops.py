"""softorder.tensorflow values against the NumPy core: all ops, options, dtypes and axes,
eager and in tf.function (unknown shapes), NaN rows, errors."""

import numpy as np
import pytest
import tensorflow as tf
from _tf_cases import ALL_CASES, TOL, case

import softorder.numpy as snp
import softorder.tensorflow as stf

DTYPES = [tf.float16, tf.bfloat16, tf.float32, tf.float64]


@pytest.mark.parametrize("name", ALL_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_values_match_numpy(name, dtype, axis, rng):
    tf_fn, np_fwd = case(name)
    x = tf.cast(rng.normal(size=(4, 5, 6)) * 2.0, dtype)
    y = tf_fn(x, axis=axis)
    assert y.dtype == dtype and y.shape == x.shape
    # The reference sees exactly the values TF saw (x rounded to dtype), in float64.
    ref = np_fwd(tf.cast(x, tf.float64).numpy(), axis=axis)[0]
    np.testing.assert_allclose(tf.cast(y, tf.float64).numpy(), ref, rtol=TOL[dtype],
                               atol=TOL[dtype] * 4)


@pytest.mark.parametrize("name", ["soft_rank-l2-asc", "soft_sort-kl-desc",
                                  "soft_topk_mask-p1.33-pav", "soft_topk_magnitude-p2-dykstra"])
def test_tf_function_unknown_shapes(name, rng):
    tf_fn, np_fwd = case(name)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    def f(x):
        y = tf_fn(x, axis=1)
        assert y.shape.as_list() == [None, None, None]
        return y

    for shape in [(2, 5, 3), (3, 7, 1), (1, 4, 4)]:  # one trace, several shapes
        x = rng.normal(size=shape).astype(np.float32)
        np.testing.assert_allclose(f(tf.constant(x)).numpy(), np_fwd(x, axis=1)[0], rtol=2e-6,
                                   atol=1e-6)
    assert len(f._list_all_concrete_functions()) == 1


def test_tf_function_unknown_rank(rng):
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float64)])
    def f(x):
        return stf.soft_rank(x, regularization_strength=0.3)

    x = rng.normal(size=(2, 3, 5))
    np.testing.assert_allclose(f(tf.constant(x)).numpy(),
                               snp.soft_rank(x, regularization_strength=0.3), rtol=1e-12)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float64)])
    def g(x):
        return stf.soft_rank(x, axis=0)

    with pytest.raises(ValueError, match="axis=0 needs an input of known rank"):
        g.get_concrete_function()


def test_topk_k_checked_at_run_time_for_unknown_n():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def f(x):
        return stf.soft_topk_mask(x, 4)

    assert f(tf.ones((2, 4))).shape == (2, 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k=4 is out of range"):
        f(tf.ones((2, 3)))


def test_numpy_and_list_inputs_follow_softorder_numpy():
    x = np.array([[3.0, 1.0, 2.0]], np.float32)
    y = stf.soft_sort(x)
    assert y.dtype == tf.float32
    np.testing.assert_allclose(y.numpy(), snp.soft_sort(x), rtol=1e-6)
    y = stf.soft_rank([3.0, 1.0, 2.0], regularization_strength=0.1)
    assert y.dtype == tf.float64  # lists become float64, as in softorder.numpy
    np.testing.assert_array_equal(y.numpy(), [3.0, 1.0, 2.0])
    v = tf.Variable([[0.5, -1.0, 2.0]])
    np.testing.assert_allclose(stf.soft_topk_mask(v, 1, regularization_strength=0.01).numpy(),
                               [[0.0, 0.0, 1.0]])
    w = tf.Variable([[0.3, -1.0, 2.0, 0.5]], dtype=tf.float64)
    u = np.array([[1.0, 2.0, 3.0, 4.0]])
    with tf.GradientTape() as tape:  # watched automatically, as a trainable variable
        loss = tf.reduce_sum(stf.soft_topk_mask(w, 2) * u)
    _, res = snp.soft_topk_mask_fwd(w.numpy(), 2)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), snp.vjp(res, u), rtol=1e-12)



def test_errors_name_the_argument():
    x = tf.ones((2, 3))
    with pytest.raises(TypeError, match="^x must be real.*complex64"):
        stf.soft_rank(tf.ones((2, 3), tf.complex64))
    with pytest.raises(TypeError, match="^x must have a floating, integer or boolean dtype"):
        stf.soft_sort(tf.constant(["a", "b"]))
    with pytest.raises(ValueError, match=r"axis=2 is out of range.*\(2, 3\)"):
        stf.soft_sort(x, axis=2)
    with pytest.raises(ValueError, match="regularization must be one of"):
        stf.soft_rank(x, regularization="l1")
    with pytest.raises(ValueError, match="regularization_strength must be positive"):
        stf.soft_rank(x, regularization_strength=0.0)
    with pytest.raises(ValueError, match="k=4 is out of range.*0..3"):
        stf.soft_topk_mask(x, 4)
    with pytest.raises(TypeError, match="k must be an integer"):
        stf.soft_topk_magnitude(x, 1.5)
    with pytest.raises(ValueError, match="dykstra.*p=2"):
        stf.soft_topk_mask(x, 1, solver="dykstra")
    with pytest.raises(ValueError, match="p must be > 1"):
        stf.soft_topk_mask(x, 1, p=1.0)
    with pytest.raises(TypeError, match="p must be a Python number"):
        stf.soft_topk_mask(x, 1, p=tf.constant(2.0))
    with pytest.raises(TypeError, match="tol must be a Python number"):
        stf.soft_topk_mask(x, 1, tol=tf.Variable(1e-6))
    with pytest.raises(TypeError, match="k must be an integer"):
        stf.soft_topk_mask(x, tf.constant(1))
    with pytest.raises(ValueError, match="regularization_strength must be positive"):
        stf.soft_rank(x, regularization_strength=tf.constant(-0.5))
    with pytest.raises(ValueError, match="regularization_strength must be a 0-d tensor"):
        stf.soft_rank(x, regularization_strength=tf.constant([0.5]))
    with pytest.raises(TypeError, match="regularization_strength must have a floating dtype"):
        stf.soft_rank(x, regularization_strength=tf.constant(1))
    with pytest.raises(TypeError, match="regularization_strength must be a positive number"):
        stf.soft_rank(x, regularization_strength="0.5")
    with pytest.raises(TypeError, match="straight_through must be True or False"):
        stf.soft_sort(x, straight_through=1)
    with pytest.raises(ValueError, match="0-d input"):
        stf.soft_rank(tf.constant(1.0))


def test_jit_compile_raises_clearly():
    @tf.function(jit_compile=True)
    def f(x):
        return stf.soft_rank(x)

    with pytest.raises(NotImplementedError, match="jit_compile=True"):
        f(tf.ones((2, 3)))

    @tf.function(jit_compile=True)
    def g(x):
        return stf.soft_topk_mask(x, 1)

    with pytest.raises(NotImplementedError, match="jit_compile=True"):
        g(tf.ones((2, 3)))



@pytest.mark.parametrize("dtype", [">f8", ">f4", ">f2"])
def test_big_endian_numpy_inputs(dtype, rng):
    """Item 8 of issue 7: big-endian NumPy arrays give what their native-order copy gives."""
    x = rng.normal(size=(3, 5))
    big = x.astype(dtype)
    native = big.astype(big.dtype.newbyteorder("="))
    for fn in (lambda a: stf.soft_rank(a, regularization_strength=0.3),
               lambda a: stf.soft_sort(a, regularization="kl"),
               lambda a: stf.soft_topk_mask(a, 2),
               lambda a: stf.soft_topk_magnitude(a, 2, regularization_strength=np.float64(0.3)
                                                 .astype(">f8")),
               lambda a: stf.isotonic_regression(a, sample_weight=np.ones(a.shape, ">f8"))):
        got, ref = fn(big), fn(native)
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
    np.testing.assert_array_equal(stf.soft_rank(big.astype(">f8")).numpy(),
                                  snp.soft_rank(x.astype(dtype).astype(np.float64)))
