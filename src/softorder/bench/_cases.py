"""What `softorder bench` times: each front end's hard sort (the floor), softorder's operators
and every installed alternative, as `Case` objects per framework.

A case is built for one group (framework, device, dtype, batch x n): `Frame.thunks` turns its
function ``x -> y`` into two zero-argument callables on that group's data, the forward pass
and the forward plus backward pass (the gradient of ``sum(y * g)`` for a fixed random ``g``),
each returning only once the device is done. NumPy has no autograd: its cases give both
callables themselves (softorder's ``*_fwd`` + ``vjp``; the hard sort's backward is the scatter
of ``g`` through the permutation).

Alternatives run with their own default settings (OTT's epsilon, diffsort's steepness,
SoftTorch's softness): their times are what a user of their defaults pays, not a comparison at
matched accuracy, except for torchsort and fast-soft-sort, which compute the same operators as
softorder's ``l2``/``kl`` ranks and sorts at the same strength.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# name, import name, frameworks, PyPI name (None: not on PyPI), what is compared
ALTERNATIVES: list[tuple[str, str, str, str | None, str]] = [
    ("torchsort", "torchsort", "torch", "torchsort",
     "soft_rank / soft_sort, l2 and kl (the same operators, C++ PAV)"),
    ("fast-soft-sort", "fast_soft_sort", "torch, jax, tensorflow", None,
     "soft_rank / soft_sort, l2 and kl (the paper's NumPy/Numba code)"),
    ("ott-jax", "ott", "jax", "ott-jax",
     "ott.tools.soft_sort: sort, ranks (Sinkhorn, n x n per row), topk_mask"),
    ("diffsort", "diffsort", "torch", "diffsort", "bitonic sorting network (n x n per row)"),
    ("difftopk", "difftopk", "torch", "difftopk", "bitonic top-k network, as a top-k mask"),
    ("softtorch", "softtorch", "torch", "softtorch",
     "sort / rank: fast_soft_sort method and the default neuralsort (n x n)"),
    ("softjax", "softjax", "jax", "softjax",
     "sort / rank: fast_soft_sort method and the default neuralsort (n x n)"),
    ("torchisotonic", "torchisotonic", "torch", "torchisotonic", "isotonic regression (C++ PAV)"),
    ("scikit-learn", "sklearn", "numpy", "scikit-learn",
     "sklearn.isotonic.isotonic_regression, one row at a time (forward only)"),
]


def installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Case:
    """One timed method of one framework."""

    library: str  # "softorder", "torchsort", ..., or the framework (floor and its argsort)
    op: str  # "sort", "rank", "topk", "isotonic"
    variant: str  # "l2", "kl", "p=4/3", "mask p=4/3 pav", "callback l2", ...
    build: Callable[[Any], Any]  # group data -> function x -> y, or (fwd, fwd_bwd) for NumPy
    floor: bool = False
    # bytes of working memory per call for (batch, n, itemsize): only the O(n^2) methods
    # need a real estimate (the --memory-cap gate); None means O(batch * n).
    memory: Callable[[int, int, int], float] | None = None
    grad: bool = True  # False: forward only (scikit-learn)
    jit: bool = True  # JAX: whether the function can be jitted
    note: str = ""

    @property
    def name(self) -> str:
        if self.library in CASES:  # the framework's own sort: its function's name
            return self.variant
        return f"{self.library} {self.op} {self.variant}".strip()


def _k(n: int) -> int:
    return max(1, n // 10)


def _quadratic(factor: float) -> Callable[[int, int, int], float]:
    return lambda b, n, item: factor * b * n * n * item


def _network(factor: float) -> Callable[[int, int, int], float]:
    """diffsort/difftopk: a bitonic network has m(m+1)/2 layers (m = ceil(log2 n)), each
    keeping n x 2^m matrices per row for the backward pass, plus the network itself."""

    def est(b: int, n: int, item: int) -> float:
        m = max(1, math.ceil(math.log2(max(n, 2))))
        layers = m * (m + 1) // 2
        return layers * (factor * b * n * 2**m * item + 4 * n * 2**m * 4)

    return est


def _values(out: Any) -> Any:
    return out.values if hasattr(out, "values") and not callable(out.values) else out


@dataclass
class Group:
    """The data of one group: ``x`` [batch, n] and the cotangent ``g``, in the framework's type."""

    framework: str
    device: str
    dtype: str
    batch: int
    n: int
    x: Any
    g: Any
    extra: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return _k(self.n)


