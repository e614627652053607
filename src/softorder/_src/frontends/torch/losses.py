"""The losses in `softorder.torch`: `losses.functions` over the torch operators (autograd,
``torch.func`` and ``torch.compile`` through them, as the operators allow)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...losses.frontend import Frontend, Layout, public
from .backend import TORCH
from .frontend import _as_float_tensor, _plain_eager, isotonic_regression, soft_rank, soft_sort

__all__ = ["soft_spearmanr", "soft_spearman_loss", "topk_classification_loss", "soft_quantile",
           "soft_median", "soft_trimmed_mean", "soft_least_trimmed_squares", "soft_ndcg",
           "soft_auc"]


def _as_native(a, name):
    if isinstance(a, torch.Tensor):
        return a
    arr = np.asarray(a)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return torch.as_tensor(arr)


def _to_rows(x, ax):
    xm = x.movedim(ax, -1)
    n = xm.shape[-1]
    return xm.reshape(math.prod(xm.shape[:-1]), n), Layout(tuple(xm.shape[:-1]), n)


def _concrete(a):
    """Values of a plain CPU tensor (no device sync, nothing under compile or torch.func)."""
    if a.device.type == "cpu" and _plain_eager(a):
        return a.detach().numpy()
    return None


def _cast_like(a, like):
    if isinstance(a, torch.Tensor):
        return a.to(like.dtype)
    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


F = Frontend(
    name="torch", module="softorder.torch", axis_name="dim", xp=TORCH,
    soft_rank=soft_rank, soft_sort=soft_sort, isotonic_regression=isotonic_regression,
    as_float=_as_float_tensor, as_native=_as_native, shape=lambda a: tuple(a.shape),
    is_bool=lambda a: a.dtype == torch.bool,
    is_int=lambda a: not (a.is_floating_point() or a.is_complex() or a.dtype == torch.bool),
    to_rows=_to_rows, batch_to_rows=lambda a, layout: a.reshape(-1, 1),
    from_rows=lambda v, layout: v.reshape(layout.batch), total=torch.sum, mean=torch.mean,
    concrete=_concrete, to_index=lambda a: a.to(torch.int64), cast_like=_cast_like,
)

soft_spearmanr = public(F, "soft_spearmanr", """
>>> import torch
>>> from softorder.torch import soft_spearmanr
>>> x = torch.tensor([[0.1, 0.4, 0.3, 0.9]], dtype=torch.float64, requires_grad=True)
>>> rho = soft_spearmanr(x, torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64))
>>> rho.sum().backward()  # the targets need no gradient
>>> x.grad.shape
torch.Size([1, 4])
""")
soft_spearman_loss = public(F, "soft_spearman_loss", """
>>> import torch
>>> from softorder.torch import soft_spearman_loss
>>> x = torch.tensor([[0.1, 0.4, 0.3, 0.9], [4.0, 3.0, 2.0, 1.0]])
>>> y = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
>>> soft_spearman_loss(x, y, regularization_strength=1e-3, reduction="none")
tensor([0.2000, 2.0000])
""")
topk_classification_loss = public(F, "topk_classification_loss", """
>>> import torch
>>> from softorder.torch import topk_classification_loss
>>> logits = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]], requires_grad=True)
>>> loss = topk_classification_loss(logits, torch.tensor([2, 0]), 1, regularization_strength=0.5)
>>> loss.backward()  # descending soft ranks of the labels: 2 and 4
>>> loss
tensor(2., grad_fn=<MeanBackward0>)
""")
soft_quantile = public(F, "soft_quantile", """
>>> import torch
>>> from softorder.torch import soft_quantile
>>> x = torch.tensor([3.0, 1.0, 4.0, 1.5, 9.0])
>>> soft_quantile(x, 0.25, regularization_strength=1e-3), torch.quantile(x, 0.25)
(tensor(1.5000), tensor(1.5000))
""")
soft_median = public(F, "soft_median", """
>>> import torch
>>> from softorder.torch import soft_median
>>> soft_median(torch.tensor([3.0, 1.0, 4.0, 1.5]), regularization_strength=1e-3)
tensor(2.2500)
""")
soft_trimmed_mean = public(F, "soft_trimmed_mean", """
>>> import torch
>>> from softorder.torch import soft_trimmed_mean
>>> x = torch.tensor([3.0, 1.0, 4.0, 1.5, 90.0])
>>> soft_trimmed_mean(x, 1, regularization_strength=1e-3)  # (1.5 + 3 + 4) / 3
tensor(2.8333)
""")
soft_least_trimmed_squares = public(F, "soft_least_trimmed_squares", """
>>> import torch
>>> from softorder.torch import soft_least_trimmed_squares
>>> r = torch.tensor([[0.5, -1.0, 10.0, 0.0]], requires_grad=True)  # one outlier
>>> loss = soft_least_trimmed_squares(r, 1, regularization_strength=1e-4)
>>> loss.backward()
>>> loss, r.grad  # (0.25 + 1 + 0) / 3; the outlier gets no gradient
(tensor(0.4167, grad_fn=<MeanBackward0>), tensor([[ 0.3333, -0.6667,  0.0000,  0.0000]]))
""")
soft_ndcg = public(F, "soft_ndcg", """
>>> import torch
>>> from softorder.torch import soft_ndcg
>>> scores = torch.tensor([[0.9, 0.2, 0.5]])
>>> soft_ndcg(scores, torch.tensor([[3.0, 0.0, 1.0]]), regularization_strength=1e-3)
tensor([1.])
""")
soft_auc = public(F, "soft_auc", """
>>> import torch
>>> from softorder.torch import soft_auc
>>> soft_auc(torch.tensor([0.1, 0.8, 0.4, 0.3]), torch.tensor([0, 1, 1, 0]),
...          regularization_strength=1e-3)
tensor(1.)
""")
