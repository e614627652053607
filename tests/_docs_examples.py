"""The documentation site's examples are doctests: every ```pycon block of docs/**/*.md runs, and
its printed output is what the library returns.

Blocks that import TensorFlow run in the TensorFlow pytest process (tests/tf), the others in
the first one (TensorFlow and Triton cannot share a process). The blocks of one page and one
group share a namespace, in page order, as a reader would run them.
"""

from __future__ import annotations

import doctest
import re
import sys
import textwrap
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"
_FENCE = re.compile(r"^(?P<pad>[ \t]*)```pycon[^\n]*\n(?P<body>.*?)^(?P=pad)```[ \t]*$",
                    re.S | re.M)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def pycon_blocks(page: Path) -> list[str]:
    """The ```pycon blocks of a markdown page, dedented (tabs and admonitions indent them)."""
    return [textwrap.dedent(m["body"]) for m in _FENCE.finditer(page.read_text())]


def uses_tensorflow(block: str) -> bool:
    return re.search(r"^>>> (import|from) tensorflow|softorder\.tensorflow|softorder import "
                     r"tensorflow", block, re.M) is not None


def grouped_blocks(page: Path) -> list[tuple[bool, str]]:
    """``(uses TensorFlow, block)`` for each block of the page: a block that imports nothing
    continues the one before it and belongs to its group."""
    out: list[tuple[bool, str]] = []
    for block in pycon_blocks(page):
        imports = re.search(r"^>>> (import|from) ", block, re.M) is not None
        tf = uses_tensorflow(block) or (not imports and bool(out) and out[-1][0])
        out.append((tf, block))
    return out


def pages(tensorflow: bool) -> list[Path]:
    """The pages with at least one block of the group (TensorFlow or not)."""
    return [p for p in sorted(DOCS.rglob("*.md"))
            if any(tf == tensorflow for tf, _ in grouped_blocks(p))]


def run_page(page: Path, tensorflow: bool) -> None:
    """Runs the page's blocks of one group as one doctest; fails with doctest's report."""
    text = "\n".join(b for tf, b in grouped_blocks(page) if tf == tensorflow)
    name = str(page.relative_to(DOCS.parent))
    test = doctest.DocTestParser().get_doctest(text, {"__name__": "__docs__"}, name, name, 0)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    # The pages show a fresh process: JAX in its default float32. Another test in the same
    # worker may have switched x64 on; run the page with it off and restore it after.
    jax = sys.modules.get("jax")
    x64 = bool(jax.config.read("jax_enable_x64")) if jax is not None else False
    if x64:
        jax.config.update("jax_enable_x64", False)
    try:
        # NumPy's default print options too (another test may have changed them).
        with np.printoptions(precision=8, threshold=1000, edgeitems=3, linewidth=75,
                             suppress=False, floatmode="maxprec", sign="-"):
            result = runner.run(test, out=out.append, clear_globs=True)
    finally:
        if x64:
            jax.config.update("jax_enable_x64", True)
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, "".join(out)
