"""SparseTopKRouter: sparsity of the gates, their properties, gradients, the hard limit, expert
choice's capacity, load and auxiliary loss by hand, torch.compile."""

import math

import numpy as np
import pytest
import torch

import softorder.torch as st
from softorder.torch import SparseTopKRouter


def _router(d=6, e=8, k=2, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    r = SparseTopKRouter(d, e, k, **kw).to(dtype)
    with torch.no_grad():  # logits of order 1 (the default init gives about 0.4)
        r.linear.weight.normal_(0.0, 1.0 / math.sqrt(d))
    return r


def _tokens(*shape, seed=1, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _hard_gates(logits, k):
    """The gating the router replaces: softmax, then keep the hard top-k."""
    probs = torch.softmax(logits, dim=-1)
    vals, idx = probs.topk(k, dim=-1)
    return torch.zeros_like(probs).scatter(-1, idx, vals)


@pytest.mark.parametrize("p", [4 / 3, 2.0])
@pytest.mark.parametrize("strength", [0.05, 0.5, 1.0, 5.0])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_token_choice_gates_exactly_zero_outside_expert_indices(p, strength, k):
    r = _router(k=k, p=p, regularization_strength=strength)
    out = r(_tokens(4, 50, 6))
    assert out.gates.shape == (4, 50, 8) and out.expert_indices.shape == (4, 50, k)
    chosen = torch.zeros_like(out.gates, dtype=torch.bool).scatter(-1, out.expert_indices, True)
    assert (out.gates[~chosen] == 0).all()
    assert ((out.gates != 0).sum(-1) <= k).all()
    # the k indices are distinct and ordered by decreasing gate
    assert (chosen.sum(-1) == k).all()
    g = out.gates.gather(-1, out.expert_indices)
    assert (g[..., :-1] >= g[..., 1:]).all()


@pytest.mark.parametrize("strength", [0.1, 1.0])
def test_token_choice_gates_lie_between_zero_and_the_router_probabilities(strength):
    r = _router(regularization_strength=strength)
    x = _tokens(200, 6)
    out = r(x)
    probs = torch.softmax(r.linear(x), -1)
    topk_mass = probs.topk(2, -1).values.sum(-1)
    assert (out.gates >= 0).all()
    assert (out.gates <= probs + 1e-15).all()
    assert (out.gates.sum(-1) <= topk_mass + 1e-12).all()
    # strictly softer somewhere (the test would pass for the hard router otherwise)
    assert (out.gates.sum(-1) < topk_mass - 1e-6).any()


def test_uncontested_rows_give_exactly_the_hard_gates_p2():
    # p = 2: the mask is clip((z - tau) / lambda, 0, 1), hard iff z_(k) - z_(k+1) >= lambda.
    r = _router(p=2.0, regularization_strength=0.3)
    x = _tokens(400, 6)
    logits = r.linear(x)
    zs = logits.sort(-1, descending=True).values
    clear = (zs[:, 1] - zs[:, 2]) > 0.3 + 1e-9
    assert clear.sum() > 100 and (~clear).sum() > 20
    gates = r(x).gates
    hard = _hard_gates(logits, 2)
    torch.testing.assert_close(gates[clear], hard[clear], rtol=1e-12, atol=1e-14)
    assert (gates[~clear].sum(-1) < hard[~clear].sum(-1)).all()


@pytest.mark.parametrize("p", [4 / 3, 2.0])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_vanishing_strength_gives_softmax_then_hard_topk(p, k):
    r = _router(k=k, p=p, regularization_strength=1e-7)
    x = _tokens(3, 40, 6)
    out = r(x)
    logits = r.linear(x)
    torch.testing.assert_close(out.gates, _hard_gates(logits, k), rtol=1e-10, atol=1e-12)
    assert torch.equal(out.expert_indices, logits.topk(k, -1).indices)


def test_gates_are_continuous_where_the_kth_and_next_experts_swap():
    # Keeping the k largest soft-mask entries would jump here (both are equal and positive
    # at the swap); the router's gates do not.
    r = SparseTopKRouter(3, 3, 1, regularization_strength=0.5).double()
    with torch.no_grad():
        r.linear.weight.copy_(torch.eye(3, dtype=torch.float64))
    for d in (1e-3, 1e-6):
        below = r(torch.tensor([[1.0, 1.0 - d, -1.0]], dtype=torch.float64)).gates
        above = r(torch.tensor([[1.0 - d, 1.0, -1.0]], dtype=torch.float64)).gates
        assert (below - above).abs().max() < 5 * d
    tie = r(torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64))
    assert (tie.gates == 0).all()  # fewer than k nonzero: the listed expert's gate is 0
    assert tie.expert_indices.tolist() == [[0]]


@pytest.mark.parametrize("mode", ["token_choice", "expert_choice"])
@pytest.mark.parametrize("p", [4 / 3, 2.0])
def test_gradients_to_router_weights_and_tokens_match_finite_differences(mode, p):
    r = _router(d=3, e=4, k=2, mode=mode, p=p, regularization_strength=0.7, bias=True)
    x = _tokens(5, 3, seed=3).requires_grad_()
    params = dict(r.named_parameters())
    names = list(params)

    def gates(x, *ps):
        return torch.func.functional_call(r, dict(zip(names, ps)), (x,)).gates

    assert torch.autograd.gradcheck(gates, (x, *params.values()), eps=1e-6, atol=1e-7)
    out = r(x)
    (out.gates * _tokens(5, 4, seed=4)).sum().backward()
    assert r.linear.weight.grad.abs().sum() > 0 and r.linear.bias.grad.abs().sum() > 0


def test_the_next_expert_gets_a_gradient_on_contested_rows():
    # the subtracted (k+1)-th mask value passes a gradient to the (k+1)-th logit
    r = SparseTopKRouter(3, 3, 1, regularization_strength=0.5).double()
    with torch.no_grad():
        r.linear.weight.copy_(torch.eye(3, dtype=torch.float64))
    x = torch.tensor([[1.0, 0.8, -1.0]], dtype=torch.float64, requires_grad=True)
    r(x).gates.sum().backward()
    assert x.grad[0, 1] < 0  # raising the runner-up lowers the winner's gate


@pytest.mark.parametrize("capacity_factor", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("strength", [1e-7, 0.3, 3.0])
def test_expert_choice_respects_capacity(capacity_factor, strength):
    r = _router(k=2, mode="expert_choice", capacity_factor=capacity_factor,
                regularization_strength=strength)
    x = _tokens(3, 10, 6)
    out = r(x)
    c = math.ceil(capacity_factor * 30 * 2 / 8)
    assert r.capacity(30) == c == st.router_capacity(30, 8, 2, capacity_factor)
    assert out.gates.shape == (3, 10, 8) and out.expert_indices.shape == (8, c)
    g = out.gates.reshape(30, 8)
    assert ((g != 0).sum(0) <= c).all()
    assert torch.equal(out.load, (g != 0).sum(0))
    chosen = torch.zeros_like(g, dtype=torch.bool)
    chosen[out.expert_indices, torch.arange(8)[:, None]] = True
    assert (g[~chosen] == 0).all()
    gi = g.T.gather(1, out.expert_indices)
    assert (gi[:, :-1] >= gi[:, 1:]).all()
    probs = torch.softmax(r.linear(x).reshape(30, 8), -1)
    if strength < 1e-3:  # Zhou et al.'s expert choice: each expert's top-c token probabilities
        vals, idx = probs.topk(c, dim=0)
        hard = torch.zeros_like(probs).scatter(0, idx, vals)
        torch.testing.assert_close(g, hard, rtol=1e-10, atol=1e-12)
        assert torch.equal(out.load, torch.full((8,), c))
    else:
        assert (g <= probs + 1e-15).all()


def test_expert_choice_with_capacity_of_all_tokens_gives_the_softmax():
    r = _router(k=4, mode="expert_choice", capacity_factor=2.0)
    x = _tokens(10, 6)
    out = r(x)
    assert r.capacity(10) == 10
    torch.testing.assert_close(out.gates, torch.softmax(r.linear(x), -1))


@pytest.mark.parametrize("mode", ["token_choice", "expert_choice"])
def test_load_and_aux_loss_equal_a_hand_computation(mode):
    r = _router(e=4, k=2, mode=mode, regularization_strength=0.4, load_balancing_weight=0.01)
    x = _tokens(2, 7, 6)
    out = r(x)
    gates = out.gates.detach().reshape(14, 4).numpy()
    logits = r.linear(x).detach().reshape(14, 4).numpy()
    load = [sum(1 for t in range(14) if gates[t, e] != 0) for e in range(4)]
    assert out.load.tolist() == load and out.load.dtype == torch.int64
    mean_prob = [sum(math.exp(logits[t, e]) / sum(math.exp(v) for v in logits[t])
                     for t in range(14)) / 14 for e in range(4)]
    aux = 0.01 * 4 * sum(load[e] / (14 * 2) * mean_prob[e] for e in range(4))
    assert out.aux_loss.shape == () and abs(out.aux_loss.item() - aux) < 1e-14
    out.aux_loss.backward()  # the mean probability carries the gradient
    assert r.linear.weight.grad.abs().sum() > 0


def test_aux_loss_is_a_zero_scalar_without_weight_and_minimal_when_balanced():
    out = _router()(_tokens(5, 6))
    assert out.aux_loss.shape == () and out.aux_loss.item() == 0.0
    # Switch's normalization: a balanced load and balanced probabilities give the weight.
    r = SparseTopKRouter(2, 2, 1, load_balancing_weight=0.5).double()
    with torch.no_grad():
        r.linear.weight.copy_(torch.eye(2, dtype=torch.float64))
    out = r(torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64))
    assert out.load.tolist() == [1, 1]
    assert abs(out.aux_loss.item() - 0.5) < 1e-15


def test_drop_in_replacement_for_softmax_topk_gating():
    # docs/routers_and_pruning.md: the hard gating lines and the router at a small strength
    d, e, k = 6, 8, 2
    lin = torch.nn.Linear(d, e, bias=False).double()
    x = _tokens(4, 9, d)
    probs = torch.softmax(lin(x), dim=-1)
    top_vals, top_idx = probs.topk(k, dim=-1)
    gates_hard = torch.zeros_like(probs).scatter(-1, top_idx, top_vals)
    router = SparseTopKRouter(d, e, k, regularization_strength=1e-6).double()
    router.linear.load_state_dict(lin.state_dict())
    gates, idx, load, aux = router(x)
    torch.testing.assert_close(gates, gates_hard)
    assert torch.equal(idx, top_idx)
    assert load.sum().item() == 4 * 9 * k


def test_strength_tensor_buffer_and_float32():
    r = _router(dtype=torch.float32, regularization_strength=torch.tensor(0.5))
    out = r(_tokens(5, 6, dtype=torch.float32))
    assert out.gates.dtype == torch.float32 and out.aux_loss.dtype == torch.float32
    r.regularization_strength = torch.tensor(1e-7)
    out = r(_tokens(5, 6, dtype=torch.float32))
    assert ((out.gates != 0).sum(-1) == 2).all()


def test_compiled_fullgraph_router_equals_eager():
    torch._dynamo.reset()
    for mode in ("token_choice", "expert_choice"):
        r = _router(mode=mode, load_balancing_weight=0.1, dtype=torch.float32)
        x = _tokens(4, 6, 6, dtype=torch.float32)

        def loss(x, r=r):
            out = r(x)
            return (out.gates ** 2).sum() + out.aux_loss

        compiled = torch.compile(loss, fullgraph=True)
        lc = compiled(x)
        lc.backward()
        gc = r.linear.weight.grad.clone()
        r.zero_grad()
        le = loss(x)
        le.backward()
        torch.testing.assert_close(lc, le)
        torch.testing.assert_close(gc, r.linear.weight.grad)
        assert gc.abs().sum() > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(k=0), "k must be an integer in 1..n_experts=8"),
    (dict(k=9), "k must be an integer in 1..n_experts=8"),
    (dict(mode="tokens"), "mode must be one of"),
    (dict(capacity_factor=0.0), "capacity_factor must be positive"),
    (dict(p=1.0), "p must be > 1"),
    (dict(solver="dykstra"), "needs p=2"),
    (dict(regularization_strength=-1.0), "regularization_strength must be positive"),
    (dict(load_balancing_weight=-0.1), "load_balancing_weight must be >= 0"),
])
def test_invalid_hyperparameters_raise_naming_the_argument(kwargs, match):
    args = dict(d_model=6, n_experts=8, k=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SparseTopKRouter(args.pop("d_model"), args.pop("n_experts"), args.pop("k"), **args)


def test_wrong_token_width_raises():
    with pytest.raises(ValueError, match=r"x must have shape \[..., d_model=6\]"):
        _router()(torch.zeros(3, 5, dtype=torch.float64))


def test_dykstra_solver_close_to_pav():
    x = _tokens(20, 6)
    a = _router(p=2.0, regularization_strength=0.5)(x).gates
    b = _router(p=2.0, regularization_strength=0.5, solver="dykstra")(x).gates
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-6)
