"""The pure-JAX backend (parallel block-merging PAV, Dykstra in jnp) against the Numba core."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jax_cases import ALL_CASES, case, spread
from numpy.testing import assert_allclose

import softorder.jax as sj
import softorder.numpy as snp
from softorder._src.core.dykstra import dykstra_decreasing
from softorder._src.frontends.jax.backend import dykstra_jax, find_blocks
from softorder._src.isotonic import pav


@pytest.mark.parametrize("name", ALL_CASES)
def test_pure_jax_backend_matches_numpy_values_and_gradients(name, rng):
    f, np_fwd = case(name, "jax")
    x = rng.normal(size=(3, 5, 4))
    u = rng.normal(size=x.shape)
    y, vjp = jax.jit(lambda v: jax.vjp(lambda v: f(v, axis=1), v))(jnp.asarray(x))
    y0, res = np_fwd(x, axis=1)
    assert_allclose(np.asarray(y), y0, rtol=1e-10, atol=1e-11)
    assert_allclose(np.asarray(vjp(jnp.asarray(u))[0]), snp.vjp(res, u), rtol=1e-9, atol=1e-10)


def test_pure_jax_backend_hessian_equals_callback_hessian(rng):
    # (the callback's Hessian is checked against finite differences in test_jax_grad.py)
    x = jnp.asarray(spread(rng, (5,)))
    hs = [np.asarray(jax.hessian(lambda v, b=b: jnp.sum(case("soft_rank-kl-asc", b)[0](v) ** 2))(x))
          for b in ("jax", "callback")]
    assert np.abs(hs[1]).max() > 1e-3
    assert_allclose(hs[0], hs[1], rtol=1e-9, atol=1e-10)


def _rows(rng):
    n = 40
    rows = [rng.normal(size=n) * 3, np.sort(rng.normal(size=n))[::-1] * 0.2,
            np.round(rng.normal(size=n)), np.zeros(n)]
    stair = np.arange(n, 0, -1.0)  # decreasing: no violation ...
    stair[-1] = 100.0  # ... but one outlier at the end cascades through all of it
    rows.append(stair)
    return np.stack(rows)


@pytest.mark.parametrize("kind,r", [(pav.KIND_L2, 1.0), (pav.KIND_KL, 1.0), (pav.KIND_PNORM, 3.0),
                                    (pav.KIND_PNORM, 2.0), (pav.KIND_MAG, 3.0)])
def test_block_merging_pav_finds_the_numba_blocks(kind, r, rng):
    s = _rows(rng)
    m, n = s.shape
    w = np.broadcast_to(np.arange(n, 0, -1.0), (m, n)).copy()
    if kind == pav.KIND_KL:
        w = np.log(w)
    if kind == pav.KIND_MAG:
        s = np.abs(s)
        w = (np.arange(n) < 7).astype(float) * np.ones((m, 1))
    cw = np.ones_like(s)
    if kind == pav.KIND_L2:
        cw = rng.uniform(0.5, 2, size=s.shape)
    ref = pav.pav_batch(s, w, cw, kind, r, 0.7, False, False)
    got = find_blocks(jnp.asarray(s), jnp.asarray(w), jnp.asarray(cw), kind, r, 0.7)
    np.testing.assert_array_equal(np.asarray(got), ref[4])
    from softorder._src.frontends.jax.backend import JAX

    out = JAX.pav(jnp.asarray(s), jnp.asarray(w), jnp.asarray(cw), kind, r, 0.7, False, False)
    for a, b in zip(out[:3], ref[:3]):
        assert_allclose(np.asarray(a), b, rtol=1e-9, atol=1e-9)


def test_dykstra_in_jnp_matches_numpy_dykstra(rng):
    y = rng.normal(size=(5, 9))
    y[2, 3] = np.nan
    wts = rng.uniform(0.5, 2.0, size=y.shape)
    for max_iter, tol in ((3, 1e-9), (2000, 1e-12)):
        ref = dykstra_decreasing(y, wts, max_iter=max_iter, tol=tol)
        sol, block, it = dykstra_jax(jnp.asarray(y), jnp.asarray(wts), max_iter, tol)
        assert int(it) == ref.n_iter
        assert_allclose(np.asarray(sol), ref.solution, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(block)[[0, 1, 3, 4]], ref.block[[0, 1, 3, 4]])
    # converged: the exact (PAV) solution
    exact = pav.pav_batch(np.nan_to_num(y), np.zeros_like(y), wts, pav.KIND_L2, 1.0, 1.0, True,
                          False)[0]
    assert_allclose(np.asarray(sol)[[0, 1, 3, 4]], exact[[0, 1, 3, 4]], atol=1e-9)


def test_pure_jax_backend_with_infinite_entries_matches_callback():
    x = jnp.asarray([[0.3, -jnp.inf, 1.2, -0.5, -jnp.inf], [jnp.inf, 0.1, 0.2, -2.0, 0.0]])
    for f in (lambda v, b: sj.soft_rank(v, backend=b),
              lambda v, b: sj.soft_topk_mask(v, 2, p=2.0, backend=b)):
        assert_allclose(np.asarray(f(x, "jax")), np.asarray(f(x, "callback")), rtol=1e-12)
