"""The regularization strength is a runtime value (issue 7, item 7): a tensor or tf.Variable
strength never retraces a tf.function, and it gets exact gradients (against finite
differences in float64), eagerly, in tf.function and in forward mode."""

import numpy as np
import pytest
import tensorflow as tf
from _tf_cases import SORT_RANK, TOPK, spread

import softorder.numpy as snp
import softorder.tensorflow as stf

OPS = {
    "soft_rank": (lambda x, s, **kw: stf.soft_rank(x, regularization_strength=s, **kw),
                  lambda x, s, **kw: snp.soft_rank(x, regularization_strength=s, **kw)),
    "soft_sort": (lambda x, s, **kw: stf.soft_sort(x, regularization_strength=s, **kw),
                  lambda x, s, **kw: snp.soft_sort(x, regularization_strength=s, **kw)),
    "soft_topk_mask": (
        lambda x, s, **kw: stf.soft_topk_mask(x, 2, regularization_strength=s, **kw),
        lambda x, s, **kw: snp.soft_topk_mask(x, 2, regularization_strength=s, **kw)),
    "soft_topk_magnitude": (
        lambda x, s, **kw: stf.soft_topk_magnitude(x, 2, regularization_strength=s, **kw),
        lambda x, s, **kw: snp.soft_topk_magnitude(x, 2, regularization_strength=s, **kw)),
}
STRENGTHS = [0.3, 0.5, 0.9, 1.7, 4.0]
# A strength where the operator is soft at `spread` points (gaps 0.12): soft_sort's strength
# is in the units of 1 / x (exact below 1 / the largest gap), the others' in those of x.
S0 = {"soft_rank": 0.7, "soft_sort": 20.0, "soft_topk_mask": 0.7, "soft_topk_magnitude": 0.7}


def _case_kwargs():
    for cid, op, reg, desc in SORT_RANK:
        yield cid, op, dict(regularization=reg, descending=desc)
    for cid, op, p, solver in TOPK:
        yield cid, op, dict(p=p, solver=solver)


CASES = list(_case_kwargs())


@pytest.mark.parametrize("op", list(OPS))
def test_tensor_strengths_never_retrace(op, rng):
    tf_fn, np_fn = OPS[op]
    f = tf.function(lambda x, s: tf_fn(x, s))
    x = rng.normal(size=(3, 6))
    for s in STRENGTHS:
        y = f(tf.constant(x), tf.constant(s, tf.float64))
        np.testing.assert_allclose(y.numpy(), np_fn(x, s), rtol=1e-12, atol=1e-12)
    assert f.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("op", list(OPS))
def test_variable_strength_schedule_never_retraces(op, rng):
    """A float32 tf.Variable read inside the function: assign a new value, no new trace."""
    tf_fn, np_fn = OPS[op]
    strength = tf.Variable(1.0, trainable=False)
    f = tf.function(lambda x: tf_fn(x, strength))
    x = rng.normal(size=(2, 5)).astype(np.float32)
    for s in STRENGTHS:
        strength.assign(s)
        np.testing.assert_allclose(f(tf.constant(x)).numpy(), np_fn(x, s), rtol=2e-6, atol=2e-6)
    assert f.experimental_get_tracing_count() == 1


def test_python_float_strengths_retrace_only_by_tensorflow_itself(rng):
    """TensorFlow retraces for each new Python float argument (its own rule); converting the
    float to a tensor first is the documented way out, and then softorder adds no retrace."""
    f = tf.function(lambda x, s: stf.soft_rank(x, regularization_strength=s))
    x = tf.constant(rng.normal(size=(2, 4)))
    for s in STRENGTHS:
        f(x, s)
    assert f.experimental_get_tracing_count() == len(STRENGTHS)
    g = tf.function(lambda x, s: stf.soft_rank(x, regularization_strength=s))
    for s in STRENGTHS:
        g(x, tf.convert_to_tensor(s))
    assert g.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("cid, op, kw", CASES, ids=[c[0] for c in CASES])
