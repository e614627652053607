"""Partial-sort top-k (`core.partial`): the same values and derivatives as the full sort.

Each test runs the registry's row function twice, with ``partial=True`` (the window of the
largest entries, certified by the PAV block of position ``k - 1``) and ``partial=False`` (the
full sort), and compares values, ``J t``, ``J^T t`` and the strength tangent in float64 to
~1e-12. A spy on the full-sort core records the widths it solved, so each test also asserts
which path ran (a window, a larger window, or the whole row).
"""

from __future__ import annotations

import numpy as np
import pytest

from softorder._src.core import partial as P
from softorder._src.core import registry as R
from softorder._src.core.backend import NUMPY, NUMPY_WINDOWS
from softorder._src.core.jacobian import apply

OPS = ("soft_topk_mask", "soft_topk_magnitude")
PS = (2.0, 4 / 3, 1.7, 3.0)  # p = 2, the default 4/3, a general p < 2 and one > 2
TOL = dict(rtol=1e-12, atol=1e-12)


class _Seen(list):
    def __init__(self):
        super().__init__()
        self.shapes = []


@pytest.fixture
def widths(monkeypatch):
    """The row widths the full-sort cores are called with (``widths.shapes``: the shapes)."""
    seen = _Seen()
    for name in ("_topk_mask_core", "_topk_magnitude_core"):
        core = getattr(R, name)

        def spy(x, strength, o, xp, core=core):
            seen.append(x.shape[-1])
            seen.shapes.append(tuple(x.shape))
            return core(x, strength, o, xp)

        monkeypatch.setattr(R, name, spy)
    return seen


def _opts(op, x, k, p, partial, **kw):
    return op.make_options(shape=x.shape, k=k, p=p, partial=partial, **kw)


def _compare(name, x, k, p, strength, xp=NUMPY, conv=np.asarray, exclude=None, **kw):
    """Assert partial == full (values, JVP, VJP, strength tangent); return the partial output.

    ``exclude``: entries tied far below the support (e.g. ``-inf`` padding): the partial
    Jacobian must be 0 there (`test_ties_outside_the_support_have_a_zero_derivative` checks
    the full sort's too), the rest must agree."""
    op = R.get(name)
    rng = np.random.default_rng(0)
    t = rng.normal(size=x.shape)
    keep = np.ones(x.shape, bool) if exclude is None else ~exclude
    t = np.where(keep, t, 0.0)
    xs = conv(x)
    ts = conv(t)
    yf, jf = op.rows(xs, strength, _opts(op, x, k, p, False, **kw), xp)
    yp, jp = op.rows(xs, strength, _opts(op, x, k, p, True, **kw), xp)
    np.testing.assert_allclose(np.asarray(yp), np.asarray(yf), **TOL)
    for transpose in (False, True):
        got = np.asarray(apply(jp, ts, transpose=transpose, xp=xp))
        np.testing.assert_allclose(got[keep], np.asarray(
            apply(jf, ts, transpose=transpose, xp=xp))[keep], equal_nan=True, **TOL)
        np.testing.assert_array_equal(got[~keep], 0.0)
    if not kw.get("straight_through"):
        o = _opts(op, x, k, p, True)
        np.testing.assert_allclose(
            np.asarray(op.strength_tangent(xs, yp, jp, strength, o, xp)),
            np.asarray(op.strength_tangent(xs, yf, jf, strength, o, xp)), equal_nan=True, **TOL)
    if xp is NUMPY:
        _compare_windows(op, x, t, keep, k, p, strength, yf, jf, **kw)
    return np.asarray(yp), jp


def _compare_windows(op, x, t, keep, k, p, strength, yf, jf, **kw):
    """The window residuals (`NumpyWindowBackend`, what the NumPy API and torch's eager CPU
    path run) against the full sort: values, JVP, VJP, strength tangent."""
    yw, jw = op.rows(x, strength, _opts(op, x, k, p, True, **kw), NUMPY_WINDOWS)
    np.testing.assert_allclose(yw, yf, **TOL)
    assert yw.dtype == x.dtype
    for transpose in (False, True):
        got = apply(jw, t, transpose=transpose)
        assert got.shape == x.shape
        np.testing.assert_allclose(got[keep], apply(jf, t, transpose=transpose)[keep],
                                   equal_nan=True, **TOL)
        np.testing.assert_array_equal(got[~keep], 0.0)
    if not kw.get("straight_through"):
        o = _opts(op, x, k, p, True)
        # (Excluded entries, e.g. -inf far below the support: the full sort's J x is
        # -inf + inf = NaN there; their output is 0 at every strength, and so is this.)
        ts = op.strength_tangent(x, yw, jw, strength, o, NUMPY_WINDOWS)
        np.testing.assert_allclose(ts[keep], op.strength_tangent(x, yf, jf, strength, o)[keep],
                                   equal_nan=True, **TOL)
        np.testing.assert_array_equal(ts[~keep], 0.0)
    return yw, jw


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("k", (0, 1, 2, 8))
def test_partial_equals_full_sort_on_random_rows(name, p, k, widths):
    x = np.random.default_rng(k).normal(size=(4, 5000))
    y, jac = _compare(name, x, k, p, 0.05)
    assert min(widths) < 5000  # the windows ran
    assert np.count_nonzero(y, axis=-1).max() <= 64  # sparse: the support fits the window
    # The Jacobian rows outside the support are exactly zero.
    g = apply(jac, np.ones_like(x), transpose=True)
    assert np.all(g[y == 0] == 0)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", PS)
