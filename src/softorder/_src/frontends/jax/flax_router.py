r"""Flax (``flax.nnx``) `SparseTopKRouter`: the torch module's router on `softorder.jax`.

Same math, options, outputs and numbers as ``softorder.torch.SparseTopKRouter`` (its module
docstring derives the gates): ``gates = k_sparse(soft_topk_mask(z, k)) * softmax(z)`` for
token choice, and along the token axis on ``log_softmax(z)`` for expert choice, where
``k_sparse(m) = (m - t)_+ / (1 - t)`` with ``t`` the (k+1)-th largest mask entry. The
linear layer is ``flax.nnx.Linear`` (its ``kernel`` is the transpose of torch's ``weight``).

References:
  Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
  Convex Analysis Perspective. ICML 2023.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from ...core.routing import check_router_args, router_capacity
from . import frontend as F

__all__ = ["SparseTopKRouter", "RouterOutput"]


class RouterOutput(NamedTuple):
    """``(gates, expert_indices, load, aux_loss)``, as ``softorder.torch.RouterOutput``
    (indices and load are int32 unless ``jax_enable_x64``)."""

    gates: jax.Array
    expert_indices: jax.Array
    load: jax.Array
    aux_loss: jax.Array


def _k_sparse(m, kk):
    """``(m - t)_+ / (1 - t)`` along the last axis, ``t`` its (kk+1)-th largest entry."""
    if m.shape[-1] <= kk:
        return m
    t = jax.lax.top_k(m, kk + 1)[0][..., kk:]
    return jax.nn.relu(m - t) / (1 - t)


class SparseTopKRouter(nnx.Module):
    r"""Mixture-of-experts router with sparse, differentiable soft top-k gates (Flax NNX).

    Args:
      d_model, n_experts, k, mode, capacity_factor, p, regularization_strength, solver,
      load_balancing_weight, bias: as ``softorder.torch.SparseTopKRouter``.
      rngs: ``flax.nnx.Rngs`` for the linear layer's initialization.
      dtype, param_dtype: of the linear layer (``flax.nnx.Linear``).
      backend: the `softorder.jax` backend (None: automatic).

    Returns:
      `RouterOutput` ``(gates, expert_indices, load, aux_loss)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from softorder.flax import SparseTopKRouter
      >>> router = SparseTopKRouter(2, 4, 1, regularization_strength=0.1, rngs=nnx.Rngs(0))
      >>> router.linear.kernel[...] = jnp.array([[1.0, 0, -1, 0], [0, 1, 0, -1]])
      >>> out = router(jnp.array([[2.0, 1.0], [1.0, 0.98]]))
      >>> [[round(g, 4) for g in row] for row in out.gates.tolist()]
      [[0.6964, 0.0, 0.0, 0.0], [0.2388, 0.0, 0.0, 0.0]]
      >>> out.expert_indices.tolist(), out.load.tolist()
      ([[0], [0]], [2, 0, 0, 0])
    """

    def __init__(self, d_model: int, n_experts: int, k: int, *, mode: str = "token_choice",
                 capacity_factor: float = 1.0, p: float = 4 / 3,
                 regularization_strength: Any = 1.0, solver: str = "pav",
                 load_balancing_weight: float = 0.0, bias: bool = False,
                 rngs: nnx.Rngs, dtype: Any = None, param_dtype: Any = jnp.float32,
                 backend: str | None = None):
        (d_model, n_experts, k, capacity_factor, p, load_balancing_weight) = check_router_args(
            d_model, n_experts, k, mode, capacity_factor, p, regularization_strength, solver,
            load_balancing_weight)
        self.d_model, self.n_experts, self.k, self.mode = d_model, n_experts, k, mode
        self.capacity_factor = capacity_factor
        self.p = p
        self.regularization_strength = regularization_strength
        self.solver = solver
        self.load_balancing_weight = load_balancing_weight
        self.backend = backend
        self.linear = nnx.Linear(d_model, n_experts, use_bias=bool(bias), dtype=dtype,
                                 param_dtype=param_dtype, rngs=rngs)

    def capacity(self, tokens: int) -> int:
        """Tokens each expert takes in expert-choice mode for a call with ``tokens`` tokens."""
        return router_capacity(tokens, self.n_experts, self.k, self.capacity_factor)

    def _mask(self, scores, kk):
        """The k-sparse soft top-k mask along the last axis."""
        m = F.soft_topk_mask(scores, kk, axis=-1,
                             regularization_strength=self.regularization_strength, p=self.p,
                             solver=self.solver, backend=self.backend)
        return _k_sparse(m, kk)

    def __call__(self, x: jax.Array) -> RouterOutput:
        if x.shape[-1:] != (self.d_model,):
            raise ValueError(f"x must have shape [..., d_model={self.d_model}]; got "
                             f"{tuple(x.shape)}.")
        logits = self.linear(x)
        z = logits.reshape(-1, self.n_experts)  # [tokens, n_experts]
        probs = jax.nn.softmax(z, axis=-1)
        if self.mode == "token_choice":
            mask = self._mask(z, self.k)
            order = jnp.argsort(z, axis=-1, descending=True, stable=True)
            indices = order[:, : self.k].reshape(*x.shape[:-1], self.k)
        else:
            c = self.capacity(z.shape[0])
            scores = jax.nn.log_softmax(z, axis=-1).T  # [n_experts, tokens]
            mask = self._mask(scores, c).T
            indices = jnp.argsort(scores, axis=-1, descending=True, stable=True)[:, :c]
        gates = mask * probs
        load = (gates != 0).sum(axis=0)
        if self.load_balancing_weight == 0:
            aux = jnp.zeros((), z.dtype)
        else:
            frac = load.astype(z.dtype) / max(z.shape[0] * self.k, 1)
            aux = (self.load_balancing_weight * self.n_experts) * (frac * probs.mean(axis=0)).sum()
        return RouterOutput(gates.reshape(logits.shape), indices, load, aux)
