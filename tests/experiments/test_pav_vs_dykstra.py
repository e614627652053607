"""experiments/pav_vs_dykstra.py --quick: its JSON holds finite numbers and shows the claims
quick mode can show (Dykstra converges to PAV, slower for larger strength; p = 4/3 refused)."""

from __future__ import annotations

import math


def _finite(v):
    return isinstance(v, int | float) and math.isfinite(v)


def test_pav_vs_dykstra_quick(run_experiment):
    doc = run_experiment("pav_vs_dykstra", "--seed", "1")
    for key in ("meta", "error_vs_iterations", "p43_dykstra", "timing_vs_n", "timing_vs_batch",
                "crossover_vs_n", "crossover_vs_batch", "gpu"):
        assert key in doc, key
    curves = doc["error_vs_iterations"]
    assert {c["op"] for c in curves} == {"soft_topk_mask", "soft_topk_magnitude"}
    for c in curves:
        errs = c["max_abs_error"]
        assert len(errs) == len(c["iterations"]) and all(_finite(e) and e >= 0 for e in errs)
        # Dykstra converges to the exact (PAV) solution: more sweeps, smaller error.
        assert errs[-1] < 0.1 * errs[0], c
    for op in ("soft_topk_mask", "soft_topk_magnitude"):
        small = next(c for c in curves if c["op"] == op and c["strength"] == 0.1)
        large = next(c for c in curves if c["op"] == op and c["strength"] == 1.0)
        assert small["iters_to_1e-6"] is not None, small  # converged within the grid
        # A softer operator has longer PAV blocks: Dykstra needs more sweeps.
        assert large["max_fractional_entries"] > small["max_fractional_entries"]
        assert large["iters_to_1e-6"] is None or large["iters_to_1e-6"] > small["iters_to_1e-6"]
        assert doc["p43_dykstra"][op].startswith("ValueError") and "p=2" in doc["p43_dykstra"][op]
    rows = doc["timing_vs_n"] + doc["timing_vs_batch"]
    assert {r["framework"] for r in rows} >= {"numpy", "torch"}
    for r in rows:
        if "error" in r:  # a framework that could not be imported is reported, not hidden
            continue
        for key in ("t_pav_ms", "t_dykstra_ms", "t_dykstra_1sweep_ms", "dykstra_max_abs_error"):
            assert _finite(r[key]) and r[key] >= 0, (key, r)
        assert r["dykstra_max_abs_error"] < 1e-3, r  # small rows: the defaults converge
    assert doc["gpu"]["available"] in (True, False)
    if not doc["gpu"]["available"]:
        assert doc["gpu"]["reason"]
