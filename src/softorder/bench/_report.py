"""The outputs of `softorder bench`: results.json, results.md (the page docs/benchmarks.md is
made from) and one PNG per framework, device and dtype (time against n, log-log, one line per
library and variant)."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any

_OPS = ("sort", "rank", "topk", "isotonic")
_FRAMEWORK_TITLES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX",
                     "tensorflow": "TensorFlow"}


def shape_label(batch: int, n: int) -> str:
    return f"{batch} x {n}"


def group_key(r: dict) -> tuple:
    return (r["framework"], r["device"], r["dtype"])


def _cell(r: dict | None, floor: dict | None) -> str:
    if r is None:
        return ""
    st = r["status"]
    if st == "ok":
        if r.get("floor"):
            fb = r.get("fwd_bwd_ms")
            return f"{r['fwd_ms']:.3g} / {fb:.3g} ms" if fb is not None else f"{r['fwd_ms']:.3g} ms"
        fr, fbr = r.get("fwd_ratio"), r.get("fwd_bwd_ratio")
        left = f"{fr:.2f}" if fr is not None else "-"
        right = f"{fbr:.2f}" if fbr is not None else "-"
        return f"{left} / {right}"
    return {"skipped": "skipped (memory)", "oom": "out of memory", "failed": "failed",
            "too slow": "too slow"}.get(st, st)


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[group_key(r)].append(r)
    return out


def _shapes(rows: list[dict]) -> list[tuple[int, int]]:
    return sorted({(r["batch"], r["n"]) for r in rows})


def _methods(rows: list[dict]) -> list[str]:
    seen: dict[str, tuple] = {}
    for r in rows:
        if r["name"] not in seen:
            rank = (0 if r.get("floor") else 1 if r["library"] == r["framework"] else
                    2 if r["library"] == "softorder" else 3)
            seen[r["name"]] = (rank, _OPS.index(r["op"]) if r["op"] in _OPS else 9,
                               r["library"], len(seen))
    return sorted(seen, key=lambda k: seen[k])


def tables(rows: list[dict]) -> list[str]:
    """Markdown: per framework, device and dtype, a time table (ratios) and a memory table."""
    md: list[str] = []
    for (fw, dev, dt), grows in _groups(rows).items():
        shapes = _shapes(grows)
        by = {(r["name"], r["batch"], r["n"]): r for r in grows}
        floors = {(r["batch"], r["n"]): r for r in grows if r.get("floor")}
        floor_name = next((r["name"] for r in grows if r.get("floor")), "sort")
        md += [f"### {_FRAMEWORK_TITLES.get(fw, fw)}, {dev}, {dt}", "",
               f"Cells: forward / forward+backward time as a ratio to `{floor_name.split()[-1]}`"
               f" (its own forward / forward+backward) in the same run; the first row gives "
               f"its times in ms. Columns: batch x n.", ""]
        head = "| method | " + " | ".join(shape_label(*s) for s in shapes) + " |"
        md += [head, "|---|" + "---:|" * len(shapes)]
        for name in _methods(grows):
            cells = [_cell(by.get((name, *s)), floors.get(s)) for s in shapes]
            md.append(f"| {name} | " + " | ".join(cells) + " |")
        md += ["", "Peak memory of one forward+backward call (forward only where there is no "
               "backward), MiB above the memory in use before the call:", ""]
        md += [head, "|---|" + "---:|" * len(shapes)]
        for name in _methods(grows):
            cells = []
            for s in shapes:
                r = by.get((name, *s))
                v = None if r is None else r.get("peak_mib")
                cells.append("" if r is None else ("-" if v is None else f"{v:.3g}"))
            md.append(f"| {name} | " + " | ".join(cells) + " |")
        md.append("")
    return md


def failures(rows: list[dict]) -> list[str]:
    seen: dict[tuple, list[str]] = defaultdict(list)
    for r in rows:
        if r["status"] in ("failed", "oom", "too slow", "skipped") and r.get("error"):
            key = (r["framework"], r["name"], r["status"], r["error"])
            seen[key].append(f"{r['device']} {r['dtype']} {shape_label(r['batch'], r['n'])}")
    if not seen:
        return ["No method failed, ran out of memory or was skipped.", ""]
    md = ["| framework | method | status | where | message |", "|---|---|---|---|---|"]
    for (fw, name, st, err), where in seen.items():
        msg = err.replace("|", "\\|").replace("\n", " ")
        md.append(f"| {fw} | {name} | {st} | {', '.join(where)} | {msg} |")
    return md + [""]


def first_call_table(first: list[dict]) -> list[str]:
    if not first:
        return ["(not measured in this run)", ""]
    md = ["| library | import (s) | first call (s) | second call (s) | whole process (s) |",
          "|---|---:|---:|---:|---:|"]
    for p in first:
        if "error" in p:
            md.append(f"| {p['library']} | failed: {p['error']} | | | |")
        else:
            md.append(f"| {p['library']} | {p['import_s']:.2f} | {p['first_call_s']:.3f} | "
                      f"{p['second_call_s']:.4f} | {p['process_s']:.2f} |")
    return md + [""]


def plots(rows: list[dict], out: str) -> list[str]:
    """One PNG per framework, device and dtype; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for (fw, dev, dt), grows in _groups(rows).items():
        ok = [r for r in grows if r["status"] == "ok"]
        batches = sorted({r["batch"] for r in ok})
        ops = [op for op in _OPS if any(r["op"] == op and not r.get("floor") for r in ok)]
        if not batches or not ops:
            continue
        fig, axes = plt.subplots(len(batches), len(ops), squeeze=False,
                                 figsize=(4.2 * len(ops), 3.4 * len(batches)))
        libs = sorted({r["library"] for r in ok})
        colors = {lib: plt.get_cmap("tab10")(i % 10) for i, lib in enumerate(libs)}
        styles = ["-", "--", ":", "-."]
        for i, b in enumerate(batches):
            for j, op in enumerate(ops):
                ax = axes[i][j]
                series: dict[str, list[tuple[int, Any]]] = defaultdict(list)
                meta: dict[str, dict] = {}
                for r in ok:
                    if r["batch"] != b or not (r["op"] == op or r.get("floor")):
                        continue
                    t = r.get("fwd_bwd_ms") if r.get("fwd_bwd_ms") is not None else r["fwd_ms"]
                    series[r["name"]].append((r["n"], t))
                    meta[r["name"]] = r
                per_lib: dict[str, int] = defaultdict(int)
                for name, pts in series.items():
                    pts.sort()
                    r = meta[name]
                    if r.get("floor"):
                        kw: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 2}
                    else:
                        kw = {"color": colors[r["library"]],
                              "linestyle": styles[per_lib[r["library"]] % len(styles)]}
                        per_lib[r["library"]] += 1
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                            label=name, **kw)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_title(f"{op}, batch {b}", fontsize=9)
                ax.set_xlabel("n")
                ax.set_ylabel("fwd+bwd time (ms)")
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=6)
        fig.suptitle(f"{_FRAMEWORK_TITLES.get(fw, fw)} ({dev}, {dt}): forward+backward time "
                     "(forward only where there is no backward)", fontsize=10)
        fig.tight_layout()
        name = f"bench_{fw}_{dev}_{dt}.png"
        fig.savefig(os.path.join(out, name), dpi=100)
        plt.close(fig)
        files.append(name)
    return files


def finite_positive(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0
