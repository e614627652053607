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
