"""Framework transforms through the losses: torch gradcheck (float64), torch.func.grad and
torch.compile; jax.jit, vmap and check_grads; a learned (tensor) strength."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

RNG = np.random.default_rng(11)
X = RNG.normal(size=(3, 6))
Y = RNG.normal(size=(3, 6))
LABELS = np.array([1, 4, 0])


def test_torch_gradcheck_in_float64():
    torch = pytest.importorskip("torch")
    import softorder.torch as st

    x = torch.tensor(X, requires_grad=True)
    y = torch.tensor(Y)
    lab = torch.tensor(LABELS)
    fns = [
        lambda v: st.soft_spearman_loss(v, y, regularization_strength=0.6),
        lambda v: st.topk_classification_loss(v, lab, 2, regularization_strength=0.6),
        lambda v: st.soft_least_trimmed_squares(v, 2, regularization_strength=0.8),
        lambda v: st.soft_quantile(v, 0.3, regularization_strength=0.8),
        lambda v: st.soft_ndcg(v, y.abs(), 3, regularization_strength=0.6),
    ]
    for f in fns:
        assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_torch_func_grad_and_a_learned_strength():
    torch = pytest.importorskip("torch")
    import softorder.torch as st

    x, y = torch.tensor(X), torch.tensor(Y)
    g = torch.func.grad(lambda v: st.soft_spearman_loss(v, y, regularization_strength=0.6))(x)
    xr = x.clone().requires_grad_()
    st.soft_spearman_loss(xr, y, regularization_strength=0.6).backward()
    assert_allclose(g.numpy(), xr.grad.numpy(), rtol=1e-12)
    # the strength as a tensor gets a gradient (finite differences in the strength)
    s = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    loss = st.soft_least_trimmed_squares(x, 2, regularization_strength=s)
    (gs,) = torch.autograd.grad(loss, s)
    h = 1e-6
    fd = (st.soft_least_trimmed_squares(x, 2, regularization_strength=0.8 + h)
          - st.soft_least_trimmed_squares(x, 2, regularization_strength=0.8 - h)) / (2 * h)
    assert_allclose(float(gs), float(fd), rtol=1e-5)


def test_torch_compile_gives_the_eager_values_and_gradients():
    torch = pytest.importorskip("torch")
    import softorder.torch as st

    def loss(v, y, lab):
        return (st.soft_spearman_loss(v, y, regularization_strength=0.6)
                + st.topk_classification_loss(v, lab, 2, regularization_strength=0.6)
                + st.soft_least_trimmed_squares(v, 1, regularization_strength=0.8))

    y, lab = torch.tensor(Y), torch.tensor(LABELS)
    xe = torch.tensor(X, requires_grad=True)
    le = loss(xe, y, lab)
    le.backward()
    xc = torch.tensor(X, requires_grad=True)
    lc = torch.compile(loss, backend="eager", fullgraph=False)(xc, y, lab)
    lc.backward()
    assert_allclose(lc.item(), le.item(), rtol=1e-12)
    assert_allclose(xc.grad.numpy(), xe.grad.numpy(), rtol=1e-12)


def test_jax_jit_vmap_and_check_grads():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.test_util import check_grads

    import softorder.jax as sj

    x, y, lab = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(LABELS)
    mask = jnp.asarray(RNG.uniform(size=X.shape) > 0.2)

    def f(v, m):
        return (sj.soft_spearman_loss(v, y, regularization_strength=0.6, mask=m)
                + sj.topk_classification_loss(v, lab, 2, regularization_strength=0.6)
                + sj.soft_least_trimmed_squares(v, 1, regularization_strength=0.8, mask=m)
                + sj.soft_auc(v, y > 0, regularization_strength=0.6).sum())

    eager = f(x, mask)
    assert_allclose(jax.jit(f)(x, mask), eager, rtol=1e-12)
    assert_allclose(jax.jit(jax.grad(f))(x, mask), jax.grad(f)(x, mask), rtol=1e-10)
    check_grads(lambda v: f(v, mask), (x,), order=1, modes=("rev", "fwd"), eps=1e-6)
    # vmap over a leading axis equals the batched call
    per_row = jax.vmap(lambda v, w: sj.soft_spearmanr(v, w, regularization_strength=0.6))(x, y)
    assert_allclose(per_row, sj.soft_spearmanr(x, y, regularization_strength=0.6), rtol=1e-12)
    # a traced strength
    g = jax.jit(jax.grad(lambda s: sj.soft_median(x, regularization_strength=s).sum()))(0.8)
    h = 1e-6
    fd = (sj.soft_median(x, regularization_strength=0.8 + h).sum()
          - sj.soft_median(x, regularization_strength=0.8 - h).sum()) / (2 * h)
    assert_allclose(g, fd, rtol=1e-5)
