"""TorchBackend: the row-level operators with ``xp=TORCH`` give the NumPy core's numbers.

PAV runs on the Numba kernel here (CPU, no interpreter); the Triton kernel is checked in
`test_triton_pav.py`. Everything else (sorts, gathers, Dykstra, segment sums, the Jacobian
maps) is the torch code that also runs on CUDA/MPS.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from softorder._src.core import registry as R  # noqa: E402
from softorder._src.core.backend import NUMPY  # noqa: E402
from softorder._src.core.dykstra import block_alpha, dykstra_decreasing  # noqa: E402
from softorder._src.core.jacobian import apply  # noqa: E402
from softorder._src.frontends.torch.backend import TORCH, TorchBackend  # noqa: E402
from softorder._src.isotonic import pav as P  # noqa: E402


def _rows(name, strength=0.7, **options):
    """The registered operator's row function with fixed options: ``(xp, x2) -> (y2, jac)``."""
    op = R.get(name)
    opts = op.options(**options)

    def rows(xp, a):
        return op.rows(a, strength, opts, xp)

    rows.op, rows.opts, rows.strength = op, opts, strength
    return rows


OPS = {
    "rank_l2": _rows("soft_rank"),
    "rank_l2_desc": _rows("soft_rank", descending=True),
    "rank_kl": _rows("soft_rank", regularization="kl"),
    "rank_pnorm": _rows("soft_rank", regularization="pnorm"),
    "sort_l2": _rows("soft_sort"),
    "sort_kl_desc": _rows("soft_sort", descending=True, regularization="kl"),
    "sort_kl": _rows("soft_sort", regularization="kl"),
    "sort_pnorm": _rows("soft_sort", regularization="pnorm", p=1.5),
    "mask_p43": _rows("soft_topk_mask", k=3),
    "mask_p2": _rows("soft_topk_mask", k=3, p=2.0),
    "mask_dykstra": _rows("soft_topk_mask", k=3, p=2.0, solver="dykstra"),
    "mag_p43": _rows("soft_topk_magnitude", k=3),
    "mag_p2": _rows("soft_topk_magnitude", k=3, p=2.0),
    "mag_p15": _rows("soft_topk_magnitude", k=2, p=1.5),
    "mag_dykstra": _rows("soft_topk_magnitude", k=3, p=2.0, solver="dykstra"),
}


def jvp_torch(jac, t):
    return apply(jac, t, xp=TORCH)


