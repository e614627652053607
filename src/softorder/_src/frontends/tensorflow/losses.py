"""The losses in `softorder.tensorflow`: `losses.functions` over the TensorFlow operators
(GradientTape, tf.function)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ...losses.frontend import Frontend, Layout, public
from .frontend import TF, _as_float_tensor, isotonic_regression, soft_rank, soft_sort

__all__ = ["soft_spearmanr", "soft_spearman_loss", "topk_classification_loss", "soft_quantile",
           "soft_median", "soft_trimmed_mean", "soft_least_trimmed_squares", "soft_ndcg",
           "soft_auc"]


def _as_native(a, name):
    if tf.is_tensor(a) or isinstance(a, tf.Variable):
        return tf.convert_to_tensor(a)
    arr = np.asarray(a)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return tf.convert_to_tensor(arr)


def _to_rows(x, ax):
    rank = x.shape.rank
    xm = x if ax == rank - 1 else tf.transpose(x, [i for i in range(rank) if i != ax] + [ax])
    n = xm.shape[-1]
    batch = tf.shape(xm)[:-1]
    x2 = tf.reshape(xm, tf.concat([[-1], tf.shape(xm)[-1:]], 0))
    return x2, Layout(tuple(xm.shape.as_list()[:-1]), n, batch)


def _from_rows(v, layout):
    out = tf.reshape(v, layout.extra)
    out.set_shape(layout.batch)
    return out


def _concrete(a):
    return a.numpy() if tf.executing_eagerly() and hasattr(a, "numpy") else None


F = Frontend(
    name="tensorflow", module="softorder.tensorflow", axis_name="axis", xp=TF,
    soft_rank=soft_rank, soft_sort=soft_sort, isotonic_regression=isotonic_regression,
    as_float=_as_float_tensor, as_native=_as_native, shape=lambda a: tuple(a.shape.as_list()),
    is_bool=lambda a: a.dtype == tf.bool, is_int=lambda a: a.dtype.is_integer,
    to_rows=_to_rows, batch_to_rows=lambda a, layout: tf.reshape(a, [-1, 1]),
    from_rows=_from_rows, total=tf.reduce_sum, mean=tf.reduce_mean, concrete=_concrete,
    to_index=lambda a: tf.cast(a, tf.int64), cast_like=lambda a, like: tf.cast(a, like.dtype),
)

soft_spearmanr = public(F, "soft_spearmanr", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_spearmanr
>>> x = tf.constant([[0.1, 0.4, 0.3, 0.9]], tf.float64)
>>> y = tf.constant([[1.0, 2.0, 3.0, 4.0]], tf.float64)
>>> soft_spearmanr(x, y, regularization_strength=1e-3).numpy()
array([0.8])
""")
soft_spearman_loss = public(F, "soft_spearman_loss", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_spearman_loss
>>> x = tf.Variable([[0.1, 0.4, 0.3, 0.9]], dtype=tf.float64)
>>> with tf.GradientTape() as tape:
...     loss = soft_spearman_loss(x, tf.constant([[1.0, 2.0, 3.0, 4.0]], tf.float64))
>>> tape.gradient(loss, x).shape
TensorShape([1, 4])
""")
topk_classification_loss = public(F, "topk_classification_loss", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import topk_classification_loss
>>> logits = tf.constant([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
>>> topk_classification_loss(logits, tf.constant([2, 0]), 1, regularization_strength=0.5,
...                          reduction="none").numpy()  # ranks of the labels: 2 and 4
array([1., 3.], dtype=float32)
""")
soft_quantile = public(F, "soft_quantile", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_quantile
>>> soft_quantile(tf.constant([3.0, 1.0, 4.0, 1.5, 9.0]), 0.25,
...               regularization_strength=1e-3).numpy()
np.float32(1.5)
""")
soft_median = public(F, "soft_median", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_median
>>> soft_median(tf.constant([3.0, 1.0, 4.0, 1.5]), regularization_strength=1e-3).numpy()
np.float32(2.25)
""")
soft_trimmed_mean = public(F, "soft_trimmed_mean", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_trimmed_mean
>>> x = tf.constant([3.0, 1.0, 4.0, 2.0, 90.0])
>>> soft_trimmed_mean(x, 1, regularization_strength=1e-3).numpy()  # (2 + 3 + 4) / 3
np.float32(3.0)
""")
soft_least_trimmed_squares = public(F, "soft_least_trimmed_squares", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_least_trimmed_squares
>>> r = tf.constant([0.5, -1.0, 10.0, 0.0], tf.float64)  # one outlier
>>> soft_least_trimmed_squares(r, 1, regularization_strength=1e-4).numpy().round(6)
np.float64(0.416667)
""")
soft_ndcg = public(F, "soft_ndcg", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_ndcg
>>> scores = tf.constant([[0.9, 0.2, 0.5]])
>>> soft_ndcg(scores, tf.constant([[3.0, 0.0, 1.0]]), regularization_strength=1e-3).numpy()
array([1.], dtype=float32)
""")
soft_auc = public(F, "soft_auc", """
>>> import tensorflow as tf
>>> from softorder.tensorflow import soft_auc
>>> soft_auc(tf.constant([0.1, 0.8, 0.4, 0.3]), tf.constant([0, 1, 1, 0]),
...          regularization_strength=1e-3).numpy()
np.float32(1.0)
""")
