"""The Triton PAV kernel against the Numba `pav_batch`, on CPU under ``TRITON_INTERPRET=1``.

The interpreter must be switched on before the kernel is decorated, must not leak into other
test modules (it would turn their Triton kernels into slow interpreted ones), and Triton cannot
be loaded in a process that imported TensorFlow. So the outer test runs this same file in a
fresh pytest subprocess with ``TRITON_INTERPRET=1`` and ``SOFTORDER_TRITON_INNER=1``; the inner
run first checks that the kernel really is the interpreted one.
"""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

INNER = os.environ.get("SOFTORDER_TRITON_INNER") == "1"

if not INNER:

    def _run(args, extra_env, timeout):
        env = dict(os.environ)
        env.update(extra_env)
        with tempfile.TemporaryDirectory() as cache:  # Triton's kernel cache, not in $HOME
            env["TRITON_CACHE_DIR"] = cache
            return subprocess.run(args, env=env, capture_output=True, text=True,
                                  timeout=timeout)

    def test_triton_kernel_under_interpreter():
        pytest.importorskip("triton")
        proc = _run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "-W", "ignore::RuntimeWarning", __file__],
            {"TRITON_INTERPRET": "1", "SOFTORDER_TRITON_INNER": "1"},
            timeout=600,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        passed = re.search(r"(\d+) passed", out)
        assert passed and int(passed.group(1)) >= 20, out
        assert "skipped" not in out, out

    def test_kernel_compiles_for_cuda_without_a_gpu():
        # The interpreter runs the kernel's Python; this runs Triton's real compiler (down to
        # PTX and cubin for sm_90) on the variants with the most control flow.
        pytest.importorskip("triton")
        code = (
            "import warnings; warnings.simplefilter('ignore')\n"
            "from softorder._src.isotonic import triton_pav as T\n"
            "for args in [(T.KIND_KL, 1.0, False, True, 'fp32'), (T.KIND_PNORM, 3.0),\n"
            "             (T.KIND_MAG, 2.0, True)]:\n"
            "    k = T._compile_cuda(*args)\n"
            "    assert 'bar.sync' in k.asm['ptx'] and len(k.asm['cubin']) > 0\n"
            "print('compiled')\n"
        )
        proc = _run([sys.executable, "-c", code], {"TRITON_INTERPRET": "0"}, timeout=600)
        assert proc.returncode == 0 and "compiled" in proc.stdout, proc.stdout + proc.stderr

    def test_lazy_import_and_cpu_refusal_without_interpreter():
        # softorder and the torch backend do not import Triton for CPU work; the kernel module,
        # imported without the interpreter, refuses CPU tensors with a clear error.
        pytest.importorskip("triton")
        code = (
            "import sys, torch\n"
            "import softorder, softorder.numpy\n"
            "from softorder._src.core import registry as R\n"
            "from softorder._src.frontends.torch import backend as torch_backend\n"
            "x = torch.randn(2, 5, dtype=torch.float64)\n"
            "R.get('soft_topk_mask').rows(x, 1.0, R.TopKOptions(k=2), torch_backend.TORCH)\n"
            "assert 'triton' not in sys.modules\n"
            "assert 'softorder._src.isotonic.triton_pav' not in sys.modules\n"
            "print('lazy')\n"
            "from softorder._src.isotonic import triton_pav as T\n"
            "assert not T.is_interpreted()\n"
            "try:\n"
            "    T.pav_batch_triton(x, x, x + 1, T.KIND_L2, 1.0, 1.0, False, False)\n"
            "except RuntimeError as e:\n"
            "    assert 'TRITON_INTERPRET=1' in str(e), e\n"
            "    print('refused')\n"
        )
        proc = _run([sys.executable, "-c", code], {"TRITON_INTERPRET": "0"}, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "lazy" in out and "refused" in out, out

else:
    import torch

    from softorder._src.core import registry as R
    from softorder._src.core.backend import NUMPY
    from softorder._src.core.jacobian import apply
    from softorder._src.frontends.torch.backend import TorchBackend
    from softorder._src.isotonic import pav as P
    from softorder._src.isotonic import triton_pav as T

    TRITON = TorchBackend(pav="triton")
    NAMES = ("out", "d", "alpha", "beta", "block")
    # (kind, r): l2 (weighted), kl, p-norm r=3 (p=4/3) and r=1, magnitude r=1 and r=3, and the
    # in-kernel Newton for other r (p = 1.5 -> r = 2).
    FAST = [(P.KIND_L2, 1.0), (P.KIND_KL, 1.0), (P.KIND_PNORM, 3.0), (P.KIND_PNORM, 1.0),
            (P.KIND_MAG, 1.0), (P.KIND_MAG, 3.0)]
    NEWTON = [(P.KIND_PNORM, 2.0), (P.KIND_MAG, 2.0), (P.KIND_PNORM, 0.5)]

    def test_kernel_is_interpreted():
        assert os.environ["TRITON_INTERPRET"] == "1"
        assert T.is_interpreted()
        assert type(T._pav_kernel).__name__ == "InterpretedFunction"
        assert TorchBackend().pav_kernel_for(torch.zeros(1)) == "triton"

    def _inputs(kind, rng, m, n, ties):
        s = rng.normal(size=(m, n)) * 2.0
        if ties:
            s = np.round(s)  # many ties
        if kind == P.KIND_MAG:
            s = np.abs(s)
            w = (np.arange(n) < max(1, n // 3)).astype(float)[None].repeat(m, 0)
        elif kind == P.KIND_PNORM:
            w = -np.sort(-rng.uniform(0.0, 2.0, size=(m, n)), axis=1)
        else:
            w = -np.sort(-rng.normal(size=(m, n)), axis=1)
        cw = rng.uniform(0.5, 2.0, size=(m, n)) if kind == P.KIND_L2 else np.ones((m, n))
        return s, np.ascontiguousarray(w), cw

    def _t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    def _compare(kind, r, lam, write_v, need_beta, s, w, cw, dtype=torch.float64):
        if dtype == torch.float32:
            s, w, cw = (a.astype(np.float32).astype(np.float64) for a in (s, w, cw))
        ref = P.pav_batch(s, w, cw, kind, r, lam, write_v, need_beta)
        got = T.pav_batch_triton(*(torch.from_numpy(a).to(dtype) for a in (s, w, cw)),
                                 kind, r, lam, write_v, need_beta)
        rtol, atol = (1e-10, 1e-12) if dtype == torch.float64 else (2e-6, 2e-6)
        for name, a, b in zip(NAMES, ref, got):
            assert b.shape == a.shape, name
            if name == "block":
                assert b.dtype == torch.int32
                np.testing.assert_array_equal(b.numpy(), a, err_msg=name)
            else:
                assert b.dtype == dtype, name
                np.testing.assert_allclose(b.numpy().astype(np.float64), a, rtol=rtol,
                                           atol=atol, err_msg=f"{name} kind={kind} r={r}")
        return ref

    @pytest.mark.parametrize("kind,r", FAST)
    @pytest.mark.parametrize("ties", [False, True])
    def test_matches_numba_float64(kind, r, ties):
        rng = np.random.default_rng(10 * kind + int(r) + 100 * ties)
        s, w, cw = _inputs(kind, rng, 2, 10, ties)
        # write_v=True (v instead of u) once per kind, with ties.
        ref = _compare(kind, r, 0.7, ties, kind == P.KIND_KL, s, w, cw)
        # The test exercises pooling: some block holds more than one entry.
        assert (np.diff(ref[4], axis=1) == 0).any()

    @pytest.mark.parametrize("kind,r", FAST)
    def test_matches_numba_float32(kind, r):
        rng = np.random.default_rng(7 + kind)
        s, w, cw = _inputs(kind, rng, 2, 9, False)
        _compare(kind, r, 0.7, False, kind == P.KIND_KL, s, w, cw, dtype=torch.float32)

    @pytest.mark.parametrize("kind,r", [(P.KIND_L2, 1.0), (P.KIND_KL, 1.0), (P.KIND_MAG, 3.0),
                                        (P.KIND_PNORM, 2.0)])
    def test_rows_longer_than_the_vector_width(kind, r):
        # block_size=16 on rows of 21: the block-id cumsum, the segmented sums and the Newton
        # sums carry across chunks; row 0 is one block spanning every chunk, row 1 has more
        # than 16 blocks.
        rng = np.random.default_rng(11)
        s, w, cw = _inputs(kind, rng, 2, 21, False)
        s[0] = np.sort(np.abs(s[0]))  # increasing: everything pools
        s[1] = -np.sort(-s[1]) * 10.0  # decreasing and spread: many blocks
        ref = P.pav_batch(s, w, cw, kind, r, 0.7, False, kind == P.KIND_KL)
        got = T.pav_batch_triton(*(_t(a) for a in (s, w, cw)), kind, r, 0.7, False,
                                 kind == P.KIND_KL, block_size=16)
        assert (ref[4][0] == 0).all() and ref[4][1].max() > 16
        for name, a, b in zip(NAMES, ref, got):
            np.testing.assert_allclose(b.numpy(), a, rtol=1e-10, atol=1e-12, err_msg=name)

    @pytest.mark.parametrize("kind,r", NEWTON)
    def test_newton_for_other_exponents(kind, r):
        rng = np.random.default_rng(3)
        s, w, cw = _inputs(kind, rng, 1, 5, False)
        _compare(kind, r, 0.7, False, False, s, w, cw)

    def _inf_and_nan_rows(kind):
        inf, nan = np.inf, np.nan
        s = np.array([[inf, inf, 3.0, 1.0, 1.0, -2.0, -inf, -inf],
                      [5.0, nan, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                      [4.0, 4.0, 4.0, 1.0, 1.0, 1.0, 0.5, 0.5]])
        if kind == P.KIND_MAG:
            s = np.abs(s)
            s[0] = -np.sort(-s[0])
            w = np.array([[1.0] * 3 + [0.0] * 5] * 3)
        else:
            w = -np.sort(-np.random.default_rng(1).uniform(0.1, 2.0, size=(3, 8)), axis=1)
        return s, w, np.ones_like(s)

    @pytest.mark.parametrize("kind,r", FAST)
    def test_nan_row_stays_in_its_row(kind, r):
        s, w, cw = _inf_and_nan_rows(kind)
        s, w, cw = s[1:], w[1:], cw[1:]
        for write_v in (False, True):
            ref = _compare(kind, r, 0.5, write_v, kind == P.KIND_KL, s, w, cw)
        assert np.isnan(ref[0][0]).all() and np.isfinite(ref[0][1]).all()

    @pytest.mark.parametrize("kind,r", FAST)
    def test_infinite_entries_follow_the_numba_kernel(kind, r):
        s, w, cw = _inf_and_nan_rows(kind)
        _compare(kind, r, 0.5, False, kind == P.KIND_KL, s[:1], w[:1], cw[:1])

    @pytest.mark.parametrize("kind,r", FAST)
    def test_infinite_rows_in_a_mixed_batch_follow_the_numba_kernel(kind, r):
        # Rows with infinities (in s; in w: -inf padding of a kl/p-norm sort; in cw: an
        # infinite sample weight) next to a NaN row and finite rows, float64 and float32,
        # v and u, with beta: every row and every output is the Numba kernel's.
        s, w, cw = _inf_and_nan_rows(kind)
        if kind != P.KIND_MAG:
            s = np.concatenate([s, -np.sort(-np.abs(s[2:]), axis=1)])
            w = np.concatenate([w, np.where(np.arange(8) > 5, -np.inf, w[2:])])
            cw = np.concatenate([cw, cw[2:]])
        if kind == P.KIND_L2:
            cw[2, 3] = np.inf
        for write_v in (False, True):
            _compare(kind, r, 0.5, write_v, kind == P.KIND_KL, s, w, cw)
        _compare(kind, r, 0.5, False, False, s, w, cw, dtype=torch.float32)

    @pytest.mark.parametrize("kind,r", FAST)
    def test_single_entry_and_empty(kind, r):
        one = np.array([[2.0], [-1.0]])
        if kind == P.KIND_MAG:
            one = np.abs(one)
        _compare(kind, r, 0.5, False, kind == P.KIND_KL, one, np.ones_like(one) * 0.5,
                 np.ones_like(one))
        for shape in ((0, 4), (3, 0)):
            z = torch.zeros(shape, dtype=torch.float64)
            outs = T.pav_batch_triton(z, z, z, kind, r, 1.0, False, True)
            assert all(o.shape == shape for o in outs)

    def test_backend_widens_half_precision_for_the_kernel():
        rng = np.random.default_rng(12)
        s = -np.sort(-rng.normal(size=(2, 6)), axis=1)
        w = np.broadcast_to(np.arange(6.0, 0.0, -1.0), s.shape)
        for dt in (torch.float16, torch.bfloat16):
            sh = _t(s).to(dt)
            out = TRITON.pav(sh, _t(w).to(dt), torch.ones_like(sh), P.KIND_L2, 1.0, 1.0, False,
                             False)
            ref = P.pav_batch(sh.double().numpy(), np.ascontiguousarray(w), np.ones_like(s),
                              P.KIND_L2, 1.0, 1.0, False, False)
            assert out[0].dtype == dt and out[4].dtype == torch.int32
            np.testing.assert_array_equal(out[4].numpy(), ref[4])
            np.testing.assert_allclose(out[0].double().numpy(), ref[0], rtol=1e-2, atol=1e-2)

    # End to end: the operators with PAV on the Triton kernel give the NumPy core's numbers.
    def _rows(name, **options):
        op, opts = R.get(name), R.get(name).options(**options)
        return lambda xp, a: op.rows(a, 0.5, opts, xp)

    OPS = [
        ("rank_l2", _rows("soft_rank")),
        ("rank_kl_desc", _rows("soft_rank", descending=True, regularization="kl")),
        ("sort_kl", _rows("soft_sort", regularization="kl")),
        ("sort_pnorm", _rows("soft_sort", descending=True, regularization="pnorm")),
        ("topk_mask", _rows("soft_topk_mask", k=3)),
        ("topk_magnitude", _rows("soft_topk_magnitude", k=3)),
    ]

    @pytest.mark.parametrize("name,fn", OPS, ids=[o[0] for o in OPS])
    def test_operators_through_triton(name, fn):
        rng = np.random.default_rng(5)
        x = rng.normal(size=(3, 8))
        x[2, 4] = np.nan
        u, v = rng.normal(size=x.shape), rng.normal(size=x.shape)
        y0, j0 = fn(NUMPY, x)
        y1, j1 = fn(TRITON, torch.from_numpy(x))
        np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(apply(j1, torch.from_numpy(u), xp=TRITON).numpy(),
                                   apply(j0, u), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(apply(j1, torch.from_numpy(v), transpose=True,
                                         xp=TRITON).numpy(),
                                   apply(j0, v, transpose=True), rtol=1e-9, atol=1e-11)
        assert np.isnan(y1[2].numpy()).all() and np.isfinite(y1[:2].numpy()).all()
