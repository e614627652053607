"""Runtime and peak memory of soft rank / soft sort against the O(n^2) relaxations, in PyTorch.

The sorting paper (Blondel et al. 2020, figure 4) claims O(n log n) time and O(n) memory with
exact derivatives: an order of magnitude faster than the optimal-transport (Sinkhorn) and
All-pairs relaxations, which run out of memory at a few thousand items. This script times, for n
from 100 to 1e5 and several batch sizes, the forward pass and the forward + backward pass of

* softorder.torch.soft_rank and soft_sort with ``regularization`` "l2" (the paper's rQ / sQ) and
  "kl" (rE / sE);
* the baselines of experiments/baselines.py: All-pairs sigmoid ranks and Sinkhorn (OT) ranks and
  sorts with their usual defaults (eps 1e-2, 100 iterations unrolled for the gradient);
* torch.sort (the hard sort, for scale).

A baseline whose predicted peak (``c * batch * n^2 * 4`` bytes, experiments/baselines.py) exceeds
``--mem-cap-mib`` is not run: the table says "OOM" and the plot marks it. Peak memory of every
call that runs is measured in-process: Linux's peak resident set (VmHWM) is reset before the call
(``/proc/self/clear_refs``) and read after it; the script re-executes itself with a fixed glibc
mmap threshold so freed buffers go back to the system and do not hide the next call's peak.

Usage:
  python experiments/runtime_memory.py --out results/runtime_memory [--quick] [--seed 0]
      [--sizes 100,1000,...] [--batches 1,16] [--mem-cap-mib 4096] [--device cpu]
"""

from __future__ import annotations

import os
import sys
import time

if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None and __name__ == "__main__":
    # A fixed threshold turns off glibc's dynamic one: big buffers are mmapped and unmapped on
    # free, so each call's peak RSS is its own (see the module docstring).
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import _harness as H
import numpy as np

# Peak-RSS probes (Linux /proc): the same ones `softorder bench` measures memory with.
from softorder.bench._frames import _reset_peak, _status_kib

NAME = "runtime_memory"
METHODS = ("soft_rank l2", "soft_rank kl", "soft_sort l2", "soft_sort kl",
           "allpairs rank", "ot rank", "ot sort", "torch.sort")
BASELINE_KIND = {"allpairs rank": "allpairs", "ot rank": "sinkhorn", "ot sort": "sinkhorn"}
MODES = ("forward", "forward+backward")


def make_fn(method: str):
    """The callable ``x -> y`` for a method name of METHODS."""
    import baselines as B
    import torch

    from softorder.torch import soft_rank, soft_sort

    if method.startswith("soft_"):
        op, reg = method.split()
        f = soft_rank if op == "soft_rank" else soft_sort
        return lambda x: f(x, regularization=reg, regularization_strength=1.0)
    if method == "allpairs rank":
        return lambda x: B.allpairs_soft_rank(x, tau=1.0)
    if method == "ot rank":
        return B.sinkhorn_soft_rank
    if method == "ot sort":
        return B.sinkhorn_soft_sort
    if method == "torch.sort":
        return lambda x: torch.sort(x, dim=-1).values
    raise ValueError(method)


def predicted_mib(method: str, n: int, batch: int, backward: bool) -> float:
    """Predicted peak extra memory (MiB): the n^2 model for baselines, O(n) for the others."""
    import baselines as B

    if method in BASELINE_KIND:
        return B.baseline_bytes(BASELINE_KIND[method], n, batch, backward=backward) / 2**20
    return 16 * batch * n * 8 / 2**20  # a few float64 row buffers: O(batch * n)


