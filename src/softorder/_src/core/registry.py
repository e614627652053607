r"""The operator registry: each operator defined once, for every framework.

An `Operator` is

* a **row function** ``rows(x2, strength, options, xp) -> (y2, BlockJacobian)`` on ``[m, n]``
  rows of any backend ``xp`` (`backend.Backend`): the NumPy backend runs the fused Numba
  kernels, torch and JAX run the same code over their own arrays;
* its **options**, a frozen, hashable dataclass validated in one place (`SortOptions`,
  `TopKOptions`): static in every framework (they choose the kernel), while the
  ``regularization_strength`` is an ordinary runtime value (a float, or a 0-d array/tensor,
  traced or not), so a schedule of strengths never recompiles anything;
* its **strength tangent** ``dy / d strength`` (`Operator.strength_tangent`), O(n) per row
  from the saved `BlockJacobian`, so the strength can be learned;
* its name and docstring text (`docstring`), rendered for each framework.

A front end saves the `BlockJacobian` of its own arrays and applies the one derivative map
`jacobian.apply`. Adding an operator is a row function and one `register` call.

Straight-through mode (``straight_through=True``, an option of every operator) is applied here,
once: the row function returns the hard operator's value (read off the same sort permutation)
with the soft operator's Jacobian at the same strength.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..isotonic import pav
from ..isotonic.regularizers import D_CAP, KIND_MAG, exponent_r, is_quadratic, kind_for, phi
from . import fused, partial
from . import validation as V
from .backend import NUMPY, NumpyBackend
from .dykstra import block_alpha, dykstra_with_infinite_groups, varies_on
from .jacobian import BlockJacobian, apply
from .projection import project_rows

__all__ = ["SortOptions", "TopKOptions", "Operator", "OPERATORS", "get", "register",
           "docstring"]


# --------------------------------------------------------------------------------------------
# Options: frozen, hashable, validated once.


@dataclass(frozen=True)
class SortOptions:
    """Options of soft sort and soft rank."""

    descending: bool = False
    regularization: str = "l2"
    p: float = 4 / 3
    straight_through: bool = False

    @classmethod
    def make(cls, *, descending=False, regularization="l2", p=4 / 3, straight_through=False,
             **_ignored) -> SortOptions:
        V.check_regularization(regularization)
        p = V.check_p(p) if regularization == "pnorm" else 4 / 3  # unused by l2 and kl
        return cls(V.check_bool(descending, "descending"), regularization, p,
                   V.check_bool(straight_through, "straight_through"))

    @property
    def r(self) -> float:
        return exponent_r(self.p) if self.regularization == "pnorm" else 1.0

    @property
    def exact_second_order(self) -> bool:
        """True when the residuals are locally constant in x (the Hessian is 0 a.e.)."""
        return is_quadratic(self.regularization, self.p)


@dataclass(frozen=True)
class TopKOptions:
    """Options of the sparse top-k operators (mask and magnitude)."""

    k: int
    p: float = 4 / 3
    solver: str = "pav"
    max_iter: int = 1000
    tol: float = 1e-9
    straight_through: bool = False
    # Partial sort (`partial`): None chooses automatically, True/False force it on/off.
    partial: bool | None = None

    @classmethod
    def make(cls, *, k, n, shape, axis, p=4 / 3, solver="pav", max_iter=1000, tol=1e-9,
             straight_through=False, partial=None, **_ignored) -> TopKOptions:
        k = V.check_k(k, n, shape, axis)
        p = V.check_p(p)
        V.check_solver(solver, p)
        return cls(k, p, solver, V.check_positive_int(max_iter, "max_iter"), V.check_tol(tol),
                   V.check_bool(straight_through, "straight_through"),
                   None if partial is None else V.check_bool(partial, "partial"))

    @property
    def r(self) -> float:
        return exponent_r(self.p)

    @property
    def exact_second_order(self) -> bool:
        return exponent_r(self.p) == 1.0


@dataclass(frozen=True)
class IsotonicOptions:
    """Options of (weighted, bounded) least-squares isotonic regression."""

    increasing: bool = True
    y_min: float | None = None
    y_max: float | None = None

    @classmethod
    def make(cls, *, increasing=True, y_min=None, y_max=None, **_ignored) -> IsotonicOptions:
        lo = None if y_min is None else V.check_real(y_min, "y_min")
        hi = None if y_max is None else V.check_real(y_max, "y_max")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"y_min must be <= y_max; got y_min={y_min!r}, y_max={y_max!r}.")
        return cls(V.check_bool(increasing, "increasing"), lo, hi)

    straight_through = False

    @property
    def exact_second_order(self) -> bool:
        """In ``y``: the residuals depend on the weights only (second order in y is 0)."""
        return True


Options = SortOptions | TopKOptions | IsotonicOptions


# --------------------------------------------------------------------------------------------
# Row functions: [m, n] in, ([m, n], BlockJacobian) out, over any backend.


def _is_numpy(xp, strength) -> bool:
    return isinstance(xp, NumpyBackend) and isinstance(strength, (float, int, np.floating))


def _split_gap(n, kind, r, k=None) -> float:
    """A scaled gap between sorted neighbours above which PAV never pools them against the
    rank weights ``rho`` (``k`` None) or the top-k weights: twice the range of the roots'
    shifts ``phi^-1(w)`` plus 1 (the fused kernels' threshold, `fused.zside`)."""
    w = np.arange(n, 0, -1.0) if k is None else (np.arange(n) < k).astype(np.float64)
    if kind == pav.KIND_KL:
        w = np.log(w)
    elif kind == pav.KIND_PNORM:
        w = w ** (1.0 / r)
    return 2.0 * (float(w.max() - w.min()) if n else 0.0) + 1.0


def _scaled_diff(a, b, scale, xp):
    """``(a - b) * scale`` entrywise without overflow of the difference, and 0 where
    ``a == b`` (equal infinities; ties under an infinite scale)."""
    diff = a - b
    finite = (xp.abs(a) < np.inf) & (xp.abs(b) < np.inf)
    halves = ((0.5 * a - 0.5 * b) * scale) * 2.0
    out = xp.where(finite & (xp.abs(diff) == np.inf), halves, diff * scale)
    return xp.where(a == b, xp.zeros_like(out), out)


def _scaled_sorted(xs, scale, gap, xp):
    """``xs * scale`` for rows ``xs`` sorted descending, where that product stays finite.

    Rows where it overflows (or, for a subnormal strength, where ``scale`` does) are made of
    segments: sorted neighbours farther apart than ``gap`` (scaled) are never pooled, and the
    operators (ranks, top-k masks) are translation invariant on each segment. Such a row gets
    ``s = (xs - segment's first entry) * scale - C * segment id`` with ``C = (n + 1) gap``:
    finite, decreasing, the same PAV blocks and values (the exact limit: ``x / strength``
    is never formed where it would overflow, docs/conventions.md)."""
    n = xs.shape[-1]
    z = xs * scale
    if n == 0:
        return z
    finite_x = xp.abs(xs) < np.inf
    need = xp.row_any(finite_x & ~(xp.abs(z) < np.inf))
    one = xp.where(xs[..., :1] == xs[..., :1], 1, 1)
    cut = xp.where(_scaled_diff(xs[..., :-1], xs[..., 1:], scale, xp) > gap, 1, 0)
    start = xp.concat([one, cut])
    seg = xp.cumsum_int32(start) - 1
    first = xp.segment_sum(xp.where(start == 1, xs, xp.zeros_like(z)), seg)
    seg_f = seg + xp.zeros_like(z)
    s = _scaled_diff(xs, first, scale, xp) - seg_f * ((n + 1.0) * gap)
    return xp.where(need, s, z)


def _scaled_projection(x, sign, scale, w, gap, regularization, r, xp):
    """``P_R(sign * x * scale, w)`` of rows (``w`` sorted descending, ``sign = +-1``,
    ``scale > 0``) and its Jacobian in ``x``, with the scaled input formed by
    `_scaled_sorted` (never overflowing)."""
    xs = x * sign if sign < 0 else x
    perm = xp.argsort_desc(xs)
    s = _scaled_sorted(xp.take(xs, perm), scale, gap, xp)
    ys, jz, _ = project_rows(s, w, regularization=regularization, r=r, z_is_sorted=True,
                             w_is_sorted=True, want_w=False, xp=xp)
    jac = BlockJacobian(perm, perm, jz.block, jz.a * (sign * scale), jz.b,
                        jz.c * (sign * scale))
    return xp.put(ys, perm), jac


def rank_rows(x, strength, o: SortOptions, xp=NUMPY):
    """Soft ranks ``P_R(+-x / eps, rho)`` of each row; ascending: rank 1 = smallest."""
    if _is_numpy(xp, strength):
        scale = (-1.0 if o.descending else 1.0) / float(strength)
        perm = np.argsort(x, axis=-1)
        y, jac = fused.zside(x, perm, not o.descending, scale, w_mode=fused.W_RHO,
                             kind=kind_for(o.regularization, o.r), r=o.r)
    else:
        sign = -1.0 if o.descending else 1.0
        kind = kind_for(o.regularization, o.r)
        y, jac = _scaled_projection(x, sign, 1.0 / strength, xp.rho(x),
                                    _split_gap(x.shape[-1], kind, o.r), o.regularization, o.r,
                                    xp)
    if o.straight_through:
        y = xp.put(xp.rho(x) + 0.0 * jac.a, jac.in_perm)
    return y, jac


def sort_rows(x, strength, o: SortOptions, xp=NUMPY):
    """Soft sort: descending ``P_R(rho / eps, x)`` (kl: ``log P_R(rho/eps, e^x)``); ascending
    is ``-soft_sort_desc(-x)``."""
    if _is_numpy(xp, strength):
        perm = np.argsort(x, axis=-1)
        y, jac = fused.wside(x, perm, o.descending, not o.descending, 1.0 / float(strength),
                             kind=kind_for(o.regularization, o.r), r=o.r)
    else:
        xs = x if o.descending else -x
        y, _, jac = project_rows(xp.rho(x) / strength, xs, regularization=o.regularization,
                                 r=o.r, z_is_sorted=True, log_form=o.regularization == "kl",
                                 want_z=False, xp=xp)
        # y = -S(-x) has the same Jacobian as S: the two sign flips cancel.
        y = y if o.descending else -y
    if o.straight_through:
        y = xp.take(x, jac.in_perm)
    return y, jac


def topk_mask_rows(x, strength, o: TopKOptions, xp=NUMPY):
    """Sparse soft top-k mask ``P_R(x, w_k)`` with ``R = (lambda/p) ||y||_p^p``.

    For ``k << n`` (`partial.use_partial`) the problem is solved on the largest entries only
    and certified exact (`partial`); the same values and residuals as the full sort."""
    if partial.use_partial(o, x.shape[-1], xp):
        r = o.r

        def tail(xs, strength):
            # A singleton with w = 0 and u = 0, as the full sort gives it: d = phi'(0) is 1
            # (p = 2) or 0 (p < 2; and p > 2, whose singletons the kernels set to d = 0).
            if r == 1.0:
                return (xp.zeros_like(xs) + 1.0 / strength, xp.zeros_like(xs) - 1.0,
                        xp.zeros_like(xs) + 1.0 / strength)
            return xp.zeros_like(xs), xp.zeros_like(xs), xp.zeros_like(xs)

        def bound(x2, xk, strength):
            # y = clip(phi((x - tau) / lambda), 0, 1) with tau >= x_(k) - lambda, unless the
            # support is the top k: it lies in {x >= x_(k) - lambda} (with rounding slack).
            t = xk - strength
            return xp.row_count(x2 >= t - 1e-12 * (xp.abs(xk) + strength))

        y, jac = partial.partial_rows(_topk_mask_core, x, x, strength, o, xp, tail, bound)
    else:
        y, jac = _topk_mask_core(_as_float64(x, xp), strength, o, xp)
    if o.straight_through:
        y = _put_row(xp.topk_weights(jac.a, o.k) + 0.0 * jac.a, jac.in_perm, x, xp)
    return y, jac


def _as_float64(x, xp):
    """Rows as float64 on `backend.NumpyWindowBackend` (which takes float32 top-k rows)."""
    return xp.as_float64(x) if getattr(xp, "window_layout", False) else x


def _put_row(vals, perm, x, xp):
    """``vals`` at ``perm`` in a row shaped like ``x``: a scatter, or into zeros for window
    residuals (`partial`: narrower than the row)."""
    if perm.shape[-1] == x.shape[-1]:
        return xp.put(vals, perm)
    return xp.put_window(vals, perm, x)


def _topk_mask_core(x, strength, o: TopKOptions, xp):
    if _is_numpy(xp, strength) and o.solver == "pav":
        y, jac = fused.zside(x, np.argsort(x, axis=-1), True, 1.0 / float(strength),
                             w_mode=fused.W_TOPK, k=o.k, kind=kind_for("pnorm", o.r), r=o.r)
    elif o.solver == "pav":
        kind = kind_for("pnorm", o.r)
        y, jac = _scaled_projection(x, 1.0, 1.0 / strength, xp.topk_weights(x, o.k),
                                    _split_gap(x.shape[-1], kind, o.r, o.k), "pnorm", o.r, xp)
    else:
        w = xp.topk_weights(x, o.k)
        perm = xp.argsort_desc(x)
        # x / strength without overflow (`_scaled_sorted`: far-apart segments, each shifted;
        # the mask s - v is translation invariant on each, as Dykstra never pools them).
        s = _scaled_sorted(xp.take(x, perm), 1.0 / strength,
                           _split_gap(x.shape[-1], pav.KIND_L2, 1.0, o.k), xp)
        # A run of +-inf entries (ties at +-M, targets M - w) is one block of its own where its
        # weights differ (else equal values: singletons, as isotonic.pav): its mean weight.
        pool_pos = varies_on(w, s == float("inf"), xp)
        pool_neg = varies_on(w, s == -float("inf"), xp)
        st = dykstra_with_infinite_groups(s, s - w, xp.ones_like(s), pool_pos, pool_neg,
                                          max_iter=o.max_iter, tol=o.tol, xp=xp)
        v, block = st.solution, st.block
        inf = (s == float("inf")) | (s == -float("inf"))
        wmean = xp.segment_sum(w, block) / xp.segment_sum(xp.ones_like(s), block)
        ys = xp.where(inf, wmean + 0.0 * v, s - v)
        y = xp.put(ys, perm)
        # 0, or NaN on a row holding NaN (Dykstra makes that whole row NaN): its gradient too.
        ones = xp.ones_like(s) + ys * 0.0
        alpha = block_alpha(block, ones, xp)
        jac = BlockJacobian(perm, perm, block, ones / strength, -ones, alpha / strength)
    return y, jac


def topk_magnitude_rows(x, strength, o: TopKOptions, xp=NUMPY):
    """Sparse soft top-k in magnitude: ``sign(x) * unsort(u + phi(u))`` (DESIGN §1).

    For ``k << n`` (`partial.use_partial`) solved on the entries of largest ``|x|`` only and
    certified exact (`partial`); the same values and residuals as the full sort."""
    if partial.use_partial(o, x.shape[-1], xp):
        r = o.r

        def tail(xs, strength):
            # A singleton with w = 0 and u = 0, as the full sort gives it: d = 1 + phi_lam'(0),
            # alpha = 1, signs of x (a + b c = 0).
            sg = xp.sign(xs)
            dphi0 = 1.0 if r == 1.0 else (0.0 if r > 1.0 else D_CAP)
            d = 1.0 + dphi0 / strength
            return xp.abs(sg) * d, sg * -d, sg  # |sg| = sg^2

        y, jac = partial.partial_rows(_topk_magnitude_core, x, xp.abs(x), strength, o, xp, tail)
    else:
        y, jac = _topk_magnitude_core(_as_float64(x, xp), strength, o, xp)
    if o.straight_through:
        y = x * _put_row(xp.topk_weights(jac.a, o.k) + 0.0 * jac.a, jac.in_perm, x, xp) + 0.0
    return y, jac


def _topk_magnitude_core(x, strength, o: TopKOptions, xp):
    if _is_numpy(xp, strength) and o.solver == "pav":
        y, jac = fused.zside(x, np.argsort(np.abs(x), axis=-1), True, 1.0, mag=True,
                             w_mode=fused.W_TOPK, k=o.k, kind=KIND_MAG, r=o.r,
                             lam=float(strength))
    else:
        ax = xp.abs(x)
        perm = xp.argsort_desc(ax)
        s = xp.take(ax, perm)
        sg = xp.sign(xp.take(x, perm))
        w = xp.topk_weights(x, o.k)
        lam = strength
        if o.solver == "pav":
            u, d, alpha, _, block = xp.pav(s, w, xp.ones_like(s), KIND_MAG, o.r, lam, False,
                                           False)
        else:
            omega = 1.0 + lam * w  # weighted isotonic: weights 1/lam + w, targets s/(1+lam w)
            # |x| = inf: one block at the top where it holds a top-k weight (u = inf), else
            # singletons with u = 0 (v = s), as isotonic.pav.
            inf = s == float("inf")
            pool_pos = xp.row_max(xp.where(inf, w, -float("inf"))) > 0
            st = dykstra_with_infinite_groups(s, s / omega, omega, pool_pos, pool_pos & False,
                                              max_iter=o.max_iter, tol=o.tol, xp=xp)
            v, block = st.solution, st.block
            held = xp.segment_sum(w, block) > 0
            u = xp.where(inf, xp.where(held, 0.0 * v + float("inf"), 0.0 * v), s - v)
            # v * 0 is 0, or NaN on a row holding NaN (Dykstra makes that whole row NaN).
            d = (xp.ones_like(s) + v * 0.0) * (1.0 + 1.0 / lam)
            alpha = block_alpha(block, omega, xp) / omega
        # Entries with x = 0 (sign 0) stay exactly 0, also where u is infinite.
        ys = xp.where(sg == 0, 0.0, sg * (u + phi(u / lam, o.r, xp))) + 0.0
        y = xp.put(ys, perm)
        jac = BlockJacobian(perm, perm, block, sg * d * sg, -sg * d, alpha * sg)
    return y, jac


def isotonic_rows(xs, strength, o: IsotonicOptions, xp=NUMPY):
    """Isotonic regression of rows ``y`` with weights ``c``: ``(v, (J_y, J_c))``.

    On each PAV block ``v_B = sum_B c_j y_j / C_B`` (``C_B = sum_B c_j``), so
    ``dv_i/dy_j = c_j / C_B`` and ``dv_i/dc_j = (y_j - v_B) / C_B`` for ``j`` in the block of
    ``i``: two `BlockJacobian` with identity permutations. Where a bound is active the output
    is the bound and both rows of the Jacobian vanish.
    """
    y, c = xs
    target = -y if o.increasing else y
    v, _, alpha, _, block = xp.pav(target, xp.zeros_like(y), c, pav.KIND_L2, 1.0, 1.0, True, False)
    v = -v if o.increasing else v
    vb = v  # the unclipped block values
    free = xp.ones_like(v)
    if o.y_min is not None:
        free = xp.where(v > o.y_min, free, 0.0 * free)
        v = xp.maximum(v, o.y_min)
    if o.y_max is not None:
        free = xp.where(v < o.y_max, free, 0.0 * free)
        v = xp.minimum(v, o.y_max)
    v = v + 0.0  # no -0.0
    csum = xp.segment_sum(c, block)
    zero = xp.zeros_like(v)
    # alpha = c / C_B from the kernel: its limit where weights are infinite (1 / K on the K
    # infinitely weighted entries of a block, 0 on the others).
    jy = BlockJacobian(None, None, block, zero, free, alpha)
    jc = BlockJacobian(None, None, block, zero, free / csum, y - vb)
    return v, (jy, jc)


# --------------------------------------------------------------------------------------------
# Derivatives in the strength, from the same residuals (O(n) per row).


def _tangent_scaling(x, y, jac, strength, o, xp):
    """Operators with ``F(x, eps) = G(x / eps)`` (ranks, top-k masks): ``-J x / eps``."""
    return -apply(jac, x, xp=xp) / strength


def _tangent_sort(x, y, jac, strength, o: SortOptions, xp):
    """``d soft_sort / d eps``.

    l2 and p-norm: ``S(t x, eps t^{-(p-1)}) = t S(x, eps)`` (homogeneity), so by Euler's
    identity ``dS/deps = -(r / eps) (S - J x)`` with ``r = 1/(p-1)`` (l2: ``r = 1``). kl: in
    sorted coordinates ``u_k = z_k - LSE(z_B) + LSE(w_B)`` with ``z = rho / eps``, so
    ``du_k/deps = (-rho_k + sum_B softmax(z_B)_j rho_j) / eps^2`` (negated for ascending).
    """
    if o.regularization != "kl":
        return -(o.r / strength) * (y - apply(jac, x, xp=xp))
    rho = xp.rho(x) + 0.0 * jac.b
    size = xp.segment_sum(xp.ones_like(rho), jac.block)
    # rho decreases by 1 along a block: its first (largest) entry is the mean + (size-1)/2,
    # a stable shift for the softmax of z = rho / eps over the block.
    rho_first = xp.segment_sum(rho, jac.block) / size + (size - 1.0) / 2.0
    e = xp.exp((rho - rho_first) / strength)
    mean_rho = xp.segment_sum(e * rho, jac.block) / xp.segment_sum(e, jac.block)
    t = (mean_rho - rho) / (strength * strength)
    return t if o.descending else -t


def _tangent_magnitude(x, y, jac, strength, o: TopKOptions, xp):
    """``d soft_topk_magnitude / d lambda``.

    ``F(t x, lambda t^{2-p}) = t F(x, lambda)``, so ``dF/dlambda = (F - J x) / ((2-p) lambda)``
    for ``p != 2``. For ``p = 2`` the block value is ``gamma_B = S_B / (|B| + lambda W_B)``
    (``S_B``: block sum of ``|x|`` sorted, ``W_B`` of ``w_k``) and
    ``y = sign (1 + 1/lambda) (s - gamma)``, differentiated with the blocks held fixed.
    """
    if o.r != 1.0:
        return (y - apply(jac, x, xp=xp)) / ((2.0 - o.p) * strength)
    lam = strength
    s = xp.take(xp.abs(x), jac.in_perm)
    sg = xp.sign(xp.take(x, jac.in_perm))
    w = xp.topk_weights(s, o.k) + 0.0 * s
    size = xp.segment_sum(xp.ones_like(s), jac.block)
    wsum = xp.segment_sum(w, jac.block)
    gamma = xp.segment_sum(s, jac.block) / (size + lam * wsum)
    dgamma = -gamma * wsum / (size + lam * wsum)
    dys = sg * (-(s - gamma) / (lam * lam) - (1.0 + 1.0 / lam) * dgamma)
    dys = xp.where(sg == 0, 0.0 * s, dys)
    return _put_row(dys, jac.in_perm, x, xp)


# --------------------------------------------------------------------------------------------
# The registry.


@dataclass(frozen=True)
class Operator:
    """One operator, defined once.

    Attributes:
      name: the public name (``"soft_rank"``).
      rows: ``(x2, strength, options, xp) -> (y2, BlockJacobian)``.
      options: the options dataclass (`SortOptions` or `TopKOptions`); ``options.make(**kw)``
        validates keyword options and returns a frozen instance.
      strength_tangent_fn: ``(x2, y2, jac, strength, options, xp) -> dy/dstrength``.
      sorted_output: True when the output is in sorted order (``out_perm`` is None).
      takes_k: True for the top-k operators (``k`` is their second positional argument).
      n_inputs: differentiable inputs; with 2, ``rows`` takes and ``jac`` is a tuple (one
        BlockJacobian per input) and the operator has no strength (isotonic regression).
      hard: the name of the hard operator (the limit and the straight-through value).
      summary, math, args, returns, references: docstring parts (`docstring`).
    """

    name: str
    rows: Callable[..., tuple[Any, Any]]  # (y2, BlockJacobian, or a tuple of them)
    options: Any
    strength_tangent_fn: Callable[..., Any]
    sorted_output: bool
    takes_k: bool
    hard: str
    summary: str
    math: str
    args: str
    returns: str
    references: str
    n_inputs: int = 1

    def make_options(self, *, shape=None, axis=-1, cache=True, **kwargs) -> Options:
        """Validate keyword options (``k`` needs the input's ``shape`` and ``axis``).

        Options are frozen, so a call with the same plain Python values (checked by type and
        value: ``True`` and ``1`` differ) returns the options validated before; other values
        (arrays, symbolic sizes) are validated every time, and errors are never cached.
        ``cache=False`` validates without reading or writing the cache: a tracer that guards on
        Python state (torch.compile's Dynamo guards on the dict's contents) must not see it
        change between calls, or it recompiles on the call after the first."""
        key = _options_key(self, shape, axis, kwargs) if cache else None
        if key is None:
            return self._make_options(shape=shape, axis=axis, **kwargs)
        opts = _OPTIONS_CACHE.get(key)
        if opts is None:
            opts = self._make_options(shape=shape, axis=axis, **kwargs)
            if len(_OPTIONS_CACHE) >= _OPTIONS_CACHE_SIZE:
                _OPTIONS_CACHE.clear()
            _OPTIONS_CACHE[key] = opts
        return opts

    def _make_options(self, *, shape=None, axis=-1, **kwargs) -> Options:
        if self.takes_k:
            shape = tuple(shape)
            ax = V.check_axis(axis, len(shape), shape, kwargs.pop("axis_name", "axis"))
            return self.options.make(n=shape[ax], shape=shape, axis=axis, **kwargs)
        kwargs.pop("axis_name", None)
        return self.options.make(**kwargs)

    def strength_tangent(self, x2, y2, jac, strength, options, xp=NUMPY):
        """``dy2 / d strength`` (``[m, n]``), O(n) per row from the residuals."""
        if options.straight_through:
            raise NotImplementedError(
                f"{self.name}(straight_through=True) has no derivative in the strength (the "
                "value is the hard operator's); pass the strength as a constant.")
        return self.strength_tangent_fn(x2, y2, jac, strength, options, xp)


_PLAIN = (bool, int, float, str, type(None))
_OPTIONS_CACHE: dict = {}
_OPTIONS_CACHE_SIZE = 1024


def _options_key(op: Operator, shape, axis, kwargs):
    """The cache key of `Operator.make_options`, or None where a value is not a plain Python
    bool/int/float/str/None (those are validated every call). Only the top-k options depend
    on the shape and axis (through ``k``)."""
    items = []
    for name, v in kwargs.items():
        if type(v) not in _PLAIN:
            return None
        items.append((name, type(v), v))
    if op.takes_k:
        if type(axis) is not int or shape is None:
            return None
        shape = tuple(shape)
        if any(type(d) is not int for d in shape):
            return None
        return op.name, shape, axis, tuple(items)
    return op.name, tuple(items)


OPERATORS: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    if op.name in OPERATORS:
        raise ValueError(f"operator {op.name!r} is already registered")
    OPERATORS[op.name] = op
    return op


def get(name: str) -> Operator:
    try:
        return OPERATORS[name]
    except KeyError:
        raise ValueError(f"unknown operator {name!r}; known: {sorted(OPERATORS)}") from None


_BLONDEL = "Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. ICML 2020."
_SANDER = ("Sander, Puigcerver, Djolonga, Peyré, Blondel. Fast, Differentiable and Sparse "
           "Top-k: a Convex Analysis Perspective. ICML 2023.")

_ST_ARG = """straight_through: if True, the value is the hard operator's ({hard}) and the
    derivative is the soft operator's at the same strength (a straight-through estimator:
    a discrete forward pass that still trains)."""

_SORT_ARGS = """x: real {array} ``[..., n, ...]``: floating (float16, bfloat16, float32 or float64),
    or integer/boolean (promoted to the default float dtype; complex raises TypeError).
  {axis}: the {axis_word} to act along (default last).
  descending: if True, {desc}.
  regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"`` (the top-k paper's
    regularizer, exponent ``p``).
  regularization_strength: {strength}
    A Python number or a 0-d {array} (traced values too: a schedule never recompiles, and
    the strength gets a gradient).
  p: the exponent for ``regularization="pnorm"`` (``p > 1``).
  """ + _ST_ARG

_TOPK_ARGS = """x: real {array} ``[..., n, ...]`` (integer/boolean: promoted to the default float
    dtype).
  k: how many entries to keep, ``0 <= k <= n`` (a Python int).
  {axis}: the {axis_word} to select along (default last).
  regularization_strength: :math:`\\lambda > 0`, in the units of ``x``; larger is softer.
    A Python number or a 0-d {array} (traced values too).
  p: the norm exponent, ``p > 1``: ``p = 2`` is piecewise linear, ``p = 4/3`` (default)
    continuously differentiable.
  solver: ``"pav"`` (exact) or ``"dykstra"`` (parallel, approximate; ``p = 2`` only).
  max_iter, tol: Dykstra's sweep limit and stopping tolerance (relative to the row scale).
  """ + _ST_ARG

register(Operator(
    name="soft_rank", rows=rank_rows, options=SortOptions,
    strength_tangent_fn=_tangent_scaling, sorted_output=False, takes_k=False, hard="hard_rank",
    summary="Soft ranks: a differentiable, exact-in-the-limit relaxation of ranking.",
    math=r"""
.. math::

    r_\varepsilon(x) = P_R(x / \varepsilon, \rho)
    = \arg\max_{y \in \mathcal{P}(\rho)} \langle x / \varepsilon, y \rangle - R(y),
    \qquad \rho = (n, n-1, \dots, 1),

where :math:`\mathcal{P}(\rho)` is the permutahedron. ``l2``: :math:`R(y) = \tfrac12\|y\|^2`;
``kl``: :math:`R(y) = \langle y, \log y - 1\rangle`; ``pnorm``: :math:`R(y) = \tfrac1p
\|y\|_p^p`. Solved exactly by sorting and PAV in :math:`O(n \log n)`; derivatives in
:math:`O(n)`. Ranks are 1-based, ascending by default (rank 1 = smallest).""",
    args=_SORT_ARGS,
    returns="Soft ranks, the shape and dtype of ``x``, summing to :math:`n(n+1)/2` per row.",
    references=_BLONDEL,
))

register(Operator(
    name="soft_sort", rows=sort_rows, options=SortOptions,
    strength_tangent_fn=_tangent_sort, sorted_output=True, takes_k=False, hard="hard_sort",
    summary="Soft sort: a differentiable relaxation of sorting, exact in the limit.",
    math=r"""
.. math::

    s_\varepsilon(x) = P_R(\rho / \varepsilon, x)
    = \arg\max_{y \in \mathcal{P}(x)} \langle \rho / \varepsilon, y \rangle - R(y)
    \quad\text{(descending)},

with ``kl`` in the paper's log-space form :math:`\log P_R(\rho/\varepsilon, e^x)`. The
ascending sort is :math:`-s_\varepsilon(-x)` (for ``kl`` not a mirror image of the descending
one). The output lies in the permutahedron of ``x``: it is monotone and, for ``l2``, keeps the
sum of ``x``.""",
    args=_SORT_ARGS,
    returns="Softly sorted values, the shape and dtype of ``x``.",
    references=_BLONDEL,
))

register(Operator(
    name="soft_topk_mask", rows=topk_mask_rows, options=TopKOptions,
    strength_tangent_fn=_tangent_scaling, sorted_output=False, takes_k=True,
    hard="hard_topk_mask",
    summary="Sparse soft top-k mask: which entries are among the ``k`` largest, relaxed.",
    math=r"""
.. math::

    m_\lambda(x) = \arg\max_{y \in \mathcal{P}(w_k)} \langle x, y \rangle
    - \frac{\lambda}{p} \|y\|_p^p,
    \qquad \mathcal{P}(w_k) = \{y \in [0, 1]^n : \textstyle\sum_i y_i = k\}.

The output sums to ``k``, lies in ``[0, 1]`` and is sparse: entries far from the top-k
boundary are exactly 0 or 1. ``lambda -> 0`` gives the hard mask, ``lambda -> infinity`` the
uniform ``k / n``.""",
    args=_TOPK_ARGS,
    returns="The soft mask, the shape and dtype of ``x``.",
    references=_SANDER,
))

register(Operator(
    name="soft_topk_magnitude", rows=topk_magnitude_rows, options=TopKOptions,
    strength_tangent_fn=_tangent_magnitude, sorted_output=False, takes_k=True,
    hard="hard_topk_magnitude",
    summary="Sparse soft top-k in magnitude: keep the ``k`` entries of largest ``|x|``, relaxed.",
    math=r"""
The hard operator is :math:`x \odot \mathrm{topk\_mask}(|x|)`, the gradient of
:math:`f(x) = \tfrac12 \sum_{\text{top-}k} x_i^2`. The soft one is :math:`y = u + \nabla R(u)`
with

.. math::

    u = \arg\max_u \langle u, x\rangle - f^*(u) - R(u), \qquad
    R(u) = \frac{\lambda}{p}\|u\|_p^p,

computed exactly by PAV on :math:`|x|` sorted. Entries outside the soft support are exactly 0;
``lambda -> 0`` gives the hard operator, ``lambda -> infinity`` returns ``x``.""",
    args=_TOPK_ARGS,
    returns="The shape and dtype of ``x``.",
    references=_SANDER,
))


register(Operator(
    name="isotonic_regression", rows=isotonic_rows, options=IsotonicOptions,
    strength_tangent_fn=lambda *a: None, sorted_output=False, takes_k=False,
    hard="isotonic_regression", n_inputs=2,
    summary="Least-squares isotonic regression along an axis, batched and differentiable.",
    math=r"""
.. math::

    \min_{v_1 \le \dots \le v_n} \sum_i c_i (y_i - v_i)^2,
    \qquad y_{\min} \le v_i \le y_{\max}

(``increasing=False`` reverses the order). Exact, by pool-adjacent-violators, O(n) per row.
On each block :math:`v_B = \sum_B c_j y_j / \sum_B c_j`: derivatives in ``y`` and in the
weights follow with the blocks held fixed (0 where a bound is active).""",
    args="""y: floating {array} ``[..., n, ...]``.
  sample_weight: positive weights ``c``, the shape of ``y`` (default ones).
  y_min, y_max: optional bounds (Python numbers; clipping the unbounded solution is exact).
  increasing: the direction of the order constraint.
  {axis}: the {axis_word} of the sequences.
  return_blocks: also return the int32 block ids (an ``IsotonicResult``).""",
    returns="The fit, the shape and dtype of ``y`` (and its block ids with ``return_blocks``).",
    references="Barlow, Bartholomew, Bremner, Brunk. Statistical Inference under Order "
               "Restrictions. Wiley, 1972.",
))


_FRAMEWORK_WORDS = {
    "numpy": dict(array="array", axis="axis", axis_word="axis"),
    "torch": dict(array="tensor", axis="dim", axis_word="dimension"),
    "jax": dict(array="array", axis="axis", axis_word="axis"),
    "tensorflow": dict(array="tensor", axis="axis", axis_word="axis"),
}

_STRENGTH_SORT = {
    "soft_rank": (":math:`\\varepsilon > 0`, in the units of ``x``; larger is softer. l2 soft "
                  "ranks equal the hard ranks when :math:`\\varepsilon` is at most the smallest "
                  "gap between sorted entries; as :math:`\\varepsilon \\to \\infty` every rank "
                  "tends to :math:`(n+1)/2`."),
    "soft_sort": (":math:`\\varepsilon > 0`; larger is softer. Following the paper it "
                  "multiplies ``rho``, so it is in the units of ``1 / x``: l2 soft sort is "
                  "exact when :math:`\\varepsilon \\le 1 /` (the largest gap), and tends to the "
                  "mean as :math:`\\varepsilon \\to \\infty`."),
}
_DESC = {"soft_rank": "rank 1 is the largest entry; by default rank 1 is the smallest",
         "soft_sort": "sort largest first; ascending by default"}


def docstring(name: str, framework: str, example: str, extra_args: str = "") -> str:
    """The docstring of operator ``name`` in ``framework``'s words, with its ``example``."""
    op = get(name)
    words = dict(_FRAMEWORK_WORDS[framework])
    words.update(hard=op.hard, strength=_STRENGTH_SORT.get(name, ""), desc=_DESC.get(name, ""))
    args = op.args.format(**words)
    if extra_args:
        args = args.rstrip() + "\n  " + extra_args.strip()
    example = "\n".join("  " + line if line else "" for line in example.strip("\n").splitlines())
    return (f"{op.summary}\n{op.math}\n\nArgs:\n  {args.rstrip()}\n\nReturns:\n  {op.returns}"
            f"\n\nExample:\n{example}\n\nReferences:\n  {op.references}\n")


def replace_options(options, **changes):
    """A copy of frozen ``options`` with ``changes`` (e.g. ``straight_through=False``)."""
    return dataclasses.replace(options, **changes)

