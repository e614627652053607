"""Issue 8 item 5: exact second order for every regularizer and p, on both JAX backends.

``jax.jacrev(jax.jacfwd(f))`` once had NaN entries for p = 3 (the link |u|^r, r < 1, has an
infinite slope at u = 0, and inf * 0 appeared in the replay's derivative); it must equal
``jax.hessian`` and pass ``check_grads(order=2)``.
"""

import _jax_cases  # noqa: F401  (x64)
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import softorder.jax as sj

X = jnp.array(np.random.default_rng(0).normal(size=6))

OPS = [
    ("mask", lambda x, p, be: sj.soft_topk_mask(x, 3, p=p, regularization_strength=0.5,
                                                backend=be)),
    ("magnitude", lambda x, p, be: sj.soft_topk_magnitude(x, 3, p=p, regularization_strength=0.5,
                                                          backend=be)),
    ("rank_pnorm", lambda x, p, be: sj.soft_rank(x, regularization="pnorm", p=p,
                                                 regularization_strength=0.5, backend=be)),
]


@pytest.mark.parametrize("backend", ["callback", "jax"])
@pytest.mark.parametrize("p", [3.0, 1.5])
@pytest.mark.parametrize("name,op", OPS, ids=[o[0] for o in OPS])
def test_reverse_over_forward_hessian_is_finite_and_equals_hessian(name, op, p, backend):
    g = lambda x: op(x, p, backend)
    f = lambda x: jnp.sum(g(x) ** 2)
    h1 = jax.jacrev(jax.jacfwd(f))(X)
    h2 = jax.hessian(f)(X)
    assert not jnp.isnan(h1).any()
    np.testing.assert_allclose(h1, h2, rtol=1e-9, atol=1e-9)
    assert np.abs(np.asarray(h1)).max() > 0
    check_grads(g, (X,), order=2, modes=("fwd", "rev"), atol=1e-4, rtol=1e-4)


# Issue 8 item 2: the infinity contract holds to second order. Rows with +inf and -inf: the
# derivatives in the finite entries are those of the limit M -> infinity, i.e. equal to a
# large finite stand-in's (here exactly: the infinite entries' blocks stay apart at M = 1e4),
# and no NaN comes out of a branch that is not taken (jnp.where with an infinite branch).
INF_OPS = [
    ("rank_kl", lambda x, be: sj.soft_rank(x, regularization="kl", regularization_strength=0.7,
                                           backend=be)),
    ("mask_p4/3", lambda x, be: sj.soft_topk_mask(x, 2, p=4 / 3, regularization_strength=0.7,
                                                  backend=be)),
    ("magnitude_p3", lambda x, be: sj.soft_topk_magnitude(x, 3, p=3.0,
                                                          regularization_strength=0.7, backend=be)),
]


@pytest.mark.parametrize("backend", ["callback", "jax"])
@pytest.mark.parametrize("name,op", INF_OPS, ids=[o[0] for o in INF_OPS])
def test_second_order_in_the_finite_entries_of_a_row_with_infinities_is_the_limit(name, op,
                                                                                   backend):
    xf = jnp.array([0.3, -0.45, 0.52, 0.1])
    tail = np.array([np.inf, -np.inf])
    wts = jnp.cos(jnp.arange(6.0))

    def f(v, t):
        y = op(jnp.concatenate([v, jnp.asarray(t)]), backend)
        y = jnp.where(jnp.isfinite(y), y, 0.0)  # magnitude: u = inf at a selected +inf
        return jnp.sum(y * wts) + jnp.sum(y**2)

    h1 = jax.jacrev(jax.jacfwd(lambda v: f(v, tail)))(xf)
    h2 = jax.hessian(lambda v: f(v, tail))(xf)
    h_stand_in = jax.hessian(lambda v: f(v, 1e4 * np.sign(tail)))(xf)
    assert np.abs(np.asarray(h_stand_in)).max() > 0.1
    np.testing.assert_allclose(h1, h_stand_in, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h2, h_stand_in, rtol=1e-9, atol=1e-12)
