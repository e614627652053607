"""GPU benchmark: every softorder operator against the framework's sort, on one device.

Forward and forward+backward (the gradient of ``sum(y * g)``) of every operator of
`softorder.bench` (sorts, ranks, top-k masks and magnitudes for l2 / kl / p = 4/3, PAV and
Dykstra, isotonic regression) at batch 1, 128, 1024, 8192 and n = 100, 1e3, 1e4, 1e5, as ratios
to ``torch.sort`` (softorder.torch and torchsort, when installed) and to ``jnp.sort``
(softorder.jax, its default backend on the device). Also the two Triton PAV kernels alone
(one program per row vs the chunked parallel one, l2 and kl) as ratios to the sort's forward,
the data `triton_parallel.use_parallel`'s thresholds should be set from.

Timing: torch cells with CUDA events after warm-up calls (best of the repeats); JAX cells with
``block_until_ready`` and the host clock (JAX has no event API). Cells whose batch x n exceeds
``--max-elements`` are skipped ("memory"); once a method takes more than ``--max-call-s`` per
call its larger cells are skipped ("slow"); when ``--budget-s`` is spent the remaining cells are
marked "budget". The markdown table says which.

Usage (the device check, ``benchmarks/gpu_check.sh``, runs the first):

    python benchmarks/bench_gpu.py --device cuda --budget-s 240 --out DIR
    python benchmarks/bench_gpu.py --device cpu --quick   # the same code on CPU, tiny sizes,
                                                           # Triton cells under the interpreter

Writes ``bench_gpu.md`` (a table ready for docs/benchmarks.md) and ``bench_gpu.json`` to
``--out`` (default: ``$OUT`` if set, else benchmarks/results/gpu).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

BATCHES = (1, 128, 1024, 8192)
SIZES = (100, 1000, 10_000, 100_000)
QUICK_SHAPES = ((2, 12),)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes and few repeats (a test of the script; on CPU the Triton "
                        "kernels run under TRITON_INTERPRET=1)")
    p.add_argument("--out", default=None)
    p.add_argument("--budget-s", type=float, default=240.0,
                   help="stop timing new cells after this many seconds")
    p.add_argument("--max-call-s", type=float, default=0.5,
                   help="skip a method's larger cells once one call takes longer")
    p.add_argument("--max-elements", type=int, default=2**27,
                   help="skip cells with more than this many elements (batch x n)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    return p.parse_args(argv)


class Timer:
    """Best-of-N time of a callable in ms: CUDA events on CUDA, the host clock otherwise."""

    def __init__(self, device, repeats, warmup=2):
        self.device, self.repeats, self.warmup = device, repeats, warmup

    def __call__(self, fn, sync):
        for _ in range(self.warmup):
            sync(fn())
        best = float("inf")
        spent = 0.0
        for _ in range(self.repeats):
            if self.device == "cuda":
                import torch

                a = torch.cuda.Event(enable_timing=True)
                b = torch.cuda.Event(enable_timing=True)
                a.record()
                sync(fn())
                b.record()
                torch.cuda.synchronize()
                ms = a.elapsed_time(b)
            else:
                t0 = time.perf_counter()
                sync(fn())
                ms = (time.perf_counter() - t0) * 1e3
            best = min(best, ms)
            spent += ms
            if spent > 200.0:  # enough for a best-of on slow cells
                break
        return best


# --------------------------------------------------------------------------------------------
# Methods: name -> builder(x, k) returning (forward, forward_backward) callables.


def _torch_methods(quick):
    import torch

    import softorder.torch as st
    from softorder.bench._cases import _SOFTORDER_OPS, QUICK_VARIANTS, _values, installed

    def sort_floor(x, k):
        xg = x.detach().clone().requires_grad_(True)
        g = torch.randn_like(x)

        def fb():
            y = torch.sort(xg, dim=-1).values
            (gx,) = torch.autograd.grad(y, xg, g)
            return gx

        return (lambda: torch.sort(x, dim=-1).values), fb

    def wrap(call):
        def build(x, k):
            xg = x.detach().clone().requires_grad_(True)
            g = torch.randn_like(x)

            def fb():
                y = call(xg, k)
                (gx,) = torch.autograd.grad(y, xg, g)
                return gx

            return (lambda: call(x, k)), fb

        return build

    methods = {"torch.sort": sort_floor}
    for op, variant, call in _SOFTORDER_OPS:
        if quick and (op, variant) not in QUICK_VARIANTS:
            continue
        methods[f"softorder {op} {variant}"] = wrap(
            lambda x, k, call=call: _values(call(st, x, k)))
    if installed("torchsort"):
        import torchsort

        for op in ("rank", "sort"):
            f = torchsort.soft_rank if op == "rank" else torchsort.soft_sort
            methods[f"torchsort {op} l2"] = wrap(lambda x, k, f=f: f(x))
    return methods


def _kernel_methods(quick):
    """The Triton PAV kernels alone, on sorted-descending rows (forward only)."""
    import torch

    from softorder._src.isotonic import triton_parallel as TPar
    from softorder._src.isotonic import triton_pav as TSeq
    from softorder._src.isotonic.regularizers import KIND_KL, KIND_L2

    def build(kind, parallel):
        def b(x, k):
            s = -torch.sort(-x, dim=-1).values
            n = x.shape[-1]
            w = torch.arange(n, 0, -1, dtype=x.dtype, device=x.device).expand_as(x)
            cw = torch.ones_like(x)
            if parallel:
                kw = {"chunk": 4} if quick else {}
                return (lambda: TPar.pav_batch_triton_parallel(
                    s, w, cw, kind, 1.0, 1.0, False, kind == KIND_KL, **kw)[0]), None
            return (lambda: TSeq.pav_batch_triton(
                s, w, cw, kind, 1.0, 1.0, False, kind == KIND_KL)[0]), None
        return b

    return {
        "triton pav l2 sequential": build(KIND_L2, False),
        "triton pav l2 parallel": build(KIND_L2, True),
        "triton pav kl sequential": build(KIND_KL, False),
        "triton pav kl parallel": build(KIND_KL, True),
    }


def _jax_methods(quick):
    import jax
    import jax.numpy as jnp

    import softorder.jax as sj
    from softorder.bench._cases import _SOFTORDER_OPS, QUICK_COMPILED, _values

    backend = sj.default_backend()

    def wrap(call):
        def build(x, k):
            fwd = jax.jit(lambda a: _values(call(a, k)))
            g = jnp.ones_like(x)
            fb = jax.jit(jax.grad(lambda a: jnp.sum(_values(call(a, k)) * g)))
            return (lambda: fwd(x)), (lambda: fb(x))

        return build

    methods = {"jnp.sort": wrap(lambda a, k: jnp.sort(a, axis=-1))}
    for op, variant, call in _SOFTORDER_OPS:
        if quick and (op, variant) not in QUICK_COMPILED:
            continue
        methods[f"softorder.jax[{backend}] {op} {variant}"] = wrap(
            lambda a, k, call=call: call(sj, a, k, backend=backend))
    return methods


# --------------------------------------------------------------------------------------------
# The grid.


def _grid(args):
    if args.quick:
        return list(QUICK_SHAPES)
    return [(b, n) for b in BATCHES for n in SIZES]


def _run_table(title, floor, methods, make_x, sync, args, timer, t_start, status, share):
    """Time every method on every shape; returns the table's rows (cells: dicts).

    The table may use up to ``share`` of ``--budget-s`` past what earlier tables used."""
    t_end = min(t_start + args.budget_s, time.monotonic() + share * args.budget_s)
    shapes = _grid(args)
    rows = {name: {} for name in methods}
    slow = set()
    for b, n in shapes:
        key = f"{b} x {n}"
        if b * n > args.max_elements:
            for name in methods:
                rows[name][key] = "memory"
            continue
        x = make_x(b, n)
        k = max(1, n // 10)
        for name, build in methods.items():
            if time.monotonic() > t_end:
                rows[name][key] = "budget"
                continue
            if name in slow:
                rows[name][key] = "slow"
                continue
            try:
                fwd, fb = build(x, k)
                t_f = timer(fwd, sync)
                t_b = timer(fb, sync) if fb is not None else None
            except Exception as e:  # noqa: BLE001 - a failing cell is reported, not fatal
                rows[name][key] = f"error: {type(e).__name__}: {str(e)[:80]}"
                status["errors"] += 1
                continue
            rows[name][key] = {"fwd_ms": t_f, "fb_ms": t_b}
            if max(t_f, t_b or 0.0) > args.max_call_s * 1e3:
                slow.add(name)
        status["cells"] += 1
    return {"title": title, "floor": floor, "shapes": [f"{b} x {n}" for b, n in shapes],
            "rows": rows}


def _fmt_table(tab):
    floor = tab["rows"][tab["floor"]]
    cols = tab["shapes"]
    out = [f"### {tab['title']}", "",
           f"Cells: forward / forward+backward time as a ratio to `{tab['floor']}` (its own "
           "forward / forward+backward) in the same run; its row gives its times in ms. "
           "memory: batch x n above --max-elements; slow: a smaller cell of this method took "
           "longer than --max-call-s; budget: the time budget ran out; -: no backward.", "",
           "| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, cells in tab["rows"].items():
        line = []
        for c in cols:
            v = cells.get(c, "")
            f = floor.get(c)
            if not isinstance(v, dict):
                line.append(str(v))
            elif name == tab["floor"]:
                line.append(f"{v['fwd_ms']:.3g} / {v['fb_ms']:.3g} ms")
            elif not isinstance(f, dict):
                line.append(f"{v['fwd_ms']:.3g} / {v['fb_ms'] or 0:.3g} ms (no floor)")
            else:
                fb = "-" if v["fb_ms"] is None else f"{v['fb_ms'] / f['fb_ms']:.2f}"
                line.append(f"{v['fwd_ms'] / f['fwd_ms']:.2f} / {fb}")
        out.append(f"| {name} | " + " | ".join(line) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    args = _parse(argv)
    if args.quick:
        args.repeats = 1
    if args.device == "cpu" and args.quick:
        # The Triton cells on CPU: the interpreter, switched on before any kernel is decorated.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    out = Path(args.out or os.environ.get("OUT") or Path(__file__).parent / "results" / "gpu")
    out.mkdir(parents=True, exist_ok=True)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device (use --device cpu --quick to test the script)")
        return 2
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    timer = Timer(args.device, args.repeats, warmup=0 if args.quick else 2)
    t_start = time.monotonic()
    status = {"cells": 0, "errors": 0}
    gen = torch.Generator(device="cpu").manual_seed(0)

    def make_x(b, n):
        return torch.randn(b, n, generator=gen, dtype=dtype).to(dev)

    def tsync(y):
        if args.device == "cuda":
            torch.cuda.synchronize()
        return y

    tables = [
        _run_table(f"softorder.torch, {args.device}, {args.dtype}", "torch.sort",
                   _torch_methods(args.quick), make_x, tsync, args, timer, t_start, status, 0.5),
    ]
    kernels = _kernel_methods(args.quick)
    kernels = {"torch.sort": _torch_methods(True)["torch.sort"], **kernels}
    tables.append(_run_table(f"Triton PAV kernels alone, {args.device}, {args.dtype}",
                             "torch.sort", kernels, make_x, tsync, args, timer, t_start,
                             status, 0.4))
    jax_note = ""
    if not args.no_jax:
        try:
            import jax
            import jax.numpy as jnp
        except ImportError:
            jax_note = "JAX is not installed: no softorder.jax table."
        else:
            jdev = jax.devices()[0]
            if args.device == "cuda" and jdev.platform != "gpu":
                jax_note = f"JAX runs on {jdev.platform} here (no CUDA jaxlib): no JAX table."
            else:
                jdt = jnp.float32 if args.dtype == "float32" else jnp.float64

                def make_jx(b, n):
                    return jnp.asarray(make_x(b, n).cpu().numpy(), dtype=jdt)

                tables.append(_run_table(
                    f"softorder.jax, {jdev.platform}, {args.dtype}", "jnp.sort",
                    _jax_methods(args.quick), make_jx, jax.block_until_ready, args,
                    Timer("cpu", args.repeats, warmup=1 if args.quick else 2), t_start,
                    status, 1.0))
    elapsed = time.monotonic() - t_start
    dev_name = torch.cuda.get_device_name(0) if args.device == "cuda" else platform.machine()
    head = [
        "## GPU benchmark", "",
        f"Command: `python benchmarks/bench_gpu.py {' '.join(argv or sys.argv[1:])}`", "",
        f"Run: {time.strftime('%Y-%m-%d')}, {dev_name}, torch {torch.__version__}, "
        f"{elapsed:.0f} s, {status['cells']} cells, {status['errors']} failed cells; budget "
        f"{args.budget_s:.0f} s, max {args.max_elements} elements, max {args.max_call_s} s per "
        "call.", "",
    ]
    if args.quick and args.device == "cpu":
        head += ["**Quick CPU run** (a test of the script, Triton under the interpreter): the "
                 "ratios mean nothing.", ""]
    if jax_note:
        head += [jax_note, ""]
    md = "\n".join(head) + "\n" + "\n".join(_fmt_table(t) for t in tables)
    (out / "bench_gpu.md").write_text(md)
    (out / "bench_gpu.json").write_text(json.dumps(
        {"args": vars(args), "elapsed_s": elapsed, "status": status, "tables": tables},
        indent=1))
    print(md)
    print(f"bench_gpu: wrote {out / 'bench_gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
