"""One test body, every framework: the same cases through numpy, torch, jax and tensorflow give
the same values and the same gradients (within the dtype's tolerance).

Lives under tests/tf because TensorFlow must not share a process with Triton (torch and jax
can share it; nothing here loads Triton).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import softorder.numpy as snp

CASES = [
    ("soft_rank", {}, {"regularization": "l2", "regularization_strength": 0.5}),
    ("soft_rank", {}, {"regularization": "kl", "descending": True}),
    ("soft_rank", {}, {"regularization": "pnorm", "p": 1.5, "regularization_strength": 2.0}),
    ("soft_sort", {}, {"regularization": "l2", "regularization_strength": 0.3}),
    ("soft_sort", {}, {"regularization": "kl", "descending": True}),
    ("soft_topk_mask", {"k": 3}, {"regularization_strength": 0.7}),
    ("soft_topk_mask", {"k": 2}, {"regularization_strength": 0.7, "p": 2.0,
                                  "solver": "dykstra", "max_iter": 5000, "tol": 1e-12}),
    ("soft_topk_magnitude", {"k": 3}, {"regularization_strength": 0.4}),
]

X = np.random.default_rng(21).normal(size=(3, 7, 4))
G = np.random.default_rng(22).normal(size=X.shape)


def _numpy(name, args, kw, x, axis):
    fwd = getattr(snp, name + "_fwd")
    y, res = fwd(x, *args.values(), axis=axis, **kw)
    return y, snp.vjp(res, G)


def _torch(name, args, kw, x, axis):
    import torch

    import softorder.torch as st

    xt = torch.tensor(x, requires_grad=True)
    y = getattr(st, name)(xt, *args.values(), dim=axis, **kw)
    (y * torch.tensor(G)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy()


def _jax(name, args, kw, x, axis):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import softorder.jax as sj

    f = getattr(sj, name)

    def loss(xx):
        return jnp.sum(f(xx, *args.values(), axis=axis, **kw) * G)

    xj = jnp.asarray(x)
    return np.asarray(f(xj, *args.values(), axis=axis, **kw)), np.asarray(jax.grad(loss)(xj))


def _tf(name, args, kw, x, axis):
    import tensorflow as tf

    import softorder.tensorflow as stf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = getattr(stf, name)(xt, *args.values(), axis=axis, **kw)
        loss = tf.reduce_sum(y * G)
    return y.numpy(), tape.gradient(loss, xt).numpy()


@pytest.mark.parametrize("framework", [_torch, _jax, _tf], ids=["torch", "jax", "tensorflow"])
@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("name,args,kw", CASES)
def test_every_framework_gives_the_numpy_core_values_and_gradients(framework, axis, name, args,
                                                                    kw):
    y0, g0 = _numpy(name, args, kw, X, axis)
    y1, g1 = framework(name, args, kw, X, axis)
    assert y1.dtype == np.float64
    assert_allclose(y1, y0, rtol=1e-9, atol=1e-10)
    assert_allclose(g1, g0, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("framework", [_torch, _jax, _tf], ids=["torch", "jax", "tensorflow"])
def test_every_framework_agrees_in_float32(framework):
    x32 = X.astype(np.float32)
    y0 = snp.soft_rank(x32, regularization="kl", regularization_strength=0.5)
    y1, _ = framework("soft_rank", {}, {"regularization": "kl", "regularization_strength": 0.5},
                      x32, -1)
    assert y1.dtype == np.float32
    assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
