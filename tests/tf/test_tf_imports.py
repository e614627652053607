"""Import hygiene of softorder.tensorflow, checked in fresh interpreters."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run(code, tmp_path, extra_path=()):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*extra_path, SRC]),
               TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)


def _fake_triton(tmp_path):
    fake = tmp_path / "fake"
    (fake / "triton").mkdir(parents=True)
    (fake / "triton" / "__init__.py").write_text("")
    return str(fake)


def test_import_hygiene_and_triton_clash_warning(tmp_path):
    """softorder.tensorflow adds no torch/triton/jax import beyond what TensorFlow itself loads
    (TF 2.21's tf.lite imports jax when it is installed). Then a stand-in 'triton' package
    (the real one would abort this interpreter) imported afterwards triggers the clash warning,
    which names the problem and the fix."""
    out = _run("""
        import sys, warnings
        warnings.simplefilter("always")
        import tensorflow, keras
        before = set(sys.modules)
        import softorder.tensorflow
        new = set(sys.modules) - before
        bad = sorted(m for m in new if m.split(".")[0] in ("torch", "triton", "jax", "jaxlib"))
        print("NEW-BAD", bad, "torch" in sys.modules, "triton" in sys.modules)
        import triton
        print("imported", triton.__file__)
    """, tmp_path, extra_path=[_fake_triton(tmp_path)])
    assert out.returncode == 0, out.stderr
    assert "NEW-BAD [] False False" in out.stdout
    assert "imported" in out.stdout
    assert "RuntimeWarning" in out.stderr
    assert "'triton' is being imported after TensorFlow" in out.stderr
    assert "Import triton" in out.stderr


def test_triton_first_is_the_safe_order_and_stays_quiet(tmp_path):
    out = _run("""
        import warnings
        warnings.filterwarnings("error", message=".*triton.*")
        import triton
        import softorder.tensorflow as stf
        print(stf.soft_rank([2.0, 1.0]).numpy())
    """, tmp_path, extra_path=[_fake_triton(tmp_path)])
    assert out.returncode == 0, out.stderr
    assert "[2. 1.]" in out.stdout
