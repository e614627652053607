r"""Docstrings of the losses, written once and rendered for each front end (`docstring`)."""

from __future__ import annotations

__all__ = ["docstring", "DOCS"]

_BLONDEL = ("Blondel, Teboul, Berthet, Djolonga. Fast Differentiable Sorting and Ranking. "
            "ICML 2020.")
_CUTURI = ("Cuturi, Teboul, Vert. Differentiable Ranks and Sorting using Optimal Transport. "
           "NeurIPS 2019.")
_JARVELIN = ("Järvelin, Kekäläinen. Cumulated gain-based evaluation of IR techniques. ACM TOIS "
             "2002 (NDCG).")
_HANLEY = ("Hanley, McNeil. The meaning and use of the area under a ROC curve. Radiology 1982 "
           "(AUC as the Mann-Whitney statistic).")

_WORDS = {
    "numpy": dict(array="array", axis="axis", axis_word="axis"),
    "torch": dict(array="tensor", axis="dim", axis_word="dimension"),
    "jax": dict(array="array", axis="axis", axis_word="axis"),
    "tensorflow": dict(array="tensor", axis="axis", axis_word="axis"),
}

_RANK_OPTS = """{axis}: the {axis_word} of the rows (default last).
  regularization: ``"l2"`` (default, the paper's :math:`r_Q`), ``"kl"`` (:math:`r_E`) or
    ``"pnorm"``: the soft rank operator's regularizer.
  regularization_strength: the soft rank's :math:`\\varepsilon > 0`, in the units of the
    scores; larger is softer, :math:`\\varepsilon \\to 0` gives the hard metric. A Python
    number or a 0-d {array} (traced or learned too)."""

_SORT_OPTS = """{axis}: the {axis_word} of the rows (default last).
  regularization: ``"l2"`` (default), ``"kl"`` or ``"pnorm"``: the soft sort's regularizer
    (with ``mask``: ``"l2"`` only).
  regularization_strength: the soft sort's :math:`\\varepsilon > 0` (it multiplies
    :math:`\\rho`: in the units of ``1 / x``); :math:`\\varepsilon \\to 0` gives the hard
    statistic, :math:`\\varepsilon \\to \\infty` (``l2``) the mean of the row."""

_MASK = """mask: optional boolean {array} of the shape of ``{x}`` (True = valid entry): each row
    is treated as its valid entries alone (ragged rows; see docs/losses.md)."""

_REDUCTION = """reduction: ``"mean"`` (default) or ``"sum"`` over the batch, or ``"none"`` (one
    value per row)."""

