"""softorder.torch on a CUDA device against the CPU path (values and gradients).

Runs only where CUDA is present (``benchmarks/gpu_check.sh`` runs it on a GPU machine); elsewhere
every test skips with the reason "no CUDA device". Short rows take the one-program-per-row
Triton kernel, rows of 5000 the parallel one (`triton_parallel.use_parallel`); the kernels are
also checked directly against the Numba `pav_batch`, including the float32 precision policy.
"""

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

OPS = [
    ("sort_l2", lambda m, x: m.soft_sort(x, regularization_strength=0.5)),
    ("sort_kl", lambda m, x: m.soft_sort(x, regularization="kl")),
    ("sort_pnorm", lambda m, x: m.soft_sort(x, regularization="pnorm", descending=True)),
    ("rank_l2", lambda m, x: m.soft_rank(x, regularization_strength=0.5)),
    ("rank_kl", lambda m, x: m.soft_rank(x, regularization="kl")),
    ("rank_pnorm", lambda m, x: m.soft_rank(x, regularization="pnorm")),
    ("topk_mask", lambda m, x: m.soft_topk_mask(x, 3)),
    ("topk_mask_dykstra",
     lambda m, x: m.soft_topk_mask(x, 3, p=2.0, solver="dykstra", tol=1e-10, max_iter=20000)),
    ("topk_magnitude", lambda m, x: m.soft_topk_magnitude(x, 3)),
    ("isotonic", lambda m, x: m.isotonic_regression(x)),
]
SHAPES = [(4, 50), (3, 5000)]  # the sequential and the parallel Triton kernel


def _value_and_grad(fn, x, g):
    import softorder.torch as st

    x = x.detach().clone().requires_grad_(True)
    y = fn(st, x)
    (gx,) = torch.autograd.grad(y, x, g)
    return y.detach().cpu().double().numpy(), gx.cpu().double().numpy()


# Dykstra is checked on short rows only: on rows of 5000 it needs far more sweeps to converge.
CASES = [(name, fn, shape) for name, fn in OPS for shape in SHAPES
         if not (name == "topk_mask_dykstra" and shape[1] > 1000)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,shape", CASES, ids=[f"{c[0]}-{c[2][1]}" for c in CASES])
def test_cuda_matches_cpu(name, fn, shape, dtype):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()) % 1000)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    g = torch.randn(*shape, generator=gen, dtype=torch.float64)
    if name == "isotonic":
        x = x + torch.linspace(0.0, 3.0, shape[1], dtype=torch.float64)
    x, g = x.to(dtype), g.to(dtype)
    y0, g0 = _value_and_grad(fn, x, g)  # CPU, the same dtype: the Numba kernel
    y1, g1 = _value_and_grad(fn, x.to("cuda"), g.to("cuda"))
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    scale = max(1.0, float(np.abs(y0).max()))
    np.testing.assert_allclose(y1, y0, rtol=tol, atol=tol * scale)
    gscale = max(1.0, float(np.abs(g0).max()))
    close = np.isclose(g1, g0, rtol=tol, atol=tol * gscale)
    if dtype == torch.float64:
        assert close.all()
    else:
        # The gradient jumps where two neighbouring blocks tie; float32 rounding in a different
        # order (GPU kernel vs CPU) can settle a near tie the other way, which changes the
        # gradient of the two blocks involved: allow that on a few entries of long rows.
        assert close.mean() >= 0.99 and (shape[1] > 1000 or close.all())


