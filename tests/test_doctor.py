"""`python -m softorder.doctor` / `softorder doctor`: the report, its exit status, the unwritable
Numba cache message, a failing check, and the `softorder` command's subcommand table."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _doctor(*args, env=None, code=None, timeout=900):
    full = dict(os.environ if env is None else env)
    full["PYTHONPATH"] = os.pathsep.join([SRC, full.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "softorder.doctor", *args] if code is None else \
        [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full)


def _installed(m):
    return importlib.util.find_spec(m) is not None


def test_doctor_reports_every_front_end_checks_every_operator_and_exits_0():
    out = _doctor()
    text = out.stdout
    assert out.returncode == 0, text + out.stderr
    for header in ("Installed", "Checks", "Problems and fixes"):
        assert re.search(rf"^{header}", text, re.MULTILINE), text
    assert re.search(r"^  NumPy\s+\d", text, re.MULTILINE)
    assert re.search(r"^  Numba\s+\d.*threading layer: \w+.*cache: .*\(writable\)", text,
                     re.MULTILINE), text
    names = {"torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow", "flax": "Flax",
             "triton": "Triton"}
    for module, name in names.items():
        if _installed(module):
            assert re.search(rf"^  {name}\s+\d", text, re.MULTILINE), (name, text)
        else:
            assert re.search(rf"^  {name}\s+not installed", text, re.MULTILINE), (name, text)
    if _installed("jax"):
        assert re.search(r"^  JAX .*devices: cpu:0.*x64: o", text, re.MULTILINE), text
    if _installed("tensorflow"):
        assert "(checked in a separate process)" in text
    ops = ["soft_rank(regularization='l2')", "soft_rank(regularization='kl')",
           "soft_sort(regularization='l2')", "soft_sort(regularization='pnorm', p=1.5)",
           "soft_topk_mask", "soft_topk_magnitude", "isotonic_regression",
           "gradient of soft_rank(regularization='kl')"]
    for frontend in ("torch", "jax", "tensorflow"):
        if _installed(frontend):
            for op in ops:
                assert re.search(rf"^  ok\s+{frontend}\s+{re.escape(op)}\s", text,
                                 re.MULTILINE), (frontend, op, text)
    assert re.search(r"^  ok\s+numpy\s+soft_rank, hard limit", text, re.MULTILINE)
    assert "FAIL" not in text
    assert re.search(r"^\d+ passed, 0 failed; 0 problem\(s\)", text, re.MULTILINE), text
    if _installed("tensorflow") and _installed("triton"):
        assert "TensorFlow and Triton are both installed" in text
        assert "separate processes" in text


def test_an_unwritable_numba_cache_directory_is_reported_with_its_fix(tmp_path):
    # A folder below a regular file cannot be created, even by root (CI runs as root).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(blocker / "cache"))
    out = _doctor("--frontends", "numpy", "--strict", env=env)
    text = out.stdout
    assert re.search(r"cache: none writable: kernels compile in every process", text), text
    assert f"WARNING: Numba cache directory not writable (NUMBA_CACHE_DIR={blocker / 'cache'})" \
        in text, text
    assert "fix: Point NUMBA_CACHE_DIR at a folder this user can write" in text
    assert re.search(r"^5 passed, 0 failed; 0 problem\(s\), [12] warning\(s\)", text,
                     re.MULTILINE), text
    assert out.returncode == 1  # --strict: a warning fails too (without it: exit 0, above)


BROKEN = """
import sys
import numpy as np
import softorder.numpy as snp
snp.soft_sort = lambda x, **kw: np.sort(x)[::-1]   # a broken kernel: descending
from softorder.cli import main
sys.exit(main(["doctor", "--frontends", "numpy"]))
"""


def test_a_failing_check_is_named_with_a_fix_and_exits_1():
    out = _doctor(code=BROKEN)
    text = out.stdout
    assert out.returncode == 1, text + out.stderr
    assert re.search(r"^  FAIL\s+numpy\s+soft_sort, hard limit", text, re.MULTILINE), text
    assert "PROBLEM: 1 check(s) differ from the NumPy core or failed: numpy soft_sort, " \
           "hard limit." in text
    assert "fix: Reinstall softorder" in text


def test_the_softorder_command_lists_its_subcommands_and_a_new_one_is_one_entry(monkeypatch,
                                                                               capsys):
    from softorder import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    assert re.search(r"^\s+doctor\s+check the installation", capsys.readouterr().out,
                     re.MULTILINE)

    calls = []
    fake = types.ModuleType("softorder_fake_bench")
    fake.HELP = "measure things"
    fake.add_arguments = lambda p: p.add_argument("--quick", action="store_true")
    fake.run = lambda args: calls.append(args.quick) or 3
    monkeypatch.setitem(sys.modules, "softorder_fake_bench", fake)
    monkeypatch.setitem(cli.SUBCOMMANDS, "bench", "softorder_fake_bench")
    assert cli.main(["bench", "--quick"]) == 3 and calls == [True]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["nope"])
    assert exit_.value.code == 2
    assert isinstance(cli.build_parser(), argparse.ArgumentParser)


def test_unknown_front_end_is_refused_with_the_known_ones():
    out = _doctor("--frontends", "numpy,mxnet")
    assert out.returncode == 2
    assert "unknown front end(s) ['mxnet']" in out.stderr and "tensorflow" in out.stderr
