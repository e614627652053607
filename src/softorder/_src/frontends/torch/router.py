r"""A mixture-of-experts router with sparse soft top-k gates (`SparseTopKRouter`).

The hard router it replaces (Switch, GShard, V-MoE: Riquelme et al. 2021, whose gate
``TOP_k(softmax(W x))`` is the one Sander et al. 2023 relax) is

.. math::
    g = \mathrm{softmax}(z) \odot \mathbf{1}_{\mathrm{top}_k(z)}, \qquad z = W x,

exactly zero outside the ``k`` chosen experts but with a derivative that ignores the choice.
Here the hard indicator is replaced by the sparse soft top-k mask of Sander et al. (2023),
``m = soft_topk_mask(z, k)``: the regularized linear program
:math:`\arg\max_{y \in [0,1]^n, \sum y = k} \langle z, y\rangle - \frac{\lambda}{p}\|y\|_p^p`,
continuous (C^1 for ``p = 4/3``), exactly 0 or 1 away from the boundary, and equal to the
hard mask when the k-th and (k+1)-th logits are further apart than about ``lambda``.

**At most k experts.** The soft mask sums to ``k`` with entries in ``[0, 1]``, so it has *at
least* k nonzeros, and more on contested rows (where the k-th and (k+1)-th logits are within
about ``lambda``). A dispatcher evaluates k experts per token, so the router makes the mask
k-sparse by subtracting its (k+1)-th largest value ``t`` and rescaling,

.. math::
    \tilde m = \frac{(m - t)_+}{1 - t}, \qquad g = \tilde m \odot \mathrm{softmax}(z).

``t <= k/(k+1)`` (k+1 entries >= t sum to at most k), so the division is safe; ``t = 0``
and ``\tilde m = m`` on uncontested rows; ``\tilde m`` is continuous (order statistics are),
1 where ``m`` is 1, and 0 on the (k+1)-th expert and below. Simply keeping the k largest
entries of ``m`` instead would jump at every swap of the k-th and (k+1)-th experts (by
symmetry both soft gates are equal and positive there); subtracting ``t`` makes the
contested expert fade out continuously, and ``t`` passes a gradient to the (k+1)-th
expert's logit. As ``lambda -> 0`` the gates are the hard router's. The gates are monotone in
the logits along the selection axis (the mask and softmax both are), so ordering by gate is
ordering by logit.

**Expert choice** (Zhou et al. 2022): each expert picks ``capacity = ceil(capacity_factor *
tokens * k / n_experts)`` tokens (at most ``tokens``), the top-capacity of the token-wise
softmax ``S`` along the token axis. Here the soft mask runs along the token axis on
``log S`` (the same order as ``S``, in logit units like token choice), with the same
(capacity+1)-th subtraction: ``g = \tilde m \odot S``.

References:
  Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
  Convex Analysis Perspective. ICML 2023.
  Riquelme et al. Scaling Vision with Sparse Mixture of Experts. NeurIPS 2021.
  Fedus, Zoph, Shazeer. Switch Transformers. JMLR 2022 (the load-balancing loss).
  Zhou et al. Mixture-of-Experts with Expert Choice Routing. NeurIPS 2022.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ...core.routing import check_router_args, router_capacity
from . import frontend as F
from .modules import _show

__all__ = ["SparseTopKRouter", "RouterOutput", "router_capacity"]


class RouterOutput(NamedTuple):
    """What `SparseTopKRouter` returns.

    Attributes:
      gates: ``[..., n_experts]``, the tokens' dtype: exactly zero outside the chosen experts,
        differentiable in the router's weights and the tokens.
      expert_indices: int64. Token choice: ``[..., k]``, each token's k experts by decreasing
        gate (ties: larger logit, then lower index); if fewer than k gates are nonzero (a
        tie between the k-th and (k+1)-th logits), the trailing entries still name valid
        experts, whose gate is exactly 0. Expert choice: ``[n_experts, capacity]``, each
        expert's tokens (indices into the flattened tokens ``x.reshape(-1, d_model)``) by
        decreasing gate, likewise.
      load: int64 ``[n_experts]``, the number of tokens with a nonzero gate for each expert.
      aux_loss: 0-d, the load-balancing loss (0 when its weight is 0).
    """

    gates: torch.Tensor
    expert_indices: torch.Tensor
    load: torch.Tensor
    aux_loss: torch.Tensor


def _k_sparse(m, kk, dim):
    """``(m - t)_+ / (1 - t)`` with ``t`` the (kk+1)-th largest entry of ``m`` along ``dim``
    (0 when the axis has only kk entries): at most kk nonzeros, continuous in ``m``."""
    if m.shape[dim] <= kk:
        return m
    t = torch.topk(m, kk + 1, dim=dim).values.narrow(dim, kk, 1)
    return torch.relu(m - t) / (1 - t)


class SparseTopKRouter(torch.nn.Module):
    r"""Mixture-of-experts router with sparse, differentiable soft top-k gates.

    A drop-in for softmax + hard top-k gating: ``logits = linear(x)``; token choice gives
    ``gates = k_sparse(soft_topk_mask(logits, k)) * softmax(logits)``, exactly zero outside
    at most ``k`` experts per token and equal to ``softmax(logits)`` on the hard top-k when the
    k-th and (k+1)-th logits are further apart than about ``regularization_strength`` (always
    as it goes to 0). The module docstring derives it; docs/routers_and_pruning.md shows the
    replacement in a training loop.

    Args:
      d_model: token width (the last dimension of the input).
      n_experts: number of experts.
      k: experts per token (token choice) or the ``k`` in the capacity (expert choice).
      mode: ``"token_choice"`` (each token picks k experts, top-k along the expert axis) or
        ``"expert_choice"`` (each expert picks ``router_capacity(tokens, n_experts, k,
        capacity_factor)`` tokens, top-k along the flattened token axis: the tokens of one
        call, e.g. one rank's batch under DDP).
      capacity_factor: the expert-choice capacity factor (unused by token choice).
      p: the soft top-k mask's p-norm regularizer (``4/3``: C^1 and sparse; ``2``: quadratic).
      regularization_strength: lambda, in logit units; larger is softer. A Python number or a
        0-d tensor (a buffer for a schedule: no recompilation under ``torch.compile``).
      solver: ``"pav"`` (exact) or ``"dykstra"`` (needs ``p=2``).
      load_balancing_weight: weight of the Switch-style auxiliary loss
        ``n_experts * sum_e f_e P_e`` (``f_e = load_e / (tokens * k)``, ``P_e`` the mean
        router probability); 0 gives a 0-d zero tensor.
      bias: whether the router's linear layer has a bias.

    Returns:
      `RouterOutput` ``(gates, expert_indices, load, aux_loss)``.

    Example:
      >>> import torch
      >>> from softorder.torch import SparseTopKRouter
      >>> router = SparseTopKRouter(2, 4, k=1, regularization_strength=0.1)
      >>> with torch.no_grad():
      ...     _ = router.linear.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]]))
      >>> x = torch.tensor([[2.0, 1.0], [1.0, 0.98]])
      >>> torch.softmax(router.linear(x), dim=-1).round(decimals=4)
      tensor([[0.6964, 0.2562, 0.0128, 0.0347],
              [0.4437, 0.4349, 0.0601, 0.0613]], grad_fn=<RoundBackward1>)
      >>> out = router(x)
      >>> out.gates.round(decimals=4)  # row 0: the hard router's; row 1 contested: damped
      tensor([[0.6964, 0.0000, 0.0000, 0.0000],
              [0.2388, 0.0000, 0.0000, 0.0000]], grad_fn=<RoundBackward1>)
      >>> out.expert_indices.tolist(), out.load.tolist()
      ([[0], [0]], [2, 0, 0, 0])
    """

    def __init__(self, d_model: int, n_experts: int, k: int, *, mode: str = "token_choice",
                 capacity_factor: float = 1.0, p: float = 4 / 3,
                 regularization_strength: F.Strength = 1.0, solver: str = "pav",
                 load_balancing_weight: float = 0.0, bias: bool = False):
        super().__init__()
        (d_model, n_experts, k, capacity_factor, p, load_balancing_weight) = check_router_args(
            d_model, n_experts, k, mode, capacity_factor, p, regularization_strength, solver,
            load_balancing_weight)
        self.d_model, self.n_experts, self.k, self.mode = d_model, n_experts, k, mode
        self.capacity_factor = capacity_factor
        self.p = p
        self.regularization_strength = regularization_strength
        self.solver = solver
        self.load_balancing_weight = load_balancing_weight
        self.linear = torch.nn.Linear(d_model, n_experts, bias=bool(bias))

    def capacity(self, tokens: int) -> int:
        """Tokens each expert takes in expert-choice mode for a call with ``tokens`` tokens."""
        return router_capacity(tokens, self.n_experts, self.k, self.capacity_factor)

    def _mask(self, scores, kk, dim):
        m = F.soft_topk_mask(scores, kk, dim=dim,
                             regularization_strength=self.regularization_strength, p=self.p,
                             solver=self.solver)
        return _k_sparse(m, kk, dim)

    def forward(self, x: torch.Tensor) -> RouterOutput:
        if x.shape[-1:] != (self.d_model,):
            raise ValueError(f"x must have shape [..., d_model={self.d_model}]; got "
                             f"{tuple(x.shape)}.")
        logits = self.linear(x)
        z = logits.reshape(-1, self.n_experts)  # [tokens, n_experts]
        probs = torch.softmax(z, dim=-1)
        if self.mode == "token_choice":
            # The mask is invariant to a shift of each row: the logits stand for log-probs.
            mask = self._mask(z, self.k, -1)
            order = torch.sort(z, dim=-1, descending=True, stable=True).indices
            indices = order[:, : self.k].reshape(*x.shape[:-1], self.k)
        else:
            c = self.capacity(z.shape[0])
            log_probs = torch.log_softmax(z, dim=-1)
            mask = self._mask(log_probs, c, 0)
            order = torch.sort(log_probs, dim=0, descending=True, stable=True).indices
            indices = order[:c].T.contiguous()
        gates = mask * probs
        load = (gates != 0).sum(dim=0)
        if self.load_balancing_weight == 0:
            aux = z.new_zeros(())
        else:
            frac = load.to(z.dtype) / max(z.shape[0] * self.k, 1)
            aux = (self.load_balancing_weight * self.n_experts) * (frac * probs.mean(dim=0)).sum()
        return RouterOutput(gates.reshape(logits.shape), indices, load, aux)

    def extra_repr(self):
        return (f"d_model={self.d_model}, n_experts={self.n_experts}, k={self.k}, "
                f"mode={self.mode!r}, capacity_factor={self.capacity_factor:.4g}, "
                f"p={self.p:.4g}, regularization_strength={_show(self.regularization_strength)}, "
                f"solver={self.solver!r}, load_balancing_weight={self.load_balancing_weight:.4g}, "
                f"bias={self.linear.bias is not None}")
