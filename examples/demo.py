"""softorder in a few minutes: every operator, hard vs soft, the speed table, the experiments.

After the operators and the speed table it runs the quick version of each of the papers'
experiments (experiments/*.py) and says where their results are.

Run with ``make demo``. Pass ``--quick`` for a short benchmark, ``--no-bench`` to skip it, and
``--plot FILE.png`` to save a picture of the soft operators as the strength grows;
``--no-experiments`` skips the experiments.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from softorder.numpy import (  # noqa: E402
    hard_rank,
    hard_sort,
    hard_topk_magnitude,
    hard_topk_mask,
    soft_rank,
    soft_rank_fwd,
    soft_sort,
    soft_topk_magnitude,
    soft_topk_mask,
    vjp,
)


def show(title, hard, soft_fn, strengths):
    print(f"\n{title}")
    print(f"  {'hard':>12}: {hard}")
    for s in strengths:
        print(f"  {'strength ' + format(s, 'g'):>12}: {soft_fn(s)}")


def worked_examples():
    x = np.array([2.9, 0.1, 1.2, -0.4, 3.0])
    print("x =", x)
    show("soft_rank (l2; ascending, rank 1 = smallest)", hard_rank(x),
         lambda s: soft_rank(x, regularization_strength=s), [0.05, 0.5, 2.0, 100.0])
    show("soft_rank (kl)", hard_rank(x),
         lambda s: soft_rank(x, regularization="kl", regularization_strength=s), [0.05, 0.5, 2.0])
    show("soft_sort (l2; ascending)", hard_sort(x),
         lambda s: soft_sort(x, regularization_strength=s), [0.05, 0.5, 2.0, 100.0])
    show("soft_topk_mask (k=2, p=4/3: sparse and smooth)", hard_topk_mask(x, 2),
         lambda s: soft_topk_mask(x, 2, regularization_strength=s), [0.01, 0.5, 2.0, 10.0])
    show("soft_topk_magnitude (k=2, p=4/3)", hard_topk_magnitude(x, 2),
         lambda s: soft_topk_magnitude(x, 2, regularization_strength=s), [0.01, 0.5, 2.0])

    print("\nGradients in O(n): d(sum of squared soft ranks)/dx at strength 0.5")
    r, res = soft_rank_fwd(x, regularization_strength=0.5)
    print("  ", vjp(res, 2 * r))


def plot(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([2.9, 0.1, 1.2, -0.4, 3.0])
    strengths = np.logspace(-2, 1.5, 200)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, fn, ax in [
        ("soft_rank (l2)", lambda s: soft_rank(x, regularization_strength=s), axes[0]),
        ("soft_sort (l2)", lambda s: soft_sort(x, regularization_strength=s), axes[1]),
        ("soft_topk_mask (k=2, p=4/3)", lambda s: soft_topk_mask(x, 2, regularization_strength=s),
         axes[2]),
    ]:
        ys = np.array([fn(s) for s in strengths])
        for i in range(len(x)):
            label = f"sorted[{i}]" if "sort" in name else f"x={x[i]:g}"
            ax.plot(strengths, ys[:, i], label=label)
        ax.legend(fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("regularization_strength")
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nsaved {path}")


EXPERIMENTS = ["label_ranking", "soft_lts", "topk_classification", "runtime_memory",
               "pav_vs_dykstra", "moe_router", "pruning", "vit_topk"]


def run_experiments(names, out_root):
    """Each experiment's --quick version (experiments/NAME.py), results under out_root/NAME."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = os.path.join(root, "..", "shared", "datasets", "label_ranking")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(root, "src"), os.path.join(root, "experiments"),
                                         env.get("PYTHONPATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    failed = []
    for name in names:
        out = os.path.join(out_root, name)
        cmd = [sys.executable, os.path.join(root, "experiments", f"{name}.py"), "--quick",
               "--out", out]
        if name == "label_ranking" and os.path.isdir(data):
            cmd += ["--data", data]
        print(f"\n== experiments/{name}.py --quick --out {out}", flush=True)
        if subprocess.run(cmd, env=env).returncode != 0:
            failed.append(name)
    print(f"\nQuick experiment results (results.json, results.md and a plot each) are in "
          f"{os.path.abspath(out_root)}; docs/experiments/ has the full runs.")
    if failed:
        raise SystemExit(f"experiments that failed: {', '.join(failed)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short benchmark")
    parser.add_argument("--no-bench", action="store_true", help="skip the benchmark")
    parser.add_argument("--plot", help="save a plot of the operators against the strength")
    parser.add_argument("--no-experiments", action="store_true",
                        help="skip the quick versions of the papers' experiments")
    parser.add_argument("--experiments-out", default="results",
                        help="folder for the experiments' results (default: results/)")
    args = parser.parse_args(argv)
    with np.printoptions(precision=3, suppress=True):
        worked_examples()
    if args.plot:
        plot(args.plot)
    if not args.no_bench:
        import bench_numpy

        print("\nBenchmark (ratios to np.argsort in the same run; `make bench` for the full one)")
        bench_numpy.main(["--quick"] if args.quick else ["--no-compile"])
    if not args.no_experiments:
        print("\nThe papers' experiments, quick versions (a few minutes on 2 cores)")
        run_experiments(EXPERIMENTS, args.experiments_out)


if __name__ == "__main__":
    main()
