"""softorder.torch gives softorder.numpy's values and gradients: every operator and option, any
dim, every float dtype, non-contiguous inputs, empty batches, n = 1, NaN rows."""

import numpy as np
import pytest
import torch
from _torch_cases import CASES, IDS, numpy_fwd, spread, torch_fn
from numpy.testing import assert_allclose

import softorder.isotonic as siso
import softorder.numpy as snp
import softorder.torch as st


@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("cid,op,args,kw", CASES, ids=IDS)
def test_values_and_vjp_equal_the_numpy_core(cid, op, args, kw, dim):
    rng = np.random.default_rng(abs(hash(cid)) % 1000)
    x = rng.normal(size=(4, 5, 3))
    g = rng.normal(size=x.shape)
    y0, res = numpy_fwd(op, args, kw)(x, axis=dim)
    xt = torch.tensor(x, requires_grad=True)
    y = torch_fn(op, args, kw)(xt, dim=dim)
    (gx,) = torch.autograd.grad(y, xt, torch.tensor(g))
    assert y.dtype == torch.float64 and y.shape == xt.shape
    assert_allclose(y.detach().numpy(), y0, rtol=1e-12, atol=1e-12)
    assert_allclose(gx.numpy(), snp.vjp(res, g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cid,op,args,kw", CASES[::3], ids=IDS[::3])
def test_forward_mode_equals_the_numpy_jvp(cid, op, args, kw):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6))
    t = rng.normal(size=x.shape)
    _, res = numpy_fwd(op, args, kw)(x)
    _, ydot = torch.func.jvp(torch_fn(op, args, kw), (torch.tensor(x),), (torch.tensor(t),))
    assert_allclose(ydot.numpy(), snp.jvp(res, t), rtol=1e-12, atol=1e-12)


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


@pytest.mark.parametrize("shape,dim", [((0, 5), -1), ((3, 0, 4), -1), ((2, 0), 1), ((4, 1), -1),
                                       ((1,), 0)])
def test_empty_batches_and_single_entries(shape, dim):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    xn = x.detach().numpy()
    for name, args in (("soft_rank", ()), ("soft_sort", ()), ("soft_topk_mask", (0,)),
                       ("soft_topk_magnitude", (0,))):
        y = getattr(st, name)(x, *args, dim=dim)
        y.sum().backward()
        assert y.shape == x.shape and x.grad.shape == x.shape
        assert_allclose(y.detach().numpy(), getattr(snp, name)(xn, *args, axis=dim), atol=1e-12)
        x.grad = None
    if x.numel():  # n = 1: the single rank is 1, the sort is the value
        assert torch.equal(st.soft_rank(x, dim=dim), torch.ones_like(x))


@pytest.mark.parametrize("cid,op,args,kw", CASES[::2], ids=IDS[::2])
def test_a_nan_row_stays_in_its_row(cid, op, args, kw):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 5))
    x[1, 2] = np.nan
    xt = torch.tensor(x, requires_grad=True)
    y = torch_fn(op, args, kw)(xt)
    y.sum().backward()
    y0, res = numpy_fwd(op, args, kw)(x)
    assert torch.isnan(y[1]).all()
    # The gradient is the core's: NaN in that row (with either solver).
    assert_allclose(xt.grad.numpy(), snp.vjp(res, np.ones_like(x)), rtol=1e-12, atol=1e-12)
    assert torch.isnan(xt.grad[1]).all()
    clean = torch_fn(op, args, kw)(torch.tensor(x[[0, 2]]))
    assert torch.equal(y[[0, 2]], clean)
    assert torch.isfinite(xt.grad[[0, 2]]).all()
    assert_allclose(y.detach().numpy(), y0, rtol=1e-12, atol=1e-12)


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


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("bounds", [(None, None), (-0.3, 0.4)])
def test_isotonic_regression_equals_softorder_isotonic(increasing, bounds):
    rng = np.random.default_rng(6)
    y = rng.normal(size=(3, 9))
    w = rng.uniform(0.5, 2.0, size=y.shape)
    lo, hi = bounds
    for dim in (0, 1):
        got = st.isotonic_regression(torch.tensor(y), sample_weight=torch.tensor(w), y_min=lo,
                                     y_max=hi, increasing=increasing, dim=dim,
                                     return_blocks=True)
        ref = siso.isotonic_regression(y, sample_weight=w, y_min=lo, y_max=hi,
                                       increasing=increasing, axis=dim, return_blocks=True)
        assert_allclose(got.solution.numpy(), ref.solution, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(got.block.numpy(), ref.block)
        assert got.block.dtype == torch.int32


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