def test_a_support_wider_than_the_window_enlarges_it_only_for_its_row(name, p, widths):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5000))
    x[1, :300] = 10.0 + rng.uniform(0.0, 1e-3, 300)  # 300 near-ties at the top: all in
    _compare(name, x, 4, p, 0.3)
    m0 = P.first_window(4, 5000)
    # partial=True first (after the full-sort reference): all 3 rows in the first window, then
    # only the clustered row again, in a larger window (or the whole row).
    # (`_compare` runs it twice: the full-layout residuals, then the window residuals.)
    part = widths.shapes[1:]
    assert part[:len(part) // 2] == part[len(part) // 2:]
    part = part[:len(part) // 2]
    assert part[0] == (3, m0)
    assert len(part) >= 2 and all(s[0] == 1 and s[1] > m0 for s in part[1:])


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3))
def test_a_support_as_wide_as_the_row_ends_in_the_full_sort(name, p, widths):
    x = np.random.default_rng(2).normal(size=(2, 5000))
    y, _ = _compare(name, x, 2, p, 1e4)  # huge strength: a wide support
    assert widths[-1] == 5000
    assert np.all(np.count_nonzero(y, axis=-1) > 5000 // P.FULL_FRACTION)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", PS)
def test_ties_in_the_support_and_at_its_edge(name, p):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4000))
    x[0, :6] = 5.0  # ties at the top, inside the support
    x[1, :6] = 5.0 - 0.01 * np.array([0, 0, 1, 1, 1, 2])  # the k-th largest is tied
    top = np.argsort(-(x[2] if name == "soft_topk_mask" else np.abs(x[2])))[:40]
    x[2, top[::2]] = x[2, top[1::2]]  # pairs of ties among the largest 40 keys
    _compare(name, x, 4, p, 0.02)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3, 3.0))
def test_ties_outside_the_support_have_a_zero_derivative(name, p):
    """Entries tied far below the support keep output 0 under any small perturbation: their
    Jacobian rows and columns are 0 (finite differences agree), on the partial path and on the
    full sort (whose PAV does not pool equal values: a pooled tie block had a nonzero
    Jacobian)."""
    op = R.get(name)
    x = np.random.default_rng(4).normal(size=(1, 4000))
    x[0, :3] = 5.0 + np.arange(3)
    x[0, 100:110] = -0.5  # tied, far outside the support
    for partial in (True, False):
        o = _opts(op, x, 2, p, partial)
        y, jac = op.rows(x, 0.1, o)
        assert np.all(y[0, 100:110] == 0)
        t = np.zeros_like(x)
        t[0, 100:110] = np.linspace(-1.0, 1.0, 10)
        h = 1e-6
        fd = (op.rows(x + h * t, 0.1, o)[0] - op.rows(x - h * t, 0.1, o)[0]) / (2 * h)
        np.testing.assert_array_equal(fd, 0.0)
        np.testing.assert_array_equal(apply(jac, t), 0.0)
        np.testing.assert_array_equal(
            apply(jac, np.ones_like(x), transpose=True)[0, 100:110], 0.0)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3))
def test_nan_rows_are_nan_and_leave_the_other_rows_alone(name, p, widths):
    x = np.random.default_rng(5).normal(size=(3, 3000))
    x[1, 1234] = np.nan
    y, jac = _compare(name, x, 3, p, 0.1)
    assert np.all(np.isnan(y[1]))
    assert np.all(np.isfinite(y[[0, 2]]))
    g = apply(jac, np.ones_like(x), transpose=True)
    assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2]]))
    assert 3000 in widths  # the NaN row took the full sort


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3, 1.7))
def test_infinite_entries_follow_the_contract(name, p):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 3000))
    x[0, 2000:] = -np.inf  # -inf padding
    x[1, [5, 17]] = np.inf  # fewer +inf than k
    x[2, [5, 17, 99, 400]] = np.inf  # more +inf than k: they share the mass
    x[3, [5, 17, 99]] = -np.inf  # |x| = inf for the magnitude
    x[4, [7, 8]] = [np.inf, -np.inf]
    # For the mask, the tied -inf entries are far below the support (`_compare`).
    tied_below = (x == -np.inf) if name == "soft_topk_mask" else None
    y, _ = _compare(name, x, 3, p, 0.1, exclude=tied_below)
    if name == "soft_topk_mask":
        np.testing.assert_allclose(y.sum(-1), 3.0, rtol=1e-12)
        np.testing.assert_allclose(y[2, [5, 17, 99, 400]], 0.75, rtol=1e-12)


