"""PyTorch benchmark: each operator's time as a ratio to torch.sort in the same run.

    python benchmarks/bench_torch.py            # full table (a few minutes on 2 cores)
    python benchmarks/bench_torch.py --quick    # small shapes, seconds
    python benchmarks/bench_torch.py --out results.md --json results.json

Ratios, not seconds, are the result: the baseline (``torch.sort``, values and indices, on the
same float32 tensor) is timed in the same process, interleaved with the operator (one call of
each in turn), and each time is the minimum over the repeats: on a shared machine the minimum
is the least disturbed estimate of the intrinsic cost, and interleaving exposes both to the
same load. "fwd" is the
forward pass; "fwd+bwd" adds ``.backward()`` of a weighted sum (for torch.sort too: its
backward is a scatter). When ``import torchsort`` works, its ``soft_rank`` / ``soft_sort``
(l2 and kl) are timed the same way, as extra rows. CPU tensors unless ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

SHAPES = [(1, 1_000), (1, 100_000), (128, 1_000), (1024, 1_000), (64, 10_000)]
QUICK_SHAPES = [(1, 1_000), (16, 1_000)]


def operators():
    import softorder.torch as st

    def k_of(x):
        return max(1, x.shape[-1] // 10)

    ops = {
        "soft_rank l2": lambda x: st.soft_rank(x),
        "soft_rank kl": lambda x: st.soft_rank(x, regularization="kl"),
        "soft_rank p=4/3": lambda x: st.soft_rank(x, regularization="pnorm"),
        "soft_sort l2": lambda x: st.soft_sort(x),
        "soft_sort kl": lambda x: st.soft_sort(x, regularization="kl"),
        "topk_mask p=4/3": lambda x: st.soft_topk_mask(x, k_of(x)),
        "topk_magnitude p=4/3": lambda x: st.soft_topk_magnitude(x, k_of(x)),
    }
    try:
        import torchsort
    except ImportError:
        return ops
    ops.update({
        "torchsort soft_rank l2": lambda x: torchsort.soft_rank(x),
        "torchsort soft_rank kl": lambda x: torchsort.soft_rank(x, regularization="kl"),
        "torchsort soft_sort l2": lambda x: torchsort.soft_sort(x),
    })
    return ops


def paired(fns, min_time=0.2, max_repeat=200, sync=lambda: None):
    """Minimum wall time of each of ``fns``, called in turn (after a warm-up) until the round
    robin has filled ``min_time``."""
    for fn in fns:
        fn()
    sync()
    times = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < 5 or (time.perf_counter() - start < min_time
                                and len(times[0]) < max_repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
    return [float(np.min(ts)) for ts in times]


def run(shapes, min_time=0.2, device="cpu", progress=True):
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ops = operators()
    rows = []
    bar = None
    if progress:
        try:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("benchmarking", total=len(shapes) * len(ops))
        except ImportError:
            bar = None
    try:
        for shape in shapes:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(*shape, generator=gen).to(device)
            w = torch.randn(*shape, generator=gen).to(device)
            xg = x.clone().requires_grad_()

            def sort_fwd(x=x):
                torch.sort(x, dim=-1)

            def sort_both(xg=xg, w=w):
                (torch.sort(xg, dim=-1).values * w).sum().backward()

            for name, fwd in ops.items():
                def fwd_only(fwd=fwd, x=x):
                    with torch.no_grad():
                        fwd(x)

                def both(fwd=fwd, xg=xg, w=w):
                    (fwd(xg) * w).sum().backward()

                t_sort, t_sort_both, t_fwd, t_both = paired(
                    [sort_fwd, sort_both, fwd_only, both], min_time, sync=sync)
                rows.append({
                    "op": name, "shape": f"{shape[0]} x {shape[1]:.0e}" if shape[1] >= 1e5
                    else f"{shape[0]} x {shape[1]}",
                    "sort_ms": 1e3 * t_sort, "sort_bwd_ms": 1e3 * t_sort_both,
                    "fwd_ms": 1e3 * t_fwd, "fwd_bwd_ms": 1e3 * t_both,
                    "fwd_ratio": t_fwd / t_sort, "fwd_bwd_ratio": t_both / t_sort,
                    "fwd_bwd_vs_sort_bwd": t_both / t_sort_both,
                })
                if bar is not None:
                    bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return rows


COLUMNS = ["operator", "shape", "torch.sort ms", "fwd / sort", "fwd+bwd / sort",
           "fwd+bwd / (sort fwd+bwd)"]



def _cells(r):
    return [r["op"], r["shape"], f"{r['sort_ms']:.3f}", f"{r['fwd_ratio']:.2f}",
            f"{r['fwd_bwd_ratio']:.2f}", f"{r['fwd_bwd_vs_sort_bwd']:.2f}"]


def to_markdown(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * (len(COLUMNS) - 2)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def print_table(rows, title):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(to_markdown(rows))
        return
    table = Table(title=title)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("operator", "shape") else "right")
    for r in rows:
        table.add_row(*_cells(r))
    Console().print(table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, short timings")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", help="write the table as markdown to this file")
    parser.add_argument("--json", help="write the raw results as JSON to this file")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = run(shapes, min_time=0.05 if args.quick else 0.3, device=args.device)
    title = (f"softorder.torch ({args.device}, float32, {torch.get_num_threads()} torch "
             "threads): time as a ratio to torch.sort, same run")
    print_table(rows, title)
    if args.out:
        with open(args.out, "w") as f:
            f.write(to_markdown(rows) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "threads": torch.get_num_threads(), "rows": rows},
                      f, indent=1)
    return rows


if __name__ == "__main__":
    main()
