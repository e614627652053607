"""softorder.torch gives softorder.numpy's values and gradients: every operator and option, any
dim, every float dtype, non-contiguous inputs, empty batches, n = 1, NaN rows."""

import numpy as np
import pytest
import torch
from _torch_cases import CASES, IDS, numpy_fwd, spread, torch_fn
from numpy.testing import assert_allclose

import softorder.numpy as snp
import softorder.torch as st


@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2),
                                       (torch.float32, 2e-6)])
@pytest.mark.parametrize("cid,op,args,kw", CASES[1::4], ids=IDS[1::4])
def test_low_precision_keeps_the_dtype_and_the_numbers(cid, op, args, kw, dtype, tol):
    rng = np.random.default_rng(2)
    x = torch.tensor(spread(rng, (3, 8)) * 4).to(dtype)
    xr = x.double().numpy()  # the same (rounded) input in float64
    xt = x.clone().requires_grad_()
    y = torch_fn(op, args, kw)(xt)
    y.sum().backward()
    y0, res = numpy_fwd(op, args, kw)(xr)
    assert y.dtype == dtype and xt.grad.dtype == dtype
    scale = max(1.0, np.abs(y0).max())
    assert_allclose(y.double().detach().numpy(), y0, rtol=tol, atol=tol * scale)
    assert_allclose(xt.grad.double().numpy(), snp.vjp(res, np.ones_like(xr)), rtol=tol,
                    atol=tol * 4)


def test_non_contiguous_inputs_and_cotangents():
    rng = np.random.default_rng(3)
    base = torch.tensor(rng.normal(size=(6, 10)))
    views = [base.t(), base[:, ::2], base.unsqueeze(0).expand(2, 6, 10)]
    for v in views:
        assert not v.is_contiguous()
        for f in (lambda z: st.soft_rank(z, dim=0, regularization="kl"),
                  lambda z: st.soft_topk_magnitude(z, 2, dim=-1)):
            vt = v.clone().requires_grad_()
            g = torch.ones(v.shape, dtype=v.dtype).expand(v.shape)  # a stride-0 cotangent
            y = f(v)
            (gx,) = torch.autograd.grad(f(vt), vt, g)
            (gc,) = torch.autograd.grad(f(vt.contiguous()), vt, g.contiguous())
            assert torch.equal(y, f(v.contiguous()))
            assert torch.equal(gx, gc)



def test_hard_operators_equal_numpy_and_are_the_soft_limits():
    rng = np.random.default_rng(5)
    x = spread(rng, (4, 7))
    xt = torch.tensor(x)
    for dim in (0, 1):
        for desc in (False, True):
            assert_allclose(st.hard_sort(xt, dim=dim, descending=desc).numpy(),
                            snp.hard_sort(x, axis=dim, descending=desc))
            assert_allclose(st.hard_rank(xt, dim=dim, descending=desc).numpy(),
                            snp.hard_rank(x, axis=dim, descending=desc))
        assert_allclose(st.hard_topk_mask(xt, 3, dim=dim).numpy(),
                        snp.hard_topk_mask(x, 3, axis=dim))
        assert_allclose(st.hard_topk_magnitude(xt, 3, dim=dim).numpy(),
                        snp.hard_topk_magnitude(x, 3, axis=dim))
    # Soft -> hard as the strength -> 0 (l2 ranks exact below the smallest gap, 0.12).
    assert torch.equal(st.soft_rank(xt, regularization_strength=0.1), st.hard_rank(xt))
    assert_allclose(st.soft_topk_mask(xt, 3, regularization_strength=1e-4).numpy(),
                    st.hard_topk_mask(xt, 3).numpy(), atol=1e-9)



def test_nn_modules_call_the_functions():
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(3, 6)))
    mods = [
        (st.SoftSort(dim=0, descending=True, regularization="kl", regularization_strength=0.5),
         st.soft_sort(x, dim=0, descending=True, regularization="kl",
                      regularization_strength=0.5)),
        (st.SoftRank(regularization="pnorm", p=1.5), st.soft_rank(x, regularization="pnorm",
                                                                  p=1.5)),
        (st.SoftTopKMask(2, p=2.0, solver="dykstra"), st.soft_topk_mask(x, 2, p=2.0,
                                                                         solver="dykstra")),
        (st.SoftTopKMagnitude(3, regularization_strength=0.2),
         st.soft_topk_magnitude(x, 3, regularization_strength=0.2)),
    ]
    for mod, ref in mods:
        assert isinstance(mod, torch.nn.Module) and list(mod.parameters()) == []
        assert torch.equal(mod(x), ref)
        assert "dim=" in repr(mod)
    model = torch.nn.Sequential(torch.nn.Linear(6, 6), st.SoftRank(regularization_strength=2.0))
    model(x.float()).sum().backward()
    assert model[0].weight.grad is not None
