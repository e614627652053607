"""Isotonic regression solvers (PAV for l2/kl/p-norm/magnitude, Dykstra), batched over rows."""

from ._src.core.dykstra import DykstraNotConvergedWarning
from ._src.core.isotonic_api import (
    DykstraResult,
    IsotonicResult,
    isotonic_dykstra,
    isotonic_kl,
    isotonic_magnitude,
    isotonic_pnorm,
    isotonic_regression,
    isotonic_regression_fwd,
)

__all__ = [
    "isotonic_regression",
    "isotonic_regression_fwd",
    "isotonic_kl",
    "isotonic_pnorm",
    "isotonic_magnitude",
    "isotonic_dykstra",
    "IsotonicResult",
    "DykstraResult",
    "DykstraNotConvergedWarning",
]
