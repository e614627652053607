// Typesets the math that pymdownx.arithmatex (generic mode) leaves in
// <span class="arithmatex">\( ... \)</span> and <div class="arithmatex">\[ ... \]</div>,
// with the KaTeX served from this site (assets/katex/, see docs/_tools/hooks.py).
function softorderTypeset(root) {
  root.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(function () { softorderTypeset(document.body); });
} else {
  document.addEventListener("DOMContentLoaded", function () { softorderTypeset(document.body); });
}
