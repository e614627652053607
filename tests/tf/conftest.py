"""TensorFlow tests run in a pytest process of their own (see the Makefile).

Importing Triton after TensorFlow aborts the process (an LLVM option clash, TOOLCHAIN.md), so
this folder must never import triton: the finder below turns such an import into a clear
ImportError (a failing test) instead of a crashed test run.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _NoTritonHere:
    def find_spec(self, name, path=None, target=None):
        if name == "triton" or name.startswith("triton."):
            raise ImportError(
                "tests/tf must not import triton: importing it after TensorFlow aborts the "
                "process. Put Triton tests outside tests/tf."
            )
        return None


if "triton" in sys.modules:  # pragma: no cover - a mis-configured run
    raise RuntimeError("tests/tf must run in a process that has not imported triton.")
sys.meta_path.insert(0, _NoTritonHere())
