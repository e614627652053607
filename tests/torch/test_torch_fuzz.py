"""Property-based: for random shapes, dims, ties and scales, softorder.torch gives the NumPy
core's values and VJPs, in float64."""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as hs
from hypothesis.extra.numpy import array_shapes, arrays
from numpy.testing import assert_allclose

import softorder.numpy as snp
import softorder.torch as st

OPS = [
    ("soft_rank", lambda n: (), {"regularization": "kl", "regularization_strength": 0.3}),
    ("soft_rank", lambda n: (), {"descending": True}),
    ("soft_sort", lambda n: (), {"regularization": "pnorm", "p": 1.5}),
    ("soft_sort", lambda n: (), {"regularization": "kl", "descending": True}),
    ("soft_topk_mask", lambda n: (n // 2,), {"regularization_strength": 0.2}),
    ("soft_topk_magnitude", lambda n: (max(n - 1, 0),), {"p": 2.0}),
]


@given(
    x=arrays(np.float64, array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
             elements=hs.sampled_from([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0, 1e3, -1e-4])
             | hs.floats(-5, 5)),
    which=hs.integers(0, len(OPS) - 1),
    dim_seed=hs.integers(0, 10),
)
def test_random_shapes_ties_and_scales_match_the_numpy_core(x, which, dim_seed):
    name, args_of, kw = OPS[which]
    dim = dim_seed % x.ndim - (dim_seed % 2) * x.ndim  # negative dims too
    args = args_of(x.shape[dim])
    y0, res = getattr(snp, name + "_fwd")(x, *args, axis=dim, **kw)
    g = np.cos(np.arange(x.size, dtype=np.float64)).reshape(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    y = getattr(st, name)(xt, *args, dim=dim, **kw)
    (gx,) = torch.autograd.grad(y, xt, torch.tensor(g)) if x.size else (torch.zeros_like(xt),)
    assert_allclose(y.detach().numpy(), y0, rtol=1e-12, atol=1e-12)
    assert_allclose(gx.numpy(), snp.vjp(res, g), rtol=1e-12, atol=1e-12)
