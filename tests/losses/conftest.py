"""tests/losses: every property body runs on NumPy, torch and JAX (as tests/cross); the
TensorFlow runs of the same bodies are collected by tests/tf/test_losses_tf.py."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cross"))

import adapters  # noqa: E402


def pytest_generate_tests(metafunc):
    adapters.parametrize(metafunc, ("numpy", "torch", "jax"))
