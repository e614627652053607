"""The regularizers of DESIGN §1 in one place: kinds, exponents, links and solver limits.

Every PAV kernel (Numba on CPU, Triton on CUDA, the parallel block-merging one in JAX) and the
core's derivative code read their constants from here, so the three kernels cannot drift apart.
"""

from __future__ import annotations

KIND_L2 = 0  # R(y) = 1/2 ||y||^2, link phi(u) = u
KIND_KL = 1  # R(y) = <y, log y - 1>, link phi(u) = exp(u)
KIND_PNORM = 2  # R(y) = (1/p) ||y||_p^p, link phi(u) = sign(u) |u|^r, r = 1/(p-1)
KIND_MAG = 3  # top-k in magnitude: R*(s - v) + 1/2 w v^2

# p > 2 has phi'(0) = inf; derivative weights are capped there.
D_CAP = 1e8
# Safeguarded Newton on a block equation (general p): iteration cap and relative tolerance.
NEWTON_MAX_ITER = 200
NEWTON_RTOL = 1e-15


def exponent_r(p: float) -> float:
    """``r = q - 1 = 1 / (p - 1)``: the power in the link ``phi(u) = sign(u) |u|^r``.

    Snapped to the exact 1 (p = 2) and 3 (p = 4/3) so that the closed forms are chosen.
    """
    r = 1.0 / (float(p) - 1.0)
    for exact in (1.0, 3.0):
        if abs(r - exact) <= 1e-9 * exact:
            return exact
    return r


def kind_for(regularization: str, r: float = 1.0) -> int:
    """The PAV kind of a regularization name ("l2", "kl", "pnorm" with exponent ``r``)."""
    if regularization == "kl":
        return KIND_KL
    if regularization == "l2" or r == 1.0:
        return KIND_L2
    return KIND_PNORM


def is_quadratic(regularization: str, p: float) -> bool:
    """True when the residuals are locally constant in the input (second order is 0 a.e.)."""
    return regularization == "l2" or (regularization == "pnorm" and exponent_r(p) == 1.0)


def phi(u, r, xp):
    """The link function ``sign(u) |u|^r`` (``r = 1``: identity) over a backend ``xp``."""
    if r == 1.0:
        return u
    if r == 3.0:
        return u * u * u
    # The double where keeps autodiff (JAX replays) finite at u = 0, where |u|^r (r < 1) has
    # an infinite slope: 0 there, as the kernels' derivative weights of such entries.
    au = xp.abs(u)
    return xp.where(au == 0, 0.0 * u, xp.sign(u) * xp.where(au == 0, 1.0, au) ** r)


__all__ = ["KIND_L2", "KIND_KL", "KIND_PNORM", "KIND_MAG", "D_CAP", "NEWTON_MAX_ITER",
           "NEWTON_RTOL", "exponent_r", "kind_for", "is_quadratic", "phi"]
