"""The label-ranking example is a pointer to experiments/label_ranking.py and runs it."""

import importlib.util
import json
from pathlib import Path

import pytest

# loaded by path: experiments/label_ranking.py is also importable as `label_ranking` in the
# same pytest process (tests/experiments/conftest.py puts experiments/ on sys.path)
_spec = importlib.util.spec_from_file_location(
    "examples_label_ranking", Path(__file__).resolve().parents[1] / "examples" / "label_ranking.py")
assert _spec is not None and _spec.loader is not None
label_ranking = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(label_ranking)


@pytest.mark.skipif(not label_ranking.DEFAULT_DATA.is_dir(), reason="no label-ranking folder")
def test_label_ranking_example_runs_the_experiments_quick_protocol(tmp_path):
    label_ranking.main(["--data", str(label_ranking.DEFAULT_DATA), "--sets", "iris",
                        "--out", str(tmp_path)])
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["args"]["quick"] is True and res["meta"]["args"]["folds"] == 5
    assert res["sets"]["iris"]["soft_rank"] > 0.7 and res["sets"]["iris"]["baseline"] > 0.7


def _demo():
    spec = importlib.util.spec_from_file_location(
        "examples_demo", Path(__file__).resolve().parents[1] / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def test_make_demo_runs_every_experiment_script():
    scripts = {p.stem for p in (Path(__file__).resolve().parents[1] / "experiments").glob("*.py")
               if not p.stem.startswith("_") and p.stem != "baselines"}
    assert set(_demo().EXPERIMENTS) == scripts


def test_demo_worked_examples_run(capsys):
    _demo().main(["--no-bench", "--no-experiments"])
    out = capsys.readouterr().out
    assert "soft_rank" in out and "soft_topk_magnitude" in out
