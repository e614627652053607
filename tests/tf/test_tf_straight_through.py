"""straight_through=True (issue 7, item 5): the value is the hard operator's (NumPy's hard_*),
the gradient is the soft operator's (the NumPy core's vjp of the soft operator), eagerly and
in tf.function, with the keyword passed through the Keras layers too."""

import numpy as np
import pytest
import tensorflow as tf
from _tf_cases import ALL_CASES, SORT_RANK, TOPK, spread

import softorder.numpy as snp
import softorder.tensorflow as stf


def _calls(op, args, kw, hard_kw):
    hard = getattr(snp, op.replace("soft", "hard"))
    return (lambda x, **k: getattr(stf, op)(x, *args, **kw, **k),
            lambda x: getattr(snp, op + "_fwd")(x, *args, **kw),
            lambda x: hard(x, *args, **hard_kw))


def _case(cid):
    """(tf call, NumPy soft *_fwd call, NumPy hard call) for one case id of `_tf_cases`."""
    for c, op, reg, desc in SORT_RANK:
        if c == cid:
            # soft at `spread` points (gaps 0.12): soft_sort's strength is in units of 1 / x
            strength = 20.0 if op == "soft_sort" else 0.7
            return _calls(op, (), dict(regularization=reg, descending=desc,
                                       regularization_strength=strength), dict(descending=desc))
    for c, op, p, solver in TOPK:
        if c == cid:
            return _calls(op, (2,), dict(p=p, solver=solver, regularization_strength=0.5), {})
    raise KeyError(cid)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf_function"])
@pytest.mark.parametrize("name", ALL_CASES)
def test_value_is_hard_and_gradient_is_soft(name, graph, rng):
    tf_fn, np_soft_fwd, np_hard = _case(name)
    x = spread(rng, (3, 6))  # tie-free: the hard operator is well defined
    u = rng.normal(size=x.shape)

    def value_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf_fn(x, straight_through=True)
            loss = tf.reduce_sum(y * u)
        return y, tape.gradient(loss, x)

    if graph:
        value_and_grad = tf.function(value_and_grad)
    y, g = value_and_grad(tf.constant(x))
    np.testing.assert_array_equal(y.numpy(), np_hard(x))
    y_soft, res = np_soft_fwd(x)
    assert not np.allclose(y_soft, np_hard(x))  # soft here: the two modes really differ
    ref = snp.vjp(res, u)
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-11, atol=1e-12)


def test_forward_mode_is_the_soft_jvp(rng):
    x = spread(rng, (2, 5))
    t = rng.normal(size=x.shape)
    xt = tf.constant(x)
    with tf.autodiff.ForwardAccumulator(xt, tf.constant(t)) as acc:
        y = stf.soft_topk_mask(xt, 2, straight_through=True)
    _, res = snp.soft_topk_mask_fwd(x, 2)
    np.testing.assert_array_equal(y.numpy(), snp.hard_topk_mask(x, 2))
    np.testing.assert_allclose(acc.jvp(y).numpy(), snp.jvp(res, t), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("cls, kwargs, hard", [
    (stf.SoftRank, dict(regularization_strength=0.5), lambda x: snp.hard_rank(x)),
    (stf.SoftSort, dict(descending=True), lambda x: snp.hard_sort(x, descending=True)),
    (stf.SoftTopKMask, dict(k=2), lambda x: snp.hard_topk_mask(x, 2)),
    (stf.SoftTopKMagnitude, dict(k=2), lambda x: snp.hard_topk_magnitude(x, 2)),
], ids=["SoftRank", "SoftSort", "SoftTopKMask", "SoftTopKMagnitude"])
def test_keras_layers_pass_straight_through(cls, kwargs, hard, rng):
    x = spread(rng, (3, 5)).astype(np.float32)  # Keras computes in float32
    layer = cls(**kwargs, straight_through=True)
    np.testing.assert_array_equal(layer(tf.constant(x)).numpy(), hard(x))
    assert cls.from_config(layer.get_config()).straight_through is True
