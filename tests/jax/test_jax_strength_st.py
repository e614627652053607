"""softorder.jax: the strength is a traced operand (no recompilation, exact gradient, usable
inside jit), straight-through mode, and NumPy inputs of either byte order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jax_cases import spread
from numpy.testing import assert_allclose

import softorder.jax as sj
import softorder.numpy as snp
from softorder._src.frontends.jax import frontend

BACKENDS = ["callback", "jax"]
OPS = {  # name -> (jax op of (x, strength, backend, **kw), hard NumPy op of x)
    "soft_rank": (lambda x, s, b, **kw: sj.soft_rank(x, regularization="kl",
                                                      regularization_strength=s, backend=b, **kw),
                  snp.hard_rank),
    "soft_sort": (lambda x, s, b, **kw: sj.soft_sort(x, regularization="pnorm",
                                                      regularization_strength=s, backend=b, **kw),
                  snp.hard_sort),
    "soft_topk_mask": (lambda x, s, b, **kw: sj.soft_topk_mask(x, 2, regularization_strength=s,
                                                               backend=b, **kw),
                       lambda x: snp.hard_topk_mask(x, 2)),
    "soft_topk_magnitude": (lambda x, s, b, **kw: sj.soft_topk_magnitude(
        x, 2, p=2.0, regularization_strength=s, backend=b, **kw),
        lambda x: snp.hard_topk_magnitude(x, 2)),
}


# soft_sort's strength is in units of 1/x: at 0.6 it is still exact on gaps of 0.12.
S0 = {"soft_sort": 30.0}


def test_fifty_strengths_compile_one_executable(rng):
    x = jnp.asarray(rng.normal(size=(3, 7)))
    f = jax.jit(lambda v, s: sj.soft_rank(v, regularization_strength=s))
    before = frontend._apply._cache_size()
    for s in np.linspace(0.1, 2.0, 50):
        f(x, float(s))
        sj.soft_topk_mask(x, 2, regularization_strength=float(s))  # eager calls too
    assert f._cache_size() == 1
    assert frontend._apply._cache_size() - before <= 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPS))
def test_grad_in_strength_matches_finite_differences(name, backend, rng):
    op, _ = OPS[name]
    x = jnp.asarray(spread(rng, (2, 6)))
    w = jnp.asarray(rng.normal(size=x.shape))
    loss = lambda s: jnp.sum(op(x, s, backend) * w)
    s0, h = S0.get(name, 0.6), 1e-6
    g = jax.grad(loss)(s0)
    fd = (loss(s0 + h) - loss(s0 - h)) / (2 * h)
    assert abs(float(fd)) > 1e-4
    assert_allclose(float(g), float(fd), rtol=1e-5, atol=1e-7)
    # and in forward mode, jointly with x (a 0-d array strength)
    t = jnp.asarray(rng.normal(size=x.shape))
    _, jv = jax.jvp(lambda v, s: op(v, s, backend), (x, jnp.asarray(s0)), (t, jnp.asarray(1.0)))
    fd2 = (op(x + h * t, s0 + h, backend) - op(x - h * t, s0 - h, backend)) / (2 * h)
    assert_allclose(np.asarray(jv), np.asarray(fd2), rtol=1e-5, atol=1e-6)


def test_second_derivative_in_strength_matches_finite_differences(rng):
    x = jnp.asarray(spread(rng, (2, 6)))
    w = jnp.asarray(rng.normal(size=x.shape))
    for b in BACKENDS:
        loss = lambda s, b=b: jnp.sum(sj.soft_rank(x, regularization_strength=s, backend=b) * w)
        g, h = jax.grad(loss), 1e-5
        assert_allclose(float(jax.grad(g)(0.6)), float((g(0.6 + h) - g(0.6 - h)) / (2 * h)),
                        rtol=1e-5, atol=1e-7)


def test_strength_scheduled_inside_jit(rng):
    x = jnp.asarray(rng.normal(size=(4, 5)))

    @jax.jit
    def train(x):
        def step(carry, i):
            eps = 1.0 * 0.9 ** i  # a traced schedule
            return carry + jnp.sum(sj.soft_rank(x, regularization_strength=eps) ** 2), None

        return jax.lax.scan(step, 0.0, jnp.arange(5.0))[0]

    ref = sum(np.sum(snp.soft_rank(np.asarray(x), regularization_strength=0.9 ** i) ** 2)
              for i in range(5))
    assert_allclose(float(train(x)), ref, rtol=1e-12)
    # vmapped over strengths: one batched callback, each row with its own strength
    ss = jnp.asarray([0.3, 1.0, 2.5])
    got = jax.vmap(lambda s: sj.soft_rank(x, regularization_strength=s))(ss)
    for gi, s in zip(got, [0.3, 1.0, 2.5]):
        assert_allclose(np.asarray(gi), snp.soft_rank(np.asarray(x), regularization_strength=s),
                        rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPS))
def test_straight_through_value_is_hard_and_gradient_is_soft(name, backend, rng):
    op, hard = OPS[name]
    x = jnp.asarray(spread(rng, (3, 6)))  # tie-free
    u = jnp.asarray(rng.normal(size=x.shape))
    t = jnp.asarray(rng.normal(size=x.shape))
    s0 = S0.get(name, 0.5)
    st = jax.jit(lambda v: op(v, s0, backend, straight_through=True))
    soft = lambda v: op(v, s0, backend)
    assert_allclose(np.asarray(st(x)), hard(np.asarray(x)), rtol=1e-12, atol=1e-12)
    assert_allclose(np.asarray(jax.vmap(st)(x)), hard(np.asarray(x)), rtol=1e-12, atol=1e-12)
    g_st = jax.grad(lambda v: jnp.sum(st(v) * u))(x)
    g_soft = jax.grad(lambda v: jnp.sum(soft(v) * u))(x)
    assert np.abs(np.asarray(g_soft)).max() > 1e-3
    assert_allclose(np.asarray(g_st), np.asarray(g_soft), rtol=1e-12, atol=1e-12)
    y, jv = jax.jvp(st, (x,), (t,))
    assert_allclose(np.asarray(y), hard(np.asarray(x)), rtol=1e-12, atol=1e-12)
    assert_allclose(np.asarray(jv), np.asarray(jax.jvp(soft, (x,), (t,))[1]), rtol=1e-12,
                    atol=1e-12)
    with pytest.raises(NotImplementedError, match="straight_through"):
        jax.grad(lambda s: jnp.sum(op(x, s, backend, straight_through=True)))(0.5)


def test_big_endian_numpy_inputs_work(rng):
    x = rng.normal(size=(3, 5))
    xb = x.astype(">f8")
    for f in (lambda v: sj.soft_rank(v, regularization_strength=np.float64(0.5).astype(">f8")),
              lambda v: sj.soft_topk_magnitude(v, 2)):
        assert_allclose(np.asarray(f(xb)), np.asarray(f(x)), rtol=0, atol=0)
