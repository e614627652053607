"""softorder.jax values against softorder.numpy: every option, axis, backend, jit, nested vmap,
dtypes, edge cases and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose

import softorder.isotonic as sis
import softorder.jax as sj
import softorder.numpy as snp

BACKENDS = ["callback", "jax"]



@pytest.mark.parametrize("backend", BACKENDS)
def test_jit_and_nested_vmap_equal_a_python_loop(backend, rng):
    x = rng.normal(size=(2, 3, 6))
    fns = [lambda v: sj.soft_rank(v, regularization="kl", backend=backend)]
    if backend == "callback":  # (pure-JAX compiles are slow on CPU: one case there)
        fns += [lambda v: sj.soft_topk_mask(v, 2, regularization_strength=0.3, backend=backend),
                lambda v: sj.soft_sort(v, regularization="pnorm", backend=backend)]
    for f in fns:
        loop = np.stack([np.stack([np.asarray(f(jnp.asarray(x[i, j]))) for j in range(3)])
                         for i in range(2)])
        nested = jax.jit(jax.vmap(jax.vmap(f)))(jnp.asarray(x))
        assert_allclose(np.asarray(nested), loop, rtol=1e-12, atol=1e-12)
        # vmap over a middle axis
        va = jax.vmap(f, in_axes=1, out_axes=1)(jnp.asarray(x))
        ref = np.stack([np.asarray(f(jnp.asarray(x[:, j]))) for j in range(3)], 1)
        assert_allclose(np.asarray(va), ref, rtol=1e-12, atol=1e-12)


def test_callback_under_vmap_is_one_batched_call(rng, monkeypatch):
    from softorder._src.frontends.jax import frontend as jax_frontend

    calls = []
    orig = jax_frontend._host_rows

    def counting(static, x, strength):
        calls.append(np.shape(x))
        return orig(static, x, strength)

    monkeypatch.setattr(jax_frontend, "_host_rows", counting)
    x = jnp.asarray(rng.normal(size=(7, 3, 5)))
    jax.vmap(lambda v: sj.soft_rank(v, regularization_strength=0.123, backend="callback"))(x)
    assert calls == [(7, 3, 5)]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
def test_output_keeps_input_dtype_and_matches_float64(dtype, rng):
    x = jnp.asarray(rng.normal(size=(4, 9))).astype(dtype)
    x64 = np.asarray(x.astype(jnp.float64))
    tol = {jnp.float16: 1e-2, jnp.bfloat16: 5e-2, jnp.float32: 1e-6, jnp.float64: 1e-12}[dtype]
    for backend, reg in (("callback", "kl"), ("jax", "l2")):
        y = sj.soft_rank(x, regularization=reg, backend=backend)
        assert y.dtype == dtype
        ref = snp.soft_rank(x64, regularization=reg)
        assert_allclose(np.asarray(y.astype(jnp.float64)), ref, rtol=tol, atol=tol * 5)
        g = jax.grad(lambda v, b=backend: jnp.sum(sj.soft_sort(v, backend=b) ** 2))(x)
        assert g.dtype == dtype


def test_isotonic_regression_matches_numpy_values_and_blocks(rng):
    y = rng.normal(size=(6, 7))
    w = rng.uniform(0.5, 2.0, size=y.shape)
    combos = [(b, inc, bd, wt) for b in BACKENDS for inc in (True, False)
              for bd in ((None, None), (-0.5, 0.7)) for wt in (None, w)]
    for backend, increasing, bounds, weights in combos:
        if backend == "jax" and (increasing or bounds[0] is None):
            continue  # pure-JAX compiles are slow on CPU: the harder half of the combinations
        kw = dict(increasing=increasing, y_min=bounds[0], y_max=bounds[1], axis=0)
        ref = sis.isotonic_regression(y, sample_weight=weights, return_blocks=True, **kw)
        got = sj.isotonic_regression(jnp.asarray(y), sample_weight=weights, return_blocks=True,
                                     backend=backend, **kw)
        assert got.block.dtype == jnp.int32
        assert_allclose(np.asarray(got.solution), ref.solution, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(got.block), ref.block)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_row_stays_in_its_row(backend, rng):
    x = rng.normal(size=(3, 6))
    x[1, 2] = np.nan
    fns = [lambda v: sj.soft_topk_magnitude(v, 2, backend=backend),
           lambda v: sj.soft_topk_mask(v, 2, p=2.0, solver="dykstra", backend=backend)]
    if backend == "callback":
        fns.append(lambda v: sj.soft_rank(v, regularization="kl", backend=backend))
    for f in fns:
        y = np.asarray(f(jnp.asarray(x)))
        g = np.asarray(jax.grad(lambda v, f=f: jnp.sum(f(v) ** 2))(jnp.asarray(x)))
        assert np.isnan(y[1]).all() and np.isnan(g[1]).all()
        clean = np.asarray(f(jnp.asarray(x[[0, 2]])))
        assert_allclose(y[[0, 2]], clean, rtol=1e-12)
        assert np.isfinite(g[[0, 2]]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_entry_rows_and_empty_batches(backend):
    one = jnp.asarray([[2.0], [-1.0]])
    assert_allclose(np.asarray(sj.soft_rank(one, backend=backend)), [[1.0], [1.0]])
    assert_allclose(np.asarray(sj.soft_sort(one, regularization="kl", backend=backend)),
                    np.asarray(one))
    assert_allclose(np.asarray(sj.soft_topk_mask(one, 1, backend=backend)), [[1.0], [1.0]])
    g = jax.grad(lambda v: jnp.sum(sj.soft_sort(v, backend=backend)))(one)
    assert_allclose(np.asarray(g), [[1.0], [1.0]])
    empty = jnp.zeros((0, 5))
    assert sj.soft_rank(empty, backend=backend).shape == (0, 5)
    assert jax.grad(lambda v: jnp.sum(sj.soft_rank(v, backend=backend)))(empty).shape == (0, 5)



def test_default_backend_is_callback_on_cpu():
    assert sj.default_backend() == "callback"
    assert sj.BACKENDS == ("callback", "jax")


@pytest.mark.parametrize("call,exc,word", [
    (lambda x: sj.soft_rank(x, regularization_strength=0.0), ValueError, "regularization_strength"),
    (lambda x: sj.soft_rank(x, regularization_strength="a"), TypeError, "regularization_strength"),
    (lambda x: sj.soft_rank(x, regularization="l3"), ValueError, "regularization"),
    (lambda x: sj.soft_sort(x, regularization="pnorm", p=1.0), ValueError, "p"),
    (lambda x: sj.soft_rank(x, axis=2), ValueError, "axis"),
    (lambda x: sj.soft_rank(x, axis=1.0), TypeError, "axis"),
    (lambda x: sj.soft_topk_mask(x, 5), ValueError, "k=5"),
    (lambda x: sj.soft_topk_mask(x, 1.5), TypeError, "k"),
    (lambda x: sj.soft_topk_magnitude(x, 1, solver="dykstra"), ValueError, "p=2"),
    (lambda x: sj.soft_topk_mask(x, 1, solver="x"), ValueError, "solver"),
    (lambda x: sj.soft_topk_mask(x, 1, p=2.0, solver="dykstra", max_iter=0), ValueError,
     "max_iter"),
    (lambda x: sj.soft_rank(x.astype(jnp.complex64)), TypeError, "^x must be real"),
    (lambda x: sj.soft_rank(np.array([[1j, 2]])), TypeError, "^x must be real"),
    (lambda x: sj.soft_rank(jnp.float64(1.0)), ValueError, "0-d"),
    (lambda x: sj.soft_rank(x, backend="gpu"), ValueError, "backend"),
    (lambda x: sj.isotonic_regression(x, sample_weight=-jnp.ones_like(x)), ValueError,
     "sample_weight"),
    (lambda x: sj.isotonic_regression(x, sample_weight=jnp.ones(3)), ValueError,
     "sample_weight"),
    (lambda x: sj.soft_rank(x, regularization_strength=jnp.ones(2)), TypeError,
     "regularization_strength"),
    (lambda x: sj.soft_rank(x, regularization_strength=True), TypeError,
     "regularization_strength"),
    (lambda x: sj.soft_rank(x, regularization_strength=jnp.array(-1.0)), ValueError,
     "regularization_strength"),
    (lambda x: jax.jit(lambda p: sj.soft_topk_mask(x, 1, p=p))(2.0), TypeError, "p"),
    (lambda x: sj.soft_rank(x, straight_through=1), TypeError, "straight_through"),
])
def test_bad_arguments_raise_naming_the_argument(call, exc, word):
    x = jnp.ones((2, 4))
    with pytest.raises(exc, match=word):
        call(x)
