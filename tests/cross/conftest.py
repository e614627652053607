"""tests/cross: every property body runs on NumPy, torch and JAX (this process may load Triton).

TensorFlow cannot share a process with Triton (an LLVM option clash, TOOLCHAIN.md), so the
TensorFlow runs of these same bodies are collected by tests/tf/test_cross_tf.py, in the
TensorFlow pytest process. ``SOFTORDER_TEST_BACKENDS=numpy,jax`` restricts both.
"""

import adapters


def pytest_generate_tests(metafunc):
    adapters.parametrize(metafunc, ("numpy", "torch", "jax"))
