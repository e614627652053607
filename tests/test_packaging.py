"""`import softorder` needs NumPy only; Numba falls back cleanly when it cannot cache."""

import os
import shutil
import subprocess
import sys

import pytest

FRAMEWORKS = ("torch", "jax", "tensorflow", "triton")


def _run(code, **kw):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, **kw)


def test_importing_softorder_and_its_numpy_api_imports_no_framework():
    code = (
        "import sys, softorder, softorder.numpy, softorder.isotonic\n"
        f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to drop privileges (CI runs as root)")
def test_unwritable_numba_cache_warns_once_and_still_computes(tmp_path):
    # As 'nobody', neither the package's __pycache__ nor a home cache is writable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["HOME"] = "/nonexistent"
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "import numpy as np\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    from softorder.numpy import soft_rank\n"
        "    print(soft_rank(np.array([5.0, 1.0, 2.0])).tolist())\n"
        "print(sum('cannot cache' in str(x.message) for x in w))\n"
    )
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[3.0, 1.0, 2.0]"
    assert lines[1] == "1"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_process_forked_after_parallel_kernels_ran_computes_the_same_ranks():
    # GNU OpenMP aborts a forked child at its first parallel region (a DataLoader worker, a
    # multiprocessing fork pool); the child must fall back to the serial kernels instead.
    code = (
        "import os, numpy as np\n"
        "import softorder.numpy as snp\n"
        "x = np.random.default_rng(0).normal(size=(512, 256))\n"
        "y = snp.soft_rank(x)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = np.array_equal(snp.soft_rank(x), y)\n"
        "    g = snp.vjp(snp.soft_rank_fwd(x)[1], x)\n"
        "    os._exit(0 if ok and np.isfinite(g).all() else 3)\n"
        "print(os.waitpid(pid, 0)[1])\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0", out.stderr
