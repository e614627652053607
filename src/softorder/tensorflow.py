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
from ._src.frontends.tensorflow.losses import (
    soft_auc,
    soft_least_trimmed_squares,
    soft_median,
    soft_ndcg,
    soft_quantile,
    soft_spearman_loss,
    soft_spearmanr,
    soft_trimmed_mean,
    topk_classification_loss,
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
    "soft_spearmanr",
    "soft_spearman_loss",
    "topk_classification_loss",
    "soft_quantile",
    "soft_median",
    "soft_trimmed_mean",
    "soft_least_trimmed_squares",
    "soft_ndcg",
    "soft_auc",
]
