"""JAX benchmark: each jitted operator's time as a ratio to jitted jnp.sort in the same run.

    python benchmarks/bench_jax.py            # full table (a few minutes on 2 cores)
    python benchmarks/bench_jax.py --quick    # small shapes, short timings
    python benchmarks/bench_jax.py --out results.md --json results.json
    python benchmarks/bench_jax.py --backends callback,jax   # also the pure-JAX backend

Ratios, not seconds, are the result: the baseline (``jax.jit(jnp.sort)``) is timed in the same
process on the same data, right before each operator. "fwd" is the jitted forward pass;
"fwd+grad" is ``jax.jit(jax.grad(lambda x: sum(f(x) * g)))``. Compilation is excluded (one
warm-up call). float32 inputs (JAX's default; softorder computes in float64 inside).

When OTT-JAX is importable, its Sinkhorn-based ``ott.tools.soft_sort.ranks / sort / topk_mask``
(default settings) are timed alongside. Its ranks and sort build an ``n x n`` transport problem
per row, so they run only where ``rows * n^2 <= 2e7``; its topk_mask uses 2 targets (O(n)).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

SHAPES = [(1, 1_000), (1, 100_000), (128, 1_000), (1024, 1_000)]
QUICK_SHAPES = [(1, 1_000), (16, 1_000)]
OTT_MAX_QUADRATIC = 2e7


def operators(backend):
    import softorder.jax as sj

    k = lambda x: max(1, x.shape[-1] // 10)
    return {
        "soft_rank l2": lambda x: sj.soft_rank(x, backend=backend),
        "soft_rank kl": lambda x: sj.soft_rank(x, regularization="kl", backend=backend),
        "soft_rank p=4/3": lambda x: sj.soft_rank(x, regularization="pnorm", backend=backend),
        "soft_sort l2": lambda x: sj.soft_sort(x, backend=backend),
        "topk_mask p=4/3": lambda x: sj.soft_topk_mask(x, k(x), backend=backend),
    }


def ott_operators():
    try:
        from ott.tools import soft_sort as ott_ss
    except ImportError:
        return {}
    return {
        "soft_rank l2": ("ranks", lambda x: ott_ss.ranks(x, axis=-1), True),
        "soft_rank kl": ("ranks", lambda x: ott_ss.ranks(x, axis=-1), True),
        "soft_rank p=4/3": ("ranks", lambda x: ott_ss.ranks(x, axis=-1), True),
        "soft_sort l2": ("sort", lambda x: ott_ss.sort(x, axis=-1), True),
        "topk_mask p=4/3": ("topk_mask",
                            lambda x: ott_ss.topk_mask(x, axis=-1, k=max(1, x.shape[-1] // 10)),
                            False),
    }


def timeit(fn, min_time=0.2, max_repeat=200):
    """Median wall time of ``fn()`` (blocking on the result) after a warm-up call."""
    import jax

    jax.block_until_ready(fn())
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _fwd_grad(f, g):
    import jax
    import jax.numpy as jnp

    return jax.jit(jax.grad(lambda x: jnp.sum(f(x) * g)))


def run(shapes, backends=("callback",), min_time=0.2, with_ott=True):
    import jax
    import jax.numpy as jnp

    rows = []
    ott = ott_operators() if with_ott else {}
    jsort = jax.jit(lambda x: jnp.sort(x, axis=-1))
    for shape in shapes:
        x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
        g = jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)
        quad_ok = shape[0] * shape[1] ** 2 <= OTT_MAX_QUADRATIC
        for backend in backends:
            for name, f in operators(backend).items():
                t_sort = timeit(lambda x=x: jsort(x), min_time)
                jf = jax.jit(f)
                t_fwd = timeit(lambda jf=jf, x=x: jf(x), min_time)
                fg = _fwd_grad(f, g)
                t_both = timeit(lambda fg=fg, x=x: fg(x), min_time)
                row = {"op": name, "backend": backend,
                       "shape": f"{shape[0]} x {shape[1]:.0e}" if shape[1] >= 1e5
                       else f"{shape[0]} x {shape[1]}",
                       "sort_ms": 1e3 * t_sort, "fwd_ms": 1e3 * t_fwd,
                       "fwd_grad_ms": 1e3 * t_both, "fwd_ratio": t_fwd / t_sort,
                       "fwd_grad_ratio": t_both / t_sort, "ott": None}
                if name in ott:
                    ott_name, of, quadratic = ott[name]
                    if quad_ok or not quadratic:
                        row["ott"] = {"fn": ott_name}
                        of_j = jax.jit(of)
                        og = _fwd_grad(of, g)
                        for key, fn in (("fwd_ratio", of_j), ("fwd_grad_ratio", og)):
                            try:
                                t_o = timeit(lambda fn=fn, x=x: fn(x), min_time)
                                row["ott"][key] = t_o / t_sort
                            except Exception as e:  # OTT's implicit diff may fail (NaN solve)
                                row["ott"][key] = None
                                row["ott"].setdefault("errors", []).append(
                                    f"{key}: {type(e).__name__}")
                    else:
                        row["ott"] = {"fn": ott_name, "skipped": "n x n per row"}
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def _ott_cells(r):
    o = r["ott"]
    if o is None:
        return "-", "-"
    if "skipped" in o:
        return "n/a", "n/a"
    cell = lambda v: "failed" if v is None else f"{v:.2f}"
    return cell(o.get("fwd_ratio")), cell(o.get("fwd_grad_ratio"))


def _line(r):
    of, ob = _ott_cells(r)
    return (f"| {r['op']} | {r['backend']} | {r['shape']} | {r['sort_ms']:.3f} | "
            f"{r['fwd_ratio']:.2f} | {r['fwd_grad_ratio']:.2f} | {of} | {ob} |")


HEADER = ("| operator | backend | shape | jnp.sort (ms) | fwd / sort | fwd+grad / sort | "
          "OTT fwd / sort | OTT fwd+grad / sort |\n|---|---|---|---:|---:|---:|---:|---:|")


def to_markdown(rows):
    lines = [HEADER] + [_line(r) for r in rows]
    lines.append("")
    lines.append("OTT: ott.tools.soft_sort (Sinkhorn, default epsilon); its ranks/sort are "
                 "skipped (n/a) where rows * n^2 > 2e7; 'failed' = OTT raised (its implicit "
                 "differentiation's linear solve returned NaN); '-' = OTT not installed.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, short timings")
    parser.add_argument("--backends", default="callback",
                        help="comma-separated softorder.jax backends: callback, jax")
    parser.add_argument("--no-ott", action="store_true", help="skip the OTT-JAX columns")
    parser.add_argument("--out", help="write the table as markdown to this file")
    parser.add_argument("--json", help="write the raw results as JSON to this file")
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    print(HEADER, flush=True)
    rows = run(shapes, tuple(args.backends.split(",")), min_time=0.05 if args.quick else 0.3,
               with_ott=not args.no_ott)
    if args.out:
        with open(args.out, "w") as f:
            f.write(to_markdown(rows) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