def test_strength_gradient_matches_finite_differences(cid, op, kw, rng):
    tf_fn, _ = OPS[op]
    x = tf.constant(spread(rng, (2, 5)))
    s0 = tf.constant(S0[op], tf.float64)
    theo, num = tf.test.compute_gradient(lambda s: tf_fn(x, s, **kw), [s0], delta=1e-6)
    assert np.abs(theo[0]).max() > 1e-3  # the strength really moves the output here
    np.testing.assert_allclose(theo[0], num[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", list(OPS))
def test_strength_and_input_gradients_together_in_tf_function(op, rng):
    """A trainable tf.Variable strength and x in one tape, through a tf.function; against
    central differences of the NumPy operator (in the strength) and the NumPy core's vjp."""
    tf_fn, np_fn = OPS[op]
    x = spread(rng, (3, 5))
    u = rng.normal(size=x.shape)
    s0 = S0[op]
    strength = tf.Variable(s0, dtype=tf.float64)
    f = tf.function(lambda x: tf_fn(x, strength))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(f(xt) * u)
    gx, gs = tape.gradient(loss, [xt, strength])
    h = 1e-6
    fd = (np.sum(np_fn(x, s0 + h) * u) - np.sum(np_fn(x, s0 - h) * u)) / (2 * h)
    assert abs(fd) > 1e-3
    np.testing.assert_allclose(gs.numpy(), fd, rtol=1e-5, atol=1e-7)
    k = (2,) if "topk" in op else ()
    _, res = getattr(snp, op + "_fwd")(x, *k, regularization_strength=s0)
    np.testing.assert_allclose(gx.numpy(), snp.vjp(res, u), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("op", list(OPS))
def test_forward_mode_in_the_strength(op, rng):
    tf_fn, np_fn = OPS[op]
    x = spread(rng, (2, 5))
    s0 = S0[op]
    s = tf.constant(s0, tf.float64)
    with tf.autodiff.ForwardAccumulator(s, tf.constant(1.0, tf.float64)) as acc:
        y = tf_fn(tf.constant(x), s)
    h = 1e-6
    fd = (np_fn(x, s0 + h) - np_fn(x, s0 - h)) / (2 * h)
    assert np.abs(fd).max() > 1e-3
    np.testing.assert_allclose(acc.jvp(y).numpy(), fd, rtol=1e-5, atol=1e-7)


def test_strength_gets_no_gradient_in_straight_through_mode(rng):
    """The value is the hard operator's, which does not depend on the strength."""
    x = tf.constant(rng.normal(size=(2, 5)))
    s = tf.Variable(0.5, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(stf.soft_rank(x, regularization_strength=s, straight_through=True))
    gx, gs = tape.gradient(loss, [x, s])
    assert gs is None and gx is not None


def test_traced_strength_is_checked_when_it_runs(rng):
    f = tf.function(lambda x, s: stf.soft_topk_mask(x, 1, regularization_strength=s))
    x = tf.constant(rng.normal(size=(2, 4)))
    f(x, tf.constant(0.5, tf.float64))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="regularization_strength must be positive"):
        f(x, tf.constant(-0.5, tf.float64))


def test_second_order_in_the_strength_raises(rng):
    x = tf.constant(spread(rng, (2, 5)))
    s = tf.Variable(0.5, dtype=tf.float64)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = tf.reduce_sum(stf.soft_rank(x, regularization_strength=s) ** 2)
        g = inner.gradient(loss, s)
    with pytest.raises(NotImplementedError, match="second-order derivatives in "
                       "regularization_strength"):
        outer.gradient(g, s)


def test_hessian_in_x_with_a_tensor_strength_in_tf_function(rng):
    """l2: exact (J^T J v from the NumPy core's residuals), although the strength is an input
    of the op (graph gradients never ask for the strength's second-order term here)."""
    x = spread(rng, (2, 5))
    v = rng.normal(size=x.shape)

    @tf.function
    def hvp(x, s):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = 0.5 * tf.reduce_sum(stf.soft_rank(x, regularization_strength=s) ** 2)
            gv = tf.reduce_sum(inner.gradient(loss, x) * v)
        return outer.gradient(gv, x)

    hv = hvp(tf.constant(x), tf.constant(0.5, tf.float64)).numpy()
    _, res = snp.soft_rank_fwd(x, regularization_strength=0.5)
    ref = snp.vjp(res, snp.jvp(res, v))
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(hv, ref, rtol=1e-11, atol=1e-12)
