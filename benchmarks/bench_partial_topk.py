"""Partial-sort top-k: the sparse top-k operators for ``k << n`` as ratios to a full sort.

    python benchmarks/bench_partial_topk.py            # k = 1, 2, 8; n = 1e3 .. 1e6
    python benchmarks/bench_partial_topk.py --quick    # n = 1e3, 1e4: seconds
    python benchmarks/bench_partial_topk.py --out results.md --json results.json

For each k and n (one row), ``soft_topk_mask`` and ``soft_topk_magnitude`` (p = 4/3, a
strength of 0.1 on standard normal data, one row) run forward + backward three ways: the full
sort (``partial=False``), the partial sort (``partial=True``: the ``m`` largest entries by an
O(n) selection, certified exact, `softorder._src.core.partial`) and the automatic choice.

* NumPy: the public API as a user runs it: ``softorder.numpy``'s ``*_fwd`` (its `_call`, which
  takes the ``partial`` option) then ``vjp``. Baseline: the row's ``np.argsort``.
* PyTorch (float32 and float64 CPU tensors): the public function, ``(y * w).sum().backward()``.
  Baseline: ``torch.sort`` forward + backward, the same ``(y * w).sum().backward()``.

Everything of one row is timed in turns (baseline, full, partial, auto, baseline, ...); each
is the best (minimum) of the repeats: ratios, not seconds, are the result. The issue's target:
at n = 1e6 and k <= 8, the automatic choice's forward + backward below 0.3x the baseline.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

KS = (1, 2, 8)
NS = (1_000, 10_000, 100_000, 1_000_000)
QUICK_NS = (1_000, 10_000)
STRENGTH = 0.1
OPS = ("soft_topk_mask", "soft_topk_magnitude")
MODES = {"full": False, "partial": True, "auto": None}
FRAMEWORKS = ("numpy", "torch-float32", "torch-float64")


def round_robin(fns, min_time=0.3, max_repeat=50):
    """Best wall time of each function, timed in turns (a, b, c, a, b, c, ...)."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    start = time.perf_counter()
    n = 0
    while n < 5 or (time.perf_counter() - start < min_time * len(fns) and n < max_repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
        n += 1
    return {k: float(np.min(v)) for k, v in times.items()}


def numpy_fns(name, x, k):
    from softorder._src.core import ops

    g = np.ones_like(x)
    fns = {"sort": lambda: np.argsort(x, axis=-1)}
    for mode, flag in MODES.items():

        def both(flag=flag):
            _, res = ops._call(name, x, k, -1, STRENGTH, partial=flag)
            ops.vjp(res, g)

        fns[mode] = both
    return fns


def torch_fns(name, x, k, dtype="float64"):
    import torch

    from softorder._src.frontends.torch import frontend as F

    xt = torch.from_numpy(x.copy()).to(getattr(torch, dtype))
    w = torch.ones_like(xt)

    def sort():
        xr = xt.detach().requires_grad_(True)
        (torch.sort(xr, dim=-1).values * w).sum().backward()

    fns = {"sort": sort}
    for mode, flag in MODES.items():

        def both(flag=flag):
            xr = xt.detach().requires_grad_(True)
            y = F._call(name, xr, k, -1, STRENGTH, partial=flag)
            (y * w).sum().backward()

        fns[mode] = both
    return fns


def run(ns, frameworks, progress=True, ks=None):
    rows = []
    jobs = [(fw, name, k, n) for fw in frameworks for name in OPS for k in KS for n in ns]
    if ks is not None:
        jobs = [j for j in jobs if j[2] in ks]
    bar = None
    if progress:
        try:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("benchmarking", total=len(jobs))
        except ImportError:
            bar = None
    try:
        for fw, name, k, n in jobs:
            x = np.random.default_rng(0).normal(size=(1, n))
            fns = (numpy_fns(name, x, k) if fw == "numpy"
                   else torch_fns(name, x, k, fw.split("-")[1]))
            t = round_robin(fns)
            rows.append({
                "framework": fw, "op": name, "k": k, "n": n,
                "sort_ms": 1e3 * t["sort"],
                **{f"{m}_ms": 1e3 * t[m] for m in MODES},
                **{f"{m}_ratio": t[m] / t["sort"] for m in MODES},
            })
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return rows


def markdown(rows):
    """One table; the ratios are fwd+bwd over the baseline (``np.argsort`` for NumPy,
    ``torch.sort`` fwd+bwd for PyTorch) of the same run."""
    head = ("| framework | operator | k | n | baseline (ms) | full / base | partial / base | "
            "auto / base |\n|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['framework']} | {r['op']} | {r['k']} | {r['n']:.0e} | {r['sort_ms']:.3g} | "
             f"{r['full_ratio']:.3f} | {r['partial_ratio']:.3f} | {r['auto_ratio']:.3f} |"
             for r in rows]
    return head + "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 1e3 and 1e4 only")
    parser.add_argument("--framework", choices=(*FRAMEWORKS, "torch", "all"), default="all")
    parser.add_argument("--out", help="write the markdown table here")
    parser.add_argument("--json", help="write the rows as JSON here")
    parser.add_argument("--n", type=int, nargs="+", help="row lengths (default 1e3 .. 1e6)")
    parser.add_argument("--k", type=int, nargs="+", help="subset of k = 1, 2, 8")
    args = parser.parse_args(argv)
    frameworks = {"all": FRAMEWORKS, "torch": FRAMEWORKS[1:]}.get(args.framework,
                                                                  (args.framework,))
    ns = args.n or (QUICK_NS if args.quick else NS)
    rows = run(ns, frameworks, ks=args.k)
    table = markdown(rows)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
