"""The built wheel installs and runs in a fresh virtualenv: first with NumPy and Numba only (the
NumPy API, the console script), then with the ``torch`` extra (the PyTorch API, a backward
pass). The sdist ships the sources, docs, tests, LICENSE, README and CHANGELOG, and no caches.

Needs pip to reach a package index (or its cache / find-links folder) for NumPy, Numba and
PyTorch at the versions pinned in requirements-dev.txt; when pip can obtain none, the test is
skipped with pip's own error as the reason. Any later failure is a failure.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("torch", "jax", "flax", "tensorflow", "triton", "bench", "docs", "test")
JUNK = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.hypothesis|\.venv|\.git)(/|$)|"
                  r"\.(pyc|pyo|nbi|nbc|so)$")


def _pins():
    """``{name: "name==version"}`` from requirements-dev.txt (the one place they are written)."""
    pins = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
        if m:
            pins[m.group(1).lower()] = f"{m.group(1)}=={m.group(2)}"
    return pins


def _run(cmd, timeout=600, **kw):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                         **kw)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def _clean_env():
    """The environment without anything that would point the venv at this checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NUMBA_CACHE_DIR",
                        "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the project with planted caches, built with `python -m build` (wheel + sdist)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "project"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "dist", "build", "results", ".pytest_cache", ".hypothesis"))
    # What a developer's tree holds after the tests: Numba and Python caches, test caches.
    for junk in ("src/softorder/_src/__pycache__/softorder_kernels_0/pav.k-1.py311.nbi",
                 "src/softorder/_src/__pycache__/softorder_kernels_0/pav.k-1.py311.1.nbc",
                 "src/softorder/__pycache__/numpy.cpython-311.pyc",
                 "tests/__pycache__/conftest.cpython-311-pytest-8.pyc",
                 ".hypothesis/examples/x", "src/softorder/_src/stray.pyc"):
        (tree / junk).parent.mkdir(parents=True, exist_ok=True)
        (tree / junk).write_bytes(b"junk")
    dist = tmp / "dist"
    # --no-isolation: the installed hatchling (requirements-dev.txt), no download.
    _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir",
          dist, tree], cwd=tmp)
    (wheel,) = dist.glob("softorder-*.whl")
    (sdist,) = dist.glob("softorder-*.tar.gz")
    return tmp, wheel, sdist


def _version():
    text = (ROOT / "src/softorder/__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE).group(1)


def test_the_wheel_is_pure_python_with_the_metadata_an_index_shows(built):
    _, wheel, _ = built
    version = _version()
    assert wheel.name == f"softorder-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = email.message_from_string(z.read(f"softorder-{version}.dist-info/METADATA").decode())
        entry_points = z.read(f"softorder-{version}.dist-info/entry_points.txt").decode()
    assert not [n for n in names if JUNK.search(n)], [n for n in names if JUNK.search(n)]
    assert not [n for n in names if n.startswith("tests/")]
    for module in ("__init__.py", "numpy.py", "torch.py", "jax.py", "tensorflow.py", "cli.py",
                   "doctor.py", "_src/isotonic/pav.py", "_src/doctor.py"):
        assert f"softorder/{module}" in names
    assert f"softorder-{version}.dist-info/licenses/LICENSE" in names
    assert meta["Name"] == "softorder" and meta["Version"] == version
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Author"] == "softorder developers" or "softorder developers" in str(
        meta["Author-email"])
    assert meta["Requires-Python"] == ">=3.10"
    assert set(meta.get_all("Provides-Extra")) >= set(EXTRAS)
    assert {r.split(";")[0].replace(" ", "") for r in meta.get_all("Requires-Dist")
            if "extra" not in r} == {"numpy>=1.24", "numba>=0.59"}
    assert any(c.startswith("Programming Language :: Python :: 3") for c in meta.get_all(
        "Classifier"))
    assert meta["Keywords"] and "differentiable sorting" in meta["Keywords"]
    assert "Fast, exact, differentiable" in meta["Summary"]
    assert meta.get_payload().startswith("# softorder")  # the README as the long description
    assert re.search(r"^softorder\s*=\s*softorder\.cli:main$", entry_points, re.MULTILINE)


def test_the_sdist_has_sources_docs_tests_license_changelog_and_no_caches(built):
    _, _, sdist = built
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    assert not [n for n in names if JUNK.search(n)], [n for n in names if JUNK.search(n)]
    for f in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "requirements-dev.txt",
              "src/softorder/__init__.py", "src/softorder/_src/isotonic/pav.py",
              "tests/test_wheel.py", "docs/conventions.md", "PKG-INFO"):
        assert f in names, f


def test_license_file_is_apache_2_0_and_changelog_names_this_version():
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert re.search(rf"^## {re.escape(_version())}\b", (ROOT / "CHANGELOG.md").read_text(),
                     re.MULTILINE)


