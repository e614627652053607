"""One small adapter per framework, so that one test body checks every front end.

An adapter takes and returns NumPy arrays (except `call`, which returns the framework's own
output, and `to_native`), says ``dim`` for ``axis`` where the framework does (torch), and gives
the derivatives the property tests need:

* ``value_and_vjp(op, x, cot, *args, axis=-1, **kw) -> (y, J^T cot)``
* ``jvp(op, x, tangent, *args, axis=-1, **kw) -> (y, J tangent)`` (forward mode)
* ``value_and_strength_grad(op, x, strength, cot, *args, traced=False, **kw)
  -> (y, d <cot, y> / d strength)``, the strength given as a 0-d array/tensor of ``x``'s dtype;
  ``traced=True`` runs it in the framework's graph mode with the strength as a traced input
  (``jax.jit``, ``tf.function``; eager for NumPy and torch, whose compile is tested in
  tests/torch).

``op`` is a public name (``"soft_rank"``, ...); ``args`` are the positional arguments after
``x`` (``k`` for top-k). The NumPy adapter is the reference: the public ``softorder.numpy`` API,
its ``jvp``/``vjp``, and the registry's ``strength_tangent`` for the strength derivative.

Nothing here imports Triton (torch forward mode uses ``torch.autograd.forward_ad``, not
``torch.func``), so the TensorFlow adapter may share a process with the torch and JAX ones.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np
import pytest

ALL = ("numpy", "torch", "jax", "tensorflow")
ENV = "SOFTORDER_TEST_BACKENDS"


def selected(candidates):
    """The installed ``candidates``, restricted by ``$SOFTORDER_TEST_BACKENDS`` (comma-separated,
    as einops' ``EINOPS_TEST_BACKENDS``)."""
    wanted = os.environ.get(ENV)
    if wanted:
        names = {w.strip() for w in wanted.split(",") if w.strip()}
        unknown = names - set(ALL)
        if unknown:
            raise ValueError(f"{ENV} names unknown backends {sorted(unknown)}; known: {ALL}")
        candidates = [c for c in candidates if c in names]
    return [c for c in candidates if importlib.util.find_spec(c) is not None]


class Adapter:
    name = "?"
    axis_kw = "axis"
    # The tolerances against the NumPy core (float64 / float32).
    rtol64, rtol32 = 1e-9, 1e-5

    def __repr__(self):
        return self.name

    def kw(self, axis, kw):
        return {self.axis_kw: axis, **kw}

    def to_numpy(self, t) -> np.ndarray:
        return np.asarray(t)

    def call(self, op, x, *args, axis=-1, **kw):
        """The framework's ``op`` on ``x`` (NumPy arrays are converted, keeping the dtype, and
        so is a NumPy ``sample_weight``)."""
        if isinstance(x, np.ndarray):
            x = self.to_native(x)
        if isinstance(kw.get("sample_weight"), np.ndarray):
            kw["sample_weight"] = self.to_native(kw["sample_weight"])
        return getattr(self.module, op)(x, *args, **self.kw(axis, kw))

    def __call__(self, op, x, *args, axis=-1, **kw) -> np.ndarray:
        return self.to_numpy(self.call(op, x, *args, axis=axis, **kw))


class NumpyAdapter(Adapter):
    name = "numpy"

    @functools.cached_property
    def module(self):
        import types

        import softorder.isotonic as sis
        import softorder.numpy as snp

        # softorder.numpy, plus the NumPy isotonic_regression (in softorder.isotonic).
        return types.SimpleNamespace(**vars(snp), isotonic_regression=sis.isotonic_regression)

    def to_native(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def _fwd(self, op, x, args, axis, kw):
        return getattr(self.module, op + "_fwd")(np.asarray(x), *args, axis=axis, **kw)

    def value_and_vjp(self, op, x, cot, *args, axis=-1, **kw):
        y, res = self._fwd(op, x, args, axis, kw)
        return y, self.module.vjp(res, cot)

    def jvp(self, op, x, tangent, *args, axis=-1, **kw):
        y, res = self._fwd(op, x, args, axis, kw)
        return y, self.module.jvp(res, tangent)

    def value_and_strength_grad(self, op, x, strength, cot, *args, axis=-1, traced=False, **kw):
        """The core's own ``strength_tangent`` (what every front end differentiates with)."""
        from softorder._src.core import registry as R

        operator = R.get(op)
        x = np.asarray(x)
        strength = np.asarray(strength, dtype=x.dtype)  # a 0-d array, as the others get
        y = getattr(self.module, op)(x, *args, axis=axis, regularization_strength=strength,
                                     **kw)
        if operator.takes_k:
            kw = dict(kw, k=args[0])
        opts = operator.make_options(shape=x.shape, axis=axis, **kw)
        x2 = np.moveaxis(x, axis, -1).astype(np.float64)
        shape = x2.shape
        x2 = x2.reshape(-1, shape[-1])
        y2, jac = operator.rows(x2, float(strength), opts, R.NUMPY)
        t2 = operator.strength_tangent(x2, y2, jac, float(strength), opts, R.NUMPY)
        t = np.moveaxis(t2.reshape(shape), -1, axis)
        return y, float(np.sum(t * cot))


class TorchAdapter(Adapter):
    name = "torch"
    axis_kw = "dim"

    @functools.cached_property
    def module(self):
        import softorder.torch as st

        return st

    @functools.cached_property
    def torch(self):
        import torch

        return torch

    def to_native(self, a, dtype=None):
        a = np.asarray(a, dtype=dtype)
        return self.torch.from_numpy(np.ascontiguousarray(a))

    def to_numpy(self, t):
        return t.detach().cpu().numpy() if isinstance(t, self.torch.Tensor) else np.asarray(t)

    def value_and_vjp(self, op, x, cot, *args, axis=-1, **kw):
        xt = self.to_native(x).requires_grad_()
        y = self.call(op, xt, *args, axis=axis, **kw)
        (g,) = self.torch.autograd.grad(y, xt, self.to_native(cot, x.dtype))
        return self.to_numpy(y), self.to_numpy(g)

    def jvp(self, op, x, tangent, *args, axis=-1, **kw):
        import torch.autograd.forward_ad as fwad

        with fwad.dual_level():
            dual = fwad.make_dual(self.to_native(x), self.to_native(tangent, x.dtype))
            out = fwad.unpack_dual(self.call(op, dual, *args, axis=axis, **kw))
            return self.to_numpy(out.primal), self.to_numpy(out.tangent)

    def value_and_strength_grad(self, op, x, strength, cot, *args, axis=-1, traced=False, **kw):
        s = self.torch.tensor(strength, dtype=self.to_native(x).dtype, requires_grad=True)
        y = self.call(op, x, *args, axis=axis, regularization_strength=s, **kw)
        (g,) = self.torch.autograd.grad(y, s, self.to_native(cot, x.dtype))
        return self.to_numpy(y), float(g)


class JaxAdapter(Adapter):
    name = "jax"

    @functools.cached_property
    def module(self):
        import jax

        jax.config.update("jax_enable_x64", True)  # process-wide, as in tests/jax
        import softorder.jax as sj

        return sj

    @functools.cached_property
    def jax(self):
        self.module  # noqa: B018 - x64 first
        import jax

        return jax

    def to_native(self, a, dtype=None):
        self.module  # noqa: B018 - x64 before the first array
        return self.jax.numpy.asarray(np.asarray(a, dtype=dtype))

    def _f(self, op, args, axis, kw):
        f = getattr(self.module, op)
        return lambda v: f(v, *args, axis=axis, **kw)

    def value_and_vjp(self, op, x, cot, *args, axis=-1, **kw):
        y, pullback = self.jax.vjp(self._f(op, args, axis, kw), self.to_native(x))
        (g,) = pullback(self.to_native(cot, x.dtype))
        return self.to_numpy(y), self.to_numpy(g)

    def jvp(self, op, x, tangent, *args, axis=-1, **kw):
        y, t = self.jax.jvp(self._f(op, args, axis, kw), (self.to_native(x),),
                            (self.to_native(tangent, x.dtype),))
        return self.to_numpy(y), self.to_numpy(t)

    def value_and_strength_grad(self, op, x, strength, cot, *args, axis=-1, traced=False, **kw):
        jnp = self.jax.numpy
        f = getattr(self.module, op)
        c = self.to_native(cot, x.dtype)

        def loss(s, v):
            y = f(v, *args, axis=axis, regularization_strength=s, **kw)
            return jnp.sum(y * c), y

        vg = self.jax.value_and_grad(loss, has_aux=True)
        if traced:
            vg = self.jax.jit(vg)
        (_, y), g = vg(jnp.asarray(strength, dtype=x.dtype), self.to_native(x))
        return self.to_numpy(y), float(g)


class TensorflowAdapter(Adapter):
    name = "tensorflow"

    @functools.cached_property
    def module(self):
        import softorder.tensorflow as stf

        return stf

    @functools.cached_property
    def tf(self):
        import tensorflow as tf

        return tf

    def to_native(self, a, dtype=None):
        return self.tf.constant(np.asarray(a, dtype=dtype))

    def to_numpy(self, t):
        return t.numpy() if hasattr(t, "numpy") else np.asarray(t)

    def value_and_vjp(self, op, x, cot, *args, axis=-1, **kw):
        xt = self.to_native(x)
        with self.tf.GradientTape() as tape:
            tape.watch(xt)
            y = self.call(op, xt, *args, axis=axis, **kw)
        g = tape.gradient(y, xt, output_gradients=self.to_native(cot, x.dtype))
        return self.to_numpy(y), self.to_numpy(g)

    def jvp(self, op, x, tangent, *args, axis=-1, **kw):
        xt = self.to_native(x)
        with self.tf.autodiff.ForwardAccumulator(xt, self.to_native(tangent, x.dtype)) as acc:
            y = self.call(op, xt, *args, axis=axis, **kw)
        t = acc.jvp(y)
        assert t is not None, "a silently missing tangent"
        return self.to_numpy(y), self.to_numpy(t)

    def value_and_strength_grad(self, op, x, strength, cot, *args, axis=-1, traced=False, **kw):
        tf = self.tf
        f = getattr(self.module, op)

        def run(s, v, c):
            with tf.GradientTape() as tape:
                tape.watch(s)
                y = f(v, *args, axis=axis, regularization_strength=s, **kw)
            return y, tape.gradient(y, s, output_gradients=c)

        if traced:
            run = tf.function(run)
        y, g = run(tf.constant(strength, dtype=x.dtype), self.to_native(x),
                   self.to_native(cot, x.dtype))
        assert g is not None, "no gradient reached the strength"
        return self.to_numpy(y), float(g)


ADAPTERS = {a.name: a for a in (NumpyAdapter(), TorchAdapter(), JaxAdapter(),
                                TensorflowAdapter())}

def parametrize(metafunc, candidates):
    """Parametrize a body's ``backend`` (every selected framework, NumPy included) or
    ``framework`` (the same without NumPy: bodies that compare with the NumPy core)."""
    for argname, names in (("backend", selected(candidates)),
                           ("framework", [c for c in selected(candidates) if c != "numpy"])):
        if argname in metafunc.fixturenames:
            params = [pytest.param(ADAPTERS[n], id=n) for n in names]
            metafunc.parametrize(argname, params)
