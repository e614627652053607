"""The experiment harness writes what it promises: JSON without NaN, a markdown table, a plot."""

from __future__ import annotations

import json
import math
import os

import _harness as H
import numpy as np


def test_markdown_table_has_a_row_per_dict_and_right_aligns_numbers():
    md = H.markdown_table([{"method": "a", "t": 1.5}, {"method": "b", "t": float("nan")}])
    lines = md.strip().splitlines()
    assert lines[0] == "| method | t |"
    assert lines[1] == "|---|---:|"
    assert lines[2] == "| a | 1.5 |"
    assert lines[3] == "| b | n/a |"


def test_report_writes_json_markdown_and_png_and_nan_becomes_null(tmp_path):
    args = H.parser("demo", "d").parse_args(["--out", str(tmp_path / "o"), "--seed", "3", "--quick"])
    rng = H.seed_everything(args.seed)
    fig, axes = H.figure()
    axes[0, 0].plot([1, 2], [3, 4])
    doc = H.Report("demo", args).save(
        {"value": np.float64(2.0), "missing": float("nan"), "arr": np.arange(3)},
        table=[{"x": 1, "y": 2.0}], text="claim", figure=fig)
    out = tmp_path / "o"
    loaded = json.loads((out / "results.json").read_text())
    assert loaded == doc
    assert loaded["value"] == 2.0 and loaded["missing"] is None and loaded["arr"] == [0, 1, 2]
    assert loaded["meta"]["args"]["seed"] == 3 and loaded["meta"]["args"]["quick"] is True
    md = (out / "results.md").read_text()
    assert "claim" in md and "| x | y |" in md and "demo.png" in md
    assert os.path.getsize(out / "demo.png") > 1000
    assert isinstance(rng.standard_normal(), float) and not math.isnan(rng.standard_normal())


def test_progress_yields_every_item_in_order():
    assert list(H.progress(range(5), "steps")) == [0, 1, 2, 3, 4]
