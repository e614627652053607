"""The TensorFlow API: soft sort, rank, top-k and isotonic regression, eager and in tf.function.

Importing this module imports TensorFlow (not torch, Triton or JAX). See docs/tensorflow.md.
"""

from ._src.frontends.tensorflow.frontend import (
    IsotonicResult,
    isotonic_regression,
    soft_rank,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_mask,
)
from ._src.frontends.tensorflow.layers import SoftRank, SoftSort, SoftTopKMagnitude, SoftTopKMask

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "SoftSort",
    "SoftRank",
    "SoftTopKMask",
    "SoftTopKMagnitude",
]
