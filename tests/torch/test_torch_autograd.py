"""Derivatives: gradcheck (reverse and forward mode) against finite differences in float64,
JVP/VJP adjointness, every torch.func transform against the reference Jacobian, vmap against a
loop, and the second-order policy (exact where the Hessian is 0 a.e., a clear error elsewhere)."""

import numpy as np
import pytest
import torch
from _torch_cases import CASES, IDS, exact_second_order, numpy_fwd, spread, torch_fn
from numpy.testing import assert_allclose
from torch.func import grad, jacfwd, jacrev, jvp, vjp, vmap

import softorder.numpy as snp
import softorder.torch as st


def _point(seed, shape=(2, 6)):
    return torch.tensor(spread(np.random.default_rng(seed), shape) * 3.0)


@pytest.mark.parametrize("cid,op,args,kw", CASES, ids=IDS)
def test_gradcheck_reverse_and_forward_mode_in_float64(cid, op, args, kw):
    f = torch_fn(op, args, kw)
    x = _point(len(cid)).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: f(z, dim=0), x, check_forward_ad=True,
                                    check_batched_grad=False, atol=1e-7, rtol=1e-6)



@pytest.mark.parametrize("cid,op,args,kw", CASES[1::3], ids=IDS[1::3])
def test_torch_func_transforms_match_the_numpy_jacobian(cid, op, args, kw):
    x = _point(9, (5,))
    xn = x.numpy()
    _, res = numpy_fwd(op, args, kw)(xn)
    eye = np.eye(xn.size)
    J = np.stack([snp.jvp(res, e) for e in eye], axis=1)  # J[:, j] = J e_j
    f = torch_fn(op, args, kw)
    assert_allclose(jacrev(f)(x).numpy(), J, rtol=1e-12, atol=1e-12)
    assert_allclose(jacfwd(f)(x).numpy(), J, rtol=1e-12, atol=1e-12)
    assert_allclose(torch.autograd.functional.jacobian(f, x).numpy(), J, rtol=1e-12,
                    atol=1e-12)
    c = np.arange(1.0, xn.size + 1)
    assert_allclose(grad(lambda z: (f(z) * torch.tensor(c)).sum())(x).numpy(), c @ J,
                    rtol=1e-12, atol=1e-12)
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        out = f(fwAD.make_dual(x, torch.tensor(c)))
        assert_allclose(fwAD.unpack_dual(out).tangent.numpy(), J @ c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cid,op,args,kw", CASES[::3], ids=IDS[::3])
def test_vmap_and_vmapped_gradients_equal_a_loop(cid, op, args, kw):
    f = torch_fn(op, args, kw)
    xs = torch.tensor(np.random.default_rng(10).normal(size=(4, 3, 6)))

    def loss(z):
        return (f(z) ** 2).sum()

    # PAV is exact row by row; Dykstra's stopping test looks at the whole batch (to its tol).
    tol = 1e-7 if kw.get("solver") == "dykstra" else 1e-13
    close = lambda a, b: torch.allclose(a, b, rtol=tol, atol=tol)
    assert close(vmap(f)(xs), torch.stack([f(z) for z in xs]))
    assert close(vmap(f, in_dims=1)(xs), torch.stack([f(xs[:, i]) for i in range(3)]))
    assert close(vmap(grad(loss))(xs), torch.stack([grad(loss)(z) for z in xs]))
    # vmap of a vmap, and vmap of forward mode.
    assert close(vmap(vmap(f))(xs), f(xs))
    t = torch.ones_like(xs)
    assert close(vmap(lambda z, u: jvp(f, (z,), (u,))[1])(xs, t),
                 torch.stack([jvp(f, (z,), (u,))[1] for z, u in zip(xs, t)]))


@pytest.mark.parametrize("cid,op,args,kw", CASES, ids=IDS)
def test_second_order_is_exact_or_refused(cid, op, args, kw):
    f = torch_fn(op, args, kw)
    x = _point(11, (6,))

    def g(z):
        return (f(z) ** 3).sum()

    if exact_second_order(op, kw):
        # f is piecewise linear: the Hessian of sum f^3 is 6 J^T diag(f) J.
        J = jacrev(f)(x)
        ref = 6.0 * J.T @ (f(x)[:, None] * J)
        for hess in (torch.func.hessian(g), jacrev(jacrev(g)), jacrev(jacfwd(g))):
            assert torch.allclose(hess(x), ref, rtol=1e-10, atol=1e-10)
        assert torch.autograd.gradgradcheck(f, x.clone().requires_grad_())
    else:
        for hess in (torch.func.hessian(g), jacrev(jacrev(g)), jacrev(jacfwd(g))):
            with pytest.raises(NotImplementedError, match="second-order"):
                hess(x)
        xr = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(g(xr), xr, create_graph=True)
        with pytest.raises(NotImplementedError, match="second-order"):
            torch.autograd.grad(gx.sum(), xr)


def test_differentiating_the_vjp_in_its_cotangent_is_exact_for_every_regularizer():
    # u -> J^T u is linear: its derivatives are J^T and J, for kl too (x held fixed).
    x = _point(12, (6,))
    f = lambda z: st.soft_rank(z, regularization="kl")
    J = jacrev(f)(x)
    _, pullback = vjp(f, x)
    u = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    assert torch.allclose(jacrev(lambda w: pullback(w)[0])(u), J.T, rtol=1e-12, atol=1e-12)
    assert torch.allclose(jacfwd(lambda w: pullback(w)[0])(u), J.T, rtol=1e-12, atol=1e-12)
    # torch.autograd.functional.jvp computes J v by the double-backward trick (in u).
    _, jv = torch.autograd.functional.jvp(f, x, u)
    assert torch.allclose(jv, J @ u, rtol=1e-12, atol=1e-12)


def test_isotonic_regression_derivatives_of_every_order():
    rng = np.random.default_rng(13)
    y = torch.tensor(rng.normal(size=(2, 7)), requires_grad=True)
    w = torch.tensor(rng.uniform(0.5, 2.0, size=(2, 7)), requires_grad=True)
    f = lambda a, b: st.isotonic_regression(a, sample_weight=b, y_min=-0.4, y_max=0.8)
    assert torch.autograd.gradcheck(f, (y, w), check_forward_ad=True, check_batched_grad=False)
    assert torch.autograd.gradgradcheck(f, (y, w))
    ys = y.detach()
    assert torch.allclose(vmap(lambda a: st.isotonic_regression(a))(ys),
                          torch.stack([st.isotonic_regression(a) for a in ys]))


def test_kernel_choosing_options_given_as_tensors_are_refused_naming_the_cast():
    # The strength may be a tensor (test_torch_strength.py); k, p, tol, max_iter choose the
    # kernel and stay Python numbers.
    x = torch.randn(5)
    with pytest.raises(TypeError, match=r"^k must be a Python number.*Pass int\(\.\.\.\)") as e:
        st.soft_topk_mask(x, torch.tensor(2))
    assert "float(" not in str(e.value)
    with pytest.raises(TypeError, match=r"^k must be a Python number.*Pass int\(\.\.\.\)"):
        st.hard_topk_mask(x, torch.tensor(2))
    with pytest.raises(TypeError, match=r"^max_iter must be a Python number.*Pass int"):
        st.soft_topk_mask(x, 2, max_iter=torch.tensor(5))
    with pytest.raises(TypeError, match=r"^p must be a Python number.*Pass float\(\.\.\.\)"):
        st.soft_rank(x, regularization="pnorm", p=torch.tensor(1.5))
    with pytest.raises(TypeError, match=r"^tol must be a Python number.*Pass float"):
        st.soft_topk_mask(x, 2, tol=torch.tensor(1e-9))


def test_isotonic_gradients_equal_the_numpy_registry_operator_in_both_inputs():
    from softorder._src.core.isotonic_api import isotonic_regression_fwd

    rng = np.random.default_rng(14)
    y = rng.normal(size=(7, 3))
    w = rng.uniform(0.5, 2.0, size=y.shape)
    g = rng.normal(size=y.shape)
    v0, res, block0 = isotonic_regression_fwd(y, sample_weight=w, y_min=-0.4, y_max=0.8,
                                              increasing=False, axis=0)
    yb0, wb0 = snp.vjp(res, g)
    yt = torch.tensor(y, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    out = st.isotonic_regression(yt, sample_weight=wt, y_min=-0.4, y_max=0.8, increasing=False,
                                 dim=0, return_blocks=True)
    yb, wb = torch.autograd.grad(out.solution, (yt, wt), torch.tensor(g))
    assert_allclose(out.solution.detach().numpy(), v0, rtol=1e-13, atol=1e-13)
    assert np.array_equal(out.block.numpy(), block0)
    assert_allclose(yb.numpy(), yb0, rtol=1e-12, atol=1e-12)
    assert_allclose(wb.numpy(), wb0, rtol=1e-12, atol=1e-12)