def vjp_torch(jac, t):
    return apply(jac, t, transpose=True, xp=TORCH)


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
    np.testing.assert_allclose(jvp_torch(j1, _t(u)).numpy(), apply(j0, u),
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(vjp_torch(j1, _t(v)).numpy(), apply(j0, v, transpose=True),
                               rtol=1e-9, atol=1e-11)
    # Adjointness <v, J u> = <J^T v, u> in torch alone, on the rows without NaN.
    jv = jvp_torch(j1, _t(u))[:3]
    vj = vjp_torch(j1, _t(v))[:3]
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
    np.testing.assert_allclose(jvp_torch(j1, _t(u)).numpy(), apply(j0, u),
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


def test_segment_sum_keeps_the_row_axis_and_matches_numpy():
    rng = np.random.default_rng(15)
    block = np.cumsum(rng.random((4, 11)) < 0.5, axis=1).astype(np.int32)
    vals = rng.normal(size=block.shape)
    got = TORCH.segment_sum(_t(vals), _t(block))
    assert got.shape == vals.shape
    np.testing.assert_allclose(got.numpy(), NUMPY.segment_sum(vals, block), rtol=1e-13,
                               atol=1e-14)
    # One row alone gives the same sums: no row is mixed with another.
    np.testing.assert_allclose(TORCH.segment_sum(_t(vals[2:3]), _t(block[2:3])).numpy(),
                               got[2:3].numpy(), rtol=1e-15)


@pytest.mark.parametrize("name", sorted(OPS))
def test_strength_tangent_matches_numpy_and_finite_differences(name):
    fn = OPS[name]
    rng = np.random.default_rng(len(name))
    x = rng.normal(size=(3, 8)) * 1.5
    y0, j0 = fn(NUMPY, x)
    y1, j1 = fn(TORCH, _t(x))
    t0 = fn.op.strength_tangent(x, y0, j0, fn.strength, fn.opts, NUMPY)
    s = torch.tensor(fn.strength, dtype=torch.float64)
    t1 = fn.op.strength_tangent(_t(x), y1, j1, s, fn.opts, TORCH)
    np.testing.assert_allclose(t1.numpy(), t0, rtol=1e-9, atol=1e-11)
    h = 1e-6 * fn.strength
    fd = (fn.op.rows(x, fn.strength + h, fn.opts, NUMPY)[0]
          - fn.op.rows(x, fn.strength - h, fn.opts, NUMPY)[0]) / (2 * h)
    tol = 1e-4 if getattr(fn.opts, "solver", "pav") == "dykstra" else 1e-6
    np.testing.assert_allclose(t0, fd, rtol=tol, atol=tol)


def test_block_alpha_matches_numpy():
    rng = np.random.default_rng(5)
    block = np.cumsum(rng.random((3, 12)) < 0.4, axis=1).astype(np.int32)
    weights = rng.uniform(0.5, 2.0, size=block.shape)
    np.testing.assert_allclose(block_alpha(_t(block), _t(weights), TORCH).numpy(),
                               block_alpha(block, weights), rtol=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
def test_dykstra_matches_numpy_and_pav(weighted):
    rng = np.random.default_rng(6 + weighted)
    y = np.cumsum(rng.normal(size=(5, 16)), axis=1) * 0.3  # long violating runs
    y[:, ::4] += 2.0
    wts = rng.uniform(0.5, 2.0, size=y.shape) if weighted else np.ones_like(y)
    ref = dykstra_decreasing(y, wts, max_iter=5000, tol=1e-12)
    sol, block, n_iter, residual = dykstra_decreasing(_t(y), _t(wts), max_iter=5000, tol=1e-12,
                                                      xp=TORCH)
    assert n_iter == ref.n_iter
    np.testing.assert_allclose(sol.numpy(), ref.solution, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(block.numpy(), ref.block)
    assert residual == pytest.approx(ref.residual, abs=1e-12)
    # At convergence, Dykstra is the exact (weighted) isotonic regression, which PAV solves.
    v, _, _, _, pav_block = P.pav_batch(y, np.zeros_like(y), wts, P.KIND_L2, 1.0, 1.0, True,
                                        False)
    np.testing.assert_allclose(sol.numpy(), v, atol=1e-8)
    np.testing.assert_array_equal(block.numpy(), pav_block)


def test_dykstra_edge_shapes():
    for shape in ((0, 5), (3, 0), (2, 1)):
        y = torch.ones(shape, dtype=torch.float64)
        sol, block, _, residual = dykstra_decreasing(y, torch.ones_like(y), xp=TORCH)
        assert sol.shape == shape and block.shape == shape and residual == 0.0
        if shape[1] > 0:  # the NumPy Dykstra refuses n = 0 rows
            ref = dykstra_decreasing(y.numpy(), np.ones(shape))
            np.testing.assert_array_equal(block.numpy(), ref.block)


def test_jacobian_maps_keep_tensor_graph():
    # The torch maps are plain torch ops: autograd differentiates them in the tangent.
    x = _t(np.random.default_rng(8).normal(size=(2, 6)))
    _, jac = _rows("soft_rank", 0.5)(TORCH, x)
    u = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    (jvp_torch(jac, u) ** 2).sum().backward()
    expected = 2 * vjp_torch(jac, jvp_torch(jac, u.detach()))
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
        _rows("soft_rank", scale),
        _rows("soft_rank", scale, descending=True, regularization="kl"),
        _rows("soft_sort", 1.0 / scale),
        _rows("soft_topk_mask", scale, k=k),
        _rows("soft_topk_magnitude", scale, k=k),
    ]
    for fn in fns:
        y0, _ = fn(NUMPY, x)
        y1, _ = fn(TORCH, _t(x))
        np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-9, atol=1e-9 * np.abs(y0).max(initial=1))
