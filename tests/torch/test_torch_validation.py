"""Boundary cases of issue 7 item 8 for softorder.torch: big-endian NumPy inputs, meta tensors
(shape propagation through the fake kernels, as for built-in ops)."""

import numpy as np
import pytest
import torch

import softorder.numpy as snp
import softorder.torch as st

OPS = [("soft_rank", ()), ("soft_sort", ()), ("soft_topk_mask", (2,)),
       ("soft_topk_magnitude", (2,))]


@pytest.mark.parametrize("name,args", OPS + [("hard_rank", ()), ("hard_topk_mask", (2,))])
def test_big_endian_numpy_arrays_give_the_native_result(name, args):
    x = np.random.default_rng(0).normal(size=(3, 5))
    for dt in (">f8", ">f4"):
        xb = x.astype(dt)
        y = getattr(st, name)(xb, *args)
        ref = getattr(st, name)(np.ascontiguousarray(xb.astype(xb.dtype.newbyteorder("="))),
                                *args)
        assert torch.equal(y, ref)
        if name.startswith("soft"):
            np.testing.assert_allclose(y.numpy(), getattr(snp, name)(xb, *args), rtol=1e-6)


def test_big_endian_isotonic_inputs():
    y = np.array([1.0, 3.0, 2.0, 4.0], dtype=">f8")
    w = np.array([1.0, 2.0, 1.0, 1.0], dtype=">f8")
    got = st.isotonic_regression(y, sample_weight=w)
    assert torch.allclose(got, st.isotonic_regression(torch.tensor([1.0, 3.0, 2.0, 4.0],
                                                                   dtype=torch.float64),
                                                      sample_weight=torch.tensor(
                                                          [1.0, 2.0, 1.0, 1.0],
                                                          dtype=torch.float64)))


@pytest.mark.parametrize("name,args", OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_meta_tensors_propagate_shape_and_dtype(name, args, dtype):
    x = torch.empty(4, 3, 6, device="meta", dtype=dtype, requires_grad=True)
    for dim in (-1, 0):
        y = getattr(st, name)(x, *args, dim=dim, regularization_strength=0.5)
        assert y.device.type == "meta" and y.shape == x.shape and y.dtype == dtype
        (g,) = torch.autograd.grad(y.sum(), x)
        assert g.device.type == "meta" and g.shape == x.shape and g.dtype == dtype
    s = torch.tensor(0.5, device="meta", requires_grad=True)
    y = getattr(st, name)(x, *args, regularization_strength=s)
    gx, gs = torch.autograd.grad(y.sum(), (x, s))
    assert gs.device.type == "meta" and gs.shape == () and gx.shape == x.shape
    _, y_dot = torch.func.jvp(lambda z: getattr(st, name)(z, *args), (x.detach(),),
                              (torch.empty_like(x.detach()),))
    assert y_dot.device.type == "meta" and y_dot.shape == x.shape


def test_meta_isotonic_and_hard_operators():
    y = torch.empty(2, 7, device="meta")
    assert st.isotonic_regression(y, y_max=1.0).shape == (2, 7)
    out = st.isotonic_regression(y, return_blocks=True)
    assert out.block.dtype == torch.int32 and out.block.device.type == "meta"
    assert st.hard_rank(y).shape == (2, 7) and st.hard_topk_mask(y, 2).device.type == "meta"
