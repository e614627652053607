"""experiments/pruning.py --quick: every method reaches the target sparsity exactly (exact zeros),
the accuracies are finite and above chance, and at 95% sparsity soft top-k magnitude pruning
beats one-shot hard magnitude pruning with the same fine-tuning budget."""

from __future__ import annotations

import math


def test_pruning_quick(run_experiment):
    doc = run_experiment("pruning", "--seed", "4")
    assert doc["sparsities"] == [0.9, 0.95]
    n_weights = 64 * 128 + 128 * 128 + 128 * 10
    assert len(doc["runs"]) == 4 * len(doc["sparsities"])
    for r in doc["runs"]:
        # Per layer, round((1 - s) * numel) kept: the total is within one weight per layer.
        assert abs(r["achieved_sparsity"] - r["sparsity"]) <= 3 / n_weights, r
        assert r["reported_sparsity"] == r["achieved_sparsity"], r  # the pruner's report
        for key in ("accuracy", "accuracy_at_prune"):
            assert math.isfinite(r[key]) and 0.0 <= r[key] <= 1.0
        assert r["accuracy"] > 0.5, r  # chance is 0.1
    s = doc["summary"]
    assert 0.9 < s["dense_accuracy"] <= 1.0
    hard = s["hard"]["0.95"]["accuracy_mean"]
    soft = max(s["soft p=2"]["0.95"]["accuracy_mean"], s["soft p=4/3"]["0.95"]["accuracy_mean"])
    assert soft > hard, s
