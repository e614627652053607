"""Derivatives of softorder.jax: reverse and forward mode against the NumPy core's vjp/jvp and
finite differences; second order (check_grads order 2) for every regularization."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jax_cases import SMOOTH_CASES, case, spread
from jax.test_util import check_grads
from numpy.testing import assert_allclose

import softorder.jax as sj


@pytest.mark.parametrize("name", ["soft_rank-l2-asc", "soft_topk_mask-p2-dykstra"] + SMOOTH_CASES)
def test_check_grads_second_order_forward_and_reverse(name, rng):
    f, _ = case(name, "callback")
    x = jnp.asarray(spread(rng, (2, 5)))
    w = jnp.asarray(rng.normal(size=x.shape))
    check_grads(lambda v: jnp.sum(f(v) * w) + jnp.sum(f(v) ** 2), (x,), order=2,
                modes=["fwd", "rev"], eps=1e-5, atol=1e-5, rtol=1e-5)


def test_hessian_is_nonzero_for_kl_and_zero_for_l2(rng):
    # kl's Jacobian varies with x (so must the Hessian); l2 is piecewise linear (exactly 0).
    x = jnp.asarray(spread(rng, (6,)))
    w = jnp.asarray(rng.normal(size=x.shape))
    for reg, zero in (("kl", False), ("l2", True)):
        hess = jax.hessian(lambda v, reg=reg: jnp.sum(sj.soft_rank(v, regularization=reg) * w))
        hv = np.asarray(hess(x))
        assert (np.abs(hv).max() == 0) == zero
        gr = jax.grad(lambda v, reg=reg: jnp.sum(sj.soft_rank(v, regularization=reg) * w))
        e = np.eye(6)
        fd = np.stack([(np.asarray(gr(x + 1e-6 * e[i])) - np.asarray(gr(x - 1e-6 * e[i]))) / 2e-6
                       for i in range(6)])
        assert_allclose(hv, fd, atol=1e-6)


def test_jacfwd_equals_jacrev_and_jit(rng):
    x = jnp.asarray(rng.normal(size=(2, 5)))
    f = lambda v: sj.soft_topk_magnitude(v, 2, p=1.5, regularization_strength=0.5)
    jf = jax.jit(jax.jacfwd(f))(x)
    jr = jax.jacrev(f)(x)
    assert np.abs(np.asarray(jf)).max() > 1e-3
    assert_allclose(np.asarray(jf), np.asarray(jr), rtol=1e-12, atol=1e-12)


def test_isotonic_regression_derivatives_in_y_and_weights(rng):
    y = jnp.asarray(spread(rng, (2, 6)))
    c = jnp.asarray(rng.uniform(0.5, 2.0, size=(2, 6)))
    for bounds, order in (((None, None), 2), ((-0.2, 0.3), 1)):
        f = lambda y, c, b=bounds: sj.isotonic_regression(
            y, sample_weight=c, y_min=b[0], y_max=b[1], increasing=False)
        check_grads(f, (y, c), order=order, modes=["fwd", "rev"], eps=1e-6, atol=1e-5,
                    rtol=1e-5)
    g = jax.jacrev(lambda c: sj.isotonic_regression(y, sample_weight=c))(c)
    assert np.abs(np.asarray(g)).max() > 1e-3
