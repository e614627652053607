"""The fused CPU kernels and the generic backend composition compute the same operator."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from softorder._src.core import registry as R
from softorder._src.core.backend import NumpyBackend
from softorder._src.core.jacobian import jvp_rows, vjp_rows

GENERIC = NumpyBackend()  # not the NUMPY singleton: takes the backend-generic path
X = np.random.default_rng(9).normal(size=(6, 11))
X[1, 2] = 0.0  # a zero for the magnitude operator
TIES = X.copy()
TIES[0, :4] = 0.5  # at ties the Jacobian depends on tie-breaking; the values do not

CASES = []
for reg in ["l2", "kl", "pnorm"]:
    for desc in [False, True]:
        o = R.SortOptions(desc, reg, 4 / 3)
        CASES.append((R.get("soft_rank"), 0.7, o))
        CASES.append((R.get("soft_sort"), 0.7, o))
for p in [2.0, 4 / 3, 1.5]:
    CASES.append((R.get("soft_topk_mask"), 0.4, R.TopKOptions(3, p)))
    CASES.append((R.get("soft_topk_magnitude"), 0.4, R.TopKOptions(3, p)))


@pytest.mark.parametrize("op,eps,o", CASES)
def test_fused_kernel_matches_generic_composition(op, eps, o):
    assert_allclose(op.rows(TIES, eps, o, R.NUMPY)[0], op.rows(TIES, eps, o, GENERIC)[0],
                    rtol=1e-12, atol=1e-12)
    y1, j1 = op.rows(X, eps, o, R.NUMPY)
    y2, j2 = op.rows(X, eps, o, GENERIC)
    assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(0)
    v = rng.normal(size=X.shape)
    assert_allclose(jvp_rows(j1, v), jvp_rows(j2, v), rtol=1e-10, atol=1e-12)
    assert_allclose(vjp_rows(j1, v), vjp_rows(j2, v), rtol=1e-10, atol=1e-12)
