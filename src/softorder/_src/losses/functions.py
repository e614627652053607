r"""The losses and soft statistics, each written once over a `Frontend` ``F``.

Every function lays its input out as ``[m, n]`` rows (``axis`` moved last, `Frontend.to_rows`),
computes one value per row with the front end's differentiable operators (``F.soft_rank``,
``F.soft_sort``, ``F.isotonic_regression``) and its `Backend` ``F.xp``, and returns the batch
shape (or a reduced loss). The math of each is in its docstring (`docs`) and docs/losses.md.

Masks (``mask=``, boolean, True = valid entry) exclude entries exactly as if the row held only
its valid entries:

* ranks: masked entries are replaced by ``+inf`` (ascending ranks) or ``-inf`` (descending),
  which by the infinity contract (docs/conventions.md) never pool with finite entries: the
  valid entries get the soft ranks of the valid slice (``1..n_v``), the masked ones the ranks
  ``n_v+1..n``, which every formula then weighs by 0;
* sorts: an ``l2`` soft sort pools infinities with the whole row, so a masked soft sort is
  computed from its definition on the valid entries (`_masked_sort_l2`): sort each row's valid
  entries first, then ``y = rho_v / eps - iso(rho_v / eps - x_sorted)`` over the valid prefix
  (the row's isotonic regression, with the masked tail held below every valid block so that it
  never pools with it). ``kl``/``pnorm`` sorts with a mask raise.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..core import validation as V

__all__ = [
    "soft_spearmanr",
    "soft_spearman_loss",
    "topk_classification_loss",
    "soft_quantile",
    "soft_median",
    "soft_trimmed_mean",
    "soft_least_trimmed_squares",
    "soft_ndcg",
    "soft_auc",
    "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "none")
_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# Boundary checks.


def _check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}.")
    return reduction


def _int_in(value, name, lo, hi, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}.")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name}={value} is out of range: {what}.")
    return int(value)


def _input(F, x, axis, name):
    """``(x, ax, x2, layout)``: ``x`` checked, its axis canonical, laid out as rows."""
    x = F.as_float(x, name)
    shape = F.shape(x)
    ax = V.check_axis(axis, len(shape), shape, F.axis_name)
    x2, layout = F.to_rows(x, ax)
    return x, ax, x2, layout


def _same_shape(F, a, x, name, xname):
    if F.shape(a) != F.shape(x):
        raise ValueError(f"{name} must have the shape of {xname} {F.shape(x)}; got "
                         f"{F.shape(a)}.")


def _like(F, a, x, ax, x2, name, xname):
    """A floating argument of ``x``'s shape (``y``, ``relevance``), as rows of ``x2``'s dtype."""
    a = F.as_float(a, name)
    _same_shape(F, a, x, name, xname)
    return F.cast_like(F.to_rows(a, ax)[0], x2)


def _mask(F, mask, x, ax, xname):
    """The boolean mask as rows, or None."""
    if mask is None:
        return None
    m = F.as_native(mask, "mask")
    if not F.is_bool(m):
        raise TypeError(f"mask must be a boolean array (True = valid entry); got dtype "
                        f"{m.dtype}.")
    _same_shape(F, m, x, "mask", xname)
    return F.to_rows(m, ax)[0]


def _reduce(F, v2, layout, reduction):
    out = F.from_rows(v2, layout)
    if reduction == "none":
        return out
    return F.total(out) if reduction == "sum" else F.mean(out)


# --------------------------------------------------------------------------------------------
# Row helpers ([m, n] in, [m, n] or [m, 1] out).


def _ones(xp, like):
    return xp.ones_like(like)


def _valid(F, like, m2):
    """1.0 on valid entries, 0.0 on masked ones (ones without a mask)."""
    xp = F.xp
    one = _ones(xp, like)
    return one if m2 is None else xp.where(m2, one, 0.0 * one)


def _positions(xp, like):
    """``0, 1, ..., n-1`` in every row (from the backend's ``rho = n, ..., 1``)."""
    rho = xp.rho(like)
    return rho[:, :1] - rho


def _nan_where(xp, ok, value):
    """``value`` where ``ok``, NaN elsewhere (a constant NaN: ``value * nan`` would send NaN
    into ``value``'s gradient)."""
    return xp.where(ok, value, xp.zeros_like(value) + math.nan)


def _safe(xp, ok, denom):
    return xp.where(ok, denom, _ones(xp, denom))


def _ranks(F, x2, m2, descending, regularization, strength):
    """Soft ranks of each row's valid entries (``1..n_v``; masked entries ``n_v+1..n``).

    Descending ranks are the ascending ranks of ``-x`` (the operator's own definition,
    ``P(-x / eps, rho)``), computed so because the operators' ``descending=True`` path pools
    ``-inf`` entries with finite ones (it breaks the padding contract; the ascending path with
    ``+inf`` keeps it).
    """
    if descending:
        x2 = -x2
    if m2 is not None:
        xp = F.xp
        x2 = xp.where(m2, x2, _ones(xp, x2) * math.inf)
    return F.soft_rank(x2, regularization=regularization, regularization_strength=strength)


def _masked_sort_l2(F, x2, m2, strength):
    """Ascending l2 soft sort of each row's valid entries, in positions ``0..n_v-1``.

    The descending l2 soft sort of ``u`` is ``P(rho / eps, u)``; in sorted coordinates
    (Blondel et al. 2020, Prop. 3) it is ``rho / eps - v`` with ``v`` the decreasing isotonic
    regression of ``rho / eps - u_sorted``. Here ``u = -x`` (ascending = ``-desc(-x)``),
    ``rho_v = (n_v, ..., 1)`` over the valid prefix, and the masked tail is set to a value
    below every valid block's (the row's smallest valid target minus 1): it forms blocks of its
    own and leaves the valid prefix as the valid slice's solution. Tail values are finite junk
    (weighted by 0 by every caller).
    """
    xp = F.xp
    eps = strength if isinstance(strength, numbers.Real) else F.cast_like(strength, x2)
    one = _ones(xp, x2)
    u = xp.where(m2, -x2, -math.inf * one)
    perm = xp.argsort_desc(u)  # valid entries first, descending
    valid_s = xp.take(xp.where(m2, one, 0.0 * one), perm) > 0
    us = xp.where(valid_s, xp.take(u, perm), 0.0 * one)
    n_v = xp.row_sum(xp.where(m2, one, 0.0 * one))
    rv = (n_v - _positions(xp, x2)) / eps
    t = rv - us
    low = -xp.row_max(-xp.where(valid_s, t, math.inf * one))  # smallest valid target
    low = xp.where(n_v > 0, low - 1.0, xp.zeros_like(low))
    target = xp.where(valid_s, t, low * one)
    v = F.isotonic_regression(target, increasing=False)
    return v - rv  # = -(rv - v): the ascending sort of x


def _sorted(F, x2, m2, regularization, strength, name):
    """Ascending soft sort of each row's valid entries (positions ``0..n_v-1``)."""
    if m2 is None:
        return F.soft_sort(x2, regularization=regularization,
                           regularization_strength=strength)
    V.check_regularization(regularization)
    if regularization != "l2":
        raise ValueError(f"{name}(mask=...) needs regularization='l2' (a kl or pnorm soft sort "
                         f"of the valid entries alone is not implemented); got "
                         f"regularization={regularization!r}.")
    if isinstance(strength, numbers.Real):
        V.check_strength(strength)
    return _masked_sort_l2(F, x2, m2, strength)


def _pearson(F, a, b, m2):
    """Per-row Pearson correlation of ``a`` and ``b`` over the valid entries, ``[m, 1]``."""
    xp = F.xp
    w = _valid(F, a, m2)
    if m2 is not None:  # masked entries may hold anything (NaN in y): zero them first
        a = xp.where(m2, a, 0.0 * w)
        b = xp.where(m2, b, 0.0 * w)
    n = xp.row_sum(w)
    da = (a - xp.row_sum(a * w) / n) * w
    db = (b - xp.row_sum(b * w) / n) * w
    return xp.row_sum(da * db) / xp.sqrt(xp.row_sum(da * da) * xp.row_sum(db * db))


# --------------------------------------------------------------------------------------------
# Spearman.


def soft_spearmanr(F, x, y, *, axis=-1, regularization="l2", regularization_strength=1.0,
                   y_is_ranks=False, mask=None):
    x, ax, x2, layout = _input(F, x, axis, "x")
    y2 = _like(F, y, x, ax, x2, "y", "x")
    m2 = _mask(F, mask, x, ax, "x")
    V.check_bool(y_is_ranks, "y_is_ranks")
    rx = _ranks(F, x2, m2, False, regularization, regularization_strength)
    ry = y2 if y_is_ranks else _ranks(F, y2, m2, False, regularization,
                                      regularization_strength)
    return F.from_rows(_pearson(F, rx, ry, m2), layout)


def soft_spearman_loss(F, x, y, *, axis=-1, regularization="l2", regularization_strength=1.0,
                       y_is_ranks=False, mask=None, reduction="mean"):
    _check_reduction(reduction)
    x, ax, x2, layout = _input(F, x, axis, "x")
    y2 = _like(F, y, x, ax, x2, "y", "x")
    m2 = _mask(F, mask, x, ax, "x")
    V.check_bool(y_is_ranks, "y_is_ranks")
    rx = _ranks(F, x2, m2, False, regularization, regularization_strength)
    ry = y2 if y_is_ranks else _ranks(F, y2, m2, False, regularization,
                                      regularization_strength)
    return _reduce(F, 1.0 - _pearson(F, rx, ry, m2), layout, reduction)


# --------------------------------------------------------------------------------------------
# Top-k classification.


def topk_classification_loss(F, logits, labels, k, *, axis=-1, regularization="l2",
                             regularization_strength=1.0, mask=None, reduction="mean"):
    _check_reduction(reduction)
    x, ax, x2, layout = _input(F, logits, axis, "logits")
    n = layout.n
    k = _int_in(k, "k", 1, n, f"it must lie in 1..{n}, the number of classes (the length of "
                f"{F.axis_name} {axis} of logits of shape {F.shape(x)})")
    lab = F.as_native(labels, "labels")
    if not F.is_int(lab):
        raise TypeError(f"labels must be an integer array of class indices; got dtype "
                        f"{lab.dtype}.")
    if F.shape(lab) != layout.batch:
        raise ValueError(f"labels must have the shape of logits without its {F.axis_name} "
                         f"{axis}, {layout.batch}; got {F.shape(lab)}.")
    m2 = _mask(F, mask, x, ax, "logits")
    lab2 = F.to_index(F.batch_to_rows(lab, layout))
    conc = F.concrete(lab2)
    if conc is not None and conc.size and (conc.min() < 0 or conc.max() >= n):
        raise ValueError(f"labels must be class indices in 0..{n - 1}; got values in "
                         f"{conc.min()}..{conc.max()}.")
    xp = F.xp
    if m2 is not None:
        mc = F.concrete(m2)
        if conc is not None and mc is not None and conc.size and not np.all(
                np.take_along_axis(mc, conc, -1)):
            raise ValueError("mask is False at the true label of some rows: the label must "
                             "be a valid class.")
    ranks = _ranks(F, x2, m2, True, regularization, regularization_strength)
    r_label = xp.take(ranks, lab2)
    return _reduce(F, xp.maximum(r_label - float(k), 0.0), layout, reduction)


# --------------------------------------------------------------------------------------------
# Order statistics from the soft sort.


def _check_trim(trim, n, axis_name, axis, both_ends):
    bound = (n - 1) // 2 if both_ends else n - 1
    what = (f"2 * trim must be < n = {n}, the length of {axis_name} {axis}" if both_ends
            else f"trim must be < n = {n}, the length of {axis_name} {axis}")
    return _int_in(trim, "trim", 0, max(bound, 0), what + " (and trim >= 0)")


def _weighted_sorted(F, x2, m2, weights_fn, regularization, strength, name):
    xp = F.xp
    s = _sorted(F, x2, m2, regularization, strength, name)
    n_v = xp.row_sum(_valid(F, x2, m2))
    ok, w = weights_fn(n_v, _positions(xp, x2))
    return _nan_where(xp, ok, xp.row_sum(w * s))


def soft_quantile(F, x, q, *, axis=-1, regularization="l2", regularization_strength=1.0,
                  mask=None):
    x, ax, x2, layout = _input(F, x, axis, "x")
    qf = V.check_real(q, "q")
    if not 0.0 <= qf <= 1.0:
        raise ValueError(f"q must lie in [0, 1]; got {q!r}.")
    m2 = _mask(F, mask, x, ax, "x")
    xp = F.xp

    def weights(n_v, pos):
        h = qf * (n_v - 1.0)  # numpy's "linear" position, 0-based
        return n_v > 0, xp.maximum(1.0 - xp.abs(pos - h), 0.0)

    v = _weighted_sorted(F, x2, m2, weights, regularization, regularization_strength,
                         "soft_quantile")
    return F.from_rows(v, layout)


def soft_median(F, x, *, axis=-1, regularization="l2", regularization_strength=1.0, mask=None):
    return soft_quantile(F, x, 0.5, axis=axis, regularization=regularization,
                         regularization_strength=regularization_strength, mask=mask)


def soft_trimmed_mean(F, x, trim, *, axis=-1, regularization="l2", regularization_strength=1.0,
                      mask=None):
    x, ax, x2, layout = _input(F, x, axis, "x")
    t = _check_trim(trim, layout.n, F.axis_name, axis, True)
    m2 = _mask(F, mask, x, ax, "x")
    xp = F.xp

    def weights(n_v, pos):
        keep = n_v - 2.0 * t
        inside = xp.where(pos >= t, _ones(xp, pos), 0.0 * pos) * xp.where(
            pos < n_v - t, _ones(xp, pos), 0.0 * pos)
        return keep > 0, inside / _safe(xp, keep > 0, keep)

    v = _weighted_sorted(F, x2, m2, weights, regularization, regularization_strength,
                         "soft_trimmed_mean")
    return F.from_rows(v, layout)


def soft_least_trimmed_squares(F, residuals, trim, *, axis=-1, regularization="l2",
                               regularization_strength=1.0, mask=None, reduction="mean"):
    _check_reduction(reduction)
    x, ax, x2, layout = _input(F, residuals, axis, "residuals")
    t = _check_trim(trim, layout.n, F.axis_name, axis, False)
    m2 = _mask(F, mask, x, ax, "residuals")
    xp = F.xp

    def weights(n_v, pos):
        keep = n_v - float(t)
        w = xp.where(pos < keep, _ones(xp, pos), 0.0 * pos)
        return keep > 0, w / _safe(xp, keep > 0, keep)

    if m2 is not None:  # zeroed before squaring: a NaN there must not reach the gradient
        x2 = xp.where(m2, x2, xp.zeros_like(x2))
    sq = x2 * x2
    v = _weighted_sorted(F, sq, m2, weights, regularization, regularization_strength,
                         "soft_least_trimmed_squares")
    return _reduce(F, v, layout, reduction)


# --------------------------------------------------------------------------------------------
# Ranking metrics from the soft ranks.


def soft_ndcg(F, scores, relevance, k=None, *, axis=-1, regularization="l2",
              regularization_strength=1.0, mask=None):
    x, ax, x2, layout = _input(F, scores, axis, "scores")
    rel = _like(F, relevance, x, ax, x2, "relevance", "scores")
    if k is not None:
        k = _int_in(k, "k", 1, 2**62, "it must be >= 1 (or None: every position)")
    m2 = _mask(F, mask, x, ax, "scores")
    xp = F.xp
    gain = rel if m2 is None else xp.where(m2, rel, 0.0 * rel)
    r = _ranks(F, x2, m2, True, regularization, regularization_strength)
    disc = _LN2 / xp.log(r + 1.0)
    one = _ones(xp, r)
    if k is not None:  # the cutoff, relaxed linearly between ranks k and k + 1
        disc = disc * xp.minimum(xp.maximum(k + 1.0 - r, 0.0), 1.0)
    dcg = xp.row_sum(gain * disc)
    ideal = xp.take(gain, xp.argsort_desc(gain))
    pos = _positions(xp, r)
    ideal_disc = _LN2 / xp.log(pos + 2.0)
    if k is not None:
        ideal_disc = xp.where(pos < k, ideal_disc, 0.0 * one)
    idcg = xp.row_sum(ideal * ideal_disc)
    ok = idcg > 0
    return F.from_rows(xp.where(ok, dcg / _safe(xp, ok, idcg), 0.0 * dcg), layout)


def soft_auc(F, scores, labels, *, axis=-1, regularization="l2", regularization_strength=1.0,
             mask=None):
    x, ax, x2, layout = _input(F, scores, axis, "scores")
    lab = F.as_native(labels, "labels")
    _same_shape(F, lab, x, "labels", "scores")
    m2 = _mask(F, mask, x, ax, "scores")
    conc = F.concrete(lab)
    if conc is not None:
        mc = None if mask is None else F.concrete(F.as_native(mask, "mask"))
        checked = conc if mc is None else conc[mc]
        if not np.all((checked == 0) | (checked == 1)):
            raise ValueError("labels must be binary: 1 (or True) for a positive, 0 (or False) "
                             "for a negative (on the valid entries).")
    xp = F.xp
    lab2 = F.to_rows(lab, ax)[0]
    one = _ones(xp, x2)
    pos = xp.where(lab2 if F.is_bool(lab) else lab2 == 1, one, 0.0 * one)
    valid = _valid(F, x2, m2)
    pos = pos * valid
    r = _ranks(F, x2, m2, False, regularization, regularization_strength)
    n_pos = xp.row_sum(pos)
    n_neg = xp.row_sum(valid) - n_pos
    ok = n_pos * n_neg > 0
    u = xp.row_sum(pos * r) - n_pos * (n_pos + 1.0) / 2.0
    return F.from_rows(_nan_where(xp, ok, u / _safe(xp, ok, n_pos * n_neg)), layout)
