"""Calling a loss of any front end with NumPy arrays (converted to the framework's own), and
its gradient (torch autograd, jax.grad, tf.GradientTape) for the ``framework`` fixture."""

from __future__ import annotations

import numpy as np


def native(backend, a):
    return backend.to_native(a) if isinstance(a, np.ndarray) else a


def call(backend, name, *args, axis=-1, **kw):
    """``backend``'s ``name`` on NumPy ``args`` (and a NumPy ``mask``); a NumPy result."""
    args = [native(backend, a) for a in args]
    kw = {k: native(backend, v) for k, v in kw.items()}
    out = getattr(backend.module, name)(*args, **backend.kw(axis, kw))
    return backend.to_numpy(out)


def grad(backend, name, x, *args, axis=-1, weights=None, **kw):
    """``d sum(weights * f(x, *args)) / dx`` in ``backend`` (torch, jax or tensorflow)."""
    fn = getattr(backend.module, name)
    args = [native(backend, a) for a in args]
    kw = backend.kw(axis, {k: native(backend, v) for k, v in kw.items()})
    if backend.name == "torch":
        import torch

        xt = backend.to_native(x).requires_grad_()
        out = fn(xt, *args, **kw)
        w = torch.ones_like(out) if weights is None else backend.to_native(weights)
        (g,) = torch.autograd.grad((out * w).sum(), xt)
        return g.numpy()
    if backend.name == "jax":
        import jax
        import jax.numpy as jnp

        def f(v):
            out = fn(v, *args, **kw)
            w = jnp.ones_like(out) if weights is None else jnp.asarray(weights)
            return jnp.sum(out * w)

        return np.asarray(jax.grad(f)(backend.to_native(x)))
    if backend.name == "tensorflow":
        import tensorflow as tf

        xt = backend.to_native(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = fn(xt, *args, **kw)
            w = tf.ones_like(out) if weights is None else tf.constant(weights, out.dtype)
            total = tf.reduce_sum(out * w)
        return tape.gradient(total, xt).numpy()
    raise ValueError(f"no gradient in {backend.name}")


def finite_difference(backend, name, x, *args, axis=-1, weights=None, h=1e-6, **kw):
    """Central differences of ``sum(weights * f)`` in float64, entry by entry."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fp = call(backend, name, xp, *args, axis=axis, **kw)
        fm = call(backend, name, xm, *args, axis=axis, **kw)
        w = 1.0 if weights is None else weights
        g[idx] = np.sum(w * (fp - fm)) / (2 * h)
    return g
