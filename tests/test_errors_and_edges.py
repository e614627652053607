"""Bad input raises clearly; NaN stays in its row; n = 1, empty axes, ties and +-inf work."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from softorder.isotonic import isotonic_regression
from softorder.numpy import (
    hard_rank,
    soft_rank,
    soft_rank_fwd,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_magnitude_fwd,
    soft_topk_mask,
    soft_topk_mask_fwd,
    vjp,
)

X = np.random.default_rng(5).normal(size=(4, 6))
ALL = [
    lambda x, **kw: soft_rank(x, **kw),
    lambda x, **kw: soft_sort(x, **kw),
    lambda x, **kw: soft_topk_mask(x, 2, **kw),
    lambda x, **kw: soft_topk_magnitude(x, 2, **kw),
]


@pytest.mark.parametrize("k", [-1, 7, 100])
def test_k_out_of_range_names_k_and_the_shape(k):
    with pytest.raises(ValueError, match=rf"k={k}.*0\.\.6.*\(4, 6\)"):
        soft_topk_mask(X, k)
    with pytest.raises(ValueError, match=rf"k={k}"):
        soft_topk_magnitude(X, k)


def test_non_integer_k_is_a_type_error():
    with pytest.raises(TypeError, match="k must be an integer"):
        soft_topk_mask(X, 2.5)


@pytest.mark.parametrize("p", [1.0, 0.5, -2, float("inf")])
def test_p_at_most_one_is_refused(p):
    with pytest.raises(ValueError, match="p must be > 1"):
        soft_topk_mask(X, 2, p=p)
    with pytest.raises(ValueError, match="p must be > 1"):
        soft_rank(X, regularization="pnorm", p=p)


@pytest.mark.parametrize("s", [0.0, -1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("op", range(4))
def test_strength_must_be_positive_and_finite(s, op):
    with pytest.raises(ValueError, match="regularization_strength"):
        ALL[op](X, regularization_strength=s)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.str_, np.object_])
@pytest.mark.parametrize("op", range(4))
def test_complex_string_and_object_arrays_are_type_errors_naming_the_dtype(dtype, op):
    x = np.ones((2, 3), dtype=dtype)
    with pytest.raises(TypeError, match=f"^x must .*{x.dtype}"):
        ALL[op](x)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
@pytest.mark.parametrize("op", range(4))
def test_integer_and_bool_arrays_are_promoted_to_float64_as_np_mean_does(dtype, op):
    x = (np.arange(6).reshape(2, 3) % 4).astype(dtype)
    got = ALL[op](x)
    assert got.dtype == np.mean(x).dtype == np.float64
    np.testing.assert_array_equal(got, ALL[op](x.astype(np.float64)))


@pytest.mark.parametrize("axis", [2, -3, 1.0])
def test_bad_axis_is_refused_with_the_shape(axis):
    with pytest.raises((ValueError, TypeError), match="axis"):
        soft_rank(X, axis=axis)


def test_bad_regularization_and_solver_are_refused():
    with pytest.raises(ValueError, match="regularization must be one of"):
        soft_rank(X, regularization="entropy")
    with pytest.raises(ValueError, match="solver must be one of"):
        soft_topk_mask(X, 2, solver="sinkhorn")
    with pytest.raises(ValueError, match="dykstra.*p=2"):
        soft_topk_mask(X, 2, solver="dykstra", p=4 / 3)


def test_zero_d_input_is_refused():
    with pytest.raises(ValueError, match="0-d"):
        soft_rank(np.float64(3.0))


@pytest.mark.parametrize("op", range(4))
@pytest.mark.parametrize("reg_kw", [{}, {"regularization_strength": 0.1}])
def test_nan_row_gives_nan_in_that_row_only(op, reg_kw):
    x = X.copy()
    x[1, 3] = np.nan
    y = ALL[op](x, **reg_kw)
    assert np.all(np.isnan(y[1]))
    assert_allclose(np.delete(y, 1, axis=0), ALL[op](np.delete(X, 1, axis=0), **reg_kw))


def test_nan_row_gives_nan_gradient_in_that_row_only():
    x = X.copy()
    x[2, 0] = np.nan
    for fwd in (lambda x: soft_rank_fwd(x, regularization="kl"),
                lambda x: soft_topk_mask_fwd(x, 3),
                lambda x: soft_topk_mask_fwd(x, 3, p=2.0, solver="dykstra"),
                lambda x: soft_topk_magnitude_fwd(x, 3, p=2.0, solver="dykstra")):
        _, res = fwd(x)
        g = vjp(res, np.ones_like(x))
        assert np.all(np.isnan(g[2]))
        assert np.all(np.isfinite(np.delete(g, 2, axis=0)))


@pytest.mark.parametrize("op", range(4))
def test_length_one_and_empty_axes_work(op):
    one = np.array([[3.0], [-1.0]])
    if op == 0:
        assert_array_equal(soft_rank(one), [[1.0], [1.0]])
    elif op == 1:
        assert_array_equal(soft_sort(one), one)
    elif op == 2:
        # n = 1: k = 1 keeps the entry (mask 1), k = 0 drops it, at any strength.
        for s in (1e-3, 1.0, 1e3):
            assert_allclose(soft_topk_mask(one, 1, regularization_strength=s), [[1.0], [1.0]])
            assert_array_equal(soft_topk_mask(one, 0, regularization_strength=s), 0.0)
    else:
        for s in (1e-3, 1.0, 1e3):
            assert_allclose(soft_topk_magnitude(one, 1, regularization_strength=s), one)
            assert_array_equal(soft_topk_magnitude(one, 0, regularization_strength=s), 0.0)
    # Empty axes, both ways: n = 0 (k must be 0 for top-k) and m = 0 rows.
    call = [soft_rank, soft_sort, lambda x: soft_topk_mask(x, 0),
            lambda x: soft_topk_magnitude(x, 0)][op]
    empty = np.zeros((3, 0))
    out = call(empty)
    assert out.shape == (3, 0) and out.dtype == empty.dtype
    rows0 = np.zeros((0, 5))
    call_k2 = [soft_rank, soft_sort, lambda x: soft_topk_mask(x, 2),
               lambda x: soft_topk_magnitude(x, 2)][op]
    out = call_k2(rows0)
    assert out.shape == (0, 5) and out.dtype == rows0.dtype
    if op >= 2:
        fwd = soft_topk_mask_fwd if op == 2 else soft_topk_magnitude_fwd
        _, res = fwd(rows0, 2)
        assert vjp(res, rows0).shape == (0, 5)
        _, res = fwd(empty, 0)
        assert vjp(res, empty).shape == (3, 0)


def test_topk_with_k_zero_and_k_n():
    assert_array_equal(soft_topk_mask(X, 0), np.zeros_like(X))
    assert_allclose(soft_topk_mask(X, 6), np.ones_like(X), atol=1e-12)
    assert_allclose(soft_topk_magnitude(X, 0), 0.0)


@pytest.mark.parametrize("reg", ["l2", "kl", "pnorm"])
def test_ties_get_equal_soft_ranks(reg):
    x = np.array([1.0, 3.0, 3.0, -2.0, 3.0])
    r = soft_rank(x, regularization=reg, regularization_strength=1e-3)
    assert_allclose(r, [2, 4, 4, 1, 4], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_outputs_keep_the_input_dtype(dtype):
    for op in ALL:
        assert op(X.astype(dtype)).dtype == dtype


def test_any_axis_matches_moving_that_axis_last():
    x = np.random.default_rng(0).normal(size=(3, 5, 4))
    for ax in range(3):
        ref = np.moveaxis(soft_rank(np.moveaxis(x, ax, -1), regularization="kl"), -1, ax)
        assert_allclose(soft_rank(x, axis=ax, regularization="kl"), ref)
        ref = np.moveaxis(soft_topk_mask(np.moveaxis(x, ax, -1), 2), -1, ax)
        assert_allclose(soft_topk_mask(x, 2, axis=ax), ref)


def test_minus_inf_padding_is_ignored_by_rank_and_topk():
    # Rows padded with -inf to a common length: the padding gets the lowest ranks / mask 0,
    # the real entries get the values they would have alone.
    real = np.array([0.3, 2.0, -1.0])
    padded = np.concatenate([real, [-np.inf, -np.inf]])
    far = np.concatenate([real, [-1e4, -1e4 - 1e-9]])
    for reg in ["l2", "kl", "pnorm"]:
        r = soft_rank(padded, regularization=reg, regularization_strength=2.0)
        assert_allclose(r[3:], [1.5, 1.5])
        # -inf is the limit of a far-away entry.
        assert_allclose(r[:3], soft_rank(far, regularization=reg, regularization_strength=2.0)[:3])
    # l2 ranks are shift-equivariant: the real entries are their own soft ranks, plus 2.
    assert_allclose(soft_rank(padded, regularization_strength=2.0)[:3],
                    soft_rank(real, regularization_strength=2.0) + 2)
    m = soft_topk_mask(padded, 2, regularization_strength=2.0)
    assert_array_equal(m[3:], [0.0, 0.0])
    assert_allclose(m[:3], soft_topk_mask(real, 2, regularization_strength=2.0))
    _, res = soft_topk_mask_fwd(padded, 2)
    assert np.all(np.isfinite(vjp(res, np.ones(5))))


def test_plus_inf_gets_the_top_rank_and_is_always_selected():
    x = np.array([0.3, np.inf, -1.0])
    assert_allclose(soft_rank(x, regularization_strength=10.0)[1], 3.0)
    assert soft_topk_mask(x, 1, regularization_strength=10.0)[1] == 1.0


def test_l2_soft_sort_with_an_infinity_returns_its_limit():
    # A gap tends to infinity: every pooled entry follows it (the l2 limit), no NaN.
    y = soft_sort(np.array([0.0, 1.0, np.inf]), regularization_strength=1.0)
    assert np.all(np.isposinf(y))


def test_isotonic_regression_refuses_bad_weights_and_shapes():
    with pytest.raises(ValueError, match="sample_weight"):
        isotonic_regression(np.ones(3), sample_weight=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        isotonic_regression(np.ones(3), sample_weight=np.ones(4))


def test_hard_rank_is_argsort_of_argsort_plus_one():
    x = np.array([0.5, -1.0, 2.0])
    assert_array_equal(hard_rank(x), [2.0, 1.0, 3.0])
    assert_array_equal(hard_rank(x, descending=True), [2.0, 3.0, 1.0])
