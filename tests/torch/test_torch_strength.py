"""regularization_strength as a runtime value: a Python float or a 0-d tensor (possibly
requiring grad), an operand of the custom op, so torch.compile does not recompile per value;
its derivative (reverse and forward mode) against finite differences of the NumPy core."""

import numpy as np
import pytest
import torch
import torch._dynamo.testing
from _torch_cases import CASES, IDS, spread
from torch.func import grad, jacfwd, jvp, vmap

import softorder.numpy as snp
import softorder.torch as st
from softorder._src.core import registry as R


def _x(seed, shape=(3, 6)):
    return torch.tensor(spread(np.random.default_rng(seed), shape) * 3.0)


def _with_strength(op, args, kw):
    kw = {k: v for k, v in kw.items() if k != "regularization_strength"}
    return lambda x, s, **k: getattr(st, op)(x, *args, regularization_strength=s, **kw, **k)


@pytest.mark.parametrize("cid,op,args,kw", CASES, ids=IDS)
def test_gradcheck_in_x_and_a_tensor_strength_reverse_and_forward(cid, op, args, kw):
    f = _with_strength(op, args, kw)
    x = _x(len(cid)).requires_grad_()
    s = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, e: f(z, e, dim=0), (x, s), check_forward_ad=True,
                                    check_batched_grad=False, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("cid,op,args,kw", CASES, ids=IDS)
