"""Derivatives of softorder.tensorflow: reverse mode against finite differences and the NumPy
core's `vjp`, forward mode against its `jvp`, second order where it is defined."""

import numpy as np
import pytest
import tensorflow as tf
from _tf_cases import spread

import softorder.numpy as snp
import softorder.tensorflow as stf


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32])
def test_gradient_keeps_low_precision_dtype(dtype, rng):
    x = tf.cast(rng.normal(size=(3, 4)), dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(stf.soft_rank(x) ** 2)
    g = tape.gradient(loss, x)
    assert g.dtype == dtype
    x64 = tf.cast(x, tf.float64).numpy()
    y, res = snp.soft_rank_fwd(x64)
    np.testing.assert_allclose(tf.cast(g, tf.float64).numpy(), snp.vjp(res, 2 * y),
                               rtol=2e-2, atol=2e-2)



def test_forward_accumulator_in_tf_function_and_jvp_vjp_adjoint(rng):
    x = rng.normal(size=(2, 6))
    t = rng.normal(size=x.shape)
    u = rng.normal(size=x.shape)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float64)] * 2)
    def jvp(x, t):
        with tf.autodiff.ForwardAccumulator(x, t) as acc:
            y = stf.soft_sort(x, regularization="kl", regularization_strength=0.5)
        return acc.jvp(y)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(stf.soft_sort(xt, regularization="kl", regularization_strength=0.5)
                             * u)
    vjp = tape.gradient(loss, xt).numpy()
    jv = jvp(xt, tf.constant(t)).numpy()
    np.testing.assert_allclose(np.sum(u * jv), np.sum(vjp * t), rtol=1e-12)
    _, res = snp.soft_sort_fwd(x, regularization="kl", regularization_strength=0.5)
    np.testing.assert_allclose(jv, snp.jvp(res, t), rtol=1e-11, atol=1e-12)


EXACT_SECOND_ORDER = [
    (lambda x: stf.soft_rank(x, regularization_strength=0.5),
     lambda x: snp.soft_rank_fwd(x, regularization_strength=0.5)),
    (lambda x: stf.soft_sort(x, descending=True, regularization_strength=20.0),
     lambda x: snp.soft_sort_fwd(x, descending=True, regularization_strength=20.0)),
    (lambda x: stf.soft_topk_mask(x, 2, p=2.0), lambda x: snp.soft_topk_mask_fwd(x, 2, p=2.0)),
    (lambda x: stf.soft_topk_magnitude(x, 2, p=2.0, solver="dykstra"),
     lambda x: snp.soft_topk_magnitude_fwd(x, 2, p=2.0, solver="dykstra")),
]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf_function"])
@pytest.mark.parametrize("fn, np_fwd", EXACT_SECOND_ORDER,
                         ids=["rank-l2", "sort-l2", "mask-p2", "magnitude-p2-dykstra"])
