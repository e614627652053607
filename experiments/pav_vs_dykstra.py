"""PAV vs Dykstra for the sparse top-k operators (Sander et al., ICML 2023, Section 5).

The top-k operators reduce to an isotonic regression. PAV solves it exactly in O(n) after the
sort (sequential: a Numba kernel on CPU); Dykstra alternates two projections onto disjoint pair
constraints (O(n) and fully parallel per sweep) and converges to the same solution, the paper's
"GPU/TPU-friendly" solver. Dykstra solves the quadratic case only: p = 2 (the library refuses
``solver="dykstra"`` with p = 4/3, and this script records that refusal).

Part 1, error vs iterations: ``max |Dykstra - PAV|`` of `soft_topk_mask` and
`soft_topk_magnitude` (NumPy) after a fixed number of sweeps. The sweep count is the public
``max_iter`` option; ``tol=0`` makes every run do exactly ``max_iter`` sweeps (unless a sweep
changes nothing at all), so the core function need not be driven directly.

Part 2, time vs n and vs batch on CPU, forward pass, each framework's own front end (NumPy,
PyTorch, JAX under ``jit``), both solvers at the library's defaults (``max_iter=1000``,
``tol=1e-9``) and Dykstra with one sweep (its floor), with Dykstra's error at the defaults.

Part 3, the same timing on a CUDA GPU (PyTorch), only where ``torch.cuda.is_available()``.

Run: ``python experiments/pav_vs_dykstra.py [--quick] [--seed S] [--out DIR]``.
"""

from __future__ import annotations

import time

import _harness as H
import numpy as np

NAME = "pav_vs_dykstra"
OPS = ("soft_topk_mask", "soft_topk_magnitude")


def timeit(fn, reps: int, budget: float = 1.0) -> float:
    """Median wall time of ``fn()`` over up to ``reps`` calls (fewer past ``budget`` seconds)."""
    fn()  # warm up (compilation, caches)
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget:
            break
    return float(np.median(times))


