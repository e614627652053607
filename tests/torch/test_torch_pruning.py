"""SoftTopKMagnitudePruner: the effective weights are the operator's, exact sparsity after
freeze, a training loop that keeps working, layer vs global scope, the schedule, state_dict."""

import math

import pytest
import torch
from torch.nn.utils import prune

import softorder.torch as st
from softorder.torch import SoftTopKMagnitudePruner, pruning_schedule


def _mlp(seed=0, dtype=torch.float64, scales=(1.0, 1.0)):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        m[0].weight.mul_(scales[0])
        m[2].weight.mul_(scales[1])
    return m.to(dtype)


def _weights(m):
    return [m[0].weight.detach().clone(), m[2].weight.detach().clone()]


def _keep(s, n):
    return int(round((1 - s) * n))


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("p", [4 / 3, 2.0])
def test_effective_weights_are_the_soft_topk_magnitude_of_the_originals(scope, p):
    m = _mlp()
    w0 = _weights(m)
    pr = SoftTopKMagnitudePruner(m, 0.7, scope=scope, p=p, regularization_strength=0.05)
    eff = pr.effective_weights()
    if scope == "layer":
        want = [st.soft_topk_magnitude(w.reshape(1, -1), _keep(0.7, w.numel()), p=p,
                                       regularization_strength=0.05).reshape(w.shape)
                for w in w0]
    else:
        flat = torch.cat([w.reshape(-1) for w in w0])
        y = st.soft_topk_magnitude(flat, _keep(0.7, flat.numel()), p=p,
                                   regularization_strength=0.05)
        want = [y[:96].reshape(16, 6), y[96:].reshape(3, 16)]
    for e, w in zip(eff, want):
        torch.testing.assert_close(e, w, rtol=0, atol=0)
    # the effective weights are exactly sparse already, and the originals are untouched
    assert pr.sparsity().total > 0.5
    torch.testing.assert_close(m[0].parametrizations.weight.original, w0[0], rtol=0, atol=0)
    # the bias is not pruned
    assert not torch.nn.utils.parametrize.is_parametrized(m[0], "bias")


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_vanishing_strength_is_hard_magnitude_pruning(scope):
    m = _mlp()
    w0 = _weights(m)
    pr = SoftTopKMagnitudePruner(m, 0.6, scope=scope, regularization_strength=1e-9)
    if scope == "layer":
        want = [st.hard_topk_magnitude(w.reshape(1, -1), _keep(0.6, w.numel())).reshape(w.shape)
                for w in w0]
    else:
        flat = torch.cat([w.reshape(-1) for w in w0])
        y = st.hard_topk_magnitude(flat, _keep(0.6, flat.numel()))
        want = [y[:96].reshape(16, 6), y[96:].reshape(3, 16)]
    for e, w in zip(pr.effective_weights(), want):
        torch.testing.assert_close(e, w, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.95])
@pytest.mark.parametrize("permanent", [False, True])
def test_freeze_reaches_the_target_sparsity_exactly(scope, sparsity, permanent):
    m = _mlp(seed=2)
    pr = SoftTopKMagnitudePruner(m, sparsity, scope=scope, regularization_strength=0.5)
    before = pr.effective_weights()
    pr.freeze(permanent=permanent)
    rep = pr.sparsity()
    zeros = [int((m[0].weight == 0).sum()), int((m[2].weight == 0).sum())]
    if scope == "layer":
        assert zeros == [96 - _keep(sparsity, 96), 48 - _keep(sparsity, 48)]
        assert rep.layers == {"0.weight": zeros[0] / 96, "2.weight": zeros[1] / 48}
    else:
        assert sum(zeros) == 144 - _keep(sparsity, 144)
    assert rep.total == sum(zeros) / 144
    # the kept entries are the largest effective magnitudes, with their effective values
    for b, w in zip(before, (m[0].weight, m[2].weight)):
        kept = w != 0
        torch.testing.assert_close(w[kept], b[kept], rtol=0, atol=0)
        if (~kept).any() and kept.any():
            assert b[kept].abs().min() >= b[~kept].abs().max()
    assert prune.is_pruned(m) == (not permanent)
    names = {n for n, _ in m.named_parameters()}
    assert ("0.weight_orig" in names) == (not permanent)
    assert ("0.weight" in names) == permanent


