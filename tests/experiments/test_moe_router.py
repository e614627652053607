"""experiments/moe_router.py --quick: finite numbers, every router sends each token to at most k
experts (exactly-zero gates at least 1 - k/E), the hard router exactly k, expert choice
balanced by construction, and every model learns (accuracy far above chance)."""

from __future__ import annotations

import math


def test_moe_router_quick(run_experiment):
    doc = run_experiment("moe_router", "--seed", "3")
    E, k = doc["experts"], doc["k"]
    assert doc["hard_zero_fraction"] == 1 - k / E
    s = doc["summary"]
    assert set(s) == {"hard", "soft", "soft-ec"}
    for m, v in s.items():
        for key in ("test_accuracy", "load_cv", "zero_gate_fraction", "experts_per_token",
                    "tokens_with_no_expert", "ms_per_step"):
            assert math.isfinite(v[key]["mean"]) and v[key]["mean"] >= 0, (m, key)
        assert v["test_accuracy"]["mean"] > 0.7, m  # chance is 0.1
        assert v["ms_per_step"]["mean"] > 0
    # Sparsity: the soft router's gates are exactly zero outside at most k experts per token.
    assert s["hard"]["zero_gate_fraction"]["mean"] == 1 - k / E
    assert s["hard"]["experts_per_token"]["mean"] == k
    assert s["soft"]["zero_gate_fraction"]["mean"] >= 1 - k / E - 1e-12
    assert s["soft"]["experts_per_token"]["mean"] <= k
    # Expert choice: every expert takes the same number of tokens (capacity): CV 0.
    assert s["soft-ec"]["load_cv"]["mean"] < 1e-9
    for run in doc["runs"]:
        assert len(run["load"]) == E
