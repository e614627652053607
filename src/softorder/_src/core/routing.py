"""Router hyperparameters shared by the torch and Flax `SparseTopKRouter` (no framework):
the expert-choice capacity and one wording of the argument errors."""

from __future__ import annotations

import math
import numbers

from . import validation as V

__all__ = ["MODES", "router_capacity", "check_router_args"]

MODES = ("token_choice", "expert_choice")


def router_capacity(tokens: int, n_experts: int, k: int, capacity_factor: float) -> int:
    """Tokens per expert in expert-choice routing: ``ceil(capacity_factor * tokens * k /
    n_experts)``, at most ``tokens``."""
    return min(tokens, math.ceil(capacity_factor * tokens * k / n_experts))


def _check_positive_real(value, name, allow_zero=False):
    v = V.check_real(value, name)
    if not ((v >= 0 if allow_zero else v > 0) and v < math.inf):
        what = ">= 0" if allow_zero else "positive"
        raise ValueError(f"{name} must be {what} and finite; got {value!r}.")
    return v


def check_router_args(d_model, n_experts, k, mode, capacity_factor, p,
                      regularization_strength, solver, load_balancing_weight):
    """The router's hyperparameters, checked (one wording for the torch and Flax modules)."""
    d_model = V.check_positive_int(d_model, "d_model")
    n_experts = V.check_positive_int(n_experts, "n_experts")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n_experts:
        raise ValueError(f"k must be an integer in 1..n_experts={n_experts}; got {k!r}.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
    capacity_factor = _check_positive_real(capacity_factor, "capacity_factor")
    p = V.check_p(p)
    V.check_solver(solver, p)
    if not hasattr(regularization_strength, "shape"):  # a tensor is checked at the call
        V.check_strength(regularization_strength)
    load_balancing_weight = _check_positive_real(load_balancing_weight,
                                                 "load_balancing_weight", allow_zero=True)
    return d_model, n_experts, int(k), capacity_factor, p, load_balancing_weight
