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
