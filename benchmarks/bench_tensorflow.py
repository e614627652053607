"""Time softorder.tensorflow against tf.sort / tf.math.top_k (CPU), eager and in tf.function.

Usage: python benchmarks/bench_tensorflow.py [--m 128] [--n 1000] [--repeat 20]
Prints milliseconds per call (median) and the ratio to tf.sort in the same mode.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import softorder.tensorflow as stf  # noqa: E402


def _median_ms(fn, x, repeat):
    fn(x)  # warm up (tracing, Numba compilation)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(x)
        _ = out.numpy() if hasattr(out, "numpy") else out
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _with_grad(op):
    def f(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = op(x)
        return tape.gradient(y, x, output_gradients=tf.ones_like(y))

    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=128)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    x = tf.constant(np.random.default_rng(0).normal(size=(args.m, args.n)), tf.float32)
    k = max(1, args.n // 10)
    ops = {
        "tf.sort": lambda x: tf.sort(x, axis=-1),
        "tf.math.top_k": lambda x: tf.math.top_k(x, k).values,
        "soft_sort l2": lambda x: stf.soft_sort(x),
        "soft_rank l2": lambda x: stf.soft_rank(x),
        "soft_rank kl": lambda x: stf.soft_rank(x, regularization="kl"),
        f"soft_topk_mask k={k}": lambda x: stf.soft_topk_mask(x, k),
        f"soft_topk_magnitude k={k}": lambda x: stf.soft_topk_magnitude(x, k),
    }
    print(f"x: float32 [{args.m}, {args.n}], median of {args.repeat}, ms per call "
          "(ratio to tf.sort in the same column)")
    cols = {
        "eager fwd": lambda op: op,
        "tf.function fwd": lambda op: tf.function(op),
        "eager fwd+bwd": _with_grad,
        "tf.function fwd+bwd": lambda op: tf.function(_with_grad(op)),
    }
    table = {name: {c: _median_ms(make(op), x, args.repeat) for c, make in cols.items()}
             for name, op in ops.items()}
    print(f"{'op':28s}" + "".join(f"{c:>26s}" for c in cols))
    for name, row in table.items():
        cells = "".join(f"{row[c]:>14.2f} ({row[c] / table['tf.sort'][c]:6.1f}x)" + " " * 2
                        for c in cols)
        print(f"{name:28s}{cells}")


if __name__ == "__main__":
    main()