def test_global_and_layer_scope_differ_as_expected():
    # layer 0's weights are 10x larger: one global top-k keeps mostly layer 0, the per-layer
    # top-k keeps the same fraction of each
    s = 0.6
    m_layer, m_global = _mlp(scales=(10.0, 1.0)), _mlp(scales=(10.0, 1.0))
    p_layer = SoftTopKMagnitudePruner(m_layer, s, scope="layer", regularization_strength=1e-6)
    p_global = SoftTopKMagnitudePruner(m_global, s, scope="global", regularization_strength=1e-6)
    for pr in (p_layer, p_global):
        pr.freeze()
    lay, glo = p_layer.sparsity(), p_global.sparsity()
    assert lay.layers["0.weight"] == pytest.approx(1 - _keep(s, 96) / 96)
    assert lay.layers["2.weight"] == pytest.approx(1 - _keep(s, 48) / 48)
    assert glo.layers["2.weight"] > 0.95 and glo.layers["0.weight"] < 0.45
    assert glo.total == pytest.approx(1 - _keep(s, 144) / 144)


def _task(n=256, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = (x[:, :3] * torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)).argmax(-1)
    return x, y


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_training_loop_keeps_working_and_the_loss_decreases(scope):
    m = _mlp(seed=3)
    opt = torch.optim.Adam(m.parameters(), lr=3e-2)  # created before the pruner: still works
    w_param = m[0].weight
    steps = 40
    pr = SoftTopKMagnitudePruner(m, 0.8, scope=scope,
                                 schedule=pruning_schedule(0.8, steps, initial_strength=0.3,
                                                           final_strength=1e-3))
    x, y = _task(128)
    losses = []
    for _ in range(steps + 10):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        pr.step()
        losses.append(loss.item())
    assert m[0].parametrizations.weight.original.grad is not None
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0]
    assert pr.current_sparsity == pytest.approx(0.8)
    pr.freeze()
    assert m[0].weight_orig is w_param  # the optimizer keeps updating the same Parameter
    frozen_zero = m[0].weight == 0
    kept_before = m[0].weight_orig.detach().clone()
    acc_before = (m(x).argmax(-1) == y).double().mean()
    for _ in range(10):  # fine-tuning keeps the pruned entries at zero
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    assert (m[0].weight[frozen_zero] == 0).all()
    assert not torch.equal(m[0].weight_orig[~frozen_zero], kept_before[~frozen_zero])
    assert (m(x).argmax(-1) == y).double().mean() >= acc_before - 0.05
    assert pr.sparsity().total == pytest.approx(1 - (_keep(0.8, 96) + _keep(0.8, 48)) / 144
                                                if scope == "layer" else
                                                1 - _keep(0.8, 144) / 144)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_gradients_to_the_original_weights_match_finite_differences(scope):
    m = _mlp(seed=4)
    SoftTopKMagnitudePruner(m, 0.5, scope=scope, regularization_strength=0.1)
    x, _ = _task(8)
    w0 = m[0].parametrizations.weight.original
    w2 = m[2].parametrizations.weight.original

    def f(a, b):
        return torch.func.functional_call(
            m, {"0.parametrizations.weight.original": a, "2.parametrizations.weight.original": b},
            (x,))

    assert torch.autograd.gradcheck(f, (w0.detach().clone().requires_grad_(),
                                        w2.detach().clone().requires_grad_()),
                                    eps=1e-6, atol=1e-6)


