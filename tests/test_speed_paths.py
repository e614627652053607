"""The fast paths of issue 11 compute what the general paths compute.

* `fused._l2_scan` (the l2 PAV of the fused kernels) gives the bits of the general `_pav_row`;
* the eager fast paths (cached options, no axis moves for the last axis, the torch eager
  backward on the forward's NumPy residuals) give the values and gradients of the general
  paths, for every float dtype and axis;
* the option cache never turns an invalid option into a valid one;
* `buffers.carve` returns C-contiguous, aligned arrays of the requested shapes, small or large.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import softorder.numpy as so
from softorder._src import buffers
from softorder._src.core import fused
from softorder._src.core import registry as R
from softorder._src.isotonic.pav import KIND_L2, _pav_row, workspace_specs


def _rows(rng):
    n = 37
    yield np.sort(rng.normal(size=n))[::-1].copy(), np.arange(n, 0, -1.0)  # ranks
    yield np.sort(rng.normal(size=n) * 1e6)[::-1].copy(), np.arange(n, 0, -1.0)  # no pooling
    yield np.sort(rng.normal(size=n) * 1e-6)[::-1].copy(), np.arange(n, 0, -1.0)  # one block
    s = np.sort(rng.integers(0, 5, size=n).astype(float))[::-1].copy()  # ties
    yield s, (np.arange(n) < 7).astype(float)  # top-k weights
    yield np.arange(n, 0, -1.0) * 0.3, np.sort(rng.normal(size=n) * 5)[::-1].copy()  # sorts
    yield np.array([2.0]), np.array([1.0])
    yield rng.normal(size=n) * 1e15, rng.normal(size=n)  # unsorted, huge


@pytest.mark.parametrize("case", range(7))
def test_l2_scan_gives_the_bits_of_the_general_pav(case):
    s, w = list(_rows(np.random.default_rng(case)))[case]
    n = s.shape[0]
    ws = tuple(a[0] for a in buffers.carve(workspace_specs(1, n)))
    outs = []
    for general in (True, False):
        u, d, al = np.empty(n), np.empty(n), np.empty(n)
        block = np.empty(n, np.int32)
        if general:
            _pav_row(s, w, np.ones(n), KIND_L2, 1.0, 1.0, False, u, d, al, np.empty(0), block,
                     np.empty(0), ws)
        else:
            fused._l2_scan(s, w, u, d, al, block, ws)
        outs.append((u, d, al, block))
    for a, b in zip(*outs):
        assert_array_equal(a, b)


DTYPES = [np.float16, np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1, 2])
@pytest.mark.parametrize("name", ["soft_rank", "soft_sort"])
def test_numpy_fast_layout_matches_moving_the_axis_by_hand(dtype, axis, name):
    x = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(dtype)
    y, res = getattr(so, name + "_fwd")(x, axis=axis, regularization_strength=0.3)
    assert y.dtype == dtype and y.shape == x.shape
    xm = np.moveaxis(x, axis, -1).astype(np.float64)
    op = R.get(name)
    y2, _ = op.rows(xm.reshape(-1, xm.shape[-1]), 0.3, R.SortOptions(), R.NUMPY)
    ref = np.moveaxis(y2.reshape(xm.shape), -1, axis)
    assert_allclose(y, ref.astype(dtype), rtol=1e-3 if dtype == np.float16 else 1e-6)
    g = np.random.default_rng(2).normal(size=x.shape)
    gx = so.vjp(res, g)
    # the VJP of a linear functional against finite differences (float64 input)
    x64 = x.astype(np.float64)
    v = np.random.default_rng(3).normal(size=x.shape)
    f = lambda t: np.sum(g * getattr(so, name)(x64 + t * v, axis=axis,
                                               regularization_strength=0.3))
    fd = (f(1e-6) - f(-1e-6)) / 2e-6
    assert np.sum(gx * v) == pytest.approx(fd, rel=1e-3 if dtype == np.float16 else 1e-4,
                                           abs=1e-3)


def test_option_cache_keeps_every_check():
    op = R.get("soft_rank")
    good = op.make_options(descending=True, regularization="l2")
    assert op.make_options(descending=True, regularization="l2") is good
    with pytest.raises(TypeError, match="descending"):
        op.make_options(descending=1, regularization="l2")  # 1 == True, but not a bool
    with pytest.raises(ValueError, match="regularization"):
        op.make_options(regularization="l3")
    topk = R.get("soft_topk_mask")
    assert topk.make_options(shape=(2, 5), axis=-1, k=3).k == 3
    with pytest.raises(ValueError, match="k=3"):
        topk.make_options(shape=(2, 2), axis=-1, k=3)  # the same k, another shape
    with pytest.raises(ValueError, match="p"):
        R.get("soft_sort").make_options(regularization="pnorm", p=float("nan"))
    # np.float64 options are validated each call (not cached) and give equal options
    assert op.make_options(regularization="pnorm", p=np.float64(1.5)) == op.make_options(
        regularization="pnorm", p=1.5)


@pytest.mark.parametrize("small", [True, False])
def test_carve_gives_aligned_contiguous_arrays(small):
    n = 7 if small else 300_000
    specs = [((2, n), np.int32), ((3, n), np.float64), ((n + 1,), np.int64), ((1,), np.int32)]
    out = buffers.carve(specs)
    for a, (shape, dt) in zip(out, specs):
        assert a.shape == shape and a.dtype == dt and a.flags.c_contiguous
        assert a.ctypes.data % a.itemsize == 0
        a[...] = 1  # writable, and not overlapping another (checked below)
    total = sum(int(a.sum()) for a in out)
    assert total == sum(int(np.prod(s)) for s, _ in specs)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("name,kw", [("soft_rank", {}), ("soft_sort", {}),
                                     ("soft_rank", {"regularization": "kl"}),
                                     ("soft_topk_mask", {"k": 2}),
                                     ("soft_topk_magnitude", {"k": 2})])
def test_torch_eager_fast_backward_matches_torch_func(dtype, dim, name, kw):
    import softorder.torch as st

    fn = getattr(st, name)
    kw = dict(kw)
    k = kw.pop("k", None)
    call = (lambda t: fn(t, k, dim=dim, regularization_strength=0.4, **kw)) if k else (
        lambda t: fn(t, dim=dim, regularization_strength=0.4, **kw))
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(5)).to(dtype)
    g = torch.randn(4, 6, generator=torch.Generator().manual_seed(6)).to(dtype)
    xe = x.clone().requires_grad_()
    ye = call(xe)  # the plain eager path (_SoftOpEager, NumPy residuals in backward)
    ye.backward(g)
    yf, vjp = torch.func.vjp(call, x)  # the setup-context Function and custom ops
    (gf,) = vjp(g)
    assert ye.dtype == dtype and xe.grad.dtype == dtype
    assert torch.equal(ye, yf)
    assert torch.equal(xe.grad, gf)


def test_torch_eager_backward_with_learned_strength_and_double_backward():
    import softorder.torch as st

    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = st.soft_rank(x, regularization_strength=s)
    gx, gs = torch.autograd.grad((y * y).sum(), (x, s), create_graph=True)
    assert gs.shape == () and torch.isfinite(gs)
    # second order in x through the graph built by the backward (l2: exact, the map is linear)
    (hx,) = torch.autograd.grad(gx.sum(), x, retain_graph=True)
    assert torch.isfinite(hx).all()


@pytest.mark.parametrize("name", ["soft_rank", "soft_sort"])
@pytest.mark.parametrize("special", [None, np.inf, -np.inf, np.nan])
def test_lean_scratch_rows_with_infinities_and_nan_match_the_generic_path(name, special):
    # Rows long enough for the lean scratch (no PAV statistics table): an infinite entry sends
    # a soft sort row to the general kernel, which then needs its table; NaN gives NaN rows.
    from softorder._src.core.backend import NumpyBackend

    x = np.random.default_rng(4).normal(size=(2, 40_000))
    if special is not None:
        x[1, 123] = special
        x[1, 7] = special
    op, o = R.get(name), R.SortOptions()
    y1, j1 = op.rows(x, 0.5, o, R.NUMPY)
    y2, j2 = op.rows(x, 0.5, o, NumpyBackend())
    assert_allclose(y1, y2, rtol=1e-9, atol=1e-9)
    assert_array_equal(np.isnan(y1), np.isnan(y2))
