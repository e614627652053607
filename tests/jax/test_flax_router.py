"""softorder.flax.SparseTopKRouter: the torch module's numbers (values, indices, load, aux loss
and the gradient in the router's weights) for the same weights, both modes and backends; jit."""

import _jax_cases  # noqa: F401  (x64)
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import softorder.flax as sf
import softorder.torch as st


def _pair(mode, k=2, d=5, e=6, bias=True, **kw):
    tr = st.SparseTopKRouter(d, e, k, mode=mode, bias=bias, **kw).double()
    fr = sf.SparseTopKRouter(d, e, k, mode=mode, bias=bias, rngs=nnx.Rngs(0),
                             param_dtype=jnp.float64, **kw)
    rng = np.random.default_rng(3)
    w = rng.normal(size=(e, d)) / np.sqrt(d)
    b = rng.normal(size=e) * 0.1
    with torch.no_grad():
        tr.linear.weight.copy_(torch.from_numpy(w))
        tr.linear.bias.copy_(torch.from_numpy(b))
    fr.linear.kernel[...] = jnp.asarray(w.T)
    fr.linear.bias[...] = jnp.asarray(b)
    return tr, fr


@pytest.mark.parametrize("mode, p, strength, backend", [
    ("token_choice", 4 / 3, 0.5, "callback"), ("token_choice", 2.0, 1.0, "jax"),
    ("expert_choice", 4 / 3, 0.3, "jax"), ("expert_choice", 2.0, 2.0, "callback")])
def test_flax_router_equals_the_torch_router(mode, p, strength, backend):
    kw = dict(p=p, regularization_strength=strength, load_balancing_weight=0.01,
              capacity_factor=1.5)
    tr, fr = _pair(mode, **kw)
    fr.backend = backend
    x = np.random.default_rng(4).normal(size=(3, 7, 5))
    t = tr(torch.from_numpy(x))
    f = fr(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(f.gates), t.gates.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_array_equal(np.asarray(f.expert_indices), t.expert_indices.numpy())
    np.testing.assert_array_equal(np.asarray(f.load), t.load.numpy())
    np.testing.assert_allclose(float(f.aux_loss), t.aux_loss.item(), rtol=1e-12)
    assert (np.asarray(f.gates) != 0).sum() < f.gates.size  # sparse, not a trivial match

    # the gradient in the router's weights (a random linear functional of the gates)
    c = np.random.default_rng(5).normal(size=(3, 7, 6))
    (t.gates * torch.from_numpy(c)).sum().add(t.aux_loss).backward()

    def loss(model):
        out = model(jnp.asarray(x))
        return (out.gates * c).sum() + out.aux_loss

    grads = nnx.grad(loss)(fr)
    np.testing.assert_allclose(np.asarray(grads.linear.kernel[...]),
                               tr.linear.weight.grad.numpy().T, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(np.asarray(grads.linear.bias[...]), tr.linear.bias.grad.numpy(),
                               rtol=1e-8, atol=1e-11)


def test_flax_router_under_jit_and_small_strength_is_the_hard_router():
    _, fr = _pair("token_choice", regularization_strength=1e-8)
    x = jnp.asarray(np.random.default_rng(6).normal(size=(20, 5)))
    out = nnx.jit(lambda m, x: m(x))(fr, x)
    probs = jax.nn.softmax(fr.linear(x), axis=-1)
    vals, idx = jax.lax.top_k(probs, 2)
    hard = jnp.zeros_like(probs).at[jnp.arange(20)[:, None], idx].set(vals)
    np.testing.assert_allclose(np.asarray(out.gates), np.asarray(hard), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(out.expert_indices), np.asarray(idx))
    assert float(out.aux_loss) == 0.0 and out.aux_loss.shape == ()


def test_flax_router_errors_match_torch():
    with pytest.raises(ValueError, match="k must be an integer in 1..n_experts=4"):
        sf.SparseTopKRouter(3, 4, 5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"x must have shape \[..., d_model=3\]"):
        sf.SparseTopKRouter(3, 4, 1, rngs=nnx.Rngs(0))(jnp.zeros((2, 4)))
