"""torch.compile(fullgraph=True): no graph break, static and dynamic shapes, forward and
backward, the eager numbers. Few compiles (each costs seconds)."""

import pytest
import torch

import softorder.torch as st


def _loss(x):
    r = st.soft_rank(x, regularization="kl", regularization_strength=0.5)
    m = st.soft_topk_mask(x, 2, dim=0)
    s = st.soft_sort(x, descending=True, regularization="pnorm", p=1.5)
    g = st.soft_topk_magnitude(x, 2, p=2.0, solver="dykstra")
    iso = st.isotonic_regression(x, y_max=0.5)
    return (r * m).sum() + (s ** 2).sum() + (g * x).sum() + iso.sum()


@pytest.mark.parametrize("dynamic", [False, True])
def test_compiled_fullgraph_forward_and_backward_equal_eager(dynamic):
    torch._dynamo.reset()
    compiled = torch.compile(_loss, fullgraph=True, dynamic=dynamic)
    shapes = [(3, 6), (5, 9)] if dynamic else [(3, 6)]
    for shape in shapes:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        xc = x.clone().requires_grad_()
        xe = x.clone().requires_grad_()
        lc = compiled(xc)
        lc.backward()
        le = _loss(xe)
        le.backward()
        assert torch.allclose(lc, le, rtol=1e-5, atol=1e-5)
        assert torch.allclose(xc.grad, xe.grad, rtol=1e-5, atol=1e-5)


def test_compiled_module_in_a_training_step():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), st.SoftRank(regularization_strength=0.3))
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    target = torch.arange(1.0, 9.0).expand(6, 8)
    step = torch.compile(lambda: ((model(x) - target) ** 2).mean(), fullgraph=True)
    loss = step()
    loss.backward()
    g_compiled = model[0].weight.grad.clone()
    model.zero_grad()
    ((model(x) - target) ** 2).mean().backward()
    assert torch.allclose(g_compiled, model[0].weight.grad, rtol=1e-5, atol=1e-6)
    assert g_compiled.abs().sum() > 0


def test_custom_operators_pass_opcheck():
    # Schema, fake (meta) kernels, aliasing and autograd registration checked by torch itself.
    from softorder._src.core import registry as R
    from softorder._src.frontends.torch import frontend as F

    x = torch.randn(3, 7, dtype=torch.float64)
    s = torch.tensor(0.5, dtype=torch.float64)
    for name, kw in [("soft_rank", dict(regularization="kl")),
                     ("soft_sort", dict(descending=True)),
                     ("soft_topk_mask", dict(k=2, p=2.0, solver="dykstra", max_iter=100)),
                     ("soft_topk_magnitude", dict(k=2, straight_through=True)),
                     ("soft_topk_magnitude", dict(k=2))]:
        fields = F._fields(R.get(name).make_options(shape=x.shape, **kw))
        torch.library.opcheck(F._forward_op, (x, s, name, *fields))
        y, *res = F._forward_op(x, s, name, *fields)
        for op in (F._jvp_op, F._vjp_op):
            torch.library.opcheck(op, (torch.randn(3, 7, dtype=torch.float64), *res, name))
        if not kw.get("straight_through"):
            torch.library.opcheck(F._tangent_op, (x, y, s, *res, name, *fields))
    from softorder._src.isotonic import pav as P

    c = torch.rand(3, 7, dtype=torch.float64) + 0.5
    torch.library.opcheck(F._isotonic_op, (x, torch.zeros_like(x), c, P.KIND_L2, 1.0, 1.0, True,
                                           False))
