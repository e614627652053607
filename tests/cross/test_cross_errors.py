"""Errors at the boundary, on every front end: the NumPy core's ValueError/TypeError, word for
word, naming the argument, its value and the input's shape (torch says ``dim`` for ``axis``)."""

import numpy as np
import pytest
from adapters import ADAPTERS
from numpy.testing import assert_array_equal

NUMPY = ADAPTERS["numpy"]
X = np.random.default_rng(0).normal(size=(3, 4))

BAD = [
    ("soft_rank", (), {"regularization": "l1"}),
    ("soft_rank", (), {"regularization_strength": 0.0}),
    ("soft_rank", (), {"regularization_strength": -1.0}),
    ("soft_rank", (), {"regularization_strength": float("nan")}),
    ("soft_sort", (), {"regularization_strength": float("inf")}),
    # Strings, bools and None are not numbers (issue 7, item 8).
    ("soft_rank", (), {"regularization_strength": "0.5"}),
    ("soft_sort", (), {"regularization_strength": True}),
    ("soft_rank", (), {"regularization_strength": None}),
    ("soft_sort", (), {"regularization": "pnorm", "p": "2"}),
    ("soft_sort", (), {"regularization": "pnorm", "p": 1.0}),
    ("soft_topk_magnitude", (2,), {"p": float("inf")}),
    ("soft_topk_mask", (5,), {}),
    ("soft_topk_mask", (-1,), {}),
    ("soft_topk_mask", (2.0,), {}),
    ("soft_topk_magnitude", (True,), {}),
    ("soft_topk_mask", (2,), {"solver": "dykstra"}),
    ("soft_topk_mask", (2,), {"solver": "newton"}),
    ("soft_topk_magnitude", (2,), {"max_iter": 0}),
    ("soft_topk_mask", (2,), {"p": 2.0, "solver": "dykstra", "max_iter": True}),
]
# Checked by the core's validation, not yet by every front end's own (issue 7, item 8).
BAD_V2 = [
    ("soft_topk_mask", (2,), {"tol": "x"}),
    ("soft_topk_mask", (2,), {"tol": None}),
    ("soft_topk_mask", (2,), {"tol": -1.0}),
    ("soft_topk_magnitude", (2,), {"tol": float("nan")}),
    ("soft_rank", (), {"descending": "yes"}),
    ("soft_sort", (), {"straight_through": 1}),
]


def _ids(cases):
    return [f"{op}-{args}-{kw}" for op, args, kw in cases]


def _same_error(framework, op, args, kw):
    with pytest.raises((ValueError, TypeError)) as ref:
        NUMPY(op, X, *args, **kw)
    with pytest.raises(ref.type) as got:
        framework(op, X, *args, **kw)
    assert str(got.value) == str(ref.value)


@pytest.mark.parametrize("op,args,kw", BAD, ids=_ids(BAD))
def test_invalid_options_raise_the_numpy_error_word_for_word(framework, op, args, kw):
    _same_error(framework, op, args, kw)


@pytest.mark.parametrize("op,args,kw", BAD_V2, ids=_ids(BAD_V2))
def test_tol_and_flags_are_checked_like_numpy(framework, op, args, kw):
    _same_error(framework, op, args, kw)


@pytest.mark.parametrize("op", ["soft_rank", "soft_sort", "soft_topk_mask", "soft_topk_magnitude"])
def test_a_bad_axis_names_the_axis_and_the_shape(backend, op):
    args = (1,) if "topk" in op else ()
    name = backend.axis_kw
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=rf"^{name}=2 is out of range for an input of shape "
                                         r"\(2, 3\)"):
        backend(op, x, *args, axis=2)
    with pytest.raises(ValueError, match=rf"^{name}=-3 is out of range"):
        backend(op, x, *args, axis=-3)
    with pytest.raises(TypeError, match=rf"^{name} must be an integer; got 1.0"):
        backend(op, x, *args, axis=1.0)
    with pytest.raises(ValueError, match=rf"^{name}=-1 is invalid for a 0-d input"):
        backend(op, np.float64(1.0), *args)


def test_k_out_of_range_names_k_its_range_and_the_shape(backend):
    x = np.zeros((4, 6))
    for k in (-1, 7, 100):
        for op in ("soft_topk_mask", "soft_topk_magnitude"):
            with pytest.raises(ValueError, match=rf"^k={k} is out of range: it must lie in "
                                                 r"0\.\.6.*\(4, 6\)"):
                backend(op, x, k)


# Integer, boolean and complex inputs: tests/cross/test_cross_dtypes.py.


def test_lists_become_float64_like_softorder_numpy(backend):
    y = backend("soft_rank", [[3, 1, 2]], regularization_strength=0.5)
    assert y.dtype == np.float64
    assert_array_equal(y, NUMPY("soft_rank", [[3, 1, 2]], regularization_strength=0.5))
