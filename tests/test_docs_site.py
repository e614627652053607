"""The documentation site builds with warnings as errors and every page works in a real browser.

One test (it is slow: a strict mkdocs build, then headless Chromium on each page): build the
site into a temporary folder with ``mkdocs build --strict``, serve it on localhost, open every
page in Debian's Chromium and check, on the DOM after the page's scripts ran, that

* the page rendered (the theme's article with a heading, not the 404 page);
* its math is typeset: each arithmatex element of the page holds KaTeX output, no KaTeX error,
  and the math page has math (so the check cannot pass on a site without any);
* every internal link resolves to a page or file of the site, and its #fragment to an id there;
* the browser fetched nothing the server could not serve (KaTeX fonts, scripts, styles);

and keep a screenshot of the home page under artifacts/docs-site/ (Makefile prints the path).
Under CI (CI=true) a missing Chromium or KaTeX fails the test; elsewhere it skips, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
KATEX = ROOT / "docs" / "_tools" / "node_modules" / "katex" / "dist" / "katex.min.js"
ARTIFACTS = ROOT / "artifacts" / "docs-site"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=5000"]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI installs it: .ci/run, make docs)")
    pytest.skip(f"{what}; skipped outside CI")


class _Page(HTMLParser):
    """What the checks need from a page: ids, links, classes, the article's heading."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.classes: list[set[str]] = []
        self.title = ""
        self._in_title = False
        self.article_heading = False
        self._in_article = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
        self.classes.append(set((a.get("class") or "").split()))
        if tag == "title":
            self._in_title = True
        if tag == "article":
            self._in_article += 1
        if tag == "h1" and self._in_article:
            self.article_heading = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag == "article":
            self._in_article -= 1

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def count(self, cls: str) -> int:
        return sum(cls in c for c in self.classes)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(site: Path):
    failures: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def log_request(self, code="-", size="-"):
            if str(code).isdigit() and int(code) >= 400:
                failures.append(f"{code} {self.path} (referer: {self.headers.get('Referer')})")

    server = _Server(("127.0.0.1", 0), partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, failures


def _chromium(chromium: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def _target(site: Path, url: str) -> Path | None:
    """The file of the site that serves ``url`` (a directory serves its index.html)."""
    path = site / unquote(urlsplit(url).path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def test_site_builds_strictly_and_every_page_renders_typesets_math_and_links_within(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("Chromium is not installed (Debian package `chromium`)")
    if not KATEX.is_file():
        _missing(f"KaTeX is not installed ({KATEX}: `npm ci --prefix docs/_tools`)")

    site = tmp_path / "site"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH", "")]),
               NO_MKDOCS_2_WARNING="1")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(site)], cwd=ROOT, capture_output=True, text=True, env=env,
                           timeout=600)
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"

    pages = sorted(p for p in site.rglob("index.html") if "assets" not in p.parts)
    names = [p.parent.relative_to(site).as_posix() for p in pages]
    for required in (".", "math", "conventions", "migrating/torchsort", "migrating/fast-soft-sort",
                     "migrating/ott-jax", "getting-started/torch", "api/numpy", "api/torch",
                     "api/jax", "api/tensorflow", "api/isotonic", "api/torchsort", "api/flax"):
        assert required in names, f"the site has no page {required}/"

    server, failed_requests = _serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    static = {p: _parse(p.read_text()) for p in pages}

    def visit(page: Path):
        url = urljoin(base, page.parent.relative_to(site).as_posix() + "/")
        run = _chromium(chromium, "--dump-dom", url)
        return page, url, run

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(visit, pages))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "home.png"
        shot.unlink(missing_ok=True)
        _chromium(chromium, "--window-size=1280,1000", f"--screenshot={shot}", base)
    finally:
        server.shutdown()

    problems: list[str] = []
    math_on_math_page = 0
    for page, url, run in results:
        name = page.parent.relative_to(site).as_posix()
        dom = _parse(run.stdout)
        if run.returncode != 0 or not dom.article_heading or "404" in dom.title:
            problems.append(f"{name}: did not render (rc {run.returncode}, title {dom.title!r})")
            continue
        expected_math = static[page].count("arithmatex")
        typeset = dom.count("katex")
        if typeset < expected_math or dom.count("katex-error"):
            problems.append(f"{name}: {expected_math} math elements, {typeset} typeset by KaTeX, "
                            f"{dom.count('katex-error')} KaTeX errors")
        if name == "math":
            math_on_math_page = typeset
        for href in dom.links:
            target_url = urljoin(url, href)
            parts = urlsplit(target_url)
            if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(base).netloc:
                continue
            target = _target(site, target_url)
            if target is None:
                problems.append(f"{name}: broken link {href!r}")
            elif parts.fragment and target.suffix == ".html":
                ids = static[target].ids if target in static else _parse(target.read_text()).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{name}: link {href!r}: no id {parts.fragment!r} there")
    assert math_on_math_page >= 10, f"the math page typeset {math_on_math_page} formulas"
    problems += [f"the browser fetched a missing file: {f}" for f in failed_requests]
    assert not problems, "\n".join(problems)

    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", \
        f"no screenshot of the home page at {shot}"
    print(f"home page screenshot: {shot}")
