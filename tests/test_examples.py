"""The worked examples run and learn: the label-ranking example on the paper's iris set."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import label_ranking  # noqa: E402

IRIS = label_ranking.DEFAULT_DATA / "iris.csv"


def test_label_ranking_csv_parses_into_features_and_permutations_of_the_labels():
    x, r = label_ranking.load(IRIS)
    assert x.shape == (150, 4) and r.shape == (150, 3)
    assert np.array_equal(np.sort(r, axis=1), np.tile([1.0, 2.0, 3.0], (150, 1)))


def test_training_on_the_soft_spearman_loss_beats_the_untrained_model_on_held_out_data():
    x, r = label_ranking.load(IRIS)
    x = (x - x.mean(0)) / x.std(0)
    order = np.random.default_rng(1).permutation(len(x))
    tr, te = order[:120], order[120:]
    w0, b0 = label_ranking.train(x[tr], r[tr], soft=True, epochs=0)
    w, b = label_ranking.train(x[tr], r[tr], soft=True, epochs=200)
    before = label_ranking.spearman(x[te] @ w0 + b0, r[te])
    after = label_ranking.spearman(x[te] @ w + b, r[te])
    assert after > 0.8 > before
