"""Errors at the boundary: the same ValueError/TypeError as softorder.numpy, naming the argument
(``dim`` for ``axis``)."""

import numpy as np
import pytest
import torch

import softorder.numpy as snp
import softorder.torch as st

X = np.random.default_rng(0).normal(size=(3, 4))

BAD = [
    ("soft_rank", (), {"regularization": "l1"}),
    ("soft_rank", (), {"regularization_strength": 0.0}),
    ("soft_rank", (), {"regularization_strength": "big"}),
    ("soft_sort", (), {"regularization": "pnorm", "p": 1.0}),
    ("soft_topk_mask", (5,), {}),
    ("soft_topk_mask", (-1,), {}),
    ("soft_topk_mask", (2.0,), {}),
    ("soft_topk_mask", (2,), {"solver": "dykstra"}),
    ("soft_topk_mask", (2,), {"solver": "newton"}),
    ("soft_topk_magnitude", (2,), {"max_iter": 0}),
    ("soft_topk_magnitude", (2,), {"p": float("inf")}),
]


@pytest.mark.parametrize("name,args,kw", BAD)
def test_invalid_options_raise_the_numpy_error(name, args, kw):
    with pytest.raises((ValueError, TypeError)) as ref:
        getattr(snp, name)(X, *args, **kw)
    with pytest.raises(ref.type) as got:
        getattr(st, name)(torch.tensor(X), *args, **kw)
    assert str(got.value) == str(ref.value)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_non_float_tensors_raise_type_error_naming_the_argument(dtype):
    x = torch.zeros(2, 3, dtype=dtype)
    for f in (st.soft_rank, st.soft_sort, lambda z: st.soft_topk_mask(z, 1)):
        with pytest.raises(TypeError, match=r"^x must have a floating dtype.*\(2, 3\)"):
            f(x)
    with pytest.raises(TypeError, match="^y must have a floating dtype"):
        st.isotonic_regression(x)
    with pytest.raises(TypeError, match="^sample_weight must have a floating dtype"):
        st.isotonic_regression(torch.zeros(2, 3), sample_weight=x)


def test_bad_dim_names_dim():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^dim=2 is out of range for an input of shape \(2, 3\)"):
        st.soft_rank(x, dim=2)
    with pytest.raises(TypeError, match="^dim must be an integer"):
        st.soft_sort(x, dim=1.0)
    with pytest.raises(ValueError, match="0-d input"):
        st.soft_rank(torch.tensor(1.0))


def test_numpy_and_list_inputs_are_accepted_like_softorder_numpy():
    y = st.soft_rank([[3, 1, 2]])
    assert y.dtype == torch.float64
    assert torch.equal(y, torch.tensor(snp.soft_rank([[3, 1, 2]])))
    with pytest.raises(TypeError, match="^x must have a floating dtype"):
        st.soft_rank(np.array([1, 2], dtype=np.int64))


def test_isotonic_weights_must_be_positive_and_shaped_like_y():
    with pytest.raises(ValueError, match="sample_weight must be positive"):
        st.isotonic_regression(torch.zeros(2, 3), sample_weight=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="sample_weight must have the shape of y"):
        st.isotonic_regression(torch.zeros(2, 3), sample_weight=torch.ones(3))