# --------------------------------------------------------------------------------------------
# softorder's operators, once for every front end: (op, variant, call(module, x, k, **kw)).

_SOFTORDER_OPS: list[tuple[str, str, Callable[..., Any]]] = [
    ("sort", "l2", lambda m, x, k, **kw: m.soft_sort(x, **kw)),
    ("sort", "kl", lambda m, x, k, **kw: m.soft_sort(x, regularization="kl", **kw)),
    ("sort", "p=4/3", lambda m, x, k, **kw: m.soft_sort(x, regularization="pnorm", **kw)),
    ("rank", "l2", lambda m, x, k, **kw: m.soft_rank(x, **kw)),
    ("rank", "kl", lambda m, x, k, **kw: m.soft_rank(x, regularization="kl", **kw)),
    ("rank", "p=4/3", lambda m, x, k, **kw: m.soft_rank(x, regularization="pnorm", **kw)),
    ("topk", "mask p=4/3 pav", lambda m, x, k, **kw: m.soft_topk_mask(x, k, **kw)),
    ("topk", "mask p=2 dykstra",
     lambda m, x, k, **kw: m.soft_topk_mask(x, k, p=2.0, solver="dykstra", **kw)),
    ("topk", "magnitude p=4/3 pav", lambda m, x, k, **kw: m.soft_topk_magnitude(x, k, **kw)),
    ("topk", "magnitude p=2 dykstra",
     lambda m, x, k, **kw: m.soft_topk_magnitude(x, k, p=2.0, solver="dykstra", **kw)),
    ("isotonic", "l2", lambda m, x, k, **kw: m.isotonic_regression(x, **kw)),
]
# The subsets a --quick run times (CI): on NumPy and PyTorch each regularizer and each kind
# of operator once; on JAX and TensorFlow, whose first calls compile (XLA, tf.function), three.
QUICK_VARIANTS = {("sort", "l2"), ("rank", "l2"), ("rank", "kl"), ("rank", "p=4/3"),
                  ("topk", "mask p=4/3 pav"), ("topk", "magnitude p=4/3 pav"), ("isotonic", "l2")}
QUICK_COMPILED = {("sort", "l2"), ("rank", "kl"), ("topk", "mask p=4/3 pav")}


def _softorder_cases(module: str, quick: bool, **kw: Any) -> list[Case]:
    prefix = kw.pop("prefix", "")
    subset = QUICK_VARIANTS if module in ("softorder.torch",) else QUICK_COMPILED
    out = []
    for op, variant, call in _SOFTORDER_OPS:
        if quick and (op, variant) not in subset:
            continue

        def build(grp: Group, call: Callable[..., Any] = call, op: str = op) -> Any:
            m = importlib.import_module(module)
            return lambda x: call(m, x, grp.k, **kw)

        out.append(Case("softorder", op, f"{prefix}{variant}", build))
    return out


# --------------------------------------------------------------------------------------------
# NumPy


