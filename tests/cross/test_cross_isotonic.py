"""Isotonic regression on every front end: scikit-learn's solution (an independent reference)
for weights, bounds and both directions, the NumPy core's blocks, and a VJP in ``y`` that
matches finite differences."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.isotonic import IsotonicRegression

import softorder.isotonic as sis

Y = np.random.default_rng(61).normal(size=(3, 7))
W = np.random.default_rng(62).uniform(0.5, 2.0, size=Y.shape)


def _sklearn(y, w, lo, hi, increasing):
    model = IsotonicRegression(y_min=lo, y_max=hi, increasing=increasing)
    w = np.ones_like(y) if w is None else w
    return np.stack([model.fit_transform(np.arange(y.shape[1]), row, sample_weight=wr)
                     for row, wr in zip(y, w)])


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("bounds", [(None, None), (-0.5, 0.7)])
@pytest.mark.parametrize("weighted", [False, True])
def test_isotonic_regression_is_sklearns_with_the_numpy_blocks(backend, increasing, bounds,
                                                               weighted):
    w = W if weighted else None
    kw = dict(sample_weight=w, y_min=bounds[0], y_max=bounds[1], increasing=increasing)
    got = backend.call("isotonic_regression", Y, return_blocks=True, **kw)
    assert_allclose(backend.to_numpy(got.solution), _sklearn(Y, w, *bounds, increasing),
                    rtol=1e-12, atol=1e-12)
    ref = sis.isotonic_regression(Y, return_blocks=True, **kw)
    block = backend.to_numpy(got.block)
    assert block.dtype == np.int32
    assert_array_equal(block, ref.block)
    # Along another axis: the same rows.
    yt = backend("isotonic_regression", Y.T.copy(), axis=0, **dict(
        kw, sample_weight=None if w is None else W.T.copy()))
    assert_allclose(yt.T, backend.to_numpy(got.solution), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bounds", [(None, None), (-0.3, 0.4)])
def test_isotonic_regression_vjp_in_y_matches_finite_differences(framework, bounds):
    rng = np.random.default_rng(63)
    y = rng.normal(size=(2, 6))
    u, v = rng.normal(size=y.shape), rng.normal(size=y.shape)
    kw = dict(sample_weight=W[:2, :6], y_min=bounds[0], y_max=bounds[1], increasing=False)
    h = 1e-6
    fd = (framework("isotonic_regression", y + h * v, **kw)
          - framework("isotonic_regression", y - h * v, **kw)) / (2 * h)
    assert np.abs(fd).max() > 1e-3
    _, g = framework.value_and_vjp("isotonic_regression", y, u, **kw)
    _, t = framework.jvp("isotonic_regression", y, v, **kw)
    assert_allclose(t, fd, rtol=1e-5, atol=1e-7)
    assert np.isclose(np.sum(g * v), np.sum(u * fd), rtol=1e-5, atol=1e-7)


def test_isotonic_regression_refuses_bad_weights_and_dtypes(backend):
    with pytest.raises(ValueError, match="sample_weight must be positive"):
        backend("isotonic_regression", np.ones((2, 3)), sample_weight=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="sample_weight must have the shape of y"):
        backend("isotonic_regression", np.ones((2, 3)), sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="^y must be real"):
        backend("isotonic_regression", np.ones((2, 3), dtype=np.complex128))
    with pytest.raises(TypeError, match="^sample_weight must be real"):
        backend("isotonic_regression", np.ones((2, 3)),
                sample_weight=np.ones((2, 3), dtype=np.complex64))
