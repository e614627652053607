"""The parallel Triton PAV (`triton_parallel`) against the Numba `pav_batch`, under the interpreter.

As tests/test_triton_pav.py: the outer test reruns this file in a fresh pytest process with
``TRITON_INTERPRET=1`` (the interpreter must be on before the kernels are decorated and must not
leak into other modules); the inner run checks the kernels really are interpreted. Chunks of 1
to 5 entries and tiles of 16 on rows of 20 to 70 make many chunks, several tree levels, junction
merges that pool across chunk and tile boundaries, and rows whose length is no multiple of the
chunk. A second outer test compiles every kernel with Triton's real compiler for sm_90.
"""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

INNER = os.environ.get("SOFTORDER_TRITON_PARALLEL_INNER") == "1"

if not INNER:

    def _run(args, extra_env, timeout):
        env = dict(os.environ)
        env.update(extra_env)
        with tempfile.TemporaryDirectory() as cache:
            env["TRITON_CACHE_DIR"] = cache
            return subprocess.run(args, env=env, capture_output=True, text=True,
                                  timeout=timeout)

    def test_parallel_kernel_under_interpreter():
        pytest.importorskip("triton")
        proc = _run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "-W", "ignore::RuntimeWarning", __file__],
            {"TRITON_INTERPRET": "1", "SOFTORDER_TRITON_PARALLEL_INNER": "1"},
            timeout=600,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        passed = re.search(r"(\d+) passed", out)
        assert passed and int(passed.group(1)) >= 30, out
        assert "skipped" not in out, out

    def test_parallel_kernels_compile_for_cuda_without_a_gpu():
        pytest.importorskip("triton")
        code = (
            "import warnings; warnings.simplefilter('ignore')\n"
            "from softorder._src.isotonic import triton_parallel as T\n"
            "for args in [(T.KIND_L2, 1.0, 'fp32'), (T.KIND_L2, 1.0, 'bf16'),\n"
            "             (T.KIND_KL, 1.0, 'fp32'), (T.KIND_PNORM, 3.0, 'fp64'),\n"
            "             (T.KIND_MAG, 2.0, 'fp32')]:\n"
            "    for k in T._compile_cuda(*args):\n"
            "        assert len(k.asm['cubin']) > 0\n"
            "print('compiled')\n"
        )
        proc = _run([sys.executable, "-c", code], {"TRITON_INTERPRET": "0"}, timeout=600)
        assert proc.returncode == 0 and "compiled" in proc.stdout, proc.stdout + proc.stderr

