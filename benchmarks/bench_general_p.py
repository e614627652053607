"""General p (issue 8, item 4): p-norm forward time for p outside {2, 4/3} against p = 4/3.

    PYTHONPATH=src python benchmarks/bench_general_p.py          # n = 1e5 and 1e6 (< 2 min)
    PYTHONPATH=src python benchmarks/bench_general_p.py --n 1000 4000 16000

One row of n standard normal entries, default strength (1.0), ``softorder.numpy``; the
median of a few calls after a warm-up (which also compiles). p = 1.5 and p = 3 have no
closed-form block equation: they run the threshold-decomposition PAV (`pav._topdown`).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    import softorder.numpy as so

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ps = [("4/3", 4 / 3), ("3", 3.0), ("1.5", 1.5)]
    print("| operator | n | " + " | ".join(f"p={name} (s)" for name, _ in ps)
          + " | p=3 / p=4/3 | p=1.5 / p=4/3 |")
    print("|---|---|" + "---|" * (len(ps) + 2))
    rng = np.random.default_rng(0)
    for n in args.n:
        x = rng.normal(size=(1, n))
        ops = {
            "soft_rank": lambda p, x=x: so.soft_rank(x, regularization="pnorm", p=p),
            "soft_topk_mask": lambda p, x=x, k=n // 10: so.soft_topk_mask(x, k, p=p),
        }
        for name, op in ops.items():
            t = [median_time(lambda op=op, p=p: op(p), args.repeat) for _, p in ps]
            print(f"| {name} | {n:.0e} | " + " | ".join(f"{v:.4f}" for v in t)
                  + f" | {t[1] / t[0]:.2f} | {t[2] / t[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
