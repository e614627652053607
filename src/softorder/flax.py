"""Flax (``flax.nnx``) modules built on `softorder.jax`: the sparse soft top-k mixture-of-experts
router. Importing this module imports JAX and Flax (not torch). See docs/routers_and_pruning.md.
"""

from ._src.frontends.jax.flax_router import RouterOutput, SparseTopKRouter

__all__ = ["SparseTopKRouter", "RouterOutput"]
