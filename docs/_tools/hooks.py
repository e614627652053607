"""mkdocs hooks for the softorder site (mkdocs.yml ``hooks:``).

* KaTeX is served from the site itself (no CDN: the site must typeset math offline). Its files
  come from the npm package pinned in docs/_tools/package.json (``make docs`` runs ``npm ci``
  there) and are added to the build as ``assets/katex/...``.
* The "Experiments" section of the nav lists every page under docs/experiments/ (``index.md``
  first, the others by path), so a new experiment page needs no edit of mkdocs.yml; the section
  is dropped while the folder holds no page.
* The API pages import softorder's front ends (mkdocstrings inspects them: several docstrings
  are rendered at import time), TensorFlow among them. TensorFlow and Triton cannot share a
  process (an LLVM option clash aborts it), so the build hides Triton: the Triton PAV module is
  private and is skipped; nothing public imports Triton at import time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

TOOLS = Path(__file__).resolve().parent
KATEX_DIST = TOOLS / "node_modules" / "katex" / "dist"
KATEX_FILES = ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js")
EXPERIMENTS_KEY = "Experiments"


def _experiment_pages(docs_dir: Path) -> list[str]:
    folder = docs_dir / "experiments"
    pages = sorted(p.relative_to(docs_dir).as_posix() for p in folder.rglob("*.md")) \
        if folder.is_dir() else []
    index = [p for p in pages if p == "experiments/index.md"]
    return index + [p for p in pages if p not in index]


def on_config(config, **kwargs):
    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]  # `import triton` raises
    if not (KATEX_DIST / "katex.min.js").is_file():
        raise PluginError(f"KaTeX is missing ({KATEX_DIST}): run `npm ci --prefix {TOOLS}` "
                          "(`make docs` does).")
    nav = config["nav"] or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and EXPERIMENTS_KEY in entry:
            pages = _experiment_pages(Path(config["docs_dir"]))
            if pages:
                nav[i] = {EXPERIMENTS_KEY: pages}
            else:
                del nav[i]
            break
    return config


def on_files(files: Files, config, **kwargs) -> Files:
    font_files = sorted((KATEX_DIST / "fonts").glob("*.woff2"))
    for rel in list(KATEX_FILES) + [f"fonts/{p.name}" for p in font_files]:
        files.append(File.generated(config, f"assets/katex/{rel}",
                                    abs_src_path=str(KATEX_DIST / rel)))
    return files
