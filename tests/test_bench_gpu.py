"""benchmarks/bench_gpu.py, the GPU benchmark of the device check, runs its code path on CPU.

``--device cpu --quick`` times the same methods (softorder.torch with its PAV on the Triton
kernels under ``TRITON_INTERPRET=1``, the two Triton kernels alone, softorder.jax) on one tiny
shape, in a subprocess (the interpreter must not leak into this process); the test checks that
every cell was timed (no failed cell), the ratios are finite and positive, and the markdown
table names every operator.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"


def _run(args, timeout):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as cache:
        env["TRITON_CACHE_DIR"] = cache
        return subprocess.run([sys.executable, str(SCRIPT), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)


def test_quick_cpu_run_times_every_cell(tmp_path):
    pytest.importorskip("triton")
    pytest.importorskip("torch")
    proc = _run(["--device", "cpu", "--quick", "--out", str(tmp_path), "--max-call-s", "60"],
                timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert doc["status"]["errors"] == 0
    titles = [t["title"] for t in doc["tables"]]
    assert any(t.startswith("softorder.torch") for t in titles)
    assert any(t.startswith("Triton PAV kernels") for t in titles)
    for tab in doc["tables"]:
        for name, cells in tab["rows"].items():
            for shape in tab["shapes"]:
                cell = cells[shape]
                assert isinstance(cell, dict), (tab["title"], name, cell)
                for v in (cell["fwd_ms"], cell["fb_ms"]):
                    assert v is None or (math.isfinite(v) and v > 0), (name, cell)
    md = (tmp_path / "bench_gpu.md").read_text()
    for op in ("sort l2", "rank kl", "rank p=4/3", "topk mask", "topk magnitude", "isotonic",
               "triton pav l2 parallel"):
        assert op in md, op
    assert "Quick CPU run" in md


def test_cuda_run_without_a_device_says_so(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: this checks the message when there is none")
    proc = _run(["--device", "cuda", "--out", str(tmp_path)], timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stdout, proc.stdout + proc.stderr