def measure(method: str, mode: str, n: int, batch: int, repeats: int, device: str,
            rng: np.random.Generator) -> dict:
    """Time (best of ``repeats``, after one warm-up call) and peak memory of one configuration."""
    import torch

    fn = make_fn(method)
    backward = mode == "forward+backward"
    x0 = torch.as_tensor(rng.standard_normal((batch, n)), dtype=torch.float32, device=device)

    def call():
        x = x0.detach().requires_grad_(backward)
        if backward:
            y = fn(x)
            (y * y).sum().backward()
        else:
            with torch.no_grad():
                y = fn(x)
        if device != "cpu":
            torch.cuda.synchronize()
        return y

    if method not in BASELINE_KIND:
        call()  # warm-up (Numba kernels, caches); the baselines are plain torch ops
    times, peaks = [], []
    for _ in range(repeats):
        if device == "cpu":
            before = _status_kib("VmRSS")
            reset = before is not None and _reset_peak()
        else:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
        if device == "cpu":
            hwm = _status_kib("VmHWM") if reset else None
            if hwm is not None and before is not None:
                peaks.append(max(0.0, (hwm - before) / 1024.0))
        else:
            peaks.append((torch.cuda.max_memory_allocated() - before) / 2**20)
    peak_mib = max(peaks) if peaks else None
    return {"seconds": float(min(times)), "peak_mib": peak_mib}


def run(args) -> dict:
    import torch

    rng = H.seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    configs = [(m, mode, b) for b in batches for mode in MODES for m in METHODS]
    rows = []
    for method, mode, batch in H.progress(configs, "runtime and memory", total=len(configs)):
        last = None  # (n, seconds) of the last size measured
        for n in sizes:
            pred = predicted_mib(method, n, batch, mode != "forward")
            row = {"method": method, "mode": mode, "batch": batch, "n": n,
                   "predicted_mib": pred, "seconds": None, "peak_mib": None}
            if method in BASELINE_KIND and pred > args.mem_cap_mib:
                row["status"] = "oom"
            elif last is not None and last[1] * (n / last[0]) ** (
                    2 if method in BASELINE_KIND else 1) > args.time_cap_s:
                row["status"] = "skipped (too slow)"  # predicted from the last size measured
            else:
                row.update(measure(method, mode, n, batch, args.repeats, args.device, rng))
                row["status"] = "ok"
                last = (n, row["seconds"])
            rows.append(row)
    return {"rows": rows, "sizes": sizes, "batches": batches, "mem_cap_mib": args.mem_cap_mib,
            "torch_threads": torch.get_num_threads(), "device": args.device}


def _get(rows, method, mode, batch, n):
    for r in rows:
        if (r["method"], r["mode"], r["batch"], r["n"]) == (method, mode, batch, n):
            return r
    return None


def summary(res: dict) -> dict:
    """Headline numbers: speed-up of soft_rank l2 over OT/All-pairs and where baselines OOM."""
    rows, out = res["rows"], {}
    for batch in res["batches"]:
        for mode in MODES:
            for base in ("ot rank", "allpairs rank"):
                ok = [r["n"] for r in rows if (r["method"], r["mode"], r["batch"]) ==
                      (base, mode, batch) and r["status"] == "ok"]
                key = f"{base} / soft_rank l2, {mode}, batch {batch}"
                if ok:
                    n = max(ok)
                    out[key] = {"n": n, "ratio": _get(rows, base, mode, batch, n)["seconds"]
                                / _get(rows, "soft_rank l2", mode, batch, n)["seconds"]}
                oom = [r["n"] for r in rows if (r["method"], r["mode"], r["batch"]) ==
                       (base, mode, batch) and r["status"] == "oom"]
                out[f"{base} first OOM n, {mode}, batch {batch}"] = min(oom) if oom else None
    return out


