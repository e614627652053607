"""``torch.nn.Module`` wrappers: they hold the hyperparameters and call `softorder.torch`.

``regularization_strength`` may be a Python number or a 0-d tensor, e.g. a
``torch.nn.Parameter`` (a learned strength: it gets a gradient) or a buffer updated by a
schedule (no recompilation under ``torch.compile``).
"""

from __future__ import annotations

import torch

from . import frontend as F

__all__ = ["SoftSort", "SoftRank", "SoftTopKMask", "SoftTopKMagnitude"]


def _show(strength):
    if isinstance(strength, torch.Tensor) and strength.dim() == 0 and not strength.is_meta:
        return f"{float(strength.detach()):.4g}"
    return f"{strength}"


class SoftSort(torch.nn.Module):
    """Soft sort along ``dim`` (`softorder.torch.soft_sort`) as a module.

    Example:
      >>> import torch
      >>> from softorder.torch import SoftSort
      >>> SoftSort()(torch.tensor([[5.0, 1.0, 2.0]], dtype=torch.float64))
      tensor([[1.6667, 2.6667, 3.6667]], dtype=torch.float64)
    """

    _fn = staticmethod(F.soft_sort)

    def __init__(self, dim: int = -1, descending: bool = False, regularization: str = "l2",
                 regularization_strength: F.Strength = 1.0, p: float = 4 / 3,
                 straight_through: bool = False):
        super().__init__()
        self.dim = dim
        self.descending = descending
        self.regularization = regularization
        self.regularization_strength = regularization_strength
        self.p = p
        self.straight_through = straight_through

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, dim=self.dim, descending=self.descending,
                        regularization=self.regularization,
                        regularization_strength=self.regularization_strength, p=self.p,
                        straight_through=self.straight_through)

    def extra_repr(self):
        return (f"dim={self.dim}, descending={self.descending}, "
                f"regularization={self.regularization!r}, "
                f"regularization_strength={_show(self.regularization_strength)}, "
                f"p={self.p:.4g}, straight_through={self.straight_through}")


class SoftRank(SoftSort):
    """Soft ranks along ``dim`` (`softorder.torch.soft_rank`), 1-based, as a module.

    Example:
      >>> import torch
      >>> from softorder.torch import SoftRank
      >>> SoftRank(regularization_strength=2.0)(torch.tensor([5.0, 1.0, 2.0]))
      tensor([3.0000, 1.2500, 1.7500])
    """

    _fn = staticmethod(F.soft_rank)


class SoftTopKMask(torch.nn.Module):
    """Sparse soft top-k mask along ``dim`` (`softorder.torch.soft_topk_mask`) as a module.

    Example:
      >>> import torch
      >>> from softorder.torch import SoftTopKMask
      >>> SoftTopKMask(2, regularization_strength=0.01)(torch.tensor([-5.0, -2.0, 3.0, 1.0]))
      tensor([0., 0., 1., 1.])
    """

    _fn = staticmethod(F.soft_topk_mask)

    def __init__(self, k: int, dim: int = -1, regularization_strength: F.Strength = 1.0,
                 p: float = 4 / 3, solver: str = "pav", max_iter: int = 1000,
                 tol: float = 1e-9, straight_through: bool = False):
        super().__init__()
        self.k = k
        self.dim = dim
        self.regularization_strength = regularization_strength
        self.p = p
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.straight_through = straight_through

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, self.k, dim=self.dim,
                        regularization_strength=self.regularization_strength, p=self.p,
                        solver=self.solver, max_iter=self.max_iter, tol=self.tol,
                        straight_through=self.straight_through)

    def extra_repr(self):
        return (f"k={self.k}, dim={self.dim}, "
                f"regularization_strength={_show(self.regularization_strength)}, "
                f"p={self.p:.4g}, solver={self.solver!r}, "
                f"straight_through={self.straight_through}")


class SoftTopKMagnitude(SoftTopKMask):
    """Sparse soft top-k in magnitude (`softorder.torch.soft_topk_magnitude`) as a module."""

    _fn = staticmethod(F.soft_topk_magnitude)
