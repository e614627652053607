"""experiments/topk_classification.py: the CIFAR pickle loader and the --quick run on digits."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import topk_classification as T
import torch


def _write(path, data, labels, key):
    with open(path, "wb") as f:
        pickle.dump({b"data": data, key: labels, b"batch_label": b"test"}, f)


def test_cifar10_loader_reads_the_python_pickle_batches(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, size=(4, 3072), dtype=np.uint8) for _ in range(6)]
    labels = [list(rng.integers(0, 10, size=4)) for _ in range(6)]
    for i in range(5):
        _write(tmp_path / f"data_batch_{i + 1}", batches[i], labels[i], b"labels")
    _write(tmp_path / "test_batch", batches[5], labels[5], b"labels")
    xtr, ytr, xte, yte, classes = T.load_cifar(str(tmp_path))
    assert classes == 10 and xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32)
    # channel-major rows of 1024 (R, G, B planes of 32 x 32, row-major), scaled to [0, 1]
    np.testing.assert_allclose(xtr[5, 1, 2, 3], batches[1][1, 1024 + 2 * 32 + 3] / 255.0)
    np.testing.assert_array_equal(ytr, np.concatenate(labels[:5]))
    np.testing.assert_array_equal(yte, labels[5])


def test_cifar100_loader_uses_the_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("train", "test"):
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, size=(3, 3072), dtype=np.uint8),
                         b"fine_labels": [97, 5, 0], b"coarse_labels": [1, 2, 3]}, f)
    xtr, ytr, _, yte, classes = T.load_cifar(str(tmp_path))
    assert classes == 100 and list(ytr) == [97, 5, 0] and list(yte) == [97, 5, 0]
    assert xtr.dtype == np.float32 and 0 <= xtr.min() and xtr.max() <= 1


def test_cifar_loader_rejects_a_folder_without_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match="CIFAR-10"):
        T.load_cifar(str(tmp_path))


def test_baseline_hinges_are_the_hard_top_k_indicator_in_the_hard_limit():
    z = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    y = torch.tensor([2, 0])
    # descending hard ranks of the labels: 2 and 4, so max(0, r - 1) = 1 and 3 (mean 2)
    assert T.make_loss("All-pairs", 1, 1e-4)(z, y).item() == pytest.approx(2.0, abs=1e-3)
    assert T.make_loss("rQ (l2)", 1, 1e-4)(z, y).item() == pytest.approx(2.0, abs=1e-3)


def test_topk_quick_learns_with_every_loss_and_soft_ranks_are_as_accurate_as_ot(run_experiment):
    res = run_experiment("topk_classification")
    s = res["summary"]
    assert set(s) == set(T.METHODS)
    for m, v in s.items():
        assert all(math.isfinite(x) for x in v.values())
        assert v["top1"] > 0.6 and v["top3"] >= v["top1"], m  # chance is 0.1
        assert v["seconds_per_epoch"] > 0
    assert max(s["rQ (l2)"]["top1"], s["rE (kl)"]["top1"]) > s["OT (Sinkhorn)"]["top1"] - 0.1
