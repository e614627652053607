r"""A drop-in for torchsort: ``soft_rank`` and ``soft_sort`` with torchsort's signature and
semantics, computed by `softorder.torch`.

Replace ``import torchsort`` by ``from softorder import torchsort``. Both functions take a 2-D
tensor ``[batch, n]``, act along the last dimension in ascending order, and take
``regularization`` (``"l2"`` or ``"kl"``) and ``regularization_strength`` positionally or by
keyword, in torchsort's order. The numbers are torchsort's (Blondel et al.'s operators at the
same strength): ``soft_rank`` is ``softorder.torch.soft_rank(values)`` (ascending, rank 1 =
smallest) and ``soft_sort`` is ``softorder.torch.soft_sort(values)``.

Differences (docs/torch.md, "Migrating from torchsort"): integer tensors are converted to
``torch.get_default_dtype()`` (torchsort's README passes an integer tensor); float16 and
bfloat16 are solved in float64 internally; ``kl`` gradients are computed with a max shift
(torchsort's ``kl`` backward overflows to NaN for large ``values / strength``); PAV blocks are
integer ids, never rediscovered by comparing floats; forward mode, ``torch.func`` and
``torch.compile(fullgraph=True)`` work.
"""

from __future__ import annotations

import torch

from ._src.frontends.torch import frontend as _F

__all__ = ["soft_rank", "soft_sort"]


def _check(values, regularization):
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"'values' should be a torch.Tensor; got {type(values).__name__}.")
    if values.dim() != 2:
        raise ValueError(f"'values' should be a 2d-tensor but got {tuple(values.shape)}")
    if regularization not in ("l2", "kl"):
        raise ValueError(f"'regularization' should be 'l2' or 'kl'; got {regularization!r}")
    if not values.is_floating_point() and not values.is_complex():
        values = values.to(torch.get_default_dtype())
    return values


def soft_rank(values, regularization="l2", regularization_strength=1.0):
    r"""Soft ranks of each row of a 2-D tensor, ascending (rank 1 = smallest), like torchsort.

    .. math:: r_\varepsilon(x) = P_R(x / \varepsilon, \rho),\qquad \rho = (n, \dots, 1).

    Args:
      values: ``[batch, n]`` tensor.
      regularization: ``"l2"`` or ``"kl"``.
      regularization_strength: :math:`\varepsilon > 0`; l2 ranks are exact when it is at most
        the smallest gap between entries.

    Example (torchsort's README):
      >>> import torch
      >>> from softorder import torchsort
      >>> torchsort.soft_rank(torch.tensor([[8, 0, 5, 3, 2, 1, 6, 7, 9]]))
      tensor([[8., 1., 5., 4., 3., 2., 6., 7., 9.]])
    """
    values = _check(values, regularization)
    return _F.soft_rank(values, dim=-1, regularization=regularization,
                        regularization_strength=regularization_strength)


def soft_sort(values, regularization="l2", regularization_strength=1.0):
    r"""Soft sort of each row of a 2-D tensor, ascending, like torchsort.

    .. math:: s_\varepsilon(x) = -P_R(\rho / \varepsilon, -x)

    (``kl``: the log-space form of Blondel et al.). Exact when ``regularization_strength`` is
    at most 1 / (the largest gap between sorted entries).

    Example (torchsort's README):
      >>> import torch
      >>> from softorder import torchsort
      >>> x = torch.tensor([[8, 0, 5, 3, 2, 1, 6, 7, 9]])
      >>> torchsort.soft_sort(x, regularization_strength=1.0)
      tensor([[0.5556, 1.5556, 2.5556, 3.5556, 4.5556, 5.5556, 6.5556, 7.5556, 8.5556]])
      >>> torchsort.soft_sort(x, regularization_strength=0.1)
      tensor([[-0., 1., 2., 3., 5., 6., 7., 8., 9.]])
    """
    values = _check(values, regularization)
    return _F.soft_sort(values, dim=-1, regularization=regularization,
                        regularization_strength=regularization_strength)