def test_second_order_where_exact(fn, np_fwd, graph, rng):
    """For l2 / p=2 the Jacobian is piecewise constant: the Hessian of 1/2||y||^2 is J^T J,
    computed here from the NumPy core's residuals (an independent reference, not the op)."""
    x = spread(rng, (2, 5))
    v = rng.normal(size=x.shape)

    def hvp(x):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = 0.5 * tf.reduce_sum(fn(x) ** 2)
            gv = tf.reduce_sum(inner.gradient(loss, x) * v)
        return outer.gradient(gv, x)

    hv = (tf.function(hvp) if graph else hvp)(tf.constant(x)).numpy()
    _, res = np_fwd(x)
    ref = snp.vjp(res, snp.jvp(res, v))
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(hv, ref, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("fn", [
    lambda x: stf.soft_rank(x, regularization="kl"),
    lambda x: stf.soft_sort(x, regularization="pnorm"),
    lambda x: stf.soft_topk_mask(x, 2),
    lambda x: stf.soft_topk_magnitude(x, 2, p=1.5),
], ids=["rank-kl", "sort-pnorm", "mask-p4/3", "magnitude-p1.5"])
def test_second_order_in_x_raises_where_not_exact(fn, rng):
    x = tf.constant(spread(rng, (2, 5)))
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss = tf.reduce_sum(fn(x) ** 2)
        g = inner.gradient(loss, x)
    with pytest.raises(NotImplementedError, match="second-order derivatives"):
        outer.gradient(g, x)


def test_gradient_of_gradient_in_upstream_is_linear(rng):
    """Differentiating x_bar(u) in the upstream u (kl, p-norm too): exact, it is J^T."""
    x = tf.constant(rng.normal(size=(2, 5)))
    u = tf.constant(rng.normal(size=(2, 5)))
    w = rng.normal(size=(2, 5))
    with tf.GradientTape() as outer:
        outer.watch(u)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = stf.soft_topk_mask(x, 2)
        xbar = inner.gradient(y, x, output_gradients=u)
        s = tf.reduce_sum(xbar * w)
    d = outer.gradient(s, u).numpy()  # = J w
    _, res = snp.soft_topk_mask_fwd(x.numpy(), 2)
    np.testing.assert_allclose(d, snp.jvp(res, w), rtol=1e-11, atol=1e-12)


def test_derivatives_across_the_tf_function_boundary(rng):
    """Tape or accumulator outside, tf.function inside: TF differentiates the traced graph."""
    x = tf.constant(rng.normal(size=(3, 5)))
    t = rng.normal(size=(3, 5))
    u = rng.normal(size=(3, 5))
    f = tf.function(lambda x: stf.soft_topk_magnitude(x, 2, regularization_strength=0.3),
                    input_signature=[tf.TensorSpec([None, None], tf.float64)])
    _, res = snp.soft_topk_magnitude_fwd(x.numpy(), 2, regularization_strength=0.3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(f(x) * u)
    np.testing.assert_allclose(tape.gradient(s, x).numpy(), snp.vjp(res, u), rtol=1e-11,
                               atol=1e-12)
    with tf.autodiff.ForwardAccumulator(x, tf.constant(t)) as acc:
        y = f(x)
    np.testing.assert_allclose(acc.jvp(y).numpy(), snp.jvp(res, t), rtol=1e-11, atol=1e-12)


def test_tape_jacobian(rng):
    x = tf.constant(rng.normal(size=(2, 4)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = stf.soft_rank(x, regularization="kl")
    jac = tape.jacobian(y, x).numpy().reshape(8, 8)
    bjac = tape.batch_jacobian(y, x).numpy()
    _, res = snp.soft_rank_fwd(x.numpy(), regularization="kl")
    ref = np.stack([snp.jvp(res, e.reshape(2, 4)).ravel() for e in np.eye(8)], axis=1)
    np.testing.assert_allclose(jac, ref, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(bjac, np.stack([ref[:4, :4], ref[4:, 4:]]), rtol=1e-11, atol=1e-12)



def test_second_order_in_graph_mode_raises_too(rng):
    """Hessian requests inside a tf.function, and around a call of one, raise while tracing."""
    x = tf.constant(spread(rng, (2, 5)))

    @tf.function
    def hessian_vector(x):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(stf.soft_rank(x, regularization="kl") ** 2)
            g = tf.reduce_sum(inner.gradient(loss, x))
        return outer.gradient(g, x)

    with pytest.raises(NotImplementedError, match="second-order derivatives"):
        hessian_vector(x)

    # Around a tf.function call, TensorFlow builds the second-order function as soon as the
    # inner gradient is taken under the recording outer tape: the error comes from there.
    f = tf.function(lambda x: stf.soft_topk_mask(x, 2))
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss = tf.reduce_sum(f(x) ** 2)
        with pytest.raises(NotImplementedError, match="second-order derivatives"):
            inner.gradient(loss, x)


def test_reverse_over_forward(rng):
    """d/dx <w, J(x) t>: exact for l2 (zero curvature), refused for kl, eagerly."""
    x = tf.constant(spread(rng, (2, 5)))
    t = tf.constant(rng.normal(size=(2, 5)))
    w = tf.constant(rng.normal(size=(2, 5)))
    for reg, ok in (("l2", True), ("kl", False)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            with tf.autodiff.ForwardAccumulator(x, t) as acc:
                y = stf.soft_rank(x, regularization=reg, regularization_strength=0.3)
            s = tf.reduce_sum(acc.jvp(y) * w)
        if ok:
            np.testing.assert_array_equal(tape.gradient(s, x).numpy(), np.zeros((2, 5)))
        else:
            with pytest.raises(NotImplementedError, match="second-order derivatives"):
                tape.gradient(s, x)