def test_strength_gradient_equals_finite_differences_of_the_numpy_core(cid, op, args, kw):
    x = spread(np.random.default_rng(len(cid) + 1), (4, 7)) * 3.0
    c = np.random.default_rng(2).normal(size=x.shape)
    kw0 = {k: v for k, v in kw.items() if k != "regularization_strength"}
    s0, h = 0.6, 1e-6
    ref = lambda e: float((getattr(snp, op)(x, *args, regularization_strength=e, **kw0) * c)
                          .sum())
    fd = (ref(s0 + h) - ref(s0 - h)) / (2 * h)
    f = _with_strength(op, args, kw)
    s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    (f(torch.tensor(x), s) * torch.tensor(c)).sum().backward()
    tol = 1e-5 if kw.get("solver") == "dykstra" else 1e-6
    assert s.grad.item() == pytest.approx(fd, rel=tol, abs=tol)
    # torch.func: grad in the strength, and forward mode, agree with it.
    loss = lambda e: (f(torch.tensor(x), e) * torch.tensor(c)).sum()
    e0 = torch.tensor(s0, dtype=torch.float64)
    assert grad(loss)(e0).item() == pytest.approx(s.grad.item(), rel=1e-12, abs=1e-14)
    assert jvp(loss, (e0,), (torch.tensor(1.0, dtype=torch.float64),))[1].item() == \
        pytest.approx(s.grad.item(), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("cid,op,args,kw", CASES[::3], ids=IDS[::3])
def test_vmap_over_strengths_and_inputs_equals_a_loop(cid, op, args, kw):
    f = _with_strength(op, args, kw)
    x = _x(4, (2, 6))
    ss = torch.tensor([0.3, 0.6, 1.2], dtype=torch.float64)
    tol = 1e-7 if kw.get("solver") == "dykstra" else 1e-12
    close = lambda a, b: torch.allclose(a, b, rtol=tol, atol=tol)
    assert close(vmap(lambda e: f(x, e))(ss), torch.stack([f(x, e) for e in ss]))
    xs = torch.stack([_x(i, (2, 6)) for i in range(3)])
    assert close(vmap(f)(xs, ss), torch.stack([f(a, e) for a, e in zip(xs, ss)]))
    dloss = grad(lambda e: f(x, e).pow(2).sum())
    assert close(vmap(dloss)(ss), torch.stack([dloss(e) for e in ss]))
    assert close(jacfwd(lambda e: f(x, e))(ss[1]), vmap(jacfwd(lambda e: f(x, e)))(ss)[1])


def test_float_and_tensor_strengths_give_the_same_numbers_any_dtype_and_device_copy():
    x = _x(5, (3, 5)).float()
    ref = st.soft_rank(x, regularization_strength=0.5)
    for s in (0.5, np.float32(0.5), np.array(0.5), torch.tensor(0.5),
              torch.tensor(0.5, dtype=torch.float16), torch.tensor(0.5, dtype=torch.float64)):
        y = st.soft_rank(x, regularization_strength=s)
        assert y.dtype == torch.float32 and torch.equal(y, ref)
    # A float32 strength that requires grad gets a float32 gradient.
    s = torch.tensor(0.5, requires_grad=True)
    st.soft_topk_mask(x, 2, regularization_strength=s).pow(2).sum().backward()
    assert s.grad.dtype == torch.float32 and s.grad.shape == ()


def test_learned_strength_in_a_module_gets_a_gradient():
    layer = st.SoftRank(regularization_strength=torch.nn.Parameter(torch.tensor(0.8)))
    x = _x(6, (4, 5)).float()
    (layer(x) - torch.arange(1.0, 6.0)).pow(2).mean().backward()
    g = layer.regularization_strength.grad
    assert g is not None and torch.isfinite(g) and g != 0


@pytest.mark.parametrize("op,args", [("soft_rank", ()), ("soft_sort", ()),
                                     ("soft_topk_mask", (2,)), ("soft_topk_magnitude", (2,))])
def test_compiled_a_new_strength_does_not_recompile(op, args):
    # 5 float and 5 0-d tensor strengths under torch.compile(fullgraph=True): a 0-d tensor is an
    # operand (one graph for every value); a Python float is specialized on its first value
    # and made dynamic (a SymFloat) on the second, by Dynamo's automatic dynamic: two graphs.
    # The options cache starts empty, as in a fresh process: the eager calls below fill it, and
    # a compiled call that read it would be guarded on its contents and recompile.
    torch._dynamo.reset()
    R._OPTIONS_CACHE.clear()
    cnt = torch._dynamo.testing.CompileCounter()
    f = torch.compile(lambda x, s: getattr(st, op)(x, *args, regularization_strength=s),
                      fullgraph=True, backend=cnt)
    x = _x(7, (3, 6)).float()
    values = [0.3, 0.45, 0.6, 0.9, 1.7]
    for v in values:
        assert torch.allclose(f(x, torch.tensor(v)),
                              getattr(st, op)(x, *args, regularization_strength=v))
    assert cnt.frame_count == 1
    for v in values:
        assert torch.allclose(f(x, v), getattr(st, op)(x, *args, regularization_strength=v))
    assert cnt.frame_count <= 3  # at most 2 graphs for the floats


def test_compiled_strength_gradient_equals_eager():
    torch._dynamo.reset()

    def loss(x, s):
        return (st.soft_sort(x, regularization="kl", regularization_strength=s).pow(2).sum()
                + st.soft_topk_magnitude(x, 2, regularization_strength=s).pow(2).sum())

    compiled = torch.compile(loss, fullgraph=True)
    x = _x(8, (3, 6))
    for v in (0.4, 0.9):
        sc = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        se = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        xc, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
        compiled(xc, sc).backward()
        loss(xe, se).backward()
        assert torch.allclose(sc.grad, se.grad, rtol=1e-10)
        assert torch.allclose(xc.grad, xe.grad, rtol=1e-10, atol=1e-12)


def test_strength_derivative_is_first_order_only_and_refused_under_straight_through():
    x = _x(9, (6,))
    s = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    (gs,) = torch.autograd.grad(st.soft_rank(x, regularization_strength=s).pow(2).sum(), s,
                                create_graph=True)
    with pytest.raises(NotImplementedError, match="second-order"):
        torch.autograd.grad(gs, s)
    with pytest.raises(NotImplementedError, match="second-order"):
        torch.func.hessian(lambda e: st.soft_rank(x, regularization_strength=e).sum())(
            s.detach())
    y = st.soft_rank(x, regularization_strength=s, straight_through=True)
    with pytest.raises(NotImplementedError, match="straight_through=True"):
        y.sum().backward()
    # A constant tensor strength is fine under straight-through, and l2 Hessians in x stay
    # exact with it (reverse over reverse).
    c = torch.tensor(0.5, dtype=torch.float64)
    st.soft_rank(x.clone().requires_grad_(), regularization_strength=c,
                 straight_through=True).sum().backward()
    h = torch.func.hessian(lambda z: st.soft_rank(z, regularization_strength=c).pow(3).sum())(x)
    h0 = torch.func.hessian(lambda z: st.soft_rank(z, regularization_strength=0.5).pow(3).sum())(x)
    assert torch.allclose(h, h0, rtol=1e-12, atol=1e-12)


def test_bad_strength_tensors_raise_clear_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^regularization_strength must be a Python number or "
                                         r"a 0-d tensor; got a tensor of shape \(2,\)"):
        st.soft_rank(x, regularization_strength=torch.ones(2))
    with pytest.raises(ValueError, match=r"0-d tensor; got a tensor of shape \(1,\)"):
        st.soft_topk_mask(x, 1, regularization_strength=torch.ones(1))
    with pytest.raises(TypeError, match=r"^regularization_strength must have a floating dtype"):
        st.soft_sort(x, regularization_strength=torch.tensor(1))
    with pytest.raises(TypeError, match=r"^regularization_strength must have a floating dtype"):
        st.soft_sort(x, regularization_strength=torch.tensor(1 + 1j))
    # On CPU the value of a tensor strength is checked where the kernel reads it.
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^regularization_strength must be positive"):
            st.soft_rank(x, regularization_strength=torch.tensor(bad))
