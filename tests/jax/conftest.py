"""JAX tests: float64 on (x64 is process-global; the no-x64 behaviour is tested in a
subprocess), and framework-pure: importing TensorFlow here is an error (TF + Triton clash)."""

import sys

import jax

jax.config.update("jax_enable_x64", True)


class _NoTensorFlowHere:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tests/jax must not import tensorflow (keep these tests JAX-only).")
        return None


sys.meta_path.insert(0, _NoTensorFlowHere())
