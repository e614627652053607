"""``softorder bench``: softorder against every installed alternative, in one run.

    python -m softorder.bench --out bench-results            # the full grid
    python -m softorder.bench --quick --out /tmp/bench       # CI: well under a minute
    python -m softorder.bench --out bench-results --markdown docs/benchmarks.md

For each installed front end (NumPy, PyTorch, JAX in this process; TensorFlow in a process of
its own, since it cannot share one with Triton), each device (CPU, and CUDA when present), each
dtype and each (batch, n) of the grid, it times the framework's hard sort (the floor),
softorder's operators (every regularizer and solver: ``l2``/``kl``/``p = 4/3`` sorts and
ranks, top-k mask and magnitude by PAV and by Dykstra, isotonic regression; on JAX both
backends) and every alternative that is installed (torchsort, fast-soft-sort, OTT-JAX,
diffsort, difftopk, SoftTorch, SoftJAX, torchisotonic, scikit-learn), forward and
forward+backward, all methods of a group called in turns, and reports each time as a ratio to
the floor's time in the same run (``best of`` the repeats: the least disturbed estimate on a
busy machine; medians are in the JSON too). It also measures each method's peak memory, the
first-call cost of each library in a fresh process, lists the alternatives that are not
installed, and marks the methods that fail (with the exception's text), run out of memory, are
skipped because their estimated memory exceeds ``--memory-cap``, or are too slow.

Outputs in ``--out``: ``results.json``, ``results.md`` (the page that ``--markdown`` also
writes, e.g. docs/benchmarks.md, with the plots copied beside it) and ``bench_*.png``.

The command is a module with ``add_arguments(parser)`` and ``run(args)``, for the ``softorder``
console script's subcommand.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

__all__ = ["add_arguments", "run", "main", "FULL_SHAPES", "QUICK_SHAPES"]

FULL_SHAPES = [(1, 100), (1, 1000), (1, 10_000), (1, 100_000), (128, 100), (128, 1000),
               (128, 10_000)]
QUICK_SHAPES = [(4, 100), (4, 1000)]
FRAMEWORKS = ("numpy", "torch", "jax", "tensorflow")
_IMPORT_NAMES = {"numpy": "numba", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}
_DISTS = ["softorder", "numpy", "numba", "torch", "jax", "jaxlib", "tensorflow", "tensorflow-cpu",
          "triton", "torchsort", "ott-jax", "diffsort", "difftopk", "softtorch", "softjax",
          "torchisotonic", "scikit-learn", "fast-soft-sort"]


def _shapes(text: str) -> list[tuple[int, int]]:
    try:
        out = []
        for item in text.split(","):
            b, n = item.lower().split("x")
            out.append((int(b), int(n)))
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--shapes takes BATCHxN[,BATCHxN...], e.g. 1x1000,128x1000; got {text!r}") from None


def _csv(choices):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}; got {text!r}")
        return items

    return parse


HELP = "time softorder against the framework's sort and every installed alternative"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command line of ``softorder bench`` (and ``python -m softorder.bench``)."""
    parser.add_argument("--out", default="bench-results",
                        help="folder for results.json, results.md and the PNG plots "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="2 small shapes, float32, a subset of the operators, short timings, "
                             "one first-call probe: well under a minute (CI runs it)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the page to PATH (e.g. docs/benchmarks.md), its plots "
                             "into img/ beside it")
    parser.add_argument("--frameworks", type=_csv(FRAMEWORKS), default=None,
                        help="comma-separated subset of numpy,torch,jax,tensorflow "
                             "(default: every installed one)")
    parser.add_argument("--shapes", type=_shapes, default=None,
                        help="BATCHxN,... (default: 1x100..1x100000 and 128x100..128x10000; "
                             "--quick: 4x100,4x1000)")
    parser.add_argument("--dtypes", type=_csv(("float32", "float64")), default=None,
                        help="float32,float64 (default both; --quick: float32)")
    parser.add_argument("--devices", type=_csv(("cpu", "cuda")), default=None,
                        help="cpu,cuda (default: cpu, and cuda when torch sees a GPU)")
    parser.add_argument("--jax-backends", type=_csv(("callback", "jax")), default=None,
                        help="softorder.jax backends to time: callback,jax (default: each "
                             "device's default, callback on the CPU and jax on a GPU)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds of timing per method and group (default 0.15; --quick 0.02)")
    parser.add_argument("--max-call-s", type=float, default=None,
                        help="a method whose second call takes longer is marked 'too slow' and "
                             "not run at larger sizes (default 3; --quick 1)")
    parser.add_argument("--memory-cap", type=float, default=2048.0, metavar="MIB",
                        help="skip a method whose estimated memory exceeds this many MiB (the "
                             "O(n^2) alternatives); on CUDA also torch's memory fraction "
                             "(default: %(default)s)")
    parser.add_argument("--no-first-call", action="store_true",
                        help="skip the first-call probes (fresh processes)")
    parser.add_argument("--note", default="",
                        help="a sentence about the machine or the run, printed on the page")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the inputs")
    parser.add_argument("--render", metavar="RESULTS_JSON",
                        help="measure nothing: rewrite results.md, the plots and --markdown "
                             "from a results.json of an earlier run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: the TensorFlow process
    return parser


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    from . import _cases as C

    frameworks = args.frameworks or [f for f in FRAMEWORKS if C.installed(_IMPORT_NAMES[f])]
    devices = args.devices
    if devices is None:
        devices = ["cpu"]
        if "torch" in frameworks or "jax" in frameworks:
            try:
                import torch

                if torch.cuda.is_available():
                    devices.append("cuda")
            except ImportError:
                pass
    return {
        "quick": quick,
        "frameworks": frameworks,
        "devices": devices,
        "shapes": args.shapes or (QUICK_SHAPES if quick else FULL_SHAPES),
        "dtypes": args.dtypes or (["float32"] if quick else ["float32", "float64"]),
        "min_time": args.min_time if args.min_time is not None else (0.02 if quick else 0.15),
        "max_call_s": args.max_call_s if args.max_call_s is not None else (1.0 if quick else 3.0),
        "memory_cap_mib": args.memory_cap,
        "seed": args.seed,
        "jax_backends": args.jax_backends,
    }


class _Progress:
    """A rich progress bar on a terminal; one line per step on stderr otherwise (CI logs)."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            try:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

                self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                    TextColumn("{task.completed}/{task.total}"),
                                    TimeElapsedColumn(), transient=False)
                self.bar.start()
                self.task = self.bar.add_task("softorder bench", total=total)
            except ImportError:
                self.bar = None

    def step(self, what: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=what)
        else:
            print(f"[softorder bench] {self.done}/{self.total} {what} "
                  f"({time.perf_counter() - self.start:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    first = next((t for t in text if t.strip()), "")
    return f"{type(err).__name__}: {first}"[:240]


def _group_rows(frame, cases, batch, n, dtype, s, slow: dict) -> list[dict]:
    """Time one group: every case, forward and forward+backward, in turns. ``slow`` maps a
    method found too slow to (batch * n there, message): it is not run at that size or above."""
    from ._frames import interleaved

    grp = frame.data(batch, n, dtype, s["seed"])
    item = 4 if dtype == "float32" else 8
    cap_bytes = s["memory_cap_mib"] * 2**20
    base = {"framework": frame.name, "device": frame.device, "dtype": dtype, "batch": batch,
            "n": n}
    rows: dict[str, dict] = {}
    thunks: dict[tuple[str, str], Any] = {}
    for case in cases:
        row = {**base, "library": case.library, "op": case.op, "variant": case.variant,
               "name": case.name, "floor": case.floor, "status": "ok", "error": None}
        rows[case.name] = row
        if case.name in slow and batch * n >= slow[case.name][0]:
            row.update(status="too slow", error=slow[case.name][1])
            continue
        est = case.memory(batch, n, item) if case.memory else None
        if est is not None:
            row["memory_estimate_mib"] = est / 2**20
            if est > cap_bytes:
                row.update(status="skipped", error=f"estimated {est / 2**20:.0f} MiB > "
                           f"--memory-cap {s['memory_cap_mib']:.0f} MiB (O(n^2) per row)")
                continue
        try:
            fwd, fwd_bwd = frame.thunks(case, grp)
            for mode, th in (("fwd", fwd), ("fwd_bwd", fwd_bwd)):
                if th is None:
                    continue
                t0 = time.perf_counter()
                th()  # warm-up: compilation, caches
                row[f"{mode}_warmup_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                th()
                once = time.perf_counter() - t0
                if once > s["max_call_s"] and not case.floor:
                    msg = f"{once:.1f} s per {mode} call > --max-call-s {s['max_call_s']:g}"
                    slow[case.name] = (batch * n, f"too slow at {batch} x {n} ({msg})")
                    row.update(status="too slow", error=msg)
                    break
                thunks[(case.name, mode)] = th
        except Exception as e:  # noqa: BLE001 - an alternative's failure is a result
            row.update(status="oom" if frame.is_oom(e) else "failed", error=_short(e))
        if row["status"] != "ok":
            for mode in ("fwd", "fwd_bwd"):
                thunks.pop((case.name, mode), None)
    times, errors = interleaved({f"{k[0]}\t{k[1]}": v for k, v in thunks.items()},
                                s["min_time"])
    for key, err in errors.items():
        name = key.split("\t")[0]
        rows[name].update(status="oom" if frame.is_oom(err) else "failed", error=_short(err))
    for key, ts in times.items():
        name, mode = key.split("\t")
        if ts and rows[name]["status"] == "ok":
            srt = sorted(ts)
            rows[name][f"{mode}_ms"] = 1e3 * srt[0]
            rows[name][f"{mode}_median_ms"] = 1e3 * srt[len(srt) // 2]
            rows[name]["repeats"] = len(ts)
    floor = next((r for r in rows.values() if r["floor"]), None)
    for r in rows.values():
        if r["status"] != "ok":
            continue
        for mode in ("fwd", "fwd_bwd"):
            if floor is not None and r.get(f"{mode}_ms") and floor.get(f"{mode}_ms"):
                r[f"{mode}_ratio"] = r[f"{mode}_ms"] / floor[f"{mode}_ms"]
        th = thunks.get((r["name"], "fwd_bwd")) or thunks.get((r["name"], "fwd"))
        if th is not None:
            try:
                r["peak_mib"] = frame.peak_mib(th)
            except Exception as e:  # noqa: BLE001
                r["peak_mib"] = None
                r["peak_error"] = _short(e)
    return list(rows.values())


def _run_frameworks(s: dict, frameworks: list[str], progress: _Progress | None,
                    on_step=None) -> list[dict]:
    from . import _cases as C
    from ._frames import make_frame, pin_malloc

    pin_malloc()
    rows: list[dict] = []
    for fw in frameworks:
        for dev in s["devices"]:
            if dev == "cuda" and fw == "numpy":
                continue
            try:
                frame = make_frame(fw, dev, s["memory_cap_mib"])
                if fw == "jax":
                    backends = s["jax_backends"] or ["callback" if dev == "cpu" else "jax"]
                    cases = C.jax_cases(s["quick"], tuple(backends))
                else:
                    cases = C.CASES[fw](s["quick"])
            except Exception as e:  # noqa: BLE001 - e.g. no JAX GPU
                rows.append({"framework": fw, "device": dev, "dtype": "-", "batch": 0, "n": 0,
                             "library": fw, "op": "sort", "variant": "", "name": fw,
                             "floor": True, "status": "failed", "error": _short(e)})
                continue
            for dtype in s["dtypes"]:
                slow: dict[str, tuple[int, str]] = {}
                for batch, n in s["shapes"]:
                    what = f"{fw} {dev} {dtype} {batch} x {n}"
                    try:
                        rows += _group_rows(frame, cases, batch, n, dtype, s, slow)
                    except Exception as e:  # noqa: BLE001 - the floor itself failed
                        traceback.print_exc()
                        rows.append({"framework": fw, "device": dev, "dtype": dtype,
                                     "batch": batch, "n": n, "library": fw, "op": "sort",
                                     "variant": "", "name": fw, "floor": True,
                                     "status": "failed", "error": _short(e)})
                    if progress is not None:
                        progress.step(what)
                    if on_step is not None:
                        on_step(what)
    return rows


def _tf_subprocess(args: argparse.Namespace, s: dict, progress: _Progress) -> list[dict]:
    """TensorFlow's groups in a process of its own (TensorFlow and Triton cannot share one)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "tf.json")
        cmd = [sys.executable, "-m", "softorder.bench", "--worker", out,
               "--frameworks", "tensorflow", "--devices", ",".join(s["devices"]),
               "--dtypes", ",".join(s["dtypes"]),
               "--shapes", ",".join(f"{b}x{n}" for b, n in s["shapes"]),
               "--min-time", str(s["min_time"]), "--max-call-s", str(s["max_call_s"]),
               "--memory-cap", str(s["memory_cap_mib"]), "--seed", str(s["seed"])]
        if s["quick"]:
            cmd.append("--quick")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("@@step "):
                progress.step(line[7:].strip())
        err = proc.stderr.read() if proc.stderr is not None else ""
        proc.wait()
        if proc.returncode != 0 or not os.path.exists(out):
            msg = (err.strip().splitlines() or ["no output"])[-1][:240]
            return [{"framework": "tensorflow", "device": "cpu", "dtype": "-", "batch": 0,
                     "n": 0, "library": "tensorflow", "op": "sort", "variant": "",
                     "name": "tensorflow", "floor": True, "status": "failed",
                     "error": f"TensorFlow process exited {proc.returncode}: {msg}"}]
        with open(out) as f:
            return json.load(f)


def _page(doc: dict, pngs: list[str], img_prefix: str) -> str:
    from . import _report as P

    m = doc["meta"]
    s = doc["settings"]
    md = ["# Benchmarks", "",
          "<!-- Generated by `softorder bench`: do not edit by hand; rerun the command below. -->",
          "",
          "Generated by `softorder bench` (`python -m softorder.bench`). Every figure is a "
          "**ratio to the framework's own sort, timed in the same run**: all methods of a group "
          "(framework, device, dtype, batch x n) and the sort are called in turns, forward and "
          "forward+backward (the gradient of `sum(y * g)`), and each time is the best of the "
          "repeats (medians are in results.json). Ratios hold on a busy machine much better "
          "than seconds do. Forward+backward is divided by the sort's forward+backward "
          "(`torch.sort`, `jnp.sort`, `tf.sort` with their gradients; for NumPy, argsort, the "
          "gather and the scatter of `g`). JAX functions are jitted, TensorFlow ones wrapped in "
          "`tf.function`; NumPy uses softorder's `*_fwd` + `vjp`.", "",
          f"Command: `{m['command']}`", "",
          f"Run: {m['date']}, {m['machine']}, Python {m['python']}, "
          f"{m['seconds']:.0f} s; load average {m['load_start']} at the start, "
          f"{m['load_end']} at the end.", ""]
    if m.get("note"):
        md += [f"**Note.** {m['note']}", ""]
    md += ["Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items() if v) + ".",
           "", f"Grid: shapes {', '.join(f'{b} x {n}' for b, n in s['shapes'])}; dtypes "
           f"{', '.join(s['dtypes'])}; devices {', '.join(s['devices'])}; "
           f"{s['min_time']:g} s of timing per method and group; memory cap "
           f"{s['memory_cap_mib']:g} MiB; --max-call-s {s['max_call_s']:g}.", "",
           "## Alternatives", "",
           "| library | PyPI | framework | compared on | here |", "|---|---|---|---|---|"]
    for a in doc["alternatives"]:
        here = f"{a['version'] or 'installed'}" if a["installed"] else "**not installed**"
        md.append(f"| {a['name']} | {a['pypi'] or 'not on PyPI'} | {a['frameworks']} | "
                  f"{a['compared']} | {here} |")
    md += ["", "Alternatives run at their own defaults (OTT's epsilon, diffsort's steepness, "
           "SoftTorch's softness); torchsort and fast-soft-sort compute the same operators as "
           "softorder's l2/kl sorts and ranks at the same strength. `pip install "
           "softorder[bench]` (or `-r requirements-bench.txt`) installs the ones on PyPI; "
           "`make bench` also builds torchsort on a CPU-only machine.", "",
           "## Time", ""]
    md += P.tables(doc["rows"])
    md += ["## Failures, out-of-memory and skipped methods", ""]
    md += P.failures(doc["rows"])
    md += ["## First-call cost", "",
           "A fresh Python process imports the library and runs forward+backward on a 4 x 100 "
           "input twice: the first call pays compilation (Numba, XLA, a C++ extension "
           "build) or cache loading.", ""]
    md += P.first_call_table(doc["first_call"])
    if pngs:
        md += ["## Plots", "", "Forward+backward time against n, log-log, one line per library "
               "and variant; the dashed black line is the framework's sort.", ""]
        md += [f"![{p}]({img_prefix}{p})" for p in pngs]
        md.append("")
    return "\n".join(md)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args`` (from `add_arguments`); returns an exit code."""
    from . import _cases as C
    from . import _probe

    if args.render:
        with open(args.render) as f:
            return _write(args, json.load(f))
    s = _settings(args)
    if args.worker:  # the TensorFlow process
        rows = _run_frameworks(s, s["frameworks"], None,
                               on_step=lambda w: print(f"@@step {w}", flush=True))
        with open(args.worker, "w") as f:
            json.dump(rows, f)
        return 0

    started = time.perf_counter()
    load_start = _load()
    in_process = [f for f in s["frameworks"] if f != "tensorflow"]
    use_tf = "tensorflow" in s["frameworks"]
    probes = [] if args.no_first_call else _probe.probes(C.installed, s["quick"],
                                                         cold_cache=True)
    n_groups = len(s["shapes"]) * len(s["dtypes"]) * sum(
        len([d for d in s["devices"] if not (d == "cuda" and f == "numpy")])
        for f in s["frameworks"])
    progress = _Progress(n_groups + len(probes))
    try:
        rows = _run_frameworks(s, in_process, progress)
        if use_tf:
            rows += _tf_subprocess(args, s, progress)
        first = []
        for label, setup, call, env in probes:
            first.append(_probe.probe(label, setup, call, env))
            if env and "NUMBA_CACHE_DIR" in env:
                shutil.rmtree(env["NUMBA_CACHE_DIR"], ignore_errors=True)
            progress.step(f"first call: {label}")
    finally:
        progress.close()

    alternatives = [{"name": name, "module": mod, "frameworks": fws, "pypi": pypi,
                     "compared": what, "installed": C.installed(mod),
                     "version": _version(pypi or name) if C.installed(mod) else None}
                    for name, mod, fws, pypi, what in C.ALTERNATIVES]
    prog = os.path.basename(sys.argv[0])
    prog = "python -m softorder.bench" if prog in ("__main__.py", "-c", "") else prog
    command = prog + " " + shlex.join(sys.argv[1:])
    doc: dict[str, Any] = {
        "meta": {"command": command, "date": datetime.date.today().isoformat(),
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"
                 + (", CUDA" if "cuda" in s["devices"] else ", no GPU used"),
                 "python": platform.python_version(),
                 "seconds": time.perf_counter() - started, "load_start": load_start,
                 "load_end": _load(), "note": args.note},
        "settings": {**s, "shapes": [list(x) for x in s["shapes"]]},
        "versions": {d: _version(d) for d in _DISTS if _version(d)},
        "alternatives": alternatives,
        "not_installed": [a["name"] for a in alternatives if not a["installed"]],
        "rows": [{k: v for k, v in r.items()} for r in rows],
        "first_call": first,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(_jsonable(doc), f, indent=1, allow_nan=False)
    return _write(args, doc)


def _write(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    """results.md, the plots and the --markdown page from the results ``doc``."""
    from . import _report as P

    rows = doc["rows"]
    os.makedirs(args.out, exist_ok=True)
    pngs = P.plots(rows, args.out)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(_page(doc, pngs, ""))
    if args.markdown:
        folder = os.path.dirname(os.path.abspath(args.markdown))
        img = os.path.join(folder, "img")
        os.makedirs(img, exist_ok=True)
        for p in pngs:
            shutil.copy(os.path.join(args.out, p), os.path.join(img, p))
        with open(args.markdown, "w") as f:
            f.write(_page(doc, pngs, "img/"))
    print("\n".join(P.tables(rows)))
    where = "rendered into" if args.render else "results in"
    files = "results.md" if args.render else "results.json, results.md"
    print(f"softorder bench: {len(rows)} measurements in {doc['meta']['seconds']:.0f} s; "
          f"{where} {os.path.abspath(args.out)} ({files}, {len(pngs)} PNG)"
          + (f"; page {args.markdown}" if args.markdown else ""))
    if doc["not_installed"]:
        print("not installed: " + ", ".join(doc["not_installed"]))
    return 0


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _jsonable(v: Any) -> Any:
    import math

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        return _jsonable(v.item())
    return v


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softorder.bench",
                                     description=(__doc__ or "").splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
