"""The PyTorch API: soft sort, rank, top-k and isotonic regression, with autograd, forward mode,
``torch.func`` and ``torch.compile``. Importing it imports torch (not Triton). See docs/torch.md.
"""

from ._src.frontends.torch.frontend import (
    IsotonicResult,
    hard_rank,
    hard_sort,
    hard_topk_magnitude,
    hard_topk_mask,
    isotonic_regression,
    soft_rank,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_mask,
)
from ._src.frontends.torch.losses import (
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
from ._src.frontends.torch.modules import SoftRank, SoftSort, SoftTopKMagnitude, SoftTopKMask

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "hard_sort",
    "hard_rank",
    "hard_topk_mask",
    "hard_topk_magnitude",
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
