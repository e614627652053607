"""Experiments are scripts: tests import their pieces from experiments/ and run their --quick
versions in a subprocess, as a user would (`python experiments/NAME.py --quick --out DIR`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERIMENTS = os.path.join(ROOT, "experiments")
if EXPERIMENTS not in sys.path:
    sys.path.insert(0, EXPERIMENTS)


def _run(name: str, out: str, *args: str, timeout: float = 600) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(ROOT, "src"), EXPERIMENTS, env.get("PYTHONPATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, os.path.join(EXPERIMENTS, f"{name}.py"), "--quick", "--out", out, *args],
        env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for f in ("results.json", "results.md"):
        assert os.path.exists(os.path.join(out, f)), f"{name} wrote no {f}"
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


@pytest.fixture
def run_experiment(tmp_path):
    """run_experiment(name, *args) -> the results.json dict of `NAME.py --quick --out tmp`."""

    def run(name: str, *args: str, timeout: float = 600) -> dict:
        return _run(name, str(tmp_path / name), *args, timeout=timeout)

    return run