else:
    import torch

    from softorder._src.core import registry as R
    from softorder._src.core.backend import NUMPY
    from softorder._src.core.jacobian import apply
    from softorder._src.frontends.torch.backend import TorchBackend
    from softorder._src.isotonic import pav as P
    from softorder._src.isotonic import triton_parallel as TP

    NAMES = ("out", "d", "alpha", "beta", "block")
    FAST = [(P.KIND_L2, 1.0), (P.KIND_KL, 1.0), (P.KIND_PNORM, 3.0), (P.KIND_PNORM, 1.0),
            (P.KIND_MAG, 1.0), (P.KIND_MAG, 3.0)]
    NEWTON = [(P.KIND_PNORM, 2.0), (P.KIND_MAG, 2.0), (P.KIND_PNORM, 0.5)]

    def test_kernels_are_interpreted():
        assert os.environ["TRITON_INTERPRET"] == "1"
        assert TP.is_interpreted()
        assert type(TP._chunk_kernel).__name__ == "InterpretedFunction"

    def _rows(kind, rng, n, ties=False):
        """Rows: random, all pooled (increasing), none pooled (decreasing, spread), staircases
        (runs that pool inside chunks and across them), and random with ties."""
        m = 5
        s = rng.normal(size=(m, n)) * 2.0
        s[1] = np.sort(np.abs(s[1]))  # increasing: one block over every chunk
        s[2] = np.arange(n, 0, -1) * 10.0 + s[2]  # decreasing and spread: n blocks
        s[3] = np.repeat(np.arange(n // 7 + 1, 0, -1.0), 7)[:n] + 0.3 * np.sin(np.arange(n))
        s[4] = np.round(s[4])
        if ties:
            s = np.round(s)
        if kind == P.KIND_MAG:
            s = np.abs(s)
            w = (np.arange(n) < max(1, n // 3)).astype(float)[None].repeat(m, 0)
        elif kind == P.KIND_PNORM:
            w = -np.sort(-rng.uniform(0.0, 2.0, size=(m, n)), axis=1)
        else:
            w = -np.sort(-rng.normal(size=(m, n)), axis=1) * 0.3
        cw = rng.uniform(0.5, 2.0, size=(m, n)) if kind == P.KIND_L2 else np.ones((m, n))
        return s, np.ascontiguousarray(w), cw

    def _t(a, dtype=torch.float64):
        return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)

    def _compare(kind, r, s, w, cw, *, write_v=False, lam=0.7, chunk=3, block_size=16,
                 rtol=1e-10, atol=1e-12):
        need_beta = kind == P.KIND_KL
        ref = P.pav_batch(s, w, cw, kind, r, lam, write_v, need_beta)
        got = TP.pav_batch_triton_parallel(_t(s), _t(w), _t(cw), kind, r, lam, write_v,
                                           need_beta, chunk=chunk, block_size=block_size)
        for name, a, b in zip(NAMES, ref, got):
            assert b.shape == a.shape, name
            if name == "block":
                assert b.dtype == torch.int32
                np.testing.assert_array_equal(b.numpy(), a, err_msg=name)
            else:
                assert b.dtype == torch.float64, name
                np.testing.assert_allclose(b.numpy(), a, rtol=rtol, atol=atol,
                                           err_msg=f"{name} kind={kind} r={r}")
        return ref

    # Every kind with chunks of 3; chunks of 1 (a pure tree of merges) and 5 for some.
    CHUNKED = ([(k, r, 3) for k, r in FAST] + [(P.KIND_L2, 1.0, 1), (P.KIND_KL, 1.0, 1),
                                                (P.KIND_MAG, 3.0, 5)])

    @pytest.mark.parametrize("kind,r,chunk", CHUNKED)
    def test_matches_numba_over_many_chunks(kind, r, chunk):
        # n = 23: no multiple of 3 or 5; 23 chunks of 1 make five tree levels.
        n = 23
        rng = np.random.default_rng(100 * kind + int(r) + chunk)
        s, w, cw = _rows(kind, rng, n)
        ref = _compare(kind, r, s, w, cw, chunk=chunk, write_v=chunk == 3)
        blocks = ref[4]
        assert (blocks[1] == 0).all()  # pooled everything
        if kind != P.KIND_MAG:
            assert (blocks[2] == np.arange(n)).all()  # no pooling
        # Some block crosses a chunk boundary without being the whole row.
        if chunk > 1:
            crossing = [(blocks[i][:-1] == blocks[i][1:])[chunk - 1::chunk].any()
                        for i in (0, 3, 4)]
            assert any(crossing)

    @pytest.mark.parametrize("kind,r", [(P.KIND_L2, 1.0), (P.KIND_PNORM, 3.0),
                                        (P.KIND_MAG, 3.0)])
    def test_ties_and_long_tiles(kind, r):
        # Rows of 70 over tiles of 16: blocks span several tiles (the span pass).
        rng = np.random.default_rng(7 + kind)
        s, w, cw = _rows(kind, rng, 50, ties=True)
        ref = _compare(kind, r, s[[0, 1, 3]], w[[0, 1, 3]], cw[[0, 1, 3]], chunk=6,
                       block_size=16)
        sizes = [np.bincount(b).max() for b in ref[4]]
        assert max(sizes) > 32

    @pytest.mark.parametrize("kind,r", NEWTON)
    def test_newton_exponents(kind, r):
        rng = np.random.default_rng(3)
        s, w, cw = _rows(kind, rng, 9)
        _compare(kind, r, s[[0, 3]], w[[0, 3]], cw[[0, 3]], chunk=2, rtol=1e-9, atol=1e-11)

    @pytest.mark.parametrize("kind,r", FAST)
    def test_nan_row_stays_in_its_row(kind, r):
        rng = np.random.default_rng(4)
        s, w, cw = _rows(kind, rng, 13)
        s[0, 5] = np.nan
        ref = _compare(kind, r, s[:2], w[:2], cw[:2], chunk=2)
        assert np.isnan(ref[0][0]).all() and np.isfinite(ref[0][1:]).all()

    def test_single_entry_empty_and_one_chunk():
        one = np.array([[2.0], [-1.0]])
        _compare(P.KIND_L2, 1.0, one, one * 0.5, np.ones_like(one))
        for shape in ((0, 4), (3, 0)):
            z = torch.zeros(shape, dtype=torch.float64)
            outs = TP.pav_batch_triton_parallel(z, z, z, P.KIND_KL, 1.0, 1.0, False, True)
            assert all(o.shape == shape for o in outs)
        rng = np.random.default_rng(5)
        s, w, cw = _rows(P.KIND_L2, rng, 9)
        _compare(P.KIND_L2, 1.0, s, w, cw, chunk=64)  # one chunk: no merge level

    def test_float32_l2_runs_in_float32_within_1e5_of_float64():
        # The precision policy: l2 on float32 computes in float32 with compensated sums. Rows
        # of 300 (random, one block of them all, a staircase) over chunks of 16.
        assert TP.compute_dtype(P.KIND_L2, torch.float32) == torch.float32
        assert TP.compute_dtype(P.KIND_L2, torch.bfloat16) == torch.float32
        for kind in (P.KIND_KL, P.KIND_PNORM, P.KIND_MAG):
            assert TP.compute_dtype(kind, torch.float32) == torch.float64
        rng = np.random.default_rng(8)
        n = 300
        s, w, cw = _rows(P.KIND_L2, rng, n)
        keep = [0, 1, 3]
        s = s[keep] * 1e3  # large values: the sums would lose digits without compensation
        w, cw = w[keep], cw[keep]
        s, w, cw = (a.astype(np.float32).astype(np.float64) for a in (s, w, cw))
        ref = P.pav_batch(s, w, cw, P.KIND_L2, 1.0, 1.0, True, False)
        got = TP.pav_batch_triton_parallel(_t(s, torch.float32), _t(w, torch.float32),
                                           _t(cw, torch.float32), P.KIND_L2, 1.0, 1.0, True,
                                           False, chunk=16, block_size=64)
        np.testing.assert_array_equal(got[4].numpy(), ref[4])
        for name, a, b in zip(NAMES[:3], ref, got):
            assert b.dtype == torch.float32
            scale = np.abs(a).max(axis=1, keepdims=True)
            err = np.abs(b.numpy().astype(np.float64) - a) / scale
            assert err.max() <= 1e-5, (name, err.max())

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_inputs_accumulate_in_float32(dtype):
        rng = np.random.default_rng(12)
        s, w, cw = _rows(P.KIND_L2, rng, 24)
        sh, wh, ch = (_t(a, dtype) for a in (s, w, cw))
        out = TP.pav_batch_triton_parallel(sh, wh, ch, P.KIND_L2, 1.0, 1.0, True, False,
                                           chunk=3)
        ref = P.pav_batch(*(a.double().numpy() for a in (sh, wh, ch)), P.KIND_L2, 1.0, 1.0,
                          True, False)
        assert out[0].dtype == dtype
        np.testing.assert_array_equal(out[4].numpy(), ref[4])
        # Only the final rounding to 16 bits: within half a 16-bit ulp of the exact answer.
        eps = torch.finfo(dtype).eps
        np.testing.assert_allclose(out[0].double().numpy(), ref[0], rtol=eps, atol=eps)

    def test_dispatch_rule(monkeypatch):
        monkeypatch.delenv("SOFTORDER_TRITON_PAV", raising=False)
        x = torch.zeros(1, 4)
        assert not TP.use_parallel(1, TP.PARALLEL_MIN_N - 1, x)
        assert TP.use_parallel(1, TP.PARALLEL_MIN_N, x)
        assert not TP.use_parallel(TP.BIG_BATCH, TP.PARALLEL_MIN_N, x)
        assert TP.use_parallel(TP.BIG_BATCH, TP.PARALLEL_MIN_N_BIG_BATCH, x)
        # Infinite entries go to the sequential kernel (the infinity contract lives there).
        assert not TP.use_parallel(1, 10**5, torch.tensor([[1.0, float("inf")]]))
        monkeypatch.setenv("SOFTORDER_TRITON_PAV", "parallel")
        assert TP.use_parallel(1, 3, x)
        monkeypatch.setenv("SOFTORDER_TRITON_PAV", "sequential")
        assert not TP.use_parallel(1, 10**6, x)

    OPS = [
        ("rank_l2", "soft_rank", {}),
        ("rank_kl_desc", "soft_rank", dict(descending=True, regularization="kl")),
        ("sort_pnorm", "soft_sort", dict(descending=True, regularization="pnorm")),
        ("topk_mask", "soft_topk_mask", dict(k=3)),
        ("topk_magnitude", "soft_topk_magnitude", dict(k=3)),
    ]

    @pytest.mark.parametrize("label,name,options", OPS, ids=[o[0] for o in OPS])
    def test_operators_through_the_parallel_kernel(monkeypatch, label, name, options):
        # The torch backend's Triton path, forced onto the parallel kernel: values, JVP and
        # VJP equal the NumPy core's.
        monkeypatch.setenv("SOFTORDER_TRITON_PAV", "parallel")
        calls = []
        real = TP.pav_batch_triton_parallel
        monkeypatch.setattr(TP, "pav_batch_triton_parallel",
                            lambda *a, **k: calls.append(1) or real(*a, chunk=3, **k))
        op = R.get(name)
        opts = op.options(**options)
        rng = np.random.default_rng(5)
        x = rng.normal(size=(3, 9))
        x[2, 4] = np.nan
        u, v = rng.normal(size=x.shape), rng.normal(size=x.shape)
        y0, j0 = op.rows(x, 0.5, opts, NUMPY)
        triton = TorchBackend(pav="triton")
        y1, j1 = op.rows(torch.from_numpy(x), 0.5, opts, triton)
        assert calls
        np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(apply(j1, torch.from_numpy(u), xp=triton).numpy(),
                                   apply(j0, u), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(apply(j1, torch.from_numpy(v), transpose=True,
                                         xp=triton).numpy(),
                                   apply(j0, v, transpose=True), rtol=1e-9, atol=1e-11)
        assert np.isnan(y1[2].numpy()).all() and np.isfinite(y1[:2].numpy()).all()
