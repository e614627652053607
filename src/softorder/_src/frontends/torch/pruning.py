r"""Magnitude pruning with the sparse soft top-k in magnitude (`SoftTopKMagnitudePruner`).

During training every pruned weight ``W`` is replaced, through
``torch.nn.utils.parametrize``, by its soft top-k in magnitude (Sander et al. 2023)

.. math::
    W_\mathrm{eff} = \mathrm{soft\_topk\_magnitude}(W, k),
    \qquad k = \mathrm{round}((1 - \mathrm{sparsity}) \cdot \mathrm{numel}),

over the flattened layer (``scope="layer"``) or over all pruned weights concatenated
(``scope="global"``: one top-k, so layers keep different fractions). The operator keeps the
largest entries, shrinks those near the k-th magnitude and sets the rest *exactly* to zero, with
an O(n) derivative: the loss sees a sparse network and the pruned weights still get a gradient
through the boundary block. ``lambda -> 0`` is hard magnitude pruning, ``lambda -> infinity``
no pruning. The user's training loop is unchanged (``module.weight`` is the effective weight;
the optimizer updates ``module.parametrizations.weight.original``). `SoftTopKMagnitudePruner.step`
advances an optional schedule of sparsity and strength (e.g. `pruning_schedule`: Zhu & Gupta's
cubic sparsity ramp and a geometric strength decay); `SoftTopKMagnitudePruner.freeze` installs
the hard mask with ``torch.nn.utils.prune``'s conventions (``weight_orig``, ``weight_mask``).

``regularization_strength`` is in the weights' units to the power ``2 - p`` (the operator
satisfies ``F(t W, lambda t^{2-p}) = t F(W, lambda)``): dimensionless for ``p = 2`` (entries
within a factor ``1 + lambda`` of the k-th magnitude are shrunk), ``|W|^{2/3}`` for
``p = 4/3`` (for weights of size 0.05, ``lambda`` of 1e-3..1e-1 goes from nearly hard to
soft).

References:
  Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse Top-k: a
  Convex Analysis Perspective. ICML 2023 (weight pruning with the top-k in magnitude).
  Zhu, Gupta. To prune, or not to prune. arXiv:1710.01878 (the cubic sparsity schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch.nn.utils import parametrize, prune

from ...core import validation as V
from . import frontend as F

__all__ = ["SoftTopKMagnitudePruner", "SparsityReport", "pruning_schedule"]

SCOPES = ("layer", "global")

Schedule = Callable[[int], tuple[float, float]]


class SparsityReport(NamedTuple):
    """Fraction of exactly-zero entries of each pruned weight (``layers``, by name) and of all
    of them together (``total``)."""

    layers: dict[str, float]
    total: float


def _check_sparsity(value, name="sparsity"):
    v = V.check_real(value, name)
    if not 0 <= v < 1:
        raise ValueError(f"{name} must lie in [0, 1); got {value!r}.")
    return v


def pruning_schedule(sparsity: float, steps: int, *, initial_sparsity: float = 0.0,
                     initial_strength: float = 1e-1, final_strength: float = 1e-3,
                     power: float = 3.0) -> Schedule:
    r"""A schedule ``step -> (sparsity, regularization_strength)`` for
    `SoftTopKMagnitudePruner`: the sparsity ramps as Zhu & Gupta (2017),

    .. math::
        s_t = s_f + (s_i - s_f)\,(1 - \min(t, T)/T)^{\mathrm{power}},

    and the strength decays geometrically from ``initial_strength`` to ``final_strength`` over
    the same ``steps`` (soft early, nearly hard when the mask is frozen).

    Example:
      >>> from softorder.torch import pruning_schedule
      >>> sched = pruning_schedule(0.9, 10, initial_strength=0.1, final_strength=0.001)
      >>> [tuple(round(v, 4) for v in sched(t)) for t in (0, 5, 10, 20)]
      [(0.0, 0.1), (0.7875, 0.01), (0.9, 0.001), (0.9, 0.001)]
    """
    s_f = _check_sparsity(sparsity)
    s_i = _check_sparsity(initial_sparsity, "initial_sparsity")
    steps = V.check_positive_int(steps, "steps")
    lam0 = V.check_strength(initial_strength, "initial_strength")
    lam1 = V.check_strength(final_strength, "final_strength")
    power = V.check_strength(power, "power")

    def schedule(step: int) -> tuple[float, float]:
        frac = min(max(step, 0), steps) / steps
        return (s_f + (s_i - s_f) * (1.0 - frac) ** power,
                lam0 * (lam1 / lam0) ** frac)

    return schedule


def _keep(sparsity, numel):
    """Entries kept at ``sparsity``: ``round((1 - sparsity) * numel)``."""
    return int(round((1.0 - sparsity) * numel))


class _LayerTopK(torch.nn.Module):
    """The parametrization ``W -> soft_topk_magnitude(W.flatten(), k).reshape(W.shape)``."""

    def __init__(self, pruner, index):
        super().__init__()
        self._pruner = [pruner]  # a list: not a submodule, not in the state_dict
        self.index = index

    def forward(self, w):
        pr = self._pruner[0]
        if pr.scope == "global":
            return pr._global_effective(self.index, w)
        y = F.soft_topk_magnitude(w.reshape(1, -1), pr._k[self.index], dim=-1,
                                  regularization_strength=pr._strength_for(w), p=pr.p,
                                  solver=pr.solver)
        return y.reshape(w.shape)


class SoftTopKMagnitudePruner:
    r"""Drive weights toward a target sparsity with the sparse soft top-k in magnitude.

    Registers a parametrization on each pruned weight (the training loop is unchanged), offers
    a schedule of sparsity and strength (`step`), installs a hard mask (`freeze`) and reports
    the achieved sparsity (`sparsity`). The module docstring gives the math.

    Args:
      params: an ``nn.Module`` (every parameter named ``weight`` with 2 or more dimensions
        of it and its submodules: linear, convolution, ... layers) or an iterable of
        ``(module, parameter_name)`` pairs (as ``torch.nn.utils.prune.global_unstructured``).
      sparsity: the target fraction of zeros in ``[0, 1)``, used by `freeze` and, without a
        schedule, during training.
      scope: ``"layer"`` (each weight keeps ``round((1 - sparsity) * numel)`` entries) or
        ``"global"`` (one top-k over all pruned weights concatenated).
      p: the operator's p-norm regularizer (``4/3`` or ``2``, ...).
      regularization_strength: lambda when no schedule is given (see the module docstring for
        its units); larger is softer.
      schedule: None, or a callable ``step -> (sparsity, regularization_strength)`` such as
        `pruning_schedule`; read at construction (step 0) and at each `step`.
      solver: ``"pav"`` or ``"dykstra"`` (needs ``p=2``).

    Example:
      >>> import torch
      >>> from softorder.torch import SoftTopKMagnitudePruner
      >>> layer = torch.nn.Linear(4, 2, bias=False)
      >>> with torch.no_grad():
      ...     _ = layer.weight.copy_(torch.tensor([[0.1, -0.9, 0.5, 0.05], [-0.3, 0.2, 0.8, -0.6]]))
      >>> pruner = SoftTopKMagnitudePruner(layer, 0.5, regularization_strength=1e-4)
      >>> layer.weight.detach().round(decimals=3)  # the effective (soft pruned) weight
      tensor([[ 0.0000, -0.9000,  0.5000,  0.0000],
              [ 0.0000,  0.0000,  0.8000, -0.6000]])
      >>> pruner.freeze()
      >>> sorted(name for name, _ in layer.named_buffers()), pruner.sparsity().total
      (['weight_mask'], 0.5)
    """

    def __init__(self, params: torch.nn.Module | Iterable[tuple[torch.nn.Module, str]],
                 sparsity: float, *, scope: str = "layer", p: float = 4 / 3,
                 regularization_strength: float = 1e-2, schedule: Schedule | None = None,
                 solver: str = "pav"):
        self.target_sparsity = _check_sparsity(sparsity)
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}; got {scope!r}.")
        self.scope = scope
        self.p = V.check_p(p)
        self.solver = V.check_solver(solver, self.p)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be None or a callable step -> (sparsity, "
                            f"regularization_strength); got {schedule!r}.")
        self.schedule = schedule
        self.targets, self.names = self._targets(params)
        if not self.targets:
            raise ValueError("params holds no weight to prune (a module without a >= 2-d "
                             "parameter named 'weight', or an empty list).")
        self.numels = [getattr(m, n).numel() for m, n in self.targets]
        self.frozen = False
        self.step_count = 0
        self._cache: dict | None = None
        self._strength = torch.tensor(V.check_strength(regularization_strength),
                                      dtype=torch.float64)
        self._set(self.target_sparsity, float(self._strength))
        if schedule is not None:
            self._apply_schedule()
        for i, (module, name) in enumerate(self.targets):
            parametrize.register_parametrization(module, name, _LayerTopK(self, i))
        self._hooks = []
        if isinstance(params, torch.nn.Module) and scope == "global":
            # One global operator per forward pass, shared by the layers (it is cleared after
            # the pass, so a later pass builds a fresh autograd graph).
            self._hooks = [params.register_forward_pre_hook(self._open_cache),
                           params.register_forward_hook(self._close_cache)]

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _targets(params):
        if isinstance(params, torch.nn.Module):
            pairs, names = [], []
            for mod_name, mod in params.named_modules():
                w = mod._parameters.get("weight")
                if isinstance(w, torch.nn.Parameter) and w.dim() >= 2:
                    pairs.append((mod, "weight"))
                    names.append(f"{mod_name}.weight" if mod_name else "weight")
            return pairs, names
        pairs = list(params)
        names = []
        for i, item in enumerate(pairs):
            if (not isinstance(item, tuple) or len(item) != 2
                    or not isinstance(item[0], torch.nn.Module) or not isinstance(item[1], str)
                    or not isinstance(getattr(item[0], item[1], None), torch.Tensor)):
                raise TypeError(f"params must be a module or (module, parameter_name) pairs; "
                                f"item {i} is {item!r}.")
            names.append(f"{i}.{type(item[0]).__name__}.{item[1]}")
        return pairs, names

    def _set(self, sparsity, strength):
        sparsity = _check_sparsity(sparsity, "the schedule's sparsity")
        self._strength.fill_(V.check_strength(strength, "the schedule's regularization_strength"))
        self.current_sparsity = sparsity
        if self.scope == "layer":
            self._k = [_keep(sparsity, n) for n in self.numels]
        else:
            self._k_global = _keep(sparsity, sum(self.numels))

    def _apply_schedule(self):
        assert self.schedule is not None
        s, lam = self.schedule(self.step_count)
        self._set(s, lam)

    def _strength_for(self, w):
        return self._strength.to(w.device)

    @property
    def current_strength(self) -> float:
        """The regularization strength in use now."""
        return float(self._strength)

    def _open_cache(self, *args):
        self._cache = {}

    def _close_cache(self, *args):
        self._cache = None

    def _originals(self, index, w):
        return [w if i == index else getattr(m.parametrizations, n).original
                if parametrize.is_parametrized(m, n) else getattr(m, n)
                for i, (m, n) in enumerate(self.targets)]

    def _global_effective(self, index, w):
        cache = self._cache
        if cache is not None and "parts" in cache:
            return cache["parts"][index].reshape(w.shape)
        flat = torch.cat([o.reshape(-1) for o in self._originals(index, w)])
        y = F.soft_topk_magnitude(flat.unsqueeze(0), self._k_global, dim=-1,
                                  regularization_strength=self._strength_for(w), p=self.p,
                                  solver=self.solver).squeeze(0)
        parts = torch.split(y, self.numels)
        if cache is not None:
            cache["parts"] = parts
        return parts[index].reshape(w.shape)

    # ------------------------------------------------------------------------------------
    def step(self) -> None:
        """Advance the schedule by one step (call it where you call ``scheduler.step()``)."""
        self.step_count += 1
        if self.schedule is not None and not self.frozen:
            self._apply_schedule()

    def effective_weights(self) -> list[torch.Tensor]:
        """The weights as the network sees them now (soft pruned, or masked once frozen)."""
        with torch.no_grad():
            return [getattr(m, n).detach().clone() for m, n in self.targets]

    def freeze(self, *, permanent: bool = False) -> None:
        """Install the hard mask at the target sparsity.

        The mask keeps the ``round((1 - sparsity) * numel)`` entries of largest magnitude of
        the effective weights (per layer, or over all of them for ``scope="global"``; ties by
        position), and the kept entries keep their effective values. The parametrization is
        removed and ``torch.nn.utils.prune.custom_from_mask`` installs ``weight_orig`` (a
        parameter) and ``weight_mask`` (a buffer), so further training keeps the zeros; with
        ``permanent=True`` the mask is applied and removed (``prune.remove``), leaving a plain
        zeroed parameter.
        """
        if self.frozen:
            raise RuntimeError("the pruner is already frozen.")
        eff = self.effective_weights()
        if self.scope == "layer":
            masks = [F.hard_topk_mask(e.abs().reshape(1, -1).double(),
                                      _keep(self.target_sparsity, e.numel())).reshape(e.shape)
                     for e in eff]
        else:
            flat = torch.cat([e.abs().reshape(-1).double() for e in eff]).unsqueeze(0)
            keep = _keep(self.target_sparsity, flat.numel())
            parts = torch.split(F.hard_topk_mask(flat, keep).squeeze(0), self.numels)
            masks = [m.reshape(e.shape) for m, e in zip(parts, eff)]
        for h in self._hooks:
            h.remove()
        self._hooks = []
        for (module, name), e, mask in zip(self.targets, eff, masks):
            parametrize.remove_parametrizations(module, name, leave_parametrized=False)
            with torch.no_grad():
                getattr(module, name).copy_(e)
            prune.custom_from_mask(module, name, mask.to(e.dtype))
            if permanent:
                prune.remove(module, name)
        self.frozen = True

    def sparsity(self) -> SparsityReport:
        """The achieved fraction of exact zeros of the effective weights, per layer and
        over all pruned weights."""
        eff = self.effective_weights()
        zeros = [int((e == 0).sum()) for e in eff]
        layers = {n: z / max(e.numel(), 1) for n, z, e in zip(self.names, zeros, eff)}
        return SparsityReport(layers, sum(zeros) / max(sum(self.numels), 1))

    def __repr__(self):
        return (f"SoftTopKMagnitudePruner({len(self.targets)} weights, "
                f"sparsity={self.target_sparsity:.4g}, scope={self.scope!r}, p={self.p:.4g}, "
                f"regularization_strength={self.current_strength:.4g}, "
                f"current_sparsity={self.current_sparsity:.4g}, frozen={self.frozen})")

