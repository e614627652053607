"""The two features added through the registry (issue 7, items 5 and 7), on every front end:

* ``straight_through=True``: the value is the hard operator's, the derivative the soft
  operator's at the same strength;
* ``regularization_strength`` as a 0-d array/tensor (traced too): the same values as the
  Python float, and a gradient in the strength equal to finite differences and to the core's
  ``strength_tangent``.
"""

import numpy as np
import pytest
from adapters import ADAPTERS
from cases import AXIS, CASES, FEW, HARD, point
from numpy.testing import assert_allclose, assert_array_equal

import softorder.numpy as snp

NUMPY = ADAPTERS["numpy"]


@pytest.mark.parametrize("op,args,kw", CASES)
def test_straight_through_value_is_the_hard_operator(backend, op, args, kw):
    x = point(51)  # tie-free, in magnitude too: the hard operator is well defined
    y = backend(op, x, *args, axis=AXIS, straight_through=True, **kw)
    hard_kw = {"descending": kw["descending"]} if "descending" in kw else {}
    assert_array_equal(y, getattr(snp, HARD[op])(x, *args, axis=AXIS, **hard_kw))


@pytest.mark.parametrize("op,args,kw", CASES)
def test_straight_through_derivatives_are_the_soft_operators(backend, op, args, kw):
    x = point(52)
    rng = np.random.default_rng(53)
    u, v = rng.normal(size=x.shape), rng.normal(size=x.shape)
    _, g_soft = NUMPY.value_and_vjp(op, x, u, *args, axis=AXIS, **kw)
    _, t_soft = NUMPY.jvp(op, x, v, *args, axis=AXIS, **kw)
    assert np.abs(g_soft).max() > 1e-3
    _, g = backend.value_and_vjp(op, x, u, *args, axis=AXIS, straight_through=True, **kw)
    _, t = backend.jvp(op, x, v, *args, axis=AXIS, straight_through=True, **kw)
    assert_allclose(g, g_soft, rtol=1e-9, atol=1e-10)
    assert_allclose(t, t_soft, rtol=1e-9, atol=1e-10)


def _split(kw):
    kw = dict(kw)
    return kw.pop("regularization_strength"), kw


@pytest.mark.parametrize("op,args,kw", CASES)
def test_a_0d_strength_gives_the_float_values_and_its_gradient_matches_finite_differences(
        backend, op, args, kw):
    s, kw = _split(kw)
    x = point(54)
    u = np.random.default_rng(55).normal(size=x.shape)
    y, ds = backend.value_and_strength_grad(op, x, s, u, *args, axis=AXIS, **kw)
    assert_allclose(y, NUMPY(op, x, *args, axis=AXIS, regularization_strength=s, **kw),
                    rtol=1e-9, atol=1e-10)
    h = 1e-6 * s
    fd = np.sum(u * (backend(op, x, *args, axis=AXIS, regularization_strength=s + h, **kw)
                     - backend(op, x, *args, axis=AXIS, regularization_strength=s - h, **kw))
                ) / (2 * h)
    assert abs(fd) > 1e-3  # a real, nonzero derivative at this point
    assert np.isclose(ds, fd, rtol=1e-5, atol=1e-6)
    if backend is not NUMPY:  # the core's strength_tangent, to rounding
        _, ds0 = NUMPY.value_and_strength_grad(op, x, s, u, *args, axis=AXIS, **kw)
        assert np.isclose(ds, ds0, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("op,args,kw", FEW)
def test_a_traced_strength_gives_the_eager_values_and_gradient(backend, op, args, kw):
    """Inside ``jax.jit`` / ``tf.function`` the strength is a traced input (eager elsewhere)."""
    s, kw = _split(kw)
    x = point(56)
    u = np.random.default_rng(57).normal(size=x.shape)
    y0, ds0 = backend.value_and_strength_grad(op, x, s, u, *args, axis=AXIS, **kw)
    for strength in (s, 2.5 * s):  # a second value: no retrace/recompile needed to be right
        y, ds = backend.value_and_strength_grad(op, x, strength, u, *args, axis=AXIS,
                                                traced=True, **kw)
        ref_y, ref_ds = NUMPY.value_and_strength_grad(op, x, strength, u, *args, axis=AXIS, **kw)
        assert_allclose(y, ref_y, rtol=1e-9, atol=1e-10)
        assert np.isclose(ds, ref_ds, rtol=1e-9, atol=1e-10)
    assert_allclose(y0, NUMPY(op, x, *args, axis=AXIS, regularization_strength=s, **kw),
                    rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("op,args,kw", FEW)
def test_a_float32_0d_strength_keeps_float32(backend, op, args, kw):
    s, kw = _split(kw)
    x = point(58).astype(np.float32)
    u = np.ones_like(x)
    y, ds = backend.value_and_strength_grad(op, x, s, u, *args, axis=AXIS, **kw)
    assert y.dtype == np.float32
    ref = NUMPY(op, x.astype(np.float64), *args, axis=AXIS, regularization_strength=s, **kw)
    assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))
    _, ds0 = NUMPY.value_and_strength_grad(op, x.astype(np.float64), s, u, *args, axis=AXIS,
                                           **kw)
    assert np.isclose(ds, ds0, rtol=1e-4, atol=1e-4)
