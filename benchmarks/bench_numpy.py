"""NumPy/Numba benchmark: each operator's time as a ratio to np.argsort in the same run.

    python benchmarks/bench_numpy.py            # full table (about a minute on 2 cores)
    python benchmarks/bench_numpy.py --quick    # small shapes, seconds
    python benchmarks/bench_numpy.py --out results.md --json results.json

Ratios, not seconds, are the result: the baselines (np.argsort, which every operator needs
for its permutation, and np.sort) are timed in the same process on the same data, in turns
with the operator (a, b, c, a, b, c, ...) so that all share the machine's load alike. "fwd" is the forward
pass; "fwd+vjp" adds the O(n) backward pass with the saved residuals. Also measures the
one-time Numba compile cost: a first call with an empty cache, and a new process that loads
the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SHAPES = [(1, 1_000), (1, 1_000_000), (128, 1_000), (1024, 100)]
QUICK_SHAPES = [(1, 1_000), (16, 1_000)]


def operators():
    from softorder import numpy as so

    return {
        "soft_rank l2": lambda x: so.soft_rank_fwd(x),
        "soft_rank kl": lambda x: so.soft_rank_fwd(x, regularization="kl"),
        "soft_rank p=4/3": lambda x: so.soft_rank_fwd(x, regularization="pnorm"),
        "soft_sort l2": lambda x: so.soft_sort_fwd(x),
        "soft_sort kl": lambda x: so.soft_sort_fwd(x, regularization="kl"),
        "topk_mask p=4/3": lambda x: so.soft_topk_mask_fwd(x, max(1, x.shape[-1] // 10)),
        "topk_magnitude p=4/3": lambda x: so.soft_topk_magnitude_fwd(x, max(1, x.shape[-1] // 10)),
    }


def timeit(fn, min_time=0.2, max_repeat=200):
    """Median wall time of ``fn()`` over enough repeats to fill ``min_time`` (after a warm-up)."""
    return round_robin({"f": fn}, min_time, max_repeat)["f"]


def round_robin(fns, min_time=0.2, max_repeat=200):
    """Median wall time of each function, timed in turns (a, b, c, a, b, c, ...).

    Interleaving makes the baseline and the operators share whatever else the machine is doing,
    so their ratios stay meaningful on a busy machine.
    """
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    start = time.perf_counter()
    n = 0
    while n < 3 or (time.perf_counter() - start < min_time * len(fns) and n < max_repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
        n += 1
    return {k: float(np.median(v)) for k, v in times.items()}


def run(shapes, min_time=0.2, progress=True):
    from softorder.numpy import vjp

    ops = operators()
    rows = []
    total = len(shapes) * len(ops)
    bar = None
    if progress:
        try:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("benchmarking", total=total)
        except ImportError:
            bar = None
    try:
        for shape in shapes:
            x = np.random.default_rng(0).normal(size=shape)
            g = np.ones(shape)
            for name, fwd in ops.items():

                def fwd_vjp(fwd=fwd, x=x, g=g):
                    _, res = fwd(x)
                    vjp(res, g)

                t = round_robin({
                    "argsort": lambda x=x: np.argsort(x, axis=-1),
                    "sort": lambda x=x: np.sort(x, axis=-1),
                    "fwd": lambda fwd=fwd, x=x: fwd(x),
                    "both": fwd_vjp,
                }, min_time)
                rows.append({
                    "op": name, "shape": f"{shape[0]} x {shape[1]:.0e}" if shape[1] >= 1e5
                    else f"{shape[0]} x {shape[1]}",
                    "argsort_ms": 1e3 * t["argsort"], "sort_ms": 1e3 * t["sort"],
                    "fwd_ms": 1e3 * t["fwd"], "fwd_vjp_ms": 1e3 * t["both"],
                    "fwd_ratio": t["fwd"] / t["argsort"], "fwd_vjp_ratio": t["both"] / t["argsort"],
                    "fwd_sort_ratio": t["fwd"] / t["sort"],
                    "fwd_vjp_sort_ratio": t["both"] / t["sort"],
                })
                if bar is not None:
                    bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return rows


_COMPILE_PROBE = (
    "import time; t = time.perf_counter(); import numpy as np; "
    "from softorder.numpy import soft_rank_fwd, vjp; x = np.random.rand(4, 50); "
    "y, r = soft_rank_fwd(x); vjp(r, y); print(time.perf_counter() - t)"
)


def compile_cost():
    """Seconds for import + first soft_rank fwd+vjp: empty Numba cache, then a warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = []
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", _COMPILE_PROBE], env=env,
                                 capture_output=True, text=True, check=True)
            out.append(float(res.stdout.strip().splitlines()[-1]))
    return {"cold_s": out[0], "cached_s": out[1]}


def to_markdown(rows, compile_s=None):
    lines = ["| operator | shape | np.argsort (ms) | fwd / argsort | fwd+vjp / argsort "
             "| fwd / sort | fwd+vjp / sort |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['shape']} | {r['argsort_ms']:.3f} | "
                     f"{r['fwd_ratio']:.2f} | {r['fwd_vjp_ratio']:.2f} | "
                     f"{r['fwd_sort_ratio']:.2f} | {r['fwd_vjp_sort_ratio']:.2f} |")
    if compile_s:
        lines.append("")
        lines.append(f"One-time cost of import + first call: {compile_s['cold_s']:.1f} s with an "
                     f"empty Numba cache, {compile_s['cached_s']:.2f} s in a new process "
                     "with the cache.")
    return "\n".join(lines)


def print_table(rows, compile_s=None):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(to_markdown(rows, compile_s))
        return
    table = Table(title="softorder (NumPy/Numba): time as a ratio to np.argsort, same run")
    for col in ["operator", "shape", "np.argsort ms", "fwd / argsort", "fwd+vjp / argsort",
                "fwd / sort", "fwd+vjp / sort"]:
        table.add_column(col, justify="left" if col in ("operator", "shape") else "right")
    for r in rows:
        table.add_row(r["op"], r["shape"], f"{r['argsort_ms']:.3f}", f"{r['fwd_ratio']:.2f}",
                      f"{r['fwd_vjp_ratio']:.2f}", f"{r['fwd_sort_ratio']:.2f}",
                      f"{r['fwd_vjp_sort_ratio']:.2f}")
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    if compile_s:
        console.print(f"Import + first call: {compile_s['cold_s']:.1f} s with an empty Numba "
                      f"cache, {compile_s['cached_s']:.2f} s with the cache (new process).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, short timings")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-cost probe")
    parser.add_argument("--out", help="write the table as markdown to this file")
    parser.add_argument("--json", help="write the raw results as JSON to this file")
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = run(shapes, min_time=0.05 if args.quick else 0.3)
    comp = None if (args.no_compile or args.quick) else compile_cost()
    print_table(rows, comp)
    if args.out:
        with open(args.out, "w") as f:
            f.write(to_markdown(rows, comp) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "compile": comp}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
