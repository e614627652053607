"""TorchBackend: the row-level operators with ``xp=TORCH`` give the NumPy core's numbers.

PAV runs on the Numba kernel here (CPU, no interpreter); the Triton kernel is checked in
`test_triton_pav.py`. Everything else (sorts, gathers, Dykstra, segment sums, the Jacobian
maps) is the torch code that also runs on CUDA/MPS.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from softorder._src.core import ops  # noqa: E402
from softorder._src.core.backend import NUMPY  # noqa: E402
from softorder._src.core.dykstra import block_alpha, dykstra_decreasing  # noqa: E402
from softorder._src.core.jacobian import jvp_rows, vjp_rows  # noqa: E402
from softorder._src.frontends.torch.backend import (  # noqa: E402
    TORCH,
    TorchBackend,
    block_alpha_torch,
    dykstra_torch,
    jvp_rows_torch,
    vjp_rows_torch,
)
from softorder._src.isotonic import pav as P  # noqa: E402

OPS = {
    "rank_l2": lambda xp, a: ops.soft_rank_rows(a, 0.7, False, "l2", xp=xp),
    "rank_l2_desc": lambda xp, a: ops.soft_rank_rows(a, 0.7, True, "l2", xp=xp),
    "rank_kl": lambda xp, a: ops.soft_rank_rows(a, 0.7, False, "kl", xp=xp),
    "rank_pnorm": lambda xp, a: ops.soft_rank_rows(a, 0.7, False, "pnorm", 4 / 3, xp=xp),
    "sort_l2": lambda xp, a: ops.soft_sort_rows(a, 0.7, False, "l2", xp=xp),
    "sort_kl_desc": lambda xp, a: ops.soft_sort_rows(a, 0.7, True, "kl", xp=xp),
    "sort_kl": lambda xp, a: ops.soft_sort_rows(a, 0.7, False, "kl", xp=xp),
    "sort_pnorm": lambda xp, a: ops.soft_sort_rows(a, 0.7, False, "pnorm", 1.5, xp=xp),
    "mask_p43": lambda xp, a: ops.soft_topk_mask_rows(a, 3, 0.7, 4 / 3, xp=xp),
    "mask_p2": lambda xp, a: ops.soft_topk_mask_rows(a, 3, 0.7, 2.0, xp=xp),
    "mask_dykstra": lambda xp, a: ops.soft_topk_mask_rows(a, 3, 0.7, 2.0, "dykstra", xp=xp),
    "mag_p43": lambda xp, a: ops.soft_topk_magnitude_rows(a, 3, 0.7, 4 / 3, xp=xp),
    "mag_p2": lambda xp, a: ops.soft_topk_magnitude_rows(a, 3, 0.7, 2.0, xp=xp),
    "mag_p15": lambda xp, a: ops.soft_topk_magnitude_rows(a, 2, 0.7, 1.5, xp=xp),
    "mag_dykstra": lambda xp, a: ops.soft_topk_magnitude_rows(a, 3, 0.7, 2.0, "dykstra",
                                                              xp=xp),
}


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def test_cpu_pav_runs_on_numba():
    # Without TRITON_INTERPRET=1 (this process), CPU tensors take the Numba kernel.
    assert TORCH.pav_kernel_for(torch.zeros(1)) == "numba"
    with pytest.raises(ValueError, match="pav must be"):
        TorchBackend(pav="cuda")


@pytest.mark.parametrize("name", sorted(OPS))
def test_values_and_derivatives_match_numpy(name):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    x = rng.normal(size=(4, 9)) * 1.5  # distinct entries: the derivative is unique
    x[3, 5] = np.nan
    u, v = rng.normal(size=x.shape), rng.normal(size=x.shape)
    y0, j0 = OPS[name](NUMPY, x)
    y1, j1 = OPS[name](TORCH, _t(x))
    assert isinstance(y1, torch.Tensor) and y1.dtype == torch.float64
    np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jvp_rows_torch(j1, _t(u)).numpy(), jvp_rows(j0, u),
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(vjp_rows_torch(j1, _t(v)).numpy(), vjp_rows(j0, v),
                               rtol=1e-9, atol=1e-11)
    # Adjointness <v, J u> = <J^T v, u> in torch alone, on the rows without NaN.
    jv = jvp_rows_torch(j1, _t(u))[:3]
    vj = vjp_rows_torch(j1, _t(v))[:3]
    lhs = float((_t(v)[:3] * jv).sum())
    rhs = float((vj * _t(u)[:3]).sum())
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name", ["rank_l2", "rank_kl", "sort_l2", "mask_p43", "mag_p43"])
def test_values_with_ties_match_numpy(name):
    # At ties the derivative is not unique (the permutation breaks them), the values are.
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(3, 10)))
    y0, _ = OPS[name](NUMPY, x)
    y1, _ = OPS[name](TORCH, _t(x))
    np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["rank_l2", "sort_kl", "mask_p43", "mag_p43", "mask_dykstra"])
def test_float32_and_noncontiguous(name):
    rng = np.random.default_rng(4)
    x64 = rng.normal(size=(7, 5)).astype(np.float32).astype(np.float64)
    xt = _t(x64).to(torch.float32).t()  # [5, 7], non-contiguous
    y1, j1 = OPS[name](TORCH, xt)
    y0, j0 = OPS[name](NUMPY, np.ascontiguousarray(x64.T))
    assert y1.dtype == torch.float32
    np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-5, atol=1e-5)
    u = rng.normal(size=y0.shape)
    np.testing.assert_allclose(jvp_rows_torch(j1, _t(u)).numpy(), jvp_rows(j0, u),
                               rtol=1e-4, atol=1e-4)


def test_primitives():
    a = _t(np.array([[1.0, np.nan, 3.0, -np.inf, 3.0]]))
    perm = TORCH.argsort_desc(a)
    assert perm.tolist() == [[2, 4, 0, 3, 1]]  # ties stable, NaN last as NumPy's argsort(-a)
    s = TORCH.take(a, perm)
    np.testing.assert_array_equal(TORCH.put(s, perm).numpy(), a.numpy())
    assert torch.isnan(TORCH.sign(a)[0, 1]) and TORCH.sign(a)[0, 3] == -1
    like = torch.zeros((2, 4), dtype=torch.float32)
    assert TORCH.rho(like).tolist() == [[4, 3, 2, 1]] * 2
    assert TORCH.topk_weights(like, 1).tolist() == [[1, 0, 0, 0]] * 2
    assert TORCH.identity_perm(like).dtype == torch.int64


def test_block_alpha_matches_numpy():
    rng = np.random.default_rng(5)
    block = np.cumsum(rng.random((3, 12)) < 0.4, axis=1).astype(np.int32)
    weights = rng.uniform(0.5, 2.0, size=block.shape)
    np.testing.assert_allclose(block_alpha_torch(_t(block), _t(weights)).numpy(),
                               block_alpha(block, weights), rtol=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_dykstra_matches_numpy_and_pav(weighted):
    rng = np.random.default_rng(6 + weighted)
    y = np.cumsum(rng.normal(size=(5, 16)), axis=1) * 0.3  # long violating runs
    y[:, ::4] += 2.0
    wts = rng.uniform(0.5, 2.0, size=y.shape) if weighted else np.ones_like(y)
    ref = dykstra_decreasing(y, wts, max_iter=5000, tol=1e-12)
    sol, block, n_iter, residual = dykstra_torch(_t(y), _t(wts), max_iter=5000, tol=1e-12)
    assert n_iter == ref.n_iter
    np.testing.assert_allclose(sol.numpy(), ref.solution, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(block.numpy(), ref.block)
    assert residual == pytest.approx(ref.residual, abs=1e-12)
    # At convergence, Dykstra is the exact (weighted) isotonic regression, which PAV solves.
    v, _, _, _, pav_block = P.pav_batch(y, np.zeros_like(y), wts, P.KIND_L2, 1.0, 1.0, True,
                                        False)
    np.testing.assert_allclose(sol.numpy(), v, atol=1e-8)
    np.testing.assert_array_equal(block.numpy(), pav_block)
    # The backend method returns (solution, block) like NumpyBackend.dykstra.
    s2, b2 = TORCH.dykstra(_t(y), _t(wts), 5000, 1e-12)
    assert torch.equal(s2, sol) and torch.equal(b2, block)


def test_dykstra_edge_shapes():
    for shape in ((0, 5), (3, 0), (2, 1)):
        y = torch.ones(shape, dtype=torch.float64)
        sol, block, _, residual = dykstra_torch(y, torch.ones_like(y))
        assert sol.shape == shape and block.shape == shape and residual == 0.0
        if shape[1] > 0:  # the NumPy Dykstra refuses n = 0 rows
            ref = dykstra_decreasing(y.numpy(), np.ones(shape))
            np.testing.assert_array_equal(block.numpy(), ref.block)


def test_jacobian_maps_keep_tensor_graph():
    # The torch maps are plain torch ops: autograd differentiates them in the tangent.
    x = _t(np.random.default_rng(8).normal(size=(2, 6)))
    _, jac = ops.soft_rank_rows(x, 0.5, xp=TORCH)
    u = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    (jvp_rows_torch(jac, u) ** 2).sum().backward()
    expected = 2 * vjp_rows_torch(jac, jvp_rows_torch(jac, u.detach()))
    np.testing.assert_allclose(u.grad.numpy(), expected.numpy(), rtol=1e-12)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    m=st.integers(1, 3),
    n=st.integers(1, 9),
    scale=st.sampled_from([1e-6, 1.0, 1e9]),
    data=st.data(),
)
def test_fuzz_values_match_numpy(m, n, scale, data):
    # Ties (values from a small grid), tiny and huge scales, every operator family.
    vals = data.draw(st.lists(st.integers(-3, 3), min_size=m * n, max_size=m * n))
    x = np.array(vals, dtype=np.float64).reshape(m, n) * scale
    k = data.draw(st.integers(0, n))
    fns = [
        lambda xp, a: ops.soft_rank_rows(a, scale, False, "l2", xp=xp),
        lambda xp, a: ops.soft_rank_rows(a, scale, True, "kl", xp=xp),
        lambda xp, a: ops.soft_sort_rows(a, 1.0 / scale, False, "l2", xp=xp),
        lambda xp, a: ops.soft_topk_mask_rows(a, k, scale, 4 / 3, xp=xp),
        lambda xp, a: ops.soft_topk_magnitude_rows(a, k, scale, 4 / 3, xp=xp),
    ]
    for fn in fns:
        y0, _ = fn(NUMPY, x)
        y1, _ = fn(TORCH, _t(x))
        np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-9, atol=1e-9 * np.abs(y0).max(initial=1))
