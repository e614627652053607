"""The tests/losses property bodies on TensorFlow (in the TensorFlow pytest process, as
tests/tf/test_cross_tf.py does for tests/cross), plus tf.function."""

import pathlib
import sys

_TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS / "cross"))
sys.path.insert(0, str(_TESTS / "losses"))

import adapters  # noqa: E402
import numpy as np  # noqa: E402
import test_losses_derivatives  # noqa: E402
import test_losses_limits  # noqa: E402
import test_losses_mask_and_errors  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402

for _module in (test_losses_limits, test_losses_mask_and_errors, test_losses_derivatives):
    globals().update({k: v for k, v in vars(_module).items() if k.startswith("test_")})


def pytest_generate_tests(metafunc):
    adapters.parametrize(metafunc, ("tensorflow",))


def test_tf_function_gives_the_eager_values_and_gradients():
    import tensorflow as tf

    import softorder.tensorflow as stf

    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(3, 6)))
    y = tf.constant(rng.normal(size=(3, 6)))
    mask = tf.constant(rng.uniform(size=(3, 6)) > 0.2)
    labels = tf.constant([0, 5, 2])

    def loss(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            out = (stf.soft_spearman_loss(v, y, regularization_strength=0.6, mask=mask)
                   + stf.topk_classification_loss(v, labels, 2, regularization_strength=0.6)
                   + stf.soft_least_trimmed_squares(v, 1, regularization_strength=0.8,
                                                    mask=mask))
        return out, tape.gradient(out, v)

    le, ge = loss(x)
    lf, gf = tf.function(loss)(x)
    assert_allclose(lf.numpy(), le.numpy(), rtol=1e-12)
    assert_allclose(gf.numpy(), ge.numpy(), rtol=1e-10)
