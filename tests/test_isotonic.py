"""The isotonic layer against scikit-learn, and Dykstra against PAV."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.isotonic import isotonic_regression as sk_isotonic

import softorder.numpy as so
from softorder.isotonic import DykstraNotConvergedWarning, isotonic_dykstra, isotonic_regression


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bounds", [(None, None), (-0.5, 0.8)])
def test_l2_isotonic_regression_matches_scikit_learn(increasing, weighted, bounds):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 40)) + np.linspace(-1, 1, 40)
    c = rng.uniform(0.1, 3.0, size=y.shape) if weighted else None
    ours = isotonic_regression(y, sample_weight=c, increasing=increasing,
                               y_min=bounds[0], y_max=bounds[1])
    for i in range(y.shape[0]):
        ref = sk_isotonic(y[i], sample_weight=None if c is None else c[i], increasing=increasing,
                          y_min=bounds[0], y_max=bounds[1])
        assert_allclose(ours[i], ref, rtol=1e-12, atol=1e-12)


def test_isotonic_regression_acts_along_any_axis_and_keeps_dtype():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(4, 9, 3)).astype(np.float32)
    ours = isotonic_regression(y, axis=1)
    assert ours.dtype == np.float32 and ours.shape == y.shape
    ref = sk_isotonic(y[2, :, 1].astype(np.float64))
    assert_allclose(ours[2, :, 1], ref, rtol=1e-6, atol=1e-6)


def test_blocks_are_integer_ids_on_which_the_solution_is_constant():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(3, 30))
    sol, block = isotonic_regression(y, return_blocks=True)
    assert block.dtype == np.int32
    assert np.all(np.diff(block, axis=1) >= 0) and np.all(block[:, 0] == 0)
    for i in range(3):
        for b in np.unique(block[i]):
            vals = sol[i][block[i] == b]
            assert np.ptp(vals) == 0
            # Each block's value is the (unweighted) mean of y over it: PAV's pooling.
            assert_allclose(vals[0], y[i][block[i] == b].mean(), rtol=1e-12)
        # Adjacent blocks differ strictly.
        means = [sol[i][block[i] == b][0] for b in np.unique(block[i])]
        assert np.all(np.diff(means) > 0)


@pytest.mark.parametrize("weighted", [False, True])
def test_dykstra_converges_to_the_pav_solution(weighted):
    rng = np.random.default_rng(4)
    y = rng.normal(size=(6, 25)) + np.linspace(0, 2, 25)
    c = rng.uniform(0.5, 2.0, size=y.shape) if weighted else None
    exact, blocks = isotonic_regression(y, sample_weight=c, return_blocks=True)
    res = isotonic_dykstra(y, sample_weight=c, max_iter=50_000, tol=1e-14)
    assert_allclose(res.solution, exact, atol=1e-8)
    assert res.residual < 1e-8
    np.testing.assert_array_equal(res.block, blocks)
    # Fewer sweeps give a worse answer: the iteration count is honest.
    with pytest.warns(DykstraNotConvergedWarning, match="did not converge"):
        rough = isotonic_dykstra(y, sample_weight=c, max_iter=3, tol=0.0)
    assert rough.n_iter == 3
    assert np.max(np.abs(rough.solution - exact)) > np.max(np.abs(res.solution - exact))


def test_dykstra_warns_exactly_when_max_iter_stops_it_before_the_tolerance():
    # A long decreasing-violating row needs many sweeps: 5 are not enough at tol 1e-12.
    y = np.linspace(0.0, 1.0, 40)[None, :]
    with pytest.warns(DykstraNotConvergedWarning, match=r"5 sweeps .*tol=1e-12"):
        res = isotonic_dykstra(y, max_iter=5, tol=1e-12, increasing=False)
    assert res.n_iter == 5 and res.residual > 1e-6  # the warning is honest: not converged
    # Converged runs stay silent, also when convergence takes exactly max_iter sweeps.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DykstraNotConvergedWarning)
        done = isotonic_dykstra(y, max_iter=100_000, tol=1e-12, increasing=False)
        again = isotonic_dykstra(y, max_iter=done.n_iter, tol=1e-12, increasing=False)
    assert again.n_iter == done.n_iter
    assert_allclose(done.solution, np.full_like(y, 0.5), atol=1e-9)
    # The top-k operators with solver="dykstra" (NumPy and the generic torch path) warn too.
    with pytest.warns(DykstraNotConvergedWarning):
        so.soft_topk_mask(np.linspace(0.0, 1.0, 40), 20, p=2.0, solver="dykstra", max_iter=2,
                          regularization_strength=100.0)


def test_dykstra_keeps_a_nan_row_to_itself_and_handles_empty_rows():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(3, 12))
    clean = isotonic_dykstra(y[[0, 2]], max_iter=5000, tol=1e-12)
    y[1, 4] = np.nan
    res = isotonic_dykstra(y, max_iter=5000, tol=1e-12)
    assert np.all(np.isnan(res.solution[1]))
    assert_allclose(res.solution[[0, 2]], clean.solution)
    assert res.n_iter == clean.n_iter
    assert isotonic_dykstra(np.zeros((2, 0))).solution.shape == (2, 0)