@pytest.mark.parametrize("name", OPS)
def test_straight_through_matches_the_full_sort(name):
    x = np.random.default_rng(7).normal(size=(3, 3000))
    y, _ = _compare(name, x, 5, 4 / 3, 0.1, straight_through=True)
    assert np.all(np.count_nonzero(y, axis=-1) == 5)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", PS)
def test_large_and_tiny_inputs(name, p):
    x = np.random.default_rng(8).normal(size=(2, 3000))
    _compare(name, x * 1e9, 2, p, 1e-6)
    _compare(name, x * 1e-9, 2, p, 1e-12)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3))
def test_window_residuals_store_only_the_windows(name, p):
    """`NumpyWindowBackend`: residuals as wide as the widest window of the batch (not ``n``),
    rows of narrower windows padded with zero singletons outside their window; a row that
    takes the full sort (NaN) widens the batch to ``n``."""
    op = R.get(name)
    rng = np.random.default_rng(14)
    x = rng.normal(size=(3, 6000))
    o = _opts(op, x, 3, p, True)
    m0 = P.first_window(3, 6000)
    assert op.rows(x, 0.2, o, NUMPY_WINDOWS)[1].a.shape == (3, m0)
    x[1, :200] = 8.0 + rng.uniform(0, 0.05, 200)  # this row enlarges its window
    _, jw = _compare_windows(op, x, rng.normal(size=x.shape), np.ones(x.shape, bool), 3, p,
                             0.2, *op.rows(x, 0.2, _opts(op, x, 3, p, False)))
    assert m0 < jw.a.shape[-1] < 6000
    assert all(len(set(row)) == len(row) for row in jw.in_perm)  # distinct columns per row
    x[2, 7] = np.nan
    yw, jw = op.rows(x, 0.2, o, NUMPY_WINDOWS)
    assert jw.a.shape == (3, 6000) and np.all(np.isnan(yw[2]))
    assert np.all(np.isfinite(yw[[0, 1]]))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3))
@pytest.mark.parametrize("k", (1, 8))
def test_float32_rows_are_solved_without_a_float64_copy_and_round_once(name, p, k):
    """Float32 rows (torch's eager CPU path): the same values as the float64 rows of the
    float32 numbers, rounded once to float32; the VJP of a float32 cotangent likewise."""
    op = R.get(name)
    x32 = np.random.default_rng(15).normal(size=(2, 5000)).astype(np.float32)
    x64 = x32.astype(np.float64)
    o = _opts(op, x64, k, p, True)
    y32, j32 = op.rows(x32, 0.1, o, NUMPY_WINDOWS)
    yf, jf = op.rows(x64, 0.1, _opts(op, x64, k, p, False))
    assert y32.dtype == np.float32
    np.testing.assert_array_equal(y32, yf.astype(np.float32))
    g32 = np.random.default_rng(16).normal(size=x32.shape).astype(np.float32)
    got = apply(j32, g32, transpose=True)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, apply(jf, g32.astype(np.float64), transpose=True)
                                  .astype(np.float32))


def test_window_residuals_check_their_indices_against_the_tangent():
    op = R.get("soft_topk_mask")
    x = np.random.default_rng(17).normal(size=(1, 5000))
    _, jw = op.rows(x, 0.1, _opts(op, x, 2, 4 / 3, True), NUMPY_WINDOWS)
    with pytest.raises(ValueError, match="outside"):
        apply(jw, np.ones((1, 100)), transpose=True)  # narrower than the indices
    with pytest.raises(ValueError, match="shape"):
        apply(jw, np.ones((2, 5000)), transpose=True)  # other rows


