"""The losses in `softorder.numpy`: values only (the NumPy front end has no autodiff; its
`jvp`/`vjp` are the operators')."""

from __future__ import annotations

import numpy as np

from ..core import validation as V
from ..core.backend import NUMPY
from ..core.isotonic_api import isotonic_regression
from ..core.ops import soft_rank, soft_sort
from .frontend import Frontend, Layout, public

__all__ = ["soft_spearmanr", "soft_spearman_loss", "topk_classification_loss", "soft_quantile",
           "soft_median", "soft_trimmed_mean", "soft_least_trimmed_squares", "soft_ndcg",
           "soft_auc"]


def _as_native(a, name):
    if getattr(a, "requires_grad", False):
        V.as_float_array(a, name)  # the error for another framework's tensor
    return np.asarray(a)


def _to_rows(x, ax):
    xm = np.moveaxis(x, ax, -1)
    n = xm.shape[-1]
    return xm.reshape(int(np.prod(xm.shape[:-1], dtype=np.int64)), n), Layout(
        tuple(xm.shape[:-1]), n, x.dtype)


def _from_rows(v, layout):
    dtype = layout.extra if layout.extra.kind == "f" else np.float64
    out = np.asarray(v).reshape(layout.batch).astype(dtype, copy=False)
    return out[()] if out.ndim == 0 else out  # a NumPy scalar for a 1-d input


F = Frontend(
    name="numpy", module="softorder.numpy", axis_name="axis", xp=NUMPY,
    soft_rank=soft_rank, soft_sort=soft_sort, isotonic_regression=isotonic_regression,
    as_float=V.as_float_array, as_native=_as_native, shape=lambda a: tuple(np.shape(a)),
    is_bool=lambda a: a.dtype == np.bool_, is_int=lambda a: a.dtype.kind in "iu",
    to_rows=_to_rows, batch_to_rows=lambda a, layout: np.reshape(a, (-1, 1)),
    from_rows=_from_rows, total=np.sum, mean=np.mean, concrete=np.asarray,
    to_index=lambda a: np.asarray(a, np.int64),
    cast_like=lambda a, like: np.asarray(a, like.dtype),
)

soft_spearmanr = public(F, "soft_spearmanr", """
>>> import numpy as np
>>> from softorder.numpy import soft_spearmanr
>>> x = np.array([[0.1, 0.4, 0.3, 0.9]])
>>> soft_spearmanr(x, np.array([[1.0, 2.0, 3.0, 4.0]]), regularization_strength=1e-3)
array([0.8])
""")
soft_spearman_loss = public(F, "soft_spearman_loss", """
>>> import numpy as np
>>> from softorder.numpy import soft_spearman_loss
>>> x = np.array([[0.1, 0.4, 0.3, 0.9], [4.0, 3.0, 2.0, 1.0]])
>>> y = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
>>> soft_spearman_loss(x, y, regularization_strength=1e-3, reduction="none")
array([0.2, 2. ])
""")
topk_classification_loss = public(F, "topk_classification_loss", """
>>> import numpy as np
>>> from softorder.numpy import topk_classification_loss
>>> logits = np.array([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
>>> topk_classification_loss(logits, np.array([2, 0]), 1, regularization_strength=1e-3,
...                          reduction="none")  # ranks of the labels: 2 and 4
array([1., 3.])
""")
soft_quantile = public(F, "soft_quantile", """
>>> import numpy as np
>>> from softorder.numpy import soft_quantile
>>> x = np.array([3.0, 1.0, 4.0, 1.5, 9.0])
>>> soft_quantile(x, 0.25, regularization_strength=1e-3), np.quantile(x, 0.25)
(np.float64(1.5), np.float64(1.5))
""")
soft_median = public(F, "soft_median", """
>>> import numpy as np
>>> from softorder.numpy import soft_median
>>> soft_median(np.array([3.0, 1.0, 4.0, 1.5]), regularization_strength=1e-3)
np.float64(2.25)
""")
soft_trimmed_mean = public(F, "soft_trimmed_mean", """
>>> import numpy as np
>>> from softorder.numpy import soft_trimmed_mean
>>> x = np.array([3.0, 1.0, 4.0, 1.5, 90.0])
>>> np.round(soft_trimmed_mean(x, 1, regularization_strength=1e-3), 6)  # (1.5 + 3 + 4) / 3
np.float64(2.833333)
""")
soft_least_trimmed_squares = public(F, "soft_least_trimmed_squares", """
>>> import numpy as np
>>> from softorder.numpy import soft_least_trimmed_squares
>>> r = np.array([0.5, -1.0, 10.0, 0.0])  # one outlier
>>> np.round(soft_least_trimmed_squares(r, 1, regularization_strength=1e-4), 6)  # 1.25 / 3
np.float64(0.416667)
""")
soft_ndcg = public(F, "soft_ndcg", """
>>> import numpy as np
>>> from softorder.numpy import soft_ndcg
>>> scores = np.array([[0.9, 0.2, 0.5]])
>>> np.round(soft_ndcg(scores, np.array([[3.0, 0.0, 1.0]]), regularization_strength=1e-3), 6)
array([1.])
""")
soft_auc = public(F, "soft_auc", """
>>> import numpy as np
>>> from softorder.numpy import soft_auc
>>> soft_auc(np.array([0.1, 0.8, 0.4, 0.3]), np.array([0, 1, 1, 0]), regularization_strength=1e-3)
np.float64(1.0)
""")