DOCS = {
    "soft_spearmanr": dict(
        summary="Soft Spearman rank correlation of each row of ``x`` with ``y``.",
        math=r"""
.. math::

    \rho_\varepsilon(x, y) = \mathrm{corr}\big(r_\varepsilon(x), r_\varepsilon(y)\big)
    = \frac{\langle \bar r_x, \bar r_y\rangle}{\|\bar r_x\| \, \|\bar r_y\|},
    \qquad \bar r = r - \mathrm{mean}(r),

the Pearson correlation of soft ranks (ascending). ``y`` is soft-ranked by the same operator
unless ``y_is_ranks`` (then ``y`` is used as given, e.g. hard target ranks); it may be a target
without a gradient. As :math:`\varepsilon \to 0` this is Spearman's correlation (ties: average
ranks, as ``scipy.stats.spearmanr``); for ``l2`` and large :math:`\varepsilon`, soft ranks are
:math:`(n+1)/2 + (x - \bar x)/\varepsilon`, so it tends to Pearson's correlation of ``x`` and
``y``.""",
        args="""x: floating {array} ``[..., n, ...]`` (predictions).
  y: {array} of the shape of ``x`` (targets, or their ranks with ``y_is_ranks``).
  """ + _RANK_OPTS + """
  y_is_ranks: if True, ``y`` is not ranked again.
  """ + _MASK,
        x="x", returns="One correlation per row: the shape of ``x`` without ``{axis}``.",
        refs=_BLONDEL),
    "soft_spearman_loss": dict(
        summary="``1 - soft_spearmanr(x, y)``, reduced over the batch.",
        math=r"""
.. math::

    \ell(x, y) = 1 - \rho_\varepsilon(x, y) \in [0, 2],

the loss of the label-ranking experiment of Blondel et al. (2020, section 6), see
``soft_spearmanr``.""",
        args="""x: floating {array} ``[..., n, ...]`` (predictions).
  y: {array} of the shape of ``x`` (targets, or their ranks with ``y_is_ranks``).
  """ + _RANK_OPTS + """
  y_is_ranks: if True, ``y`` is not ranked again.
  """ + _MASK + "\n  " + _REDUCTION,
        x="x", returns="The loss (a scalar, or one per row with ``reduction='none'``).",
        refs=_BLONDEL),
    "topk_classification_loss": dict(
        summary="Top-k classification loss on the soft rank of the true label.",
        math=r"""
With descending soft ranks :math:`r = r_\varepsilon(\theta)` of the logits (rank 1 = the
largest logit; ``l2`` is the paper's :math:`r_Q`, ``kl`` its :math:`r_E`),

.. math::

    \ell_k(\theta, y) = \max(0, \; r_y - k),

the hinge on the true label's soft rank leaving the top ``k`` (Cuturi et al. 2019 with ranks
ascending: :math:`\max(0, n - k + 1 - r^\uparrow_y)`, the same function; Blondel et al. 2020,
section 6). At hard ranks (:math:`\varepsilon \to 0`), :math:`r_y - 1` is the number of classes
scored above the label, so :math:`\ell_k = 0` exactly when the label is in the top ``k`` and
:math:`\ell_k \ge 1` otherwise: an upper bound of the top-k 0/1 error, equal to it where the
label is at rank ``k + 1``. As :math:`\varepsilon \to \infty` every rank tends to
:math:`(n+1)/2` and the loss to :math:`\max(0, (n+1)/2 - k)`.""",
        args="""logits: floating {array} ``[..., n, ...]`` (``n`` classes along ``{axis}``).
  labels: integer {array} of class indices in ``0..n-1``, the shape of ``logits`` without
    ``{axis}``.
  k: the ``k`` of top-k, ``1 <= k <= n`` (a Python int).
  """ + _RANK_OPTS + """
  """ + _MASK + "\n  " + _REDUCTION,
        x="logits", returns="The loss (a scalar, or one per row with ``reduction='none'``).",
        refs=_BLONDEL + "\n  " + _CUTURI),
    "soft_quantile": dict(
        summary="Soft quantile: the soft sort, interpolated like ``numpy.quantile``.",
        math=r"""
With the ascending soft sort :math:`s = s_\varepsilon(x)` of a row of ``n`` entries and
:math:`h = q (n - 1)`,

.. math::

    Q_q(x) = s_{\lfloor h \rfloor} + (h - \lfloor h\rfloor)
    (s_{\lfloor h\rfloor + 1} - s_{\lfloor h \rfloor})
    = \sum_i \max(0, 1 - |i - h|) \, s_i,

numpy's ``"linear"`` method on the soft sort (Blondel et al. 2020, section 6: soft sorts for
robust statistics). :math:`\varepsilon \to 0` gives ``numpy.quantile``; for ``l2`` and large
:math:`\varepsilon` every soft-sorted value tends to the mean, and so does the quantile.""",
        args="""x: floating {array} ``[..., n, ...]``.
  q: the quantile, a Python number in ``[0, 1]``.
  """ + _SORT_OPTS + """
  """ + _MASK,
        x="x", returns="One value per row: the shape of ``x`` without ``{axis}`` (NaN for a "
        "row without valid entries).", refs=_BLONDEL),
    "soft_median": dict(
        summary="Soft median: ``soft_quantile(x, 0.5)``.",
        math=r"""
:math:`Q_{1/2}` of ``soft_quantile``: the middle soft-sorted value (the mean of the two middle
ones for even ``n``).""",
        args="""x: floating {array} ``[..., n, ...]``.
  """ + _SORT_OPTS + """
  """ + _MASK,
        x="x", returns="One value per row: the shape of ``x`` without ``{axis}``.",
        refs=_BLONDEL),
    "soft_trimmed_mean": dict(
        summary="Soft trimmed mean: the mean of the soft-sorted values without ``trim`` at "
                "each end.",
        math=r"""
.. math::

    T(x) = \frac{1}{n - 2t} \sum_{i=t}^{n-t-1} s_\varepsilon(x)_i
    \qquad (s \text{ ascending, 0-based}),

:math:`t` = ``trim`` entries cut at each end (``scipy.stats.trim_mean`` with
``proportiontocut = t / n``). :math:`\varepsilon \to 0` gives the trimmed mean; ``l2`` and
large :math:`\varepsilon` the mean.""",
        args="""x: floating {array} ``[..., n, ...]``.
  trim: how many entries to cut at each end, ``0 <= 2 * trim < n`` (a Python int; with a
    mask, rows with ``2 * trim >= n_valid`` give NaN).
  """ + _SORT_OPTS + """
  """ + _MASK,
        x="x", returns="One value per row: the shape of ``x`` without ``{axis}``.",
        refs=_BLONDEL),
    "soft_least_trimmed_squares": dict(
        summary="Soft least trimmed squares: the mean of the ``n - trim`` smallest squared "
                "residuals, softly sorted.",
        math=r"""
.. math::

    \ell(r) = \frac{1}{n - t} \sum_{i=0}^{n-t-1} s_\varepsilon(r \odot r)_i
    \qquad (s \text{ ascending}),

Blondel et al. (2020, section 6, soft least trimmed squares): :math:`\varepsilon \to 0` gives
least trimmed squares (the ``t`` largest squared residuals ignored), and for ``l2`` and large
:math:`\varepsilon` every soft-sorted value tends to the mean, so the loss tends to the mean of
the squares (least squares): it interpolates between the two.""",
        args="""residuals: floating {array} ``[..., n, ...]`` (``y - f(x)`` per sample).
  trim: how many of the largest squared residuals to leave out, ``0 <= trim < n`` (a Python
    int; with a mask, rows with ``trim >= n_valid`` give NaN).
  """ + _SORT_OPTS + """
  """ + _MASK + "\n  " + _REDUCTION,
        x="residuals",
        returns="The loss (a scalar, or one per row with ``reduction='none'``).",
        refs=_BLONDEL),
    "soft_ndcg": dict(
        summary="Soft NDCG@k: the DCG discount applied to soft ranks, in O(n log n).",
        math=r"""
With descending soft ranks :math:`r = r_\varepsilon(\text{scores})` (rank 1 = top) and gains
:math:`g` = ``relevance`` (linear gains, as ``sklearn.metrics.ndcg_score``),

.. math::

    \mathrm{DCG}_k = \sum_i \frac{g_i \, c_k(r_i)}{\log_2(1 + r_i)}, \quad
    c_k(r) = \min(1, \max(0, k + 1 - r)), \qquad
    \mathrm{NDCG}_k = \frac{\mathrm{DCG}_k}{\mathrm{IDCG}_k},

:math:`\mathrm{IDCG}_k = \sum_{j \le k} g_{(j)} / \log_2(1 + j)` with the gains sorted
descending. :math:`c_k` is the cutoff :math:`[r \le k]` relaxed linearly between ranks ``k``
and ``k + 1`` (exact at integer ranks); ``k=None`` keeps every position. Rows whose IDCG is 0
give 0 (as scikit-learn). :math:`\varepsilon \to 0` gives ``ndcg_score`` (untied scores); as
:math:`\varepsilon \to \infty` every rank tends to :math:`(n+1)/2`. No pairwise sums: one soft
rank, O(n log n).""",
        args="""scores: floating {array} ``[..., n, ...]``.
  relevance: nonnegative {array} of the shape of ``scores`` (the gains).
  k: the cutoff (a Python int >= 1) or None (every position).
  """ + _RANK_OPTS + """
  """ + _MASK,
        x="scores", returns="One NDCG per row: the shape of ``scores`` without ``{axis}``.",
        refs=_JARVELIN + "\n  " + _BLONDEL),
    "soft_auc": dict(
        summary="Soft ROC-AUC from the soft ranks of the scores (Mann-Whitney form).",
        math=r"""
With ascending soft ranks :math:`r = r_\varepsilon(\text{scores})`, :math:`P` positives and
:math:`N` negatives,

.. math::

    \mathrm{AUC} = \frac{\sum_{i: y_i = 1} r_i - P(P+1)/2}{P N},

the Mann-Whitney form of the area under the ROC curve: :math:`\varepsilon \to 0` gives
``sklearn.metrics.roc_auc_score`` (ties score 1/2, as average ranks do), with one soft rank
(O(n log n)) instead of the :math:`P N` pairwise sigmoids. For ``l2`` and large
:math:`\varepsilon`, :math:`\mathrm{AUC} \to 1/2 + \sum_{y_i = 1}(x_i - \bar x) /
(\varepsilon P N)`. A row without positives or negatives gives NaN.""",
        args="""scores: floating {array} ``[..., n, ...]``.
  labels: binary {array} (bool, or 0/1 numbers) of the shape of ``scores``.
  """ + _RANK_OPTS + """
  """ + _MASK,
        x="scores", returns="One AUC per row: the shape of ``scores`` without ``{axis}``.",
        refs=_HANLEY + "\n  " + _BLONDEL),
}


def docstring(name: str, framework: str, example: str) -> str:
    """The docstring of loss ``name`` in ``framework``'s words, with its ``example``."""
    d = DOCS[name]
    words = dict(_WORDS[framework], x=d["x"])
    args = d["args"].format(**words)
    returns = d["returns"].format(**words)
    example = "\n".join("  " + line if line else "" for line in example.strip("\n").splitlines())
    return (f"{d['summary']}\n{d['math']}\n\nArgs:\n  {args.rstrip()}\n\nReturns:\n  {returns}"
            f"\n\nExample:\n{example}\n\nReferences:\n  {d['refs']}\n")
