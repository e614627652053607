"""Derivatives of every front end in float64: JVP and VJP against central finite differences of
the front end's own values, and against each other (``<u, J v> = <J^T u, v>``)."""

import numpy as np
import pytest
from cases import AXIS, CASES, point
from numpy.testing import assert_allclose

H = 1e-6


@pytest.mark.parametrize("op,args,kw", CASES)
def test_jvp_and_vjp_match_central_finite_differences(backend, op, args, kw):
    x = point(31)
    rng = np.random.default_rng(32)
    v = rng.normal(size=x.shape)
    u = rng.normal(size=x.shape)
    fd = (backend(op, x + H * v, *args, axis=AXIS, **kw)
          - backend(op, x - H * v, *args, axis=AXIS, **kw)) / (2 * H)
    assert np.abs(fd).max() > 1e-3  # a real, nonzero derivative at this point
    _, jv = backend.jvp(op, x, v, *args, axis=AXIS, **kw)
    _, vj = backend.value_and_vjp(op, x, u, *args, axis=AXIS, **kw)
    scale = max(1.0, np.abs(fd).max())
    assert_allclose(jv, fd, rtol=1e-5, atol=1e-6 * scale)
    assert np.isclose(np.sum(vj * v), np.sum(u * fd), rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("op,args,kw", CASES)
def test_jvp_and_vjp_are_adjoint(backend, op, args, kw):
    rng = np.random.default_rng(33)
    x = rng.normal(size=(3, 5, 4))  # any point, ties of the blocks included
    u, v = rng.normal(size=x.shape), rng.normal(size=x.shape)
    _, jv = backend.jvp(op, x, v, *args, axis=AXIS, **kw)
    _, vj = backend.value_and_vjp(op, x, u, *args, axis=AXIS, **kw)
    assert np.isclose(np.sum(u * jv), np.sum(vj * v), rtol=1e-10, atol=1e-12)


# Tied entries where the top-k operators are locally constant: a tie below the support (ReLU
# zeros, -inf padding, quantized logits) and any row at k = 0. Every small change of x keeps
# those outputs at 0, so their derivative is exactly 0 (checked by one-sided differences too);
# a PAV that pooled equal values (equal sorted entries with equal top-k weights) gave the tie
# a block whose Jacobian is not 0.
_TIES_BELOW = [([3.0, 2.5, 0.0, 0.0, 0.0, -1.0], 2), ([2.0, 0.0, 0.0, -1.0], 1),
               ([-1.0, 1e-300, 0.0, 0.5], 0), ([0.0, 0.0, 0.0], 0)]


@pytest.mark.parametrize("p", [2.0, 4 / 3])
@pytest.mark.parametrize("op", ["soft_topk_mask", "soft_topk_magnitude"])
@pytest.mark.parametrize("row,k", _TIES_BELOW)
def test_tied_entries_outside_the_topk_support_have_zero_derivative(backend, op, row, k, p):
    x = np.array(row)
    kw = dict(regularization_strength=0.3, p=p)
    y = backend(op, x, k, **kw)
    key = np.abs(x) if op == "soft_topk_magnitude" else x
    # Outputs at 0 that tie with another entry's key (|x| for the magnitude); all at k = 0.
    out = (y == 0) & ((k == 0) | (np.sum(key[:, None] == key[None, :], axis=1) > 1))
    assert out.any()
    rng = np.random.default_rng(34)
    for _ in range(3):
        v = rng.normal(size=x.shape)
        for h in (1e-7, -1e-7):  # one-sided: the operator is flat on both sides
            np.testing.assert_array_equal(backend(op, x + h * v, k, **kw)[out], 0.0)
        _, jv = backend.jvp(op, x, v, k, **kw)
        # 0 up to rounding (XLA may contract a t + b sum(c t) differently: ~1e-16).
        np.testing.assert_allclose(jv[out], 0.0, atol=1e-12)
        # The VJP of a cotangent on the flat outputs only is 0.
        _, vj0 = backend.value_and_vjp(op, x, np.where(out, v, 0.0), k, **kw)
        np.testing.assert_allclose(vj0, 0.0, atol=1e-12)