NUMPY_API = """
import os, sys
import numpy as np
import softorder
from importlib.metadata import version
import softorder.numpy as snp
from softorder.isotonic import isotonic_regression

assert os.path.realpath(softorder.__file__).startswith(os.path.realpath(sys.prefix)), softorder.__file__
assert softorder.__version__ == version("softorder")
assert not {"torch", "jax", "tensorflow", "triton"} & set(sys.modules)
x = np.array([5.0, 1.0, 2.0])
# hard limits (strength below the smallest gap, 1): ranks, sort, top-2 mask, exactly
assert snp.soft_rank(x, regularization_strength=1e-3).tolist() == [3.0, 1.0, 2.0]
assert snp.soft_sort(x, regularization_strength=1e-3).tolist() == [1.0, 2.0, 5.0]
assert snp.soft_topk_mask(x, 2, regularization_strength=1e-3).tolist() == [1.0, 0.0, 1.0]
# l2 soft ranks at strength 2 project z = x / 2 = (2.5, 0.5, 1) onto the permutahedron of
# (1, 2, 3): z sorted down (2.5, 1, 0.5) minus (3, 2, 1) is (-0.5, -1, -0.5); its decreasing
# isotonic fit pools the last two to -0.75, so the sorted ranks are (3, 1.75, 1.25)
np.testing.assert_allclose(snp.soft_rank(x, regularization_strength=2.0), [3.0, 1.25, 1.75],
                           rtol=1e-12)
# a large strength: every rank is (n + 1) / 2
np.testing.assert_allclose(snp.soft_rank(x, regularization_strength=1e9), [2.0] * 3, rtol=1e-8)
# integers are promoted to float64, as np.mean does
r = snp.soft_rank(np.arange(4)[::-1], regularization_strength=1e-3)
assert r.dtype == np.float64 and r.tolist() == [4.0, 3.0, 2.0, 1.0]
# the rank sum is constant: its gradient is 0
y, res = snp.soft_rank_fwd(x, regularization="kl")
np.testing.assert_allclose(snp.vjp(res, np.ones(3)), 0.0, atol=1e-12)
np.testing.assert_allclose(isotonic_regression(np.array([1.0, 3.0, 2.0, 4.0])), [1, 2.5, 2.5, 4])
print("NUMPY OK")
"""

TORCH_API = """
import torch
import softorder.torch as st

x = torch.tensor([5.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
y = st.soft_sort(x, regularization_strength=1e-3)   # hard limit: (x1, x2, x0)
assert y.tolist() == [1.0, 2.0, 5.0]
w = torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)
(y * w).sum().backward()
assert x.grad.tolist() == [30.0, 10.0, 20.0], x.grad   # d sum(w y) / dx = w at the inverse perm
x = torch.randn(4, 7, requires_grad=True)
r = st.soft_rank(x, dim=-1, regularization="kl", regularization_strength=0.5)
r.sum().backward()                                     # the rank sum is constant
assert r.dtype == torch.float32 and torch.allclose(x.grad, torch.zeros_like(x), atol=1e-5)
m = st.soft_topk_mask(torch.arange(5), 2, regularization_strength=1e-3)
assert m.dtype == torch.get_default_dtype() and m.tolist() == [0, 0, 0, 1, 1]
print("TORCH OK")
"""


def _pip_download(py, tmp, requirement):
    out = subprocess.run([py, "-m", "pip", "download", "--no-deps", "--dest", tmp / "probe",
                          requirement], capture_output=True, text=True, timeout=600,
                         env=_clean_env())
    shutil.rmtree(tmp / "probe", ignore_errors=True)
    return out.returncode == 0, " | ".join((out.stderr or out.stdout).strip().splitlines()[-3:])


def _probe(py, tmp, requirement):
    """Skip (with pip's reason) only when pip reaches no index, cache or find-links folder at
    all; a reachable index without the pinned version is a failure."""
    ok, why = _pip_download(py, tmp, requirement)
    if ok:
        return
    # Is any index reachable? Asked with a small package (an unpinned torch would be a
    # multi-GB CUDA download).
    reachable, _ = _pip_download(py, tmp, "numpy")
    assert not reachable, f"pip reaches a package index, but cannot obtain {requirement}: {why}"
    pytest.skip(f"pip reaches no package index, cache or find-links folder (offline?), so "
                f"{requirement} cannot be installed: {why}")


def test_the_wheel_installs_in_a_fresh_venv_and_runs_the_numpy_then_the_torch_api(built):
    tmp, wheel, _ = built
    pins = _pins()
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv])  # no --system-site-packages: nothing shared
    py = venv / "bin" / "python"
    env = _clean_env()
    _probe(py, tmp, pins["numpy"])
    _run([py, "-m", "pip", "install", "--no-input", wheel, pins["numpy"], pins["numba"]],
         env=env)
    listed = _run([py, "-m", "pip", "list", "--format=freeze"], env=env).lower()
    assert "torch" not in listed and "jax" not in listed, listed
    run = lambda code: _run([py, "-c", textwrap.dedent(code)], env=env, cwd=tmp)
    assert run(NUMPY_API).strip().endswith("NUMPY OK")
    # the console script, on the NumPy front end alone
    doctor = _run([venv / "bin" / "softorder", "doctor", "--frontends", "numpy"], env=env,
                  cwd=tmp)
    assert "0 failed" in doctor and re.search(r"PyTorch\s+not installed", doctor), doctor

    _probe(py, tmp, pins["torch"])
    _run([py, "-m", "pip", "install", "--no-input", f"{wheel}[torch]", pins["torch"],
          pins["numpy"]], env=env)
    assert run(TORCH_API).strip().endswith("TORCH OK")