def error_vs_iterations(rng, ns, strengths, iters, batch):
    """``max |Dykstra(max_iter=it, tol=0) - PAV|`` for each op, n, strength (p = 2)."""
    import softorder.numpy as so

    curves = []
    configs = [(op, n, lam) for op in OPS for n in ns for lam in strengths]
    for op, n, lam in H.progress(configs, "error vs iterations"):
        f = getattr(so, op)
        x = rng.standard_normal((batch, n))
        k = max(1, n // 10)
        ref = f(x, k, p=2, regularization_strength=lam)
        # The most fractional entries in a row: in sorted order they form the PAV block that
        # Dykstra must equalise by passing averages along it (its sweeps grow with its length).
        # Fractional: 0 < y < 1 (mask), 0 < |y| < |x| (magnitude: shrunk, not kept whole).
        top = 1.0 - 1e-12 if op == "soft_topk_mask" else np.abs(x) - 1e-12
        frac = (np.abs(ref) > 0) & (np.abs(ref) < top)
        block = int(frac.sum(axis=1).max())
        errs = []
        for it in iters:
            y = f(x, k, p=2, regularization_strength=lam, solver="dykstra", max_iter=it, tol=0.0)
            errs.append(float(np.abs(y - ref).max()))
        reach = [it for it, e in zip(iters, errs, strict=True) if e <= 1e-6]
        curves.append({"op": op, "n": n, "k": k, "strength": lam, "batch": batch,
                       "max_fractional_entries": block, "iterations": list(iters),
                       "max_abs_error": errs, "iters_to_1e-6": reach[0] if reach else None})
    return curves


def p43_refused() -> dict:
    """Dykstra with p = 4/3: the library's answer (a ValueError naming p)."""
    import softorder.numpy as so

    out = {}
    for op in OPS:
        try:
            getattr(so, op)(np.zeros((1, 4)), 1, p=4 / 3, solver="dykstra")
            out[op] = "accepted"
        except ValueError as e:
            out[op] = f"ValueError: {e}"
    return out


def _makers(framework, device="cpu"):
    """``make(x_numpy, op, solver, max_iter) -> zero-argument callable`` for a framework."""
    if framework == "numpy":
        import softorder.numpy as so

        def make(x, op, solver, max_iter, lam, k):
            f = getattr(so, op)
            return lambda: f(x, k, p=2, regularization_strength=lam, solver=solver,
                             max_iter=max_iter)
        return make, lambda y: np.asarray(y)
    if framework == "torch":
        import torch

        import softorder.torch as st

        def make(x, op, solver, max_iter, lam, k):
            f = getattr(st, op)
            xt = torch.as_tensor(x, device=device)

            def run():
                y = f(xt, k, p=2, regularization_strength=lam, solver=solver, max_iter=max_iter)
                if device != "cpu":
                    torch.cuda.synchronize()
                return y
            return run
        return make, lambda y: y.detach().cpu().numpy()
    if framework == "jax":
        import jax

        import softorder.jax as sj

        jax.config.update("jax_enable_x64", True)

        def make(x, op, solver, max_iter, lam, k):
            f = getattr(sj, op)
            g = jax.jit(lambda v: f(v, k, p=2, regularization_strength=lam, solver=solver,
                                    max_iter=max_iter))
            xj = jax.numpy.asarray(x)
            return lambda: g(xj).block_until_ready()
        return make, lambda y: np.asarray(y)
    raise ValueError(framework)


def timing(rng, frameworks, shapes, reps, lam, op="soft_topk_mask", device="cpu"):
    """Rows (framework, batch, n, t_pav, t_dykstra, t_dykstra_1sweep, dykstra_error)."""
    rows = []
    jobs = [(fw, b, n) for fw in frameworks for (b, n) in shapes]
    for fw, b, n in H.progress(jobs, f"timing on {device}"):
        try:
            make, to_np = _makers(fw, device)
        except ImportError as e:  # a framework that is not installed: say so, go on
            rows.append({"framework": fw, "batch": b, "n": n, "error": str(e)})
            continue
        x = rng.standard_normal((b, n))
        k = max(1, n // 10)
        pav = make(x, op, "pav", 1000, lam, k)
        dyk = make(x, op, "dykstra", 1000, lam, k)
        one = make(x, op, "dykstra", 1, lam, k)
        err = float(np.abs(to_np(dyk()) - to_np(pav())).max())
        rows.append({"framework": fw, "device": device, "batch": b, "n": n, "k": k,
                     "t_pav_ms": 1e3 * timeit(pav, reps),
                     "t_dykstra_ms": 1e3 * timeit(dyk, reps),
                     "t_dykstra_1sweep_ms": 1e3 * timeit(one, reps),
                     "dykstra_max_abs_error": err})
    return rows


def crossover(rows, key, fixed):
    """Per framework: the sizes (``key``: n or batch) where Dykstra at the defaults, and
    Dykstra with one sweep, is faster than PAV (empty: never in the range measured)."""
    out = {}
    for fw in sorted({r["framework"] for r in rows if "t_pav_ms" in r}):
        rs = sorted((r for r in rows if r["framework"] == fw and "t_pav_ms" in r
                     and r[fixed[0]] == fixed[1]), key=lambda r: r[key])
        out[fw] = {"dykstra_defaults_faster_at": [r[key] for r in rs
                                                  if r["t_dykstra_ms"] < r["t_pav_ms"]],
                   "one_sweep_faster_at": [r[key] for r in rs
                                           if r["t_dykstra_1sweep_ms"] < r["t_pav_ms"]],
                   "pav_over_dykstra_ratio": [r["t_pav_ms"] / r["t_dykstra_ms"] for r in rs],
                   key: [r[key] for r in rs]}
    return out


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--frameworks", default="numpy,torch,jax",
                    help="comma-separated CPU frameworks to time (default numpy,torch,jax)")
    args = ap.parse_args(argv)
    rng = H.seed_everything(args.seed)
    rep = H.Report(NAME, args)
    frameworks = [f for f in args.frameworks.split(",") if f]
    lam = 0.1
    if args.quick:
        ns_err, iters, batch_err = (100,), (1, 3, 10, 30, 100, 300, 1000), 8
        by_n = [(8, n) for n in (100, 1000)]
        by_batch = [(b, 100) for b in (1, 256)]
        reps = 2
    else:
        ns_err, iters, batch_err = (100, 1000), (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000,
                                                  2000, 5000), 32
        by_n = [(8, n) for n in (100, 1000, 10000, 30000)]
        by_batch = [(b, 100) for b in (1, 16, 256, 4096)]
        reps = 7
    curves = error_vs_iterations(rng, ns_err, (0.1, 1.0), iters, batch_err)
    refused = p43_refused()
    rows_n = timing(rng, frameworks, by_n, reps, lam)
    rows_b = timing(rng, frameworks, [s for s in by_batch if s not in by_n], reps, lam)
    rows_b = sorted(rows_b + [r for r in rows_n if r["n"] == by_batch[0][1]],
                    key=lambda r: (r["framework"], r["batch"]))
    cross_n = crossover(rows_n, "n", ("batch", by_n[0][0]))
    cross_b = crossover(rows_b, "batch", ("n", by_batch[0][1]))

    gpu: dict = {"available": False, "reason": "torch.cuda.is_available() is False"}
    try:
        import torch

        if torch.cuda.is_available():
            g = timing(rng, ["torch"], by_n + by_batch, reps, lam, device="cuda")
            gpu = {"available": True, "device": torch.cuda.get_device_name(0), "rows": g,
                   "crossover_n": crossover(g, "n", ("batch", by_n[0][0])),
                   "crossover_batch": crossover(g, "batch", ("n", by_batch[0][1]))}
    except ImportError:
        gpu = {"available": False, "reason": "torch not installed"}

    fig, axes = H.figure(3, 1, size=(4.6, 3.6))
    ax = axes[0, 0]
    for c in curves:
        e = np.maximum(np.array(c["max_abs_error"]), 1e-16)
        ax.loglog(c["iterations"], e, marker=".", ls="-" if c["op"] == OPS[0] else "--",
                  label=f"{c['op'].replace('soft_topk_', '')} n={c['n']} eps={c['strength']}")
    ax.set(xlabel="Dykstra sweeps (max_iter, tol=0)", ylabel="max |Dykstra - PAV|",
           title="error vs iterations (p=2)")
    ax.legend(fontsize=6)
    for ax, rows, key, title in ((axes[0, 1], rows_n, "n", f"batch {by_n[0][0]}"),
                                 (axes[0, 2], rows_b, "batch", f"n {by_batch[0][1]}")):
        for i, fw in enumerate(sorted({r["framework"] for r in rows if "t_pav_ms" in r})):
            rs = [r for r in rows if r["framework"] == fw and "t_pav_ms" in r]
            xs = [r[key] for r in rs]
            col = f"C{i}"
            ax.loglog(xs, [r["t_pav_ms"] for r in rs], color=col, marker="o", label=f"{fw} PAV")
            ax.loglog(xs, [r["t_dykstra_ms"] for r in rs], color=col, marker="x", ls="--",
                      label=f"{fw} Dykstra (defaults)")
            ax.loglog(xs, [r["t_dykstra_1sweep_ms"] for r in rs], color=col, ls=":",
                      label=f"{fw} Dykstra 1 sweep")
        ax.set(xlabel=key, ylabel="forward time [ms]", title=f"soft_topk_mask, {title}, CPU")
        ax.legend(fontsize=6)
    fig.tight_layout()

    table = []
    for r in rows_n + [r for r in rows_b if r not in rows_n]:
        if "t_pav_ms" in r:
            table.append({"framework": r["framework"], "batch": r["batch"], "n": r["n"],
                          "PAV ms": r["t_pav_ms"], "Dykstra ms": r["t_dykstra_ms"],
                          "1 sweep ms": r["t_dykstra_1sweep_ms"],
                          "PAV/Dykstra": r["t_pav_ms"] / r["t_dykstra_ms"],
                          "Dykstra err": r["dykstra_max_abs_error"]})
    conv = "; ".join(f"{c['op'].replace('soft_topk_', '')} n={c['n']} eps={c['strength']}: "
                     f"{c['iters_to_1e-6'] or f'>{iters[-1]}'} sweeps "
                     f"(fractional entries {c['max_fractional_entries']})" for c in curves)
    cx = "; ".join(f"{fw}: n {v['dykstra_defaults_faster_at'] or 'none'} (one sweep: "
                   f"{v['one_sweep_faster_at'] or 'none'}), batch "
                   f"{cross_b[fw]['dykstra_defaults_faster_at'] or 'none'} (one sweep: "
                   f"{cross_b[fw]['one_sweep_faster_at'] or 'none'})"
                   for fw, v in cross_n.items())
    text = (f"Sweeps for Dykstra to reach max error 1e-6 against PAV (p=2): {conv}. "
            f"p=4/3: Dykstra refused ({refused[OPS[0]][:60]}...). "
            f"Sizes where Dykstra (defaults max_iter=1000, tol=1e-9; and a single sweep) is "
            f"faster than PAV, n at batch {by_n[0][0]} and batch at n {by_batch[0][1]}: {cx}. "
            "GPU: "
            + (gpu.get("device", "") if gpu["available"] else f"not run ({gpu['reason']})")
            + ". CPU timings on a shared, loaded 2-core machine: compare ratios within a run.")
    rep.save({"error_vs_iterations": curves, "p43_dykstra": refused,
              "timing_vs_n": rows_n, "timing_vs_batch": rows_b,
              "crossover_vs_n": cross_n, "crossover_vs_batch": cross_b, "gpu": gpu,
              "strength_for_timing": lam},
             table=table, text=text, figure=fig)


if __name__ == "__main__":
    main()