def numpy_cases(quick: bool) -> list[Case]:
    import numpy as np

    def floor(grp: Group) -> Any:
        def fwd_bwd() -> Any:
            idx = np.argsort(grp.x, axis=-1)
            np.take_along_axis(grp.x, idx, axis=-1)
            gx = np.empty_like(grp.g)
            np.put_along_axis(gx, idx, grp.g, axis=-1)
            return gx

        return (lambda: np.sort(grp.x, axis=-1)), fwd_bwd

    def argsort(grp: Group) -> Any:
        f = lambda: np.argsort(grp.x, axis=-1)
        return f, None

    cases = [Case("numpy", "sort", "np.sort", floor, floor=True,
                  note="fwd+bwd: argsort, gather, and the scatter of g (the hard sort's VJP)"),
             Case("numpy", "sort", "np.argsort", argsort, grad=False)]

    def so_case(op: str, variant: str, name: str, opts: dict) -> Case:
        def build(grp: Group) -> Any:
            import softorder.numpy as so
            from softorder.isotonic import isotonic_regression, isotonic_regression_fwd

            if op == "isotonic":
                def fb_iso() -> Any:
                    _, res, _ = isotonic_regression_fwd(grp.x)
                    return so.vjp(res, grp.g)

                return (lambda: isotonic_regression(grp.x)), fb_iso
            args = (grp.k,) if op == "topk" else ()
            f, f_fwd = getattr(so, name), getattr(so, name + "_fwd")

            def fb() -> Any:
                _, res = f_fwd(grp.x, *args, **opts)
                return so.vjp(res, grp.g)

            return (lambda: f(grp.x, *args, **opts)), fb

        return Case("softorder", op, variant, build)

    table: list[tuple[str, str, str, dict[str, Any]]] = [
        ("sort", "l2", "soft_sort", {}), ("sort", "kl", "soft_sort", {"regularization": "kl"}),
        ("sort", "p=4/3", "soft_sort", {"regularization": "pnorm"}),
        ("rank", "l2", "soft_rank", {}), ("rank", "kl", "soft_rank", {"regularization": "kl"}),
        ("rank", "p=4/3", "soft_rank", {"regularization": "pnorm"}),
        ("topk", "mask p=4/3 pav", "soft_topk_mask", {}),
        ("topk", "mask p=2 dykstra", "soft_topk_mask", {"p": 2.0, "solver": "dykstra"}),
        ("topk", "magnitude p=4/3 pav", "soft_topk_magnitude", {}),
        ("topk", "magnitude p=2 dykstra", "soft_topk_magnitude", {"p": 2.0, "solver": "dykstra"}),
        ("isotonic", "l2", "isotonic_regression", {}),
    ]
    cases += [so_case(op, v, name, opts) for op, v, name, opts in table
              if not quick or (op, v) in QUICK_VARIANTS]

    if installed("sklearn"):
        def sk(grp: Group) -> Any:
            from sklearn.isotonic import isotonic_regression

            return (lambda: [isotonic_regression(row) for row in grp.x]), None

        cases.append(Case("scikit-learn", "isotonic", "isotonic_regression", sk, grad=False))
    return cases


# --------------------------------------------------------------------------------------------
# PyTorch


def torch_cases(quick: bool) -> list[Case]:
    cases = [Case("torch", "sort", "torch.sort",
                  lambda grp: (lambda x: __import__("torch").sort(x, dim=-1).values), floor=True)]
    cases += _softorder_cases("softorder.torch", quick)
    if installed("torchsort"):
        for op in ("rank", "sort"):
            for reg in ("l2", "kl"):
                def ts(grp: Group, op: str = op, reg: str = reg) -> Any:
                    import torchsort

                    f = torchsort.soft_rank if op == "rank" else torchsort.soft_sort
                    return lambda x: f(x, regularization=reg)

                cases.append(Case("torchsort", op, reg, ts))
    if installed("fast_soft_sort"):
        for op in ("rank", "sort"):
            for reg in ("l2", "kl"):
                def fss(grp: Group, op: str = op, reg: str = reg) -> Any:
                    from fast_soft_sort import pytorch_ops

                    f = pytorch_ops.soft_rank if op == "rank" else pytorch_ops.soft_sort
                    return lambda x: f(x, regularization=reg)

                cases.append(Case("fast-soft-sort", op, reg, fss))
    if installed("diffsort"):
        def ds(grp: Group) -> Any:
            from diffsort import DiffSortNet

            net = DiffSortNet("bitonic", grp.n, device=grp.device)
            return lambda x: net(x)[0]

        cases.append(Case("diffsort", "sort", "bitonic", ds, memory=_network(5.0)))
    if installed("difftopk"):
        def dt(grp: Group) -> Any:
            from difftopk import DiffTopkNet

            net = DiffTopkNet("bitonic", grp.n, grp.k, device=grp.device)
            return lambda x: net(x)[1].sum(-1)

        cases.append(Case("difftopk", "topk", "mask bitonic", dt, memory=_network(4.0)))
    if installed("softtorch"):
        for method, mem in (("fast_soft_sort", None), ("neuralsort", _quadratic(6.0))):
            for op in ("sort", "rank"):
                def stc(grp: Group, op: str = op, method: str = method) -> Any:
                    import softtorch

                    if op == "sort":
                        return lambda x: _values(softtorch.sort(x, dim=-1, method=method,
                                                                return_indices=False))
                    return lambda x: softtorch.rank(x, dim=-1, method=method)

                cases.append(Case("softtorch", op, method, stc, memory=mem))
    if installed("torchisotonic"):
        def ti(grp: Group) -> Any:
            import torchisotonic

            return lambda x: torchisotonic.isotonic(x)

        cases.append(Case("torchisotonic", "isotonic", "l2", ti))
    return cases


