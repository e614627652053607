"""A griffe extension for the API pages: softorder's docstrings are Google style with the math in
reStructuredText (``.. math::`` blocks and ``:math:`` roles, which ``help()`` and Sphinx read),
and the site renders Markdown. Before mkdocstrings renders a docstring, this rewrites

* a ``.. math::`` block (with its indented body, or a one-line ``.. math:: formula``) into an
  arithmatex display block ``$$ ... $$``, and ``:math:`formula``` into ``$formula$``;
* an argument entry that names several parameters (``y_min, y_max: optional bounds``, the
  names possibly running over two lines) into one entry per name with the same description,
  the form Google-style parsers read;
* every doctest (a run of ``>>>`` / ``...`` lines and their expected output) into a fenced
  ``pycon`` code block, so that an example renders as code whatever the section title says
  ("Example (torchsort's README):" is not a section Google-style parsers know).

The docstrings themselves stay as they are: ``make test`` runs their examples as doctests.
"""

from __future__ import annotations

import re

from griffe import Extension, Object

_ROLE = re.compile(r":math:`([^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<inline>.*)$")
_PROMPT = re.compile(r"^(?P<indent>[ \t]*)>>>(?: |$)")
_ARGS = re.compile(r"^(?P<indent>[ \t]*)(Args|Arguments|Parameters|Attributes|Keyword Args):\s*$")
_NAMES = r"\*{0,2}\w+(?:,\s*\*{0,2}\w+)*"
_MULTI = re.compile(rf"^(?P<names>{_NAMES},\s*\*{{0,2}}\w+):(?P<desc>.*)$")
_OPEN = re.compile(rf"^{_NAMES},$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split_arguments(lines: list[str]) -> list[str]:
    """One entry per name in the argument sections (see the module)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        header = _ARGS.match(lines[i])
        i += 1
        if not header:
            continue
        body_start = i
        while i < len(lines) and (not lines[i].strip()
                                  or _indent(lines[i]) > len(header["indent"])):
            i += 1
        body = lines[body_start:i]
        items = [b for b in body if b.strip()]
        item_pad = min((_indent(b) for b in items), default=0)
        entries: list[list[str]] = []
        for b in body:
            if b.strip() and _indent(b) == item_pad:
                if entries and _OPEN.match(entries[-1][0].strip()):
                    entries[-1][0] = entries[-1][0] + " " + b.strip()
                    continue
                entries.append([b])
            elif entries:
                entries[-1].append(b)
            else:
                out.append(b)
        for entry in entries:
            m = _MULTI.match(entry[0].strip())
            if not m:
                out += entry
                continue
            for name in (n.strip() for n in m["names"].split(",")):
                out += [" " * item_pad + f"{name}:{m['desc']}"] + entry[1:]
    return out


def rewrite(text: str) -> str:
    """The docstring ``text`` with its reST math and doctests in Markdown (see the module)."""
    lines = _split_arguments(text.splitlines())
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if m:
            pad, body = m["indent"], []
            if m["inline"].strip():
                body.append(m["inline"].strip())
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(pad)):
                body.append(lines[i].strip())
                i += 1
            while body and not body[-1]:
                body.pop()
            body = [b for b in body if b]  # a blank line would end the arithmatex block
            if out and out[-1].strip():
                out.append("")
            out += [pad + "$$"] + [pad + b for b in body] + [pad + "$$", ""]
            continue
        m = _PROMPT.match(line)
        if m:
            pad, block = m["indent"], []
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= len(pad):
                block.append(lines[i][len(pad):])
                i += 1
            if out and out[-1].strip():
                out.append("")
            out += [pad + "```pycon"] + [pad + b for b in block] + [pad + "```"]
            continue
        out.append(_ROLE.sub(lambda r: f"${r[1]}$", line))
        i += 1
    return "\n".join(out)


class SoftorderDocstrings(Extension):
    """Rewrites each loaded object's docstring once (see the module)."""

    def on_object(self, *, obj: Object, **kwargs) -> None:
        if obj.docstring is not None and not getattr(obj.docstring, "_softorder_md", False):
            obj.docstring.value = rewrite(obj.docstring.value)
            obj.docstring._softorder_md = True  # type: ignore[attr-defined]