def test_the_mask_support_bound_sizes_the_second_window(widths):
    """The mask's support lies in {x >= x_(k) - lambda}: one retry at that size."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(1, 20000))
    x[0, :100] = 5.0 + rng.uniform(0.0, 0.01, 100)  # 100 near-ties: a support of 100
    lam = 1.0
    y, _ = _compare("soft_topk_mask", x, 2, 2.0, lam)
    assert np.count_nonzero(y) >= 100
    bound = np.count_nonzero(x >= np.sort(x[0])[-2] - lam)
    # Full-layout residuals, then window residuals (`_compare`): the same windows.
    assert widths.shapes[1:] == [(1, P.first_window(2, 20000)), (1, max(128, bound + 2))] * 2


def test_options_validate_partial_and_choose_automatically():
    op = R.get("soft_topk_mask")
    with pytest.raises(TypeError, match="partial"):
        op.make_options(shape=(10,), k=2, partial="yes")
    big = op.make_options(shape=(1, 10**5), k=8)
    assert big.partial is None
    assert P.use_partial(big, 10**5, NUMPY)
    assert not P.use_partial(op.make_options(shape=(1, 1000), k=8), 1000, NUMPY)
    assert not P.use_partial(op.make_options(shape=(1, 10**5), k=5000), 10**5, NUMPY)
    dyk = op.make_options(shape=(1, 10**5), k=8, p=2.0, solver="dykstra", partial=True)
    assert not P.use_partial(dyk, 10**5, NUMPY)  # Dykstra always sorts the row
    off = op.make_options(shape=(1, 10**5), k=8, partial=False)
    assert not P.use_partial(off, 10**5, NUMPY)


def test_public_numpy_api_takes_the_partial_path(widths):
    from softorder.numpy import soft_topk_magnitude_fwd, vjp

    x = np.random.default_rng(10).normal(size=(2, 3, 10**4))
    y, res = soft_topk_magnitude_fwd(x, 2, regularization_strength=0.1)
    assert max(widths) < 10**4
    op = R.get("soft_topk_magnitude")
    x2 = x.reshape(-1, 10**4)
    yf, jf = op.rows(x2, 0.1, _opts(op, x2, 2, 4 / 3, False))
    np.testing.assert_allclose(y.reshape(-1, 10**4), yf, **TOL)
    g = np.random.default_rng(11).normal(size=x.shape)
    np.testing.assert_allclose(vjp(res, g).reshape(-1, 10**4),
                               apply(jf, g.reshape(-1, 10**4), transpose=True), **TOL)


# --------------------------------------------------------------------------------------------
# The same core on the torch and JAX backends.


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3))
def test_torch_backend_partial_equals_full(name, p):
    torch = pytest.importorskip("torch")
    from softorder._src.frontends.torch.backend import TORCH

    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 3000))
    x[1, :200] = 8.0 + rng.uniform(0, 0.05, 200)  # this row enlarges its window
    x[2, 5] = np.nan
    _compare(name, x, 3, p, 0.2, xp=TORCH, conv=lambda a: torch.from_numpy(a.copy()))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("p", (2.0, 4 / 3))
def test_jax_backend_partial_equals_full(name, p):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from softorder._src.frontends.jax.backend import JAX

    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 3000))
    # x64 on, process-wide, as tests/jax and tests/cross set it (restoring "off" here would
    # turn it off under the JAX tests that the same xdist worker runs next).
    jax.config.update("jax_enable_x64", True)
    conv = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    _compare(name, x, 3, p, 0.2, xp=JAX, conv=conv)  # the window holds every row
    x[1, :200] = 8.0 + rng.uniform(0, 1e-3, 200)  # one row fails: the batch re-sorts
    _compare(name, x, 3, p, 0.2, xp=JAX, conv=conv)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize("p", (2.0, 4 / 3))
def test_torch_eager_cpu_window_path_equals_the_full_sort(name, dtype, p):
    """torch's plain eager CPU path (window residuals, float32 rows read as they are): the
    values, the gradient (``backward``), forward-mode ``jvp`` and the strength's gradient are
    the full sort's, with a row that enlarges its window and one holding NaN."""
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as fwAD

    from softorder._src.frontends.torch import frontend as F

    rng = np.random.default_rng(18)
    # Distinct float32 values (exact ties far below the support have derivative 0 here, and
    # not under the full sort: `test_ties_outside_the_support_have_a_zero_derivative`).
    x = np.stack([rng.permutation(np.linspace(-3.0, 3.0, 4000)) for _ in range(3)])
    x[1, :200] = 8.0 + 2.5e-4 * rng.permutation(200)  # this row enlarges its window
    x[2, 9] = np.nan
    xt = torch.from_numpy(x).to(getattr(torch, dtype))
    w = torch.from_numpy(rng.normal(size=x.shape)).to(xt.dtype)
    out = {}
    for flag in (False, True):
        xr = xt.clone().requires_grad_(True)
        s = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
        y = F._call(name, xr, 3, -1, s, p=p, partial=flag)
        (y * w).sum().backward()
        with fwAD.dual_level():
            yd = fwAD.unpack_dual(F._call(name, fwAD.make_dual(xt, w), 3, -1, 0.2, p=p,
                                          partial=flag)).tangent
        out[flag] = (y.detach(), xr.grad, yd, s.grad)
    for a, b in zip(out[True], out[False]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6 if dtype == "float32"
                                   else 1e-12, atol=1e-6 if dtype == "float32" else 1e-12,
                                   equal_nan=True)
