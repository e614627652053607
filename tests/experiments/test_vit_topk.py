"""experiments/vit_topk.py: the soft top-k hinge is the hard top-k hinge in the limit, is zero
exactly when the true class is in the top k with the margin, and the --quick run's JSON holds
accuracies in [0, 1] (and training works: better than chance)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")


def _hard_topk_hinge(logits, y, k, margin):
    """Independent reference: sort the other logits, take the k-th largest."""
    out = []
    for row, t in zip(logits.tolist(), y.tolist(), strict=True):
        others = sorted((v for j, v in enumerate(row) if j != t), reverse=True)
        out.append(max(0.0, margin + others[k - 1] - row[t]))
    return sum(out) / len(out)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_topk_hinge_tends_to_the_hard_topk_hinge_as_eps_goes_to_zero(k):
    from vit_topk import topk_hinge_loss

    g = torch.Generator().manual_seed(k)
    logits = 3 * torch.randn(32, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (32,), generator=g)
    hard = _hard_topk_hinge(logits, y, k, 1.0)
    soft = float(topk_hinge_loss(logits, y, k, eps=1e-6, p=2.0, margin=1.0))
    assert soft == pytest.approx(hard, abs=1e-5)
    # Softer: a different (smoothed) value, still finite.
    assert math.isfinite(float(topk_hinge_loss(logits, y, k, eps=5.0, margin=1.0)))


def test_topk_hinge_is_zero_iff_true_class_in_topk_with_margin_and_has_gradient_otherwise():
    from vit_topk import topk_hinge_loss

    # True class 0 is 2nd by a wide margin: top-2 loss 0, top-1 loss positive.
    logits = torch.tensor([[5.0, 9.0, 0.0, -1.0, -2.0]], dtype=torch.float64,
                          requires_grad=True)
    y = torch.tensor([0])
    assert float(topk_hinge_loss(logits, y, 2, eps=0.5).detach()) == 0.0
    l1 = topk_hinge_loss(logits, y, 1, eps=0.5)
    assert float(l1.detach()) > 0
    l1.backward()
    assert logits.grad[0, 0] < 0  # raising the true logit lowers the loss
    assert logits.grad[0, 1] > 0  # ... as does lowering the class that beats it
    # A true class far outside the top k still gets a gradient (no dead region).
    logits2 = torch.tensor([[-9.0, 9.0, 8.0, 7.0, 6.0]], dtype=torch.float64,
                           requires_grad=True)
    topk_hinge_loss(logits2, y, 2, eps=0.5).backward()
    assert logits2.grad[0, 0] < 0


def test_vit_topk_quick(run_experiment):
    doc = run_experiment("vit_topk", "--seed", "2")
    k = doc["k"]
    for key in ("summary", "runs", "pretrain_steps", "finetune_steps", "label_noise"):
        assert key in doc
    s = doc["summary"]
    for model in ("before", "cross_entropy", "soft_topk"):
        for m in ("top1", f"top{k}"):
            v = s[model][m]["mean"]
            assert math.isfinite(v) and 0.0 <= v <= 1.0
            assert v > 0.5  # chance is 0.1 (top-1) / 0.2 (top-2): training works
        assert s[model][f"top{k}"]["mean"] >= s[model]["top1"]["mean"]  # top-k >= top-1
    for run in doc["runs"]:
        assert 0.0 <= run["train_active_fraction_at_start"] <= 1.0
        for name in ("cross_entropy", "soft_topk"):
            assert run[name]["curve"][-1]["step"] == doc["finetune_steps"]
