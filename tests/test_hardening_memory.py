"""Memory safety of the derivative kernels (issue 8, item 1): mismatched tangents never reach
the Numba kernels (which index without bounds checks)."""

import numpy as np
import pytest

import softorder.numpy as snp
from softorder._src.core.jacobian import jvp_rows, vjp_rows


@pytest.fixture
def res():
    return snp.soft_rank_fwd(np.random.default_rng(0).normal(size=(1, 3000)))[1]


def test_jvp_with_a_too_small_tangent_raises_value_error(res):
    # The reproducer at small size (it read out of bounds at (1, 30_000_000)).
    with pytest.raises(ValueError, match="shape"):
        snp.jvp(res, np.ones((1, 1)))


def test_vjp_with_a_too_small_cotangent_raises_value_error(res):
    with pytest.raises(ValueError, match="shape"):
        snp.vjp(res, np.ones((1, 1)))


def test_complex_cotangent_raises_type_error(res):
    with pytest.raises(TypeError):
        snp.vjp(res, np.ones((1, 3000), complex))
    with pytest.raises(TypeError):
        snp.jvp(res, np.ones((1, 3000), complex))


@pytest.mark.parametrize("kernel", [jvp_rows, vjp_rows])
def test_the_row_kernels_check_shapes_themselves(res, kernel):
    # Defence in depth below the public API: the kernels' own entry points refuse too.
    jac = res.jacobians[0]
    for bad in (np.ones((1, 1)), np.ones((2, 3000)), np.ones(3000), np.ones((1, 3001))):
        with pytest.raises(ValueError):
            kernel(jac, bad)
    with pytest.raises(TypeError):
        kernel(jac, np.ones((1, 3000), complex))
    with pytest.raises(ValueError):  # residuals that do not match each other
        kernel(jac._replace(block=jac.block[:, :10]), np.ones((1, 3000)))
    out = kernel(jac, np.ones((1, 3000), np.float32))
    assert out.shape == (1, 3000) and np.isfinite(out).all()