def plot(res: dict, batch: int):
    fig, axes = H.figure(ncols=3, size=(5.0, 3.8))
    styles = {"soft_rank l2": ("C0", "-o"), "soft_rank kl": ("C1", "-o"),
              "soft_sort l2": ("C2", "-s"), "soft_sort kl": ("C3", "-s"),
              "allpairs rank": ("C4", "--^"), "ot rank": ("C5", "--v"),
              "ot sort": ("C6", "--D"), "torch.sort": ("k", ":")}
    rows = [r for r in res["rows"] if r["batch"] == batch]
    for ax, mode in zip(axes[0][:2], MODES):
        top = max(r["seconds"] for r in rows if r["seconds"] is not None)
        for m in METHODS:
            color, st = styles[m]
            pts = [(r["n"], r["seconds"]) for r in rows
                   if r["method"] == m and r["mode"] == mode and r["seconds"] is not None]
            if pts:
                ax.plot(*zip(*pts), st, color=color, label=m, ms=4)
            oom = [r["n"] for r in rows if r["method"] == m and r["mode"] == mode
                   and r["status"] == "oom"]
            if oom:
                ax.plot(oom, [top * 2.0] * len(oom), "x", color=color, ms=8)
        ax.axhline(top * 2.0, color="0.7", lw=0.5)
        ax.text(res["sizes"][0], top * 2.3, "x = out of memory (cap "
                f"{res['mem_cap_mib']:g} MiB)", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("seconds per call")
        ax.set_title(f"{mode}, batch {batch}")
    axes[0][0].legend(fontsize=7)
    ax = axes[0][2]
    for m in METHODS:
        color, st = styles[m]
        pts = [(r["n"], max(r["peak_mib"], 1e-2)) for r in rows if r["method"] == m
               and r["mode"] == "forward+backward" and r["peak_mib"] is not None]
        if pts:
            ax.plot(*zip(*pts), st, color=color, label=m, ms=4)
    ax.axhline(res["mem_cap_mib"], color="r", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n")
    ax.set_ylabel("peak extra memory (MiB)")
    ax.set_title(f"forward+backward peak memory, batch {batch}")
    fig.tight_layout()
    return fig


def table(res: dict) -> list[dict]:
    out = []
    for batch in res["batches"]:
        for mode in MODES:
            for m in METHODS:
                row = {"method": m, "mode": mode, "batch": batch}
                for n in res["sizes"]:
                    r = _get(res["rows"], m, mode, batch, n)
                    if r["status"] == "oom":
                        cell = "OOM"
                    elif r["status"] != "ok":
                        cell = "too slow"
                    elif r["seconds"] is None:
                        cell = "-"
                    else:
                        peak = "?" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
                        cell = f"{1e3 * r['seconds']:.3g} ms / {peak} MiB"
                    row[f"n={n:g}"] = cell
                out.append(row)
    return out


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None, help="comma-separated n (default 100 ... 1e5)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes")
    ap.add_argument("--mem-cap-mib", type=float, default=None,
                    help="baselines predicted to need more are not run (default 4096, quick 512)")
    ap.add_argument("--time-cap-s", type=float, default=None,
                    help="skip a size whose predicted time per call (last measured size, scaled "
                         "as n^2 for the baselines, n otherwise) exceeds this (default 20)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: stable timings on a shared machine)")
    args = ap.parse_args(argv)
    q = args.quick
    args.sizes = args.sizes or ("100,1000,10000" if q else "100,300,1000,3000,10000,30000,100000")
    args.batches = args.batches or ("1" if q else "1,16,128")
    args.mem_cap_mib = args.mem_cap_mib or (512.0 if q else 4096.0)
    args.time_cap_s = args.time_cap_s or (2.0 if q else 20.0)
    args.repeats = args.repeats or (1 if q else 2)
    report = H.Report(NAME, args)
    res = run(args)
    res["summary"] = summary(res)
    batch = res["batches"][-1] if len(res["batches"]) < 3 else res["batches"][1]
    lines = [f"Best-of-{args.repeats} seconds per call and measured peak extra memory (RSS) on "
             f"{args.device} ({res['torch_threads']} torch threads), float32. OOM: predicted "
             f"peak above the {args.mem_cap_mib:g} MiB cap, not run."]
    for k, v in res["summary"].items():
        if isinstance(v, dict):
            lines.append(f"- {k}: {v['ratio']:.1f}x at n={v['n']}")
        elif v is not None:
            lines.append(f"- {k}: {v}")
    report.save(res, table=table(res), text="\n".join(lines), figure=plot(res, batch))


if __name__ == "__main__":
    main()
