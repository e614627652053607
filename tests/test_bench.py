"""`softorder bench`: the quick run end to end (a subprocess, as CI and users run it), and the
bookkeeping of one group (failures, the memory cap, slow methods) on NumPy in process."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from softorder.bench import _cases as C
from softorder.bench import _frames as F
from softorder.bench import _group_rows, _shapes, add_arguments
from softorder.bench import _report as P

SRC = os.path.dirname(os.path.dirname(os.path.abspath(C.__file__)))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(SRC), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "softorder.bench", "--quick", "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    with open(out / "results.json") as f:
        doc = json.load(f)
    return out, doc, res, time.perf_counter() - t0


def test_quick_run_writes_json_markdown_and_plots(quick_run):
    out, doc, _, _ = quick_run
    assert (out / "results.md").stat().st_size > 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    frameworks = sorted({r["framework"] for r in doc["rows"]})
    assert pngs == sorted(f"bench_{fw}_cpu_float32.png" for fw in frameworks)
    for p in pngs:
        assert (out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "results.md").read_text()
    assert "## Time" in md and "## First-call cost" in md
    for p in pngs:
        assert f"]({p})" in md


def test_quick_run_covers_every_installed_front_end_and_operator(quick_run):
    _, doc, _, _ = quick_run
    expect = {"numpy"} | {fw for fw, mod in (("torch", "torch"), ("jax", "jax"),
                                              ("tensorflow", "tensorflow")) if C.installed(mod)}
    assert {r["framework"] for r in doc["rows"]} == expect
    for fw in expect:
        ops = {r["op"] for r in doc["rows"] if r["framework"] == fw and r["library"] == "softorder"}
        assert {"sort", "rank", "topk"} <= ops, (fw, ops)
        floors = [r for r in doc["rows"] if r["framework"] == fw and r["floor"]]
        assert len(floors) == len(doc["settings"]["shapes"])
        assert all(r["status"] == "ok" and r["fwd_ratio"] == 1.0 for r in floors)


def test_quick_run_ratios_are_finite_and_positive(quick_run):
    _, doc, _, _ = quick_run
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    softorder = [r for r in ok if r["library"] == "softorder"]
    assert softorder and len(softorder) == len(
        [r for r in doc["rows"] if r["library"] == "softorder"]), "a softorder operator failed"
    for r in ok:
        assert P.finite_positive(r["fwd_ratio"]), r
        assert P.finite_positive(r["fwd_ms"]), r
        if r["library"] == "softorder":
            assert P.finite_positive(r["fwd_bwd_ratio"]), r
        assert r.get("peak_mib") is None or (math.isfinite(r["peak_mib"]) and r["peak_mib"] >= 0)


def test_quick_run_lists_the_alternatives_not_installed(quick_run):
    out, doc, res, _ = quick_run
    missing = sorted(name for name, mod, *_ in C.ALTERNATIVES if not C.installed(mod))
    assert sorted(doc["not_installed"]) == missing
    md = (out / "results.md").read_text()
    for name in missing:
        assert f"| {name} |" in md and "**not installed**" in md
        assert name in res.stdout
    for a in doc["alternatives"]:
        assert a["installed"] == (a["name"] not in missing)


def test_quick_run_measures_the_first_call_in_a_fresh_process(quick_run):
    _, doc, _, _ = quick_run
    (probe,) = doc["first_call"]
    assert probe["library"] == "softorder.numpy"
    assert 0 < probe["second_call_s"] < probe["process_s"]
    assert probe["import_s"] + probe["first_call_s"] < probe["process_s"]


# --------------------------------------------------------------------------------------------
# One group in process (NumPy): what a failing, oversized or slow alternative becomes.


def _settings(**kw):
    s = {"seed": 0, "memory_cap_mib": 64.0, "min_time": 0.0, "max_call_s": 0.05,
         "quick": True}
    s.update(kw)
    return s


def _floor():
    return next(c for c in C.numpy_cases(True) if c.floor)


def _case(name, fwd, **kw):
    return C.Case("alt", "sort", name, lambda grp: (lambda: fwd(grp), None), grad=False, **kw)


def test_group_marks_a_failing_method_with_its_exception_text():
    def boom(grp):
        raise RuntimeError("no kernel for this dtype\nsecond line")

    rows = _group_rows(F.NumpyFrame(), [_floor(), _case("boom", boom)], 2, 50, "float64",
                       _settings(), {})
    by = {r["name"]: r for r in rows}
    assert by["np.sort"]["status"] == "ok" and by["np.sort"]["fwd_ratio"] == 1.0
    assert by["alt sort boom"]["status"] == "failed"
    assert by["alt sort boom"]["error"] == "RuntimeError: no kernel for this dtype"


def test_group_marks_memory_errors_as_out_of_memory():
    def oom(grp):
        raise MemoryError("Unable to allocate 80.0 GiB")

    rows = _group_rows(F.NumpyFrame(), [_floor(), _case("oom", oom)], 2, 50, "float64",
                       _settings(), {})
    assert rows[1]["status"] == "oom" and "80.0 GiB" in rows[1]["error"]


def test_group_skips_a_method_whose_estimate_exceeds_the_memory_cap():
    called = []
    quad = C._quadratic(4.0)  # 4 * b * n^2 * itemsize
    case = _case("quad", lambda grp: called.append(1), memory=quad)
    s = _settings(memory_cap_mib=1.0)
    small = _group_rows(F.NumpyFrame(), [_floor(), case], 1, 100, "float64", s, {})
    assert small[1]["status"] == "ok" and called  # 0.3 MiB: runs
    big = _group_rows(F.NumpyFrame(), [_floor(), case], 1, 1000, "float64", s, {})
    assert big[1]["status"] == "skipped"  # 30.5 MiB > 1 MiB: never called
    assert "estimated 31 MiB > --memory-cap 1 MiB" in big[1]["error"]


def test_group_drops_a_too_slow_method_at_every_larger_size_only():
    calls = []

    def slow(grp):
        calls.append(grp.n)
        time.sleep(0.1 if grp.n >= 100 else 0.0)

    slow_cases: dict[str, tuple[int, str]] = {}
    case = _case("slow", slow)
    s = _settings()
    r10 = _group_rows(F.NumpyFrame(), [_floor(), case], 1, 10, "float64", s, slow_cases)
    assert r10[1]["status"] == "ok"
    r100 = _group_rows(F.NumpyFrame(), [_floor(), case], 1, 100, "float64", s, slow_cases)
    assert r100[1]["status"] == "too slow" and "--max-call-s" in r100[1]["error"]
    n_calls = len(calls)
    r1000 = _group_rows(F.NumpyFrame(), [_floor(), case], 1, 1000, "float64", s, slow_cases)
    assert r1000[1]["status"] == "too slow" and "at 1 x 100" in r1000[1]["error"]
    assert len(calls) == n_calls  # not called again at a larger size
    r50 = _group_rows(F.NumpyFrame(), [_floor(), case], 1, 50, "float64", s, slow_cases)
    assert r50[1]["status"] == "ok"  # but still at a smaller one


def test_interleaved_calls_methods_in_rotating_turns_and_keeps_errors():
    order = []

    def make(k):
        def f():
            order.append(k)
            if k == "c" and order.count("c") == 2:
                raise ValueError("second call fails")

        return f

    times, errors = F.interleaved({k: make(k) for k in "abc"}, min_time=0.0, min_rounds=3)
    # round 0 from a; round 1 from b (c fails and leaves); round 2 from a again (2 left)
    assert order == list("abc") + list("bca") + list("ab")
    assert len(times["a"]) == len(times["b"]) == 3 and len(times["c"]) == 1
    assert isinstance(errors["c"], ValueError)


def test_cpu_peak_memory_sees_a_buffer_allocated_and_freed_in_the_call():
    F.pin_malloc()
    peak = F.cpu_peak_mib(lambda: np.ones(8 * 2**20 // 8).sum())  # 8 MiB, freed at once
    if peak is None:
        pytest.skip("no /proc/self/clear_refs on this system")
    assert 7.5 < peak < 40


def test_command_line_parses_shapes_and_rejects_bad_values():
    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--shapes", "1x100,128X1000", "--dtypes", "float64"])
    assert args.shapes == [(1, 100), (128, 1000)] and args.dtypes == ["float64"]
    with pytest.raises(argparse.ArgumentTypeError, match="BATCHxN"):
        _shapes("100")
    with pytest.raises(SystemExit):
        parser.parse_args(["--frameworks", "numpy,mxnet"])
