"""The losses in `softorder.jax`: `losses.functions` over the JAX operators (jit, grad, jvp and
vmap through them)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ...losses.frontend import Frontend, Layout, public
from .backend import JAX
from .frontend import _as_float, isotonic_regression, soft_rank, soft_sort

__all__ = ["soft_spearmanr", "soft_spearman_loss", "topk_classification_loss", "soft_quantile",
           "soft_median", "soft_trimmed_mean", "soft_least_trimmed_squares", "soft_ndcg",
           "soft_auc"]


def _as_native(a, name):
    if isinstance(a, (jax.Array, jax.core.Tracer)):
        return a
    arr = np.asarray(a)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return jnp.asarray(arr)


def _to_rows(x, ax):
    xm = jnp.moveaxis(x, ax, -1)
    n = xm.shape[-1]
    return xm.reshape(math.prod(xm.shape[:-1]), n), Layout(tuple(xm.shape[:-1]), n)


def _concrete(a):
    return None if isinstance(a, jax.core.Tracer) else np.asarray(a)


F = Frontend(
    name="jax", module="softorder.jax", axis_name="axis", xp=JAX,
    soft_rank=soft_rank, soft_sort=soft_sort, isotonic_regression=isotonic_regression,
    as_float=_as_float, as_native=_as_native, shape=lambda a: tuple(a.shape),
    is_bool=lambda a: a.dtype == jnp.bool_,
    is_int=lambda a: bool(jnp.issubdtype(a.dtype, jnp.integer)),
    to_rows=_to_rows, batch_to_rows=lambda a, layout: a.reshape(-1, 1),
    from_rows=lambda v, layout: v.reshape(layout.batch), total=jnp.sum, mean=jnp.mean,
    concrete=_concrete, to_index=lambda a: a.astype(jnp.int32),
    cast_like=lambda a, like: jnp.asarray(a).astype(like.dtype),
)

soft_spearmanr = public(F, "soft_spearmanr", """
>>> import jax, jax.numpy as jnp
>>> from softorder.jax import soft_spearmanr
>>> x = jnp.array([[0.1, 0.4, 0.3, 0.9]], jnp.float32)
>>> y = jnp.array([[1.0, 2.0, 3.0, 4.0]], jnp.float32)
>>> soft_spearmanr(x, y, regularization_strength=1e-3)
Array([0.8], dtype=float32)
>>> jax.grad(lambda v: soft_spearmanr(v, y).sum())(x).shape
(1, 4)
""")
soft_spearman_loss = public(F, "soft_spearman_loss", """
>>> import jax, jax.numpy as jnp
>>> from softorder.jax import soft_spearman_loss
>>> x = jnp.array([[0.1, 0.4, 0.3, 0.9], [4.0, 3.0, 2.0, 1.0]], jnp.float32)
>>> y = jnp.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], jnp.float32)
>>> loss = jax.jit(soft_spearman_loss, static_argnames="reduction")
>>> loss(x, y, regularization_strength=1e-3, reduction="none")  # 1 - rho per row
Array([0.19999999, 2.        ], dtype=float32)
""")
topk_classification_loss = public(F, "topk_classification_loss", """
>>> import jax.numpy as jnp
>>> from softorder.jax import topk_classification_loss
>>> logits = jnp.array([[3.0, 1.0, 2.0, 0.0], [0.0, 1.0, 2.0, 3.0]], jnp.float32)
>>> topk_classification_loss(logits, jnp.array([2, 0]), 1, regularization_strength=0.5,
...                          reduction="none")  # ranks of the labels: 2 and 4
Array([1., 3.], dtype=float32)
""")
soft_quantile = public(F, "soft_quantile", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_quantile
>>> x = jnp.array([3.0, 1.0, 4.0, 1.5, 9.0], jnp.float32)
>>> soft_quantile(x, 0.25, regularization_strength=1e-3), jnp.quantile(x, 0.25)
(Array(1.5, dtype=float32), Array(1.5, dtype=float32))
""")
soft_median = public(F, "soft_median", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_median
>>> soft_median(jnp.array([3.0, 1.0, 4.0, 1.5], jnp.float32), regularization_strength=1e-3)
Array(2.25, dtype=float32)
""")
soft_trimmed_mean = public(F, "soft_trimmed_mean", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_trimmed_mean
>>> x = jnp.array([3.0, 1.0, 4.0, 2.0, 90.0], jnp.float32)
>>> soft_trimmed_mean(x, 1, regularization_strength=1e-3)  # (2 + 3 + 4) / 3
Array(3., dtype=float32)
""")
soft_least_trimmed_squares = public(F, "soft_least_trimmed_squares", """
>>> import jax, jax.numpy as jnp
>>> from softorder.jax import soft_least_trimmed_squares
>>> r = jnp.array([0.5, -1.0, 10.0, 0.0], jnp.float32)  # one outlier
>>> jax.grad(lambda v: soft_least_trimmed_squares(v, 1, regularization_strength=1e-4))(r)
Array([ 0.33333334, -0.6666667 ,  0.        ,  0.        ], dtype=float32)
""")
soft_ndcg = public(F, "soft_ndcg", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_ndcg
>>> scores = jnp.array([[0.9, 0.2, 0.5]], jnp.float32)
>>> soft_ndcg(scores, jnp.array([[3.0, 0.0, 1.0]], jnp.float32), regularization_strength=1e-3)
Array([1.], dtype=float32)
""")
soft_auc = public(F, "soft_auc", """
>>> import jax.numpy as jnp
>>> from softorder.jax import soft_auc
>>> soft_auc(jnp.array([0.1, 0.8, 0.4, 0.3], jnp.float32), jnp.array([0, 1, 1, 0]),
...          regularization_strength=1e-3)
Array(1., dtype=float32)
""")
