"""The CUDA path of softorder.torch (torch sort + the Triton PAV kernel + torch JVP/VJP maps,
Dykstra in torch), run on CPU under ``TRITON_INTERPRET=1``, against the NumPy core.

The interpreter must be on before the kernel is decorated and must not leak into other tests,
so the outer test reruns this file in a fresh pytest process with ``TRITON_INTERPRET=1`` and
``SOFTORDER_TORCH_TRITON_INNER=1``; the inner run first checks that the path really is Triton's.
Inputs are tiny: the interpreter runs the kernel's Python per element.
"""

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

INNER = os.environ.get("SOFTORDER_TORCH_TRITON_INNER") == "1"

if not INNER:

    def test_cuda_path_under_the_triton_interpreter():
        pytest.importorskip("triton")
        env = dict(os.environ, TRITON_INTERPRET="1", SOFTORDER_TORCH_TRITON_INNER="1")
        with tempfile.TemporaryDirectory() as cache:
            env["TRITON_CACHE_DIR"] = cache
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                 "-p", "no:logging", "-W", "ignore::RuntimeWarning", __file__],
                env=env, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        passed = re.search(r"(\d+) passed", out)
        assert passed and int(passed.group(1)) >= 10, out
        assert "skipped" not in out, out

else:
    import torch
    from numpy.testing import assert_allclose

    import softorder.isotonic as siso
    import softorder.numpy as snp
    import softorder.torch as st
    from softorder._src.frontends.torch import frontend as F

    CASES = [
        ("soft_rank", (), dict(regularization="l2", regularization_strength=0.7)),
        ("soft_rank", (), dict(regularization="kl", descending=True)),
        ("soft_sort", (), dict(regularization="kl")),
        ("soft_sort", (), dict(regularization="pnorm", p=1.5, descending=True)),
        ("soft_topk_mask", (2,), dict(regularization_strength=0.5)),
        ("soft_topk_mask", (2,), dict(p=2.0, solver="dykstra", tol=1e-12, max_iter=5000)),
        ("soft_topk_magnitude", (2,), dict(regularization_strength=0.4)),
    ]

    def test_the_path_is_triton_interpreted():
        x = torch.zeros(2, 3)
        assert F._device_path(x)
        st.soft_rank(x)
        from softorder._src.isotonic import triton_pav

        assert triton_pav.is_interpreted()

    @pytest.mark.parametrize("name,args,kw", CASES)
    def test_values_vjp_and_jvp_equal_the_numpy_core(name, args, kw):
        rng = np.random.default_rng(len(name) + len(kw))
        x = rng.normal(size=(2, 6))
        g = rng.normal(size=x.shape)
        y0, res = getattr(snp, name + "_fwd")(x, *args, **kw)
        f = lambda z: getattr(st, name)(z, *args, **kw)
        xt = torch.tensor(x, requires_grad=True)
        y = f(xt)
        (gx,) = torch.autograd.grad(y, xt, torch.tensor(g))
        _, ydot = torch.func.jvp(f, (torch.tensor(x),), (torch.tensor(g),))
        tol = 1e-8 if kw.get("solver") == "dykstra" else 1e-11
        assert_allclose(y.detach().numpy(), y0, rtol=tol, atol=tol)
        assert_allclose(gx.numpy(), snp.vjp(res, g), rtol=tol, atol=tol)
        assert_allclose(ydot.numpy(), snp.jvp(res, g), rtol=tol, atol=tol)

    def test_float32_and_isotonic_regression():
        rng = np.random.default_rng(3)
        x = rng.normal(size=(2, 5)).astype(np.float32)
        y = st.soft_rank(torch.tensor(x), regularization="kl")
        assert y.dtype == torch.float32
        assert_allclose(y.numpy(), snp.soft_rank(x, regularization="kl"), rtol=1e-5, atol=1e-5)
        w = rng.uniform(0.5, 2.0, size=x.shape)
        got = st.isotonic_regression(torch.tensor(x, dtype=torch.float64),
                                     sample_weight=torch.tensor(w))
        assert_allclose(got.numpy(), siso.isotonic_regression(x.astype(np.float64),
                                                              sample_weight=w), rtol=1e-12)

    def test_nan_row_empty_batch_vmap_and_dim_on_the_device_path():
        x = torch.tensor([[0.3, -1.0, 2.0, 0.5], [1.0, float("nan"), 0.0, 2.0]],
                         dtype=torch.float64)
        y = st.soft_rank(x, regularization="kl")
        assert torch.isnan(y[1]).all() and torch.isfinite(y[0]).all()
        assert torch.equal(y[0], st.soft_rank(x[:1], regularization="kl")[0])
        e = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
        st.soft_topk_mask(e, 2).sum().backward()
        assert e.grad.shape == (0, 4)
        xs = torch.tensor(np.random.default_rng(5).normal(size=(2, 3, 4)))
        f = lambda z: st.soft_sort(z, dim=0, regularization="l2", regularization_strength=0.5)
        assert torch.allclose(torch.func.vmap(f)(xs), torch.stack([f(z) for z in xs]))
        assert_allclose(f(xs[0]).numpy(), snp.soft_sort(xs[0].numpy(), axis=0,
                                                        regularization_strength=0.5),
                        rtol=1e-12, atol=1e-12)
