"""Property-based fuzzing: shapes, axes, ties and scales from 1e-6 to 1e9: no crash, no NaN."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softorder.numpy import (
    jvp,
    soft_rank_fwd,
    soft_sort_fwd,
    soft_topk_magnitude_fwd,
    soft_topk_mask_fwd,
    vjp,
)

scales = st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e9])
# Small integers times a scale: plenty of exact ties.
arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
                    elements=st.integers(-4, 4).map(float))


@given(x=arrays, scale=scales, strength=scales, data=st.data(),
       reg=st.sampled_from(["l2", "kl", "pnorm"]), descending=st.booleans())
def test_sort_and_rank_never_crash_or_return_nan(x, scale, strength, data, reg, descending):
    x = x * scale
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    for fwd in (soft_rank_fwd, soft_sort_fwd):
        y, res = fwd(x, axis=axis, regularization=reg, regularization_strength=strength,
                     descending=descending)
        assert y.shape == x.shape
        if reg == "kl" and fwd is soft_sort_fwd and scale * 4 / strength > 1e300:
            continue
        assert np.all(np.isfinite(y)), (x, y)
        g = vjp(res, np.ones_like(x))
        t = jvp(res, np.ones_like(x))
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(t))
        if fwd is soft_rank_fwd:
            np.testing.assert_allclose(y.sum(axis=axis), n * (n + 1) / 2, rtol=1e-8)


@given(x=arrays, scale=scales, strength=scales, data=st.data(),
       p=st.sampled_from([2.0, 4 / 3, 1.5, 3.0]))
def test_topk_never_crashes_or_returns_nan(x, scale, strength, data, p):
    x = x * scale
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    k = data.draw(st.integers(0, x.shape[axis]))
    y, res = soft_topk_mask_fwd(x, k, axis=axis, regularization_strength=strength, p=p)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=axis), k, rtol=1e-6, atol=1e-6)
    assert np.all(np.isfinite(vjp(res, np.ones_like(x))))
    y, res = soft_topk_magnitude_fwd(x, k, axis=axis, regularization_strength=strength, p=p)
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(vjp(res, np.ones_like(x))))
