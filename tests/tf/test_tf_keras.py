"""Keras layers: values equal the functions, configs round-trip, a tiny model trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import softorder.numpy as snp
import softorder.tensorflow as stf

LAYERS = [
    (stf.SoftRank, dict(regularization="kl", regularization_strength=0.5, descending=True),
     lambda x: stf.soft_rank(x, regularization="kl", regularization_strength=0.5,
                             descending=True)),
    (stf.SoftSort, dict(axis=0, regularization="pnorm", p=1.5),
     lambda x: stf.soft_sort(x, axis=0, regularization="pnorm", p=1.5)),
    (stf.SoftTopKMask, dict(k=2, regularization_strength=0.3, p=2.0, solver="dykstra"),
     lambda x: stf.soft_topk_mask(x, 2, regularization_strength=0.3, p=2.0, solver="dykstra")),
    (stf.SoftTopKMagnitude, dict(k=3, regularization_strength=0.2),
     lambda x: stf.soft_topk_magnitude(x, 3, regularization_strength=0.2)),
]


@pytest.mark.parametrize("cls, kwargs, fn", LAYERS, ids=[c[0].__name__ for c in LAYERS])
def test_layer_calls_function_and_config_round_trips(cls, kwargs, fn, rng):
    x = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    layer = cls(**kwargs, name="so")
    np.testing.assert_array_equal(layer(x).numpy(), fn(x).numpy())
    clone = cls.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(x).numpy(), fn(x).numpy())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.get_config() == layer.get_config()


def test_tiny_model_fits_and_saves(tmp_path, rng):
    """Dense -> SoftRank -> Dense, two steps of fit in graph mode; the loss goes down and the
    weights behind the soft ranks receive gradients; the saved model reloads identically."""
    keras.utils.set_random_seed(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = np.argsort(np.argsort(x, axis=1), axis=1).astype(np.float32) + 1.0  # hard ranks
    inputs = keras.Input((6,))
    h = keras.layers.Dense(6, name="pre")(inputs)
    r = stf.SoftRank(regularization_strength=0.5)(h)
    model = keras.Model(inputs, r)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = model.get_layer("pre").get_weights()[0].copy()
    hist = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert not np.allclose(model.get_layer("pre").get_weights()[0], before)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


NP_FWD = {
    stf.SoftRank: lambda h, kw: snp.soft_rank_fwd(h, **kw),
    stf.SoftSort: lambda h, kw: snp.soft_sort_fwd(h, **kw),
    stf.SoftTopKMask: lambda h, kw: snp.soft_topk_mask_fwd(h, **kw),
    stf.SoftTopKMagnitude: lambda h, kw: snp.soft_topk_magnitude_fwd(h, **kw),
}


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf_function"])
@pytest.mark.parametrize("cls, kwargs, fn", LAYERS, ids=[c[0].__name__ for c in LAYERS])
def test_layer_gradients_match_the_numpy_core(cls, kwargs, fn, graph, rng):
    """Dense -> layer, in float64: the gradients of <layer(Dense(x)), u> in the Dense kernel
    and in x are the NumPy core's vjp chained through the Dense layer by hand (an independent
    reference: it stayed red when the TF VJP was broken, unlike comparing the op with itself)."""
    x = rng.normal(size=(4, 5))
    u = rng.normal(size=(4, 5))
    dense = keras.layers.Dense(5, dtype="float64")
    dense.build((None, 5))
    # Small fixed weights: the operators are soft (nonzero Jacobians) at these points.
    dense.set_weights([rng.normal(size=(5, 5)) * 0.2, rng.normal(size=5) * 0.1])
    layer = cls(**kwargs, dtype="float64")
    xt = tf.constant(x)

    def grads(xt):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(layer(dense(xt)) * u)
        return tape.gradient(loss, [xt, dense.kernel])

    if graph:
        grads = tf.function(grads)
    gx, gw = grads(xt)
    w, b = (v.numpy() for v in dense.weights)
    h = x @ w + b
    _, res = NP_FWD[cls](h, kwargs)
    hbar = snp.vjp(res, u)
    assert np.abs(hbar).max() > 1e-3
    np.testing.assert_allclose(gx.numpy(), hbar @ w.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw.numpy(), x.T @ hbar, rtol=1e-10, atol=1e-12)
