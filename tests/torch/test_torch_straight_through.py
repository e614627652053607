"""straight_through=True: the value is the hard operator's (on tie-free input) and every
derivative is the soft operator's at the same strength, in eager mode, under torch.func
(grad, vmap, jvp) and under torch.compile(fullgraph=True)."""

import numpy as np
import pytest
import torch
from _torch_cases import CASES, IDS, spread, torch_fn
from torch.func import grad, jvp, vmap

import softorder.torch as st

HARD = {
    "soft_rank": lambda x, kw, **k: st.hard_rank(x, descending=kw["descending"], **k),
    "soft_sort": lambda x, kw, **k: st.hard_sort(x, descending=kw["descending"], **k),
    "soft_topk_mask": lambda x, kw, **k: st.hard_topk_mask(x, 2, **k),
    "soft_topk_magnitude": lambda x, kw, **k: st.hard_topk_magnitude(x, 2, **k),
}


def _pair(op, args, kw):
    """(straight-through operator, soft operator) with the same options."""
    return (torch_fn(op, args, dict(kw, straight_through=True)), torch_fn(op, args, kw))


def _x(seed, shape=(3, 7)):
    return torch.tensor(spread(np.random.default_rng(seed), shape) * 3.0)  # no ties


@pytest.mark.parametrize("cid,op,args,kw", CASES, ids=IDS)
def test_value_is_the_hard_operators_and_gradient_the_soft_operators(cid, op, args, kw):
    f_st, f_soft = _pair(op, args, kw)
    for dim in (-1, 0):
        x = _x(len(cid), (5, 6)).requires_grad_()
        y = f_st(x, dim=dim)
        assert torch.equal(y, HARD[op](x.detach(), kw, dim=dim))
        c = torch.linspace(-1.0, 2.0, x.numel(), dtype=x.dtype).reshape(x.shape)
        (g_st,) = torch.autograd.grad((y * c).sum(), x)
        (g_soft,) = torch.autograd.grad((f_soft(x, dim=dim) * c).sum(), x)
        assert torch.allclose(g_st, g_soft, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cid,op,args,kw", CASES[::2], ids=IDS[::2])
def test_torch_func_grad_vmap_and_jvp_use_the_soft_derivative(cid, op, args, kw):
    f_st, f_soft = _pair(op, args, kw)
    xs = torch.stack([_x(i, (6,)) for i in range(4)])
    c = torch.arange(1.0, 7.0, dtype=torch.float64)
    loss_st = lambda z: (f_st(z) * c).sum()
    loss_soft = lambda z: (f_soft(z) * c).sum()
    close = lambda a, b: torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    assert close(grad(loss_st)(xs[0]), grad(loss_soft)(xs[0]))
    assert torch.equal(vmap(f_st)(xs), HARD[op](xs, kw))
    assert close(vmap(grad(loss_st))(xs), vmap(grad(loss_soft))(xs))
    t = torch.ones_like(xs[0])
    y, y_dot = jvp(f_st, (xs[0],), (t,))
    assert torch.equal(y, HARD[op](xs[0], kw))
    assert close(y_dot, jvp(f_soft, (xs[0],), (t,))[1])


def test_compiled_fullgraph_straight_through_equals_eager():
    torch._dynamo.reset()
    kw = dict(regularization_strength=0.5, straight_through=True)

    def loss(x):
        c = torch.arange(1.0, x.shape[-1] + 1, dtype=x.dtype)
        return ((st.soft_rank(x, **kw) * c).sum() + (st.soft_sort(x, **kw) * c).sum()
                + (st.soft_topk_mask(x, 2, **kw) * c).sum()
                + (st.soft_topk_magnitude(x, 2, **kw) * c).sum())

    compiled = torch.compile(loss, fullgraph=True)
    x = _x(3, (3, 6))
    xc, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    lc = compiled(xc)
    lc.backward()
    le = loss(xe)
    le.backward()
    assert torch.allclose(lc, le, rtol=1e-12) and torch.allclose(xc.grad, xe.grad, rtol=1e-12)
    # The value is the hard operators'; the gradient the soft operators'.
    c = torch.arange(1.0, 7.0, dtype=x.dtype)
    hard = ((st.hard_rank(x) * c).sum() + (st.hard_sort(x) * c).sum()
            + (st.hard_topk_mask(x, 2) * c).sum() + (st.hard_topk_magnitude(x, 2) * c).sum())
    assert torch.allclose(lc, hard, rtol=1e-12)
    xs = x.clone().requires_grad_()
    soft = dict(regularization_strength=0.5)
    ((st.soft_rank(xs, **soft) * c).sum() + (st.soft_sort(xs, **soft) * c).sum()
     + (st.soft_topk_mask(xs, 2, **soft) * c).sum()
     + (st.soft_topk_magnitude(xs, 2, **soft) * c).sum()).backward()
    assert torch.allclose(xc.grad, xs.grad, rtol=1e-12, atol=1e-12)


def test_straight_through_modules_and_numpy_agree():
    import softorder.numpy as snp

    x = _x(5, (2, 5))
    assert torch.equal(st.SoftRank(straight_through=True)(x), st.hard_rank(x))
    assert torch.equal(st.SoftTopKMask(2, straight_through=True)(x), st.hard_topk_mask(x, 2))
    np.testing.assert_array_equal(
        st.soft_sort(x, straight_through=True).numpy(),
        snp.soft_sort(x.numpy(), straight_through=True))


def test_straight_through_must_be_a_bool():
    with pytest.raises(TypeError, match="^straight_through must be True or False"):
        st.soft_rank(torch.zeros(3), straight_through="yes")