def _rows(kind, rng, m, n):
    from softorder._src.isotonic import pav as P

    s = rng.normal(size=(m, n)) * 3.0
    s[0] = np.sort(s[0])  # one block
    s[1] = np.repeat(np.arange(n // 9 + 1, 0, -1.0), 9)[:n] + 0.2 * rng.normal(size=n)
    if kind == P.KIND_MAG:
        s = np.abs(s)
        w = (np.arange(n) < n // 4).astype(float)[None].repeat(m, 0)
    elif kind == P.KIND_PNORM:
        w = -np.sort(-rng.uniform(0.0, 2.0, size=(m, n)), axis=1)
    else:
        w = -np.sort(-rng.normal(size=(m, n)), axis=1) * 0.5
    cw = rng.uniform(0.5, 2.0, size=(m, n)) if kind == P.KIND_L2 else np.ones((m, n))
    return s, np.ascontiguousarray(w), cw


KINDS = [(0, 1.0), (1, 1.0), (2, 3.0), (2, 1.0), (2, 2.0), (3, 1.0), (3, 3.0), (3, 2.0)]


@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize("kind,r", KINDS)
def test_parallel_kernel_matches_numba_on_cuda(kind, r, chunk):
    from softorder._src.isotonic import pav as P
    from softorder._src.isotonic import triton_parallel as TP
    from softorder._src.isotonic import triton_pav as TS

    rng = np.random.default_rng(kind * 10 + int(r))
    s, w, cw = _rows(kind, rng, 4, 3001)
    beta = kind == P.KIND_KL
    ref = P.pav_batch(s, w, cw, kind, r, 0.7, False, beta)
    ts = [torch.from_numpy(a).cuda() for a in (s, w, cw)]
    got = TP.pav_batch_triton_parallel(*ts, kind, r, 0.7, False, beta, chunk=chunk)
    seq = TS.pav_batch_triton(*ts, kind, r, 0.7, False, beta)
    for a, b, c in zip(ref, got, seq):
        if a.dtype.kind == "i":
            np.testing.assert_array_equal(b.cpu().numpy(), a)
            np.testing.assert_array_equal(c.cpu().numpy(), a)
        else:
            np.testing.assert_allclose(b.cpu().numpy(), a, rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(c.cpu().numpy(), a, rtol=1e-9, atol=1e-11)


def test_parallel_l2_float32_within_1e5_of_float64_on_cuda():
    from softorder._src.isotonic import pav as P
    from softorder._src.isotonic import triton_parallel as TP

    rng = np.random.default_rng(2)
    s, w, cw = _rows(P.KIND_L2, rng, 8, 100_000)
    s = s * 1e3
    s, w, cw = (a.astype(np.float32).astype(np.float64) for a in (s, w, cw))
    ref = P.pav_batch(s, w, cw, P.KIND_L2, 1.0, 1.0, True, False)
    got = TP.pav_batch_triton_parallel(*(torch.from_numpy(a).float().cuda() for a in (s, w, cw)),
                                       P.KIND_L2, 1.0, 1.0, True, False)
    for a, b in zip(ref[:3], got[:3]):
        err = np.abs(b.cpu().double().numpy() - a) / np.abs(a).max(axis=1, keepdims=True)
        assert err.max() <= 1e-5


def test_long_rows_take_the_parallel_kernel(monkeypatch):
    from softorder._src.isotonic import triton_parallel as TP

    monkeypatch.delenv("SOFTORDER_TRITON_PAV", raising=False)
    calls = []
    real = TP.pav_batch_triton_parallel
    monkeypatch.setattr(TP, "pav_batch_triton_parallel",
                        lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    import softorder.torch as st

    st.soft_rank(torch.randn(2, 100, device="cuda"))
    assert not calls
    st.soft_rank(torch.randn(2, 5000, device="cuda"))
    assert calls == [(2, 5000)]


def test_softorder_jax_on_the_gpu_matches_numpy():
    jax = pytest.importorskip("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("no CUDA device for JAX (jaxlib without CUDA)")
    import softorder.jax as sj
    import softorder.numpy as snp

    x = np.random.default_rng(0).normal(size=(4, 300))
    for fn in ("soft_rank", "soft_sort"):
        for reg in ("l2", "kl"):
            y0 = getattr(snp, fn)(x, regularization=reg)
            y1 = getattr(sj, fn)(jax.numpy.asarray(x, dtype=jax.numpy.float32),
                                 regularization=reg)
            np.testing.assert_allclose(np.asarray(y1), y0, rtol=1e-4, atol=1e-4 * 300)
