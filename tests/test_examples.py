"""The label-ranking example is a pointer to experiments/label_ranking.py and runs it."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import label_ranking  # noqa: E402


@pytest.mark.skipif(not label_ranking.DEFAULT_DATA.is_dir(), reason="no label-ranking folder")
def test_label_ranking_example_runs_the_experiments_quick_protocol(tmp_path):
    label_ranking.main(["--data", str(label_ranking.DEFAULT_DATA), "--sets", "iris",
                        "--out", str(tmp_path)])
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["args"]["quick"] is True and res["meta"]["args"]["folds"] == 5
    assert res["sets"]["iris"]["soft_rank"] > 0.7 and res["sets"]["iris"]["baseline"] > 0.7
