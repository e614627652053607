"""The JAX API: soft sort, rank, top-k and isotonic regression under jit, vmap, grad, jvp.

Importing this module imports JAX (not torch, Triton or TensorFlow). See docs/jax.md.
"""

from ._src.frontends.jax.frontend import (
    BACKENDS,
    IsotonicResult,
    default_backend,
    isotonic_regression,
    soft_rank,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_mask,
)
from ._src.frontends.jax.losses import (
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

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "BACKENDS",
    "default_backend",
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
