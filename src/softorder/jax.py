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

__all__ = [
    "soft_sort",
    "soft_rank",
    "soft_topk_mask",
    "soft_topk_magnitude",
    "isotonic_regression",
    "IsotonicResult",
    "BACKENDS",
    "default_backend",
]
