"""Values: every front end solves the operators' regularized problems (scipy oracles, small n)
and gives the NumPy core's values, VJPs and JVPs (1e-9 in float64, 1e-5 in float32)."""

import functools

import numpy as np
import oracles
import pytest
from adapters import ADAPTERS
from cases import AXIS, CASES, FEW, SHAPE
from numpy.testing import assert_allclose

NUMPY = ADAPTERS["numpy"]


@pytest.mark.parametrize("op,args,kw", CASES)
def test_values_and_vjps_equal_the_numpy_core_in_float64(framework, op, args, kw):
    rng = np.random.default_rng(21)
    x = rng.normal(size=SHAPE)
    u = rng.normal(size=x.shape)
    y0, g0 = NUMPY.value_and_vjp(op, x, u, *args, axis=AXIS, **kw)
    y, g = framework.value_and_vjp(op, x, u, *args, axis=AXIS, **kw)
    assert y.dtype == np.float64 and g.dtype == np.float64 and y.shape == x.shape
    assert_allclose(y, y0, rtol=1e-9, atol=1e-10)
    assert_allclose(g, g0, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("op,args,kw", CASES)
def test_jvps_equal_the_numpy_core_in_float64(framework, op, args, kw):
    rng = np.random.default_rng(22)
    x = rng.normal(size=SHAPE)
    t = rng.normal(size=x.shape)
    y0, d0 = NUMPY.jvp(op, x, t, *args, axis=AXIS, **kw)
    y, d = framework.jvp(op, x, t, *args, axis=AXIS, **kw)
    assert np.abs(d0).max() > 1e-3  # a real, nonzero derivative
    assert_allclose(y, y0, rtol=1e-9, atol=1e-10)
    assert_allclose(d, d0, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("op,args,kw", FEW)
def test_float32_keeps_the_dtype_and_agrees_with_the_numpy_core(framework, op, args, kw):
    rng = np.random.default_rng(23)
    x = rng.normal(size=(4, 7)).astype(np.float32)  # and the default axis, -1
    u = rng.normal(size=x.shape).astype(np.float32)
    # The reference sees the same float32 input and computes in float64.
    y0, g0 = NUMPY.value_and_vjp(op, x.astype(np.float64), u.astype(np.float64), *args, **kw)
    y, g = framework.value_and_vjp(op, x, u, *args, **kw)
    assert y.dtype == np.float32 and g.dtype == np.float32
    scale = max(1.0, np.abs(y0).max())
    assert_allclose(y, y0, rtol=1e-5, atol=1e-5 * scale)
    assert_allclose(g, g0, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(g0).max()))


# --------------------------------------------------------------------------------------------
# Independent references: the primal problems solved by scipy's SLSQP (tests/oracles.py).

X_ORACLE = np.array([[0.3, -1.2, 2.0, 0.7, -0.4], [1.0, 1.1, 0.9, -2.0, 0.2]])
RHO = np.arange(5, 0, -1.0)


@functools.cache
def _oracle(op, row, desc=False, reg="l2", eps=1.0, p=4 / 3, k=2):
    """The solution for ``X_ORACLE[row]`` (computed once per process, shared by backends)."""
    x = X_ORACLE[row]
    if op == "soft_rank":
        sign = -1.0 if desc else 1.0
        if reg == "pnorm":  # R = (eps/p)||y||_p^p on P(rho): strength in the units of x
            return oracles.project(sign * x, RHO, "pnorm", lam=eps, p=p)
        return oracles.project(sign * x / eps, RHO, reg)
    if op == "soft_sort":
        xs = x if desc else -x
        if reg == "kl":  # the paper's log-space form
            ref = np.log(oracles.project(RHO / eps, np.exp(xs), "kl"))
        elif reg == "pnorm":
            ref = oracles.project(RHO, xs, "pnorm", lam=eps, p=p)
        else:
            ref = oracles.project(RHO / eps, xs, "l2")
        return ref if desc else -ref
    if op == "soft_topk_mask":
        wk = (np.arange(5) < k).astype(float)
        return oracles.project(x, wk, "pnorm", lam=eps, p=p)
    return oracles.topk_magnitude(x, k, lam=eps, p=p)


ORACLE_CASES = [
    pytest.param(op, dict(descending=desc, regularization=reg, regularization_strength=eps),
                 1e-5, id=f"{op}-{reg}-{'desc' if desc else 'asc'}")
    for op in ("soft_rank", "soft_sort") for reg in ("l2", "kl", "pnorm")
    for desc, eps in ((False, 0.7), (True, 3.0))
] + [
    pytest.param("soft_topk_mask", dict(k=2, p=p, regularization_strength=lam), 5e-5,
                 id=f"soft_topk_mask-p{p:.3g}-lam{lam}")
    for p, lam in ((2.0, 0.5), (4 / 3, 1.0), (1.5, 0.2))
] + [
    pytest.param("soft_topk_magnitude", dict(k=2, p=p, regularization_strength=lam), 2e-3,
                 id=f"soft_topk_magnitude-p{p:.3g}-lam{lam}")
    for p, lam in ((2.0, 0.3), (4 / 3, 1.0))
]


@pytest.mark.parametrize("op,kw,tol", ORACLE_CASES)
def test_values_solve_the_regularized_problem(backend, op, kw, tol):
    kw = dict(kw)
    k = kw.pop("k", None)
    key = dict(eps=kw["regularization_strength"], p=kw.get("p", 4 / 3))
    if k is None:
        key.update(desc=kw["descending"], reg=kw["regularization"])
        y = backend(op, X_ORACLE, **kw)
    else:
        key.update(k=k)
        y = backend(op, X_ORACLE, k, **kw)
    ref = np.stack([_oracle(op, row, **key) for row in range(len(X_ORACLE))])
    assert_allclose(y, ref, atol=tol)
