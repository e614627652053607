"""softorder: fast, exact, differentiable sorting, ranking and sparse top-k.

``import softorder`` needs only NumPy; the framework front ends (``softorder.torch``,
``softorder.jax``, ``softorder.tensorflow``) import their framework when first used.
"""

import importlib

__version__ = "0.1.0"
__all__ = ["numpy", "isotonic", "__version__"]

_SUBMODULES = {"numpy", "isotonic", "torch", "jax", "tensorflow", "torchsort", "nn", "datasets"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"softorder.{name}")
    raise AttributeError(f"module 'softorder' has no attribute {name!r}")
