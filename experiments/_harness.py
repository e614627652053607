"""The one harness every experiment script uses.

Each experiment is a script ``experiments/NAME.py`` run as ``python experiments/NAME.py --out DIR
[--seed S] [--quick]``. It

* parses the common arguments with `parser` (``--out``, ``--seed``, ``--quick``, plus its own);
* seeds NumPy, Python, PyTorch and JAX with `seed_everything`;
* shows its progress with `progress` (a rich progress bar on a terminal, one line per step
  otherwise, so CI logs stay short);
* writes its results with `Report.save`: ``DIR/results.json`` (the numbers, the arguments, the
  machine, the run time), ``DIR/results.md`` (a markdown table and a short text) and
  ``DIR/NAME.png`` (the plot), and prints where they are.

``--quick`` must finish in about a minute on a quiet 2-core machine: CI runs every quick version
(tests/experiments). Full runs write what docs/experiments/ shows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["parser", "seed_everything", "progress", "markdown_table", "Report", "peak_rss_mib",
           "figure"]


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The common command line: ``--out``, ``--seed``, ``--quick``; add the experiment's own."""
    ap = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=description)
    ap.add_argument("--out", default=os.path.join("results", name),
                    help="output folder for results.json, results.md and the plot "
                         "(default: results/%(prog)s's name)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--quick", action="store_true",
                    help="a small version that runs in about a minute on 2 cores (CI runs it)")
    return ap


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch (when imported); return a NumPy Generator for the run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - legacy global state, for libraries using it
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    return np.random.default_rng(seed)


def progress(items: Iterable[Any], description: str, total: int | None = None) -> Iterator[Any]:
    """Iterate over ``items`` with a progress bar (rich) on a terminal, a line per item elsewhere."""
    if total is None and isinstance(items, Sequence):
        total = len(items)
    if sys.stderr.isatty():
        from rich.progress import track

        yield from track(items, description=description, total=total, transient=False)
        return
    start = time.perf_counter()
    for i, item in enumerate(items):
        yield item
        of = f"/{total}" if total is not None else ""
        print(f"[{description}] {i + 1}{of} done, {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)


def _fmt(v: Any, floatfmt: str) -> str:
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return "n/a"
        return format(float(v), floatfmt)
    return str(v)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None,
                   floatfmt: str = ".4g") -> str:
    """A GitHub markdown table of ``rows`` (dicts), columns in the given order."""
    if not rows:
        return "(no rows)\n"
    cols = list(columns) if columns is not None else list(rows[0])
    numeric = [all(isinstance(r.get(c), int | float | np.number) for r in rows) for c in cols]
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, ""), floatfmt) for c in cols) + " |")
    return "\n".join(out) + "\n"


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux ``ru_maxrss`` is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None  # JSON has no NaN/inf: null = not measured
    return v


@dataclass
class Report:
    """Collects an experiment's results and writes them to ``out``."""

    name: str
    args: argparse.Namespace
    started: float = field(default_factory=time.perf_counter)

    @property
    def out(self) -> str:
        return self.args.out

    def save(self, results: dict, *, table: Sequence[dict], columns: Sequence[str] | None = None,
             text: str = "", figure: Any = None, floatfmt: str = ".4g") -> dict:
        """Write results.json, results.md and NAME.png (if ``figure``); return the JSON dict.

        ``results`` holds the experiment's numbers; ``table`` the rows of the markdown table;
        ``text`` a short statement of what the table shows (the claim, met or not); ``figure``
        a matplotlib Figure.
        """
        os.makedirs(self.out, exist_ok=True)
        meta = {
            "experiment": self.name,
            "args": {k: v for k, v in vars(self.args).items()},
            "seconds": round(time.perf_counter() - self.started, 2),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        }
        doc = {"meta": meta, **_jsonable(results)}
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(doc, f, indent=1, allow_nan=False)
        mode = "quick" if getattr(self.args, "quick", False) else "full"
        md = [f"# {self.name} ({mode} run, seed {self.args.seed})", ""]
        if text:
            md += [text.strip(), ""]
        md.append(markdown_table(table, columns, floatfmt))
        if figure is not None:
            md += ["", f"![{self.name}]({self.name}.png)"]
        md.append(f"\n{meta['seconds']} s on {meta['machine']}.\n")
        with open(os.path.join(self.out, "results.md"), "w") as f:
            f.write("\n".join(md))
        if figure is not None:
            figure.savefig(os.path.join(self.out, f"{self.name}.png"), dpi=120,
                           bbox_inches="tight")
        print(f"{self.name}: results in {os.path.abspath(self.out)} "
              f"(results.json, results.md{', ' + self.name + '.png' if figure is not None else ''})")
        return doc


def figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.6)):
    """A matplotlib Figure and axes on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    return fig, axes
