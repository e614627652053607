"""Every operator and regularizer against its primal problem solved by a generic solver."""

import numpy as np
import oracles
import pytest
from numpy.testing import assert_allclose

from softorder.isotonic import isotonic_kl, isotonic_magnitude, isotonic_pnorm
from softorder.numpy import (
    project_permutahedron,
    soft_rank,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_mask,
)

POINTS = [np.array([0.3, -1.2, 2.0, 0.7, -0.4]), np.array([1.0, 1.1, 0.9, -2.0])]


@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("reg,p", [("l2", 2.0), ("kl", None), ("pnorm", 4 / 3), ("pnorm", 1.5)])
def test_projection_onto_permutahedron_solves_its_primal(x, reg, p):
    rng = np.random.default_rng(len(x))
    w = rng.uniform(0.5, 3.0, len(x))
    ours = project_permutahedron(x, w, regularization=reg, p=p or 4 / 3)
    ref = oracles.project(x, w, "pnorm" if reg == "pnorm" else reg, p=p or 2.0)
    assert_allclose(ours, ref, atol=2e-5)


@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("eps", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("reg", ["l2", "kl", "pnorm"])
def test_soft_rank_is_the_regularized_projection_of_x_onto_permutahedron_of_ranks(
        x, eps, descending, reg):
    n = len(x)
    rho = np.arange(n, 0, -1.0)
    sign = -1.0 if descending else 1.0
    if reg == "pnorm":
        # R = (eps/p) ||y||_p^p applied to P(x, rho): strength in the units of x.
        ref = oracles.project(sign * x, rho, "pnorm", lam=eps, p=4 / 3)
    else:
        ref = oracles.project(sign * x / eps, rho, reg)
    ours = soft_rank(x, descending=descending, regularization=reg, regularization_strength=eps)
    assert_allclose(ours, ref, atol=2e-5)


@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("eps", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("reg", ["l2", "kl", "pnorm"])
def test_soft_sort_is_the_regularized_projection_of_rho_onto_permutahedron_of_x(
        x, eps, descending, reg):
    n = len(x)
    rho = np.arange(n, 0, -1.0)
    xs = x if descending else -x
    if reg == "kl":
        # The paper's log-space form: log P_kl(rho / eps, e^x).
        ref = np.log(oracles.project(rho / eps, np.exp(xs), "kl"))
    elif reg == "pnorm":
        ref = oracles.project(rho, xs, "pnorm", lam=eps, p=4 / 3)
    else:
        ref = oracles.project(rho / eps, xs, "l2")
    ref = ref if descending else -ref
    ours = soft_sort(x, descending=descending, regularization=reg, regularization_strength=eps)
    assert_allclose(ours, ref, atol=2e-5)


@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("lam", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("p", [2.0, 4 / 3, 1.5, 3.0])
def test_soft_topk_mask_is_the_pnorm_projection_onto_the_capped_simplex(x, k, lam, p):
    n = len(x)
    wk = (np.arange(n) < k).astype(float)
    ref = oracles.project(x, wk, "pnorm", lam=lam, p=p)
    assert_allclose(soft_topk_mask(x, k, regularization_strength=lam, p=p), ref, atol=5e-5)


@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("lam", [3.0, 10.0])
@pytest.mark.parametrize("p", [2.0, 4 / 3, 1.5, 3.0])
def test_soft_topk_magnitude_matches_the_conjugate_characterization(x, k, lam, p):
    # The oracle is exact to ~1e-12 (KKT polish certified against SLSQP), so the tolerance is
    # tight: a 0.1% error in the strength moves these outputs by ~1e-4 and fails.
    ref = oracles.topk_magnitude(x, k, lam=lam, p=p)
    ours = soft_topk_magnitude(x, k, regularization_strength=lam, p=p)
    assert_allclose(ours, ref, rtol=1e-9, atol=1e-10)
    # The points are genuinely soft: some output is neither 0 nor x.
    assert np.any((np.abs(ours) > 1e-6) & (np.abs(ours - x) > 1e-6))


@pytest.mark.parametrize("lam", [0.7, 2.5])
@pytest.mark.parametrize("p", [2.0, 4 / 3])
def test_isotonic_kl_pnorm_magnitude_solve_their_primal_problems(lam, p):
    rng = np.random.default_rng(3)
    s = np.sort(rng.normal(size=6))[::-1] + rng.normal(scale=0.8, size=6)
    w = np.sort(rng.uniform(0.1, 2.0, 6))[::-1]
    v = isotonic_kl(s, np.log(w)).solution
    ref = oracles.isotonic_decreasing(s, w, np.exp, np.exp)
    assert_allclose(v, ref, rtol=1e-9, atol=1e-10)
    q = 4.0  # p = 4/3
    v = isotonic_pnorm(s, w, p=4 / 3).solution
    ref = oracles.isotonic_decreasing(s, w, lambda u: np.abs(u) ** q / q,
                                      lambda u: np.sign(u) * np.abs(u) ** (q - 1))
    assert_allclose(v, ref, rtol=1e-9, atol=1e-10)
    # Magnitude: R*(u) = (1/q) lam^(1-q) |u|^q (the conjugate of (lam/p)|u|^p), + 1/2 w v^2.
    sa = np.abs(s)
    wk = (np.arange(6) < 3).astype(float)
    qm = p / (p - 1)
    v = isotonic_magnitude(sa, wk, p=p, regularization_strength=lam).solution
    ref = oracles.isotonic_decreasing(
        sa, wk, lambda u: lam ** (1 - qm) * np.abs(u) ** qm / qm,
        lambda u: lam ** (1 - qm) * np.sign(u) * np.abs(u) ** (qm - 1),
        extra=lambda v: 0.5 * wk * v**2, dextra=lambda v: wk * v)
    assert_allclose(v, ref, rtol=1e-9, atol=1e-10)
