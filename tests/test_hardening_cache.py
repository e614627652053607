"""Numba's on-disk cache follows every kernel source (issue 8, item 6, last bullet).

The fused kernels of ``core/fused.py`` inline ``_pav_row`` of ``isotonic/pav.py``; with Numba's
per-file stamps, editing pav.py left them running the old machine code. These tests edit a
temporary copy of the package and check that the dependent kernels recompile.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import softorder
from softorder._src import _numba

PKG = Path(softorder.__file__).resolve().parent

# Prints the l2 soft rank (fused kernel `_zside_ser` inlining pav.py's `_mean_merge`: the
# strength pools the whole row) and whether the fused kernel was loaded from the cache.
SCRIPT = (
    "import numpy as np\n"
    "import softorder.numpy as snp\n"
    "from softorder._src.core import fused\n"
    "y = snp.soft_rank(np.array([[3.0, 1.0, 2.0]]), regularization_strength=10.0)\n"
    "print(y.ravel().tolist())\n"
    "print(sum(fused._zside_ser.stats.cache_hits.values()))\n"
)


def _run(src_root, env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=600, env=env, cwd=src_root)
    assert out.returncode == 0, out.stderr
    values, hits = out.stdout.strip().splitlines()[-2:]
    return values, int(hits)


@pytest.mark.slow
def test_editing_pav_recompiles_the_fused_kernels_that_inline_it(tmp_path):
    src_root = tmp_path / "src"
    shutil.copytree(PKG, src_root / "softorder",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["PYTHONPATH"] = str(src_root)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba_cache")  # the user's choice is respected

    first, hits = _run(src_root, env)
    assert hits == 0  # compiled
    again, hits = _run(src_root, env)
    assert (again, hits > 0) == (first, True)  # loaded from the cache

    # A mutant of the shared PAV code: every merged block mean moves by 1.
    pav = src_root / "softorder" / "_src" / "isotonic" / "pav.py"
    text = pav.read_text()
    needle = "    return ma + diff * (nb / (na + nb))\n"
    assert text.count(needle) == 1
    pav.write_text(text.replace(needle, needle.replace("))\n", ")) + 1.0\n")))
    mutated, hits = _run(src_root, env)
    assert hits == 0  # recompiled, not loaded
    assert mutated != first
    assert sorted(os.listdir(tmp_path / "numba_cache")) == sorted(
        d for d in os.listdir(tmp_path / "numba_cache") if d.startswith("softorder_kernels_"))
    assert len(os.listdir(tmp_path / "numba_cache")) == 2  # one folder per source state


def test_the_kernel_sources_cover_every_njit_module_and_its_package_imports():
    files = set(_numba.kernel_sources())
    src = PKG / "_src"
    users = {p for p in src.rglob("*.py") if "njit" in p.read_text() and p.name != "_numba.py"}
    assert users <= files
    assert {src / "isotonic" / "pav.py", src / "isotonic" / "regularizers.py",
            src / "core" / "fused.py", src / "core" / "jacobian.py"} <= files
    for p in users:  # every top-level relative import of a kernel module is hashed too
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = p.parent
                for _ in range(node.level - 1):
                    base = base.parent
                mod = base.joinpath(*(node.module or "").split("."))
                target = mod.with_suffix(".py") if mod.with_suffix(".py").is_file() \
                    else mod / "__init__.py"
                assert target in files, (p, node.module)


def test_kernels_are_cached_under_the_sources_hash():
    from softorder._src.core import fused

    path = fused._zside_ser._cache._cache_path
    assert os.path.basename(path) == f"softorder_kernels_{_numba.SOURCES_HASH}"