def test_schedule_values_and_steps():
    sched = pruning_schedule(0.9, 8, initial_sparsity=0.1, initial_strength=0.4,
                             final_strength=0.004, power=3.0)
    for t in (0, 3, 8, 12):
        f = min(t, 8) / 8
        s, lam = sched(t)
        assert s == pytest.approx(0.9 + (0.1 - 0.9) * (1 - f) ** 3)
        assert lam == pytest.approx(0.4 * 0.01 ** f)
    m = _mlp()
    pr = SoftTopKMagnitudePruner(m, 0.9, schedule=sched)
    assert pr.current_sparsity == pytest.approx(0.1) and pr.current_strength == pytest.approx(0.4)
    zeros0 = pr.sparsity().total
    for _ in range(8):
        pr.step()
    assert pr.current_sparsity == pytest.approx(0.9)
    assert pr.current_strength == pytest.approx(0.004)
    assert pr.sparsity().total > zeros0
    assert pr.sparsity().layers["0.weight"] == pytest.approx(1 - _keep(0.9, 96) / 96, abs=0.05)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_state_dict_round_trip(scope):
    x, _ = _task(16)
    # during training: the parametrized state loads into a fresh model with the same pruner
    m1 = _mlp(seed=6)
    p1 = SoftTopKMagnitudePruner(m1, 0.75, scope=scope, regularization_strength=0.02)
    m2 = _mlp(seed=7)
    p2 = SoftTopKMagnitudePruner(m2, 0.75, scope=scope, regularization_strength=0.02)
    m2.load_state_dict(m1.state_dict())
    torch.testing.assert_close(m2(x), m1(x), rtol=0, atol=0)
    # frozen (prune's weight_orig / weight_mask)
    p1.freeze()
    p2.freeze()
    m2.load_state_dict(m1.state_dict())
    torch.testing.assert_close(m2(x), m1(x), rtol=0, atol=0)
    # permanent: a plain module
    for mod in (m1[0], m1[2]):
        prune.remove(mod, "weight")
    m3 = _mlp(seed=8)
    m3.load_state_dict(m1.state_dict())
    torch.testing.assert_close(m3(x), m1(x), rtol=0, atol=0)
    assert (m3[0].weight == 0).sum() == (m1[0].weight == 0).sum() > 0


def test_parameter_pairs_and_names():
    a, b = torch.nn.Linear(5, 4), torch.nn.Conv1d(2, 3, 3)
    pr = SoftTopKMagnitudePruner([(a, "weight"), (b, "weight")], 0.5, regularization_strength=1e-6)
    pr.freeze(permanent=True)
    rep = pr.sparsity()
    assert list(rep.layers) == ["0.Linear.weight", "1.Conv1d.weight"]
    assert rep.layers["0.Linear.weight"] == 0.5 and rep.layers["1.Conv1d.weight"] == 0.5
    assert math.isclose(rep.total, 19 / 38)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((1.0,), {}, ValueError, r"sparsity must lie in \[0, 1\)"),
    ((0.5,), dict(scope="model"), ValueError, "scope must be one of"),
    ((0.5,), dict(schedule=3), TypeError, "schedule must be None or a callable"),
    ((0.5,), dict(solver="dykstra"), ValueError, "needs p=2"),
    ((0.5,), dict(regularization_strength=0.0), ValueError, "regularization_strength must be"),
])
def test_invalid_arguments_raise_naming_them(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SoftTopKMagnitudePruner(_mlp(), *args, **kwargs)


def test_empty_targets_and_double_freeze_raise():
    with pytest.raises(ValueError, match="no weight to prune"):
        SoftTopKMagnitudePruner(torch.nn.Tanh(), 0.5)
    with pytest.raises(TypeError, match="item 0"):
        SoftTopKMagnitudePruner([torch.nn.Linear(2, 2)], 0.5)
    pr = SoftTopKMagnitudePruner(_mlp(), 0.5)
    pr.freeze()
    with pytest.raises(RuntimeError, match="already frozen"):
        pr.freeze()
