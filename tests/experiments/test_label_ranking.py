"""experiments/label_ranking.py: the paper's nested-CV protocol, and its --quick run on the
shared label-ranking folder (../shared/datasets/label_ranking, as in CI)."""

from __future__ import annotations

import math
import os

import label_ranking as L
import numpy as np
import pytest
import scipy.stats
from conftest import ROOT

DATA = os.path.join(ROOT, "..", "shared", "datasets", "label_ranking")
needs_data = pytest.mark.skipif(not os.path.isdir(DATA), reason=f"no label-ranking folder {DATA}")


def test_spearman_matches_scipy_row_by_row():
    rng = np.random.default_rng(0)
    s, r = rng.normal(size=(20, 6)), np.argsort(rng.normal(size=(20, 6)), 1) + 1.0
    ref = np.mean([scipy.stats.spearmanr(a, b)[0] for a, b in zip(s, r)])
    assert L.spearman(s, r) == pytest.approx(ref, abs=1e-12)


def test_hyperparameters_are_selected_on_training_folds_only():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    r = scipy.stats.rankdata(x @ rng.normal(size=(3, 4)), axis=1)
    x[:, 0] += np.arange(40) * 1e3  # row id recoverable from the features
    seen = []

    def spy(xtr, rtr, **kw):
        seen.append({int(v) for v in np.round(xtr[:, 0] / 1e3)})
        return L.select(xtr, rtr, **kw)

    res = L.evaluate_set(x, r, outer_folds=4, inner_folds=2, alphas=(0.1,), strengths=(1.0,),
                         iterations=3, seed=0, select_fn=spy)
    folds = L.kfold(40, 4, np.random.default_rng(0))
    assert len(seen) == 4 and len(res["baseline"]) == 4
    for rows, test in zip(seen, folds):
        assert rows.isdisjoint(set(test.tolist()))
        assert len(rows) == 40 - len(test)


def test_outcome_counts_a_tie_within_one_standard_error():
    assert L.outcome([0.5, 0.6, 0.7], [0.6, 0.7, 0.8]) == "win"
    assert L.outcome([0.6, 0.7, 0.8], [0.5, 0.6, 0.7]) == "loss"
    assert L.outcome([0.5, 0.6, 0.7], [0.6, 0.5, 0.71]) == "tie"


@needs_data
def test_label_ranking_quick_writes_sets_and_win_tie_loss(run_experiment):
    res = run_experiment("label_ranking", "--data", DATA, "--sets", "iris,wine,vehicle")
    assert set(res["sets"]) == {"iris", "wine", "vehicle"}
    for v in res["sets"].values():
        assert set(v) == {"baseline", "soft_rank"}
        assert all(math.isfinite(s) and -1 <= s <= 1 for s in v.values())
        assert v["baseline"] > 0.5 and v["soft_rank"] > 0.5  # far better than chance (0)
    assert res["wins"] + res["ties"] + res["losses"] == 3
    assert res["meta"]["args"]["folds"] == 5
