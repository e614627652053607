"""Process-global JAX settings, each in a fresh interpreter: two CPU devices (sharding, via
XLA_FLAGS) and the default float32 mode (jax_enable_x64 off)."""

import os
import subprocess
import sys
import textwrap

_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def _run(code, **env):
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join([os.path.abspath(_SRC), full.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.strip().endswith("OK"), res.stdout[-3000:]


SHARDING = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import softorder.jax as sj
import softorder.numpy as snp

assert len(jax.devices()) == 2, jax.devices()
mesh = Mesh(np.array(jax.devices()), ("batch",))
rng = np.random.default_rng(0)
x = rng.normal(size=(8, 16))
w = rng.normal(size=x.shape)
y0, res = snp.soft_rank_fwd(x, regularization="kl", regularization_strength=0.5)
ref_val, ref_grad = float(np.sum(y0 * w)), snp.vjp(res, w)

for backend in ("callback", "jax"):
    op = lambda v: sj.soft_rank(v, regularization="kl", regularization_strength=0.5,
                                backend=backend)
    loss = lambda v: jnp.sum(op(v) * w)
    single = jax.jit(jax.value_and_grad(loss))(jnp.asarray(x))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch", None)))
    assert len(xs.sharding.device_set) == 2
    sharded = jax.jit(jax.value_and_grad(loss))(xs)
    per_shard = jax.shard_map(op, mesh=mesh, in_specs=P("batch", None),
                              out_specs=P("batch", None))
    smap = jax.jit(jax.value_and_grad(lambda v: jnp.sum(per_shard(v) * w)))(xs)
    for val, grad in (single, sharded, smap):
        np.testing.assert_allclose(float(val), ref_val, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-10, atol=1e-12)
    assert len(smap[1].sharding.device_set) == 2
print("OK")
"""


def test_sharded_batch_over_two_devices_matches_single_device_values_and_gradients():
    _run(SHARDING, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_ENABLE_X64="0")


EXPLICIT_AND_AUTO_MESHES = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import softorder.jax as sj

assert len(jax.devices()) == 2, jax.devices()
rng = np.random.default_rng(0)
x = rng.normal(size=(6, 16))
w = rng.normal(size=x.shape)
t = rng.normal(size=x.shape)
OPS = {
    "soft_rank": lambda v, b: sj.soft_rank(v, regularization="kl", regularization_strength=0.5, backend=b),
    "soft_sort": lambda v, b: sj.soft_sort(v, regularization="pnorm", backend=b),
    "soft_topk_mask": lambda v, b: sj.soft_topk_mask(v, 3, regularization_strength=0.3, backend=b),
    "soft_topk_magnitude": lambda v, b: sj.soft_topk_magnitude(v, 3, p=2.0, backend=b),
}
for kind in (AxisType.Explicit, AxisType.Auto):
    mesh = jax.make_mesh((2,), ("b",), axis_types=(kind,))
    xs = jax.device_put(x, NamedSharding(mesh, P("b", None)))
    ts = jax.device_put(t, NamedSharding(mesh, P("b", None)))
    for backend in ("callback", "jax"):
        for name, op in OPS.items():
            f = lambda v: op(v, backend)
            loss = lambda v: jnp.sum(f(v) * w)
            run = jax.jit(lambda v, u: (f(v), jax.grad(loss)(v), jax.jvp(f, (v,), (u,))[1]))
            ref = run(jnp.asarray(x), jnp.asarray(t))
            got = run(xs, ts)
            for r, g, what in zip(ref, got, ("value", "grad", "jvp")):
                np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-12, atol=1e-12,
                                           err_msg=f"{kind} {backend} {name} {what}")
                assert g.sharding == xs.sharding, (kind, backend, name, what, g.sharding)
print("OK")
"""


def test_each_device_computes_its_own_rows_under_explicit_and_auto_meshes():
    # value, grad and jvp of a batch sharded P("b", None) equal the single-device results,
    # and the output, gradient and tangent keep the input's sharding (no gather to device 0)
    _run(EXPLICIT_AND_AUTO_MESHES, XLA_FLAGS="--xla_force_host_platform_device_count=2",
         JAX_ENABLE_X64="0")


NO_X64 = """
import sys
import jax
import jax.numpy as jnp
import numpy as np
assert not jax.config.jax_enable_x64
import softorder.jax as sj
import softorder.numpy as snp
# framework-pure: the JAX front end loads neither TensorFlow nor torch nor Triton
assert not {"tensorflow", "torch", "triton"} & set(sys.modules), sorted(sys.modules)

rng = np.random.default_rng(0)
x = rng.normal(size=(4, 9)).astype(np.float32)
u = rng.normal(size=x.shape)
tol = {jnp.float16: 2e-2, jnp.bfloat16: 8e-2, jnp.float32: 2e-5}
for backend, reg in (("callback", "kl"), ("jax", "kl"), ("jax", "pnorm")):
    for dt in (jnp.float16, jnp.bfloat16, jnp.float32):
        xd = jnp.asarray(x).astype(dt)
        x64 = np.asarray(xd.astype(jnp.float32), np.float64)
        f = lambda v: sj.soft_rank(v, regularization=reg, backend=backend)
        y, vjp = jax.vjp(f, xd)
        (g,) = vjp(jnp.asarray(u).astype(dt))
        assert y.dtype == dt and g.dtype == dt, (y.dtype, g.dtype)
        y0, res = snp.soft_rank_fwd(x64, regularization=reg)
        g0 = snp.vjp(res, np.asarray(jnp.asarray(u).astype(dt).astype(jnp.float32)))
        np.testing.assert_allclose(np.asarray(y, np.float32), y0, rtol=tol[dt], atol=tol[dt] * 9)
        np.testing.assert_allclose(np.asarray(g, np.float32), g0, rtol=tol[dt], atol=tol[dt] * 9)
# NumPy float64 input without x64: computed, returned as float32 (JAX's canonical dtype)
y = sj.soft_sort(np.array([5.0, 1.0, 2.0]))
assert y.dtype == jnp.float32
np.testing.assert_allclose(np.asarray(y), [5 / 3, 8 / 3, 11 / 3], rtol=1e-6)
# integer and boolean arrays become JAX's default float (float32 without x64), eager and jit
for a in (jnp.arange(5)[::-1], jnp.arange(5) % 2 == 0):
    for f in (sj.soft_rank, jax.jit(sj.soft_rank)):
        got = f(a, regularization_strength=0.5)
        assert got.dtype == jnp.float32 == jnp.mean(a).dtype, got.dtype
        np.testing.assert_array_equal(got, sj.soft_rank(a.astype(jnp.float32),
                                                        regularization_strength=0.5))
print("OK")
"""


def test_without_x64_every_dtype_is_kept_and_matches_float64_reference_and_no_other_framework():
    _run(NO_X64, JAX_ENABLE_X64="0")
