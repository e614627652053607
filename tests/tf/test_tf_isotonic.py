"""softorder.tensorflow.isotonic_regression against softorder.isotonic and finite differences."""

import numpy as np
import pytest
import tensorflow as tf

import softorder.isotonic as sis
import softorder.tensorflow as stf


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("bounds", [(None, None), (-0.5, 0.7)])
@pytest.mark.parametrize("weighted", [False, True])
def test_values_and_blocks_match_numpy(increasing, axis, bounds, weighted, rng):
    y = rng.normal(size=(6, 7))
    w = rng.uniform(0.5, 2.0, size=y.shape) if weighted else None
    kw = dict(increasing=increasing, axis=axis, y_min=bounds[0], y_max=bounds[1])
    ref = sis.isotonic_regression(y, sample_weight=w, return_blocks=True, **kw)
    got = stf.isotonic_regression(tf.constant(y, tf.float32), sample_weight=w,
                                  return_blocks=True, **kw)
    assert got.solution.dtype == tf.float32 and got.block.dtype == tf.int32
    np.testing.assert_allclose(got.solution.numpy(), ref.solution, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got.block.numpy(), ref.block)


@pytest.mark.parametrize("bounds", [(None, None), (-0.3, 0.4)])
def test_gradients_in_y_and_weights(bounds, rng):
    y = tf.constant(rng.normal(size=(2, 6)))
    w = tf.constant(rng.uniform(0.5, 2.0, size=(2, 6)))
    f = lambda y, w: stf.isotonic_regression(y, sample_weight=w, y_min=bounds[0],
                                             y_max=bounds[1], increasing=False)
    theo, num = tf.test.compute_gradient(f, [y, w], delta=1e-6)
    for t, n in zip(theo, num):
        assert np.abs(t).max() > 1e-3
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-7)


def test_forward_mode_matches_reverse_mode(rng):
    y = tf.constant(rng.normal(size=(3, 5)))
    w = tf.constant(rng.uniform(0.5, 2.0, size=(3, 5)))
    ty, tw = rng.normal(size=(2, 3, 5))
    u = rng.normal(size=(3, 5))
    with tf.autodiff.ForwardAccumulator([y, w], [tf.constant(ty), tf.constant(tw)]) as acc:
        v = stf.isotonic_regression(y, sample_weight=w)
    jv = acc.jvp(v).numpy()
    with tf.GradientTape() as tape:
        tape.watch([y, w])
        s = tf.reduce_sum(stf.isotonic_regression(y, sample_weight=w) * u)
    gy, gw = tape.gradient(s, [y, w])
    np.testing.assert_allclose(np.sum(u * jv), np.sum(gy.numpy() * ty) + np.sum(gw.numpy() * tw),
                               rtol=1e-12)


def test_tf_function_and_errors():
    f = tf.function(lambda y: stf.isotonic_regression(y, increasing=False),
                    input_signature=[tf.TensorSpec([None, None], tf.float64)])
    np.testing.assert_allclose(f(tf.constant([[1.0, 3.0, 2.0]], tf.float64)).numpy(), [[2.0, 2.0, 2.0]])
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="must be positive"):
        stf.isotonic_regression(tf.ones(3), sample_weight=tf.constant([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="sample_weight must have the shape"):
        stf.isotonic_regression(tf.ones(3), sample_weight=tf.ones(4))
    with pytest.raises(TypeError, match="^y must be real"):
        stf.isotonic_regression(tf.ones(3, tf.complex64))


def test_second_order_in_y_is_exact_and_in_weights_raises(rng):
    """Without weights the y-Jacobian is piecewise constant (the Hessian of 1/2||v||^2 is
    J^T J, from the NumPy core's residuals); with watched weights the residuals depend on
    them, and a second-order request involving them raises."""
    import softorder.numpy as snp

    y = rng.normal(size=(2, 6))
    t = rng.normal(size=y.shape)
    yt = tf.constant(y)
    with tf.GradientTape() as outer:
        outer.watch(yt)
        with tf.GradientTape() as inner:
            inner.watch(yt)
            loss = 0.5 * tf.reduce_sum(stf.isotonic_regression(yt) ** 2)
        gt = tf.reduce_sum(inner.gradient(loss, yt) * t)
    hv = outer.gradient(gt, yt).numpy()
    _, res, _ = sis.isotonic_regression_fwd(y)
    ref = snp.vjp(res, snp.jvp(res, t, np.zeros_like(t)))[0]
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(hv, ref, rtol=1e-11, atol=1e-12)

    w = tf.constant(rng.uniform(0.5, 2.0, size=y.shape))
    with tf.GradientTape() as outer:
        outer.watch(w)
        with tf.GradientTape() as inner:
            inner.watch(w)
            loss = tf.reduce_sum(stf.isotonic_regression(yt, sample_weight=w) ** 2)
        gw = inner.gradient(loss, w)
    with pytest.raises(NotImplementedError, match="second-order derivatives in sample_weight"):
        outer.gradient(gw, w)
