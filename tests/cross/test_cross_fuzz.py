"""Property-based: random shapes (empty and n = 1 included), axes, ties, scales and infinities:
every front end gives the NumPy core's values and VJPs, in float64."""

import numpy as np
from adapters import ADAPTERS
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra.numpy import array_shapes, arrays
from numpy.testing import assert_allclose

NUMPY = ADAPTERS["numpy"]
# One fixed option set per operator (JAX compiles once per option set and shape).
OPS = [
    ("soft_rank", lambda n: (), {"regularization": "kl", "regularization_strength": 0.3}),
    ("soft_sort", lambda n: (), {"regularization": "pnorm", "descending": True}),
    ("soft_topk_mask", lambda n: (n // 2,), {"regularization_strength": 0.2}),
    ("soft_topk_magnitude", lambda n: (max(n - 1, 0),), {"p": 2.0}),
]


@settings(max_examples=12, deadline=None)
@given(
    x=arrays(np.float64, array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
             elements=hs.sampled_from([-3.0, -1.0, 0.0, 0.25, 1.0, 1e3, -1e-4, -np.inf])
             # Normal floats only: XLA on CPU flushes subnormals to zero, so JAX sees a
             # subnormal and 0 as a tie (docs/conventions.md); the NumPy core does not.
             | hs.floats(-5, 5, allow_subnormal=False)),
    which=hs.integers(0, len(OPS) - 1),
    axis_seed=hs.integers(0, 10),
)
def test_random_shapes_ties_and_scales_give_the_numpy_core_values_and_vjps(framework, x, which,
                                                                            axis_seed):
    op, args_of, kw = OPS[which]
    axis = axis_seed % x.ndim - (axis_seed % 2) * x.ndim  # negative axes too
    args = args_of(x.shape[axis])
    u = np.cos(np.arange(x.size, dtype=np.float64)).reshape(x.shape)
    y0, g0 = NUMPY.value_and_vjp(op, x, u, *args, axis=axis, **kw)
    y, g = framework.value_and_vjp(op, x, u, *args, axis=axis, **kw)
    assert y.shape == x.shape and g.shape == x.shape
    assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    assert_allclose(g, g0, rtol=1e-11, atol=1e-12)