# --------------------------------------------------------------------------------------------
# JAX


def jax_cases(quick: bool, backends: tuple[str, ...] = ("callback",)) -> list[Case]:
    """``backends``: softorder.jax's forward backends to time (the bench's default is the
    device's default backend: the pure-JAX one compiles for seconds per function on a CPU)."""
    cases = [Case("jax", "sort", "jnp.sort",
                  lambda grp: (lambda x: __import__("jax").numpy.sort(x, axis=-1)), floor=True)]
    for backend in backends:
        cases += _softorder_cases("softorder.jax", quick, backend=backend, prefix=f"{backend} ")
    if installed("ott"):
        def ott(grp: Group, fn: str = "sort") -> Any:
            from ott.tools import soft_sort

            if fn == "topk_mask":
                return lambda x: soft_sort.topk_mask(x, axis=-1, k=grp.k)
            return lambda x: getattr(soft_sort, fn)(x, axis=-1)

        cases += [
            Case("ott-jax", "sort", "sinkhorn", lambda g: ott(g, "sort"), memory=_quadratic(6.0)),
            Case("ott-jax", "rank", "sinkhorn", lambda g: ott(g, "ranks"), memory=_quadratic(6.0)),
            Case("ott-jax", "topk", "mask sinkhorn", lambda g: ott(g, "topk_mask")),
        ]
    if installed("fast_soft_sort"):
        for op in ("rank", "sort"):
            for reg in ("l2", "kl"):
                def fss(grp: Group, op: str = op, reg: str = reg) -> Any:
                    from fast_soft_sort import jax_ops

                    f = jax_ops.soft_rank if op == "rank" else jax_ops.soft_sort
                    return lambda x: f(x, regularization=reg)

                cases.append(Case("fast-soft-sort", op, reg, fss, jit=False))
    if installed("softjax"):
        for method, mem in (("fast_soft_sort", None), ("neuralsort", _quadratic(6.0))):
            for op in ("sort", "rank"):
                def sjc(grp: Group, op: str = op, method: str = method) -> Any:
                    import softjax

                    f = softjax.sort if op == "sort" else softjax.rank
                    return lambda x: f(x, axis=-1, method=method)

                cases.append(Case("softjax", op, method, sjc, memory=mem))
    return cases


# --------------------------------------------------------------------------------------------
# TensorFlow (only ever in its own process: it cannot share one with Triton)


def tensorflow_cases(quick: bool) -> list[Case]:
    cases = [Case("tensorflow", "sort", "tf.sort",
                  lambda grp: (lambda x: __import__("tensorflow").sort(x, axis=-1)), floor=True)]
    cases += _softorder_cases("softorder.tensorflow", quick)
    if installed("fast_soft_sort"):
        for op in ("rank", "sort"):
            for reg in ("l2", "kl"):
                def fss(grp: Group, op: str = op, reg: str = reg) -> Any:
                    from fast_soft_sort import tf_ops

                    f = tf_ops.soft_rank if op == "rank" else tf_ops.soft_sort
                    return lambda x: f(x, regularization=reg)

                cases.append(Case("fast-soft-sort", op, reg, fss))
    return cases


CASES: dict[str, Callable[[bool], list[Case]]] = {
    "numpy": numpy_cases, "torch": torch_cases, "jax": jax_cases, "tensorflow": tensorflow_cases,
}
