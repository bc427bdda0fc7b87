"""Offline maths for HTML pages: the vendored KaTeX (``flatminima/_vendor/katex``, MIT licence).

``katex_head()`` returns a ``<style>``/``<script>`` block that renders every ``\\(...\\)`` and
``\\[...\\]`` on a page with no network: the fonts are inlined as woff2 ``data:`` URIs, the
scripts inline. The report (``flatminima report``) embeds it; the docs site links the same files
(``docs/hooks.py`` adds them to the build).
"""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path

__all__ = ["KATEX_DIR", "katex_head"]

KATEX_DIR = Path(__file__).parent / "_vendor" / "katex"

_RENDER = """
document.addEventListener("DOMContentLoaded", function () {
  renderMathInElement(document.body, {
    delimiters: [
      {left: "\\\\[", right: "\\\\]", display: true},
      {left: "\\\\(", right: "\\\\)", display: false}
    ],
    throwOnError: false
  });
  document.body.setAttribute("data-math-rendered", "true");
});
"""


def _inline_fonts(css: str) -> str:
    def data_uri(match: re.Match[str]) -> str:
        font = (KATEX_DIR / match.group(1)).read_bytes()
        return f"url(data:font/woff2;base64,{base64.b64encode(font).decode('ascii')})"

    return re.sub(r"url\((fonts/[A-Za-z0-9_-]+\.woff2)\)", data_uri, css)


@cache
def katex_head() -> str:
    """The ``<head>`` block (CSS with fonts, KaTeX, auto-render and the call) as one string."""
    css = _inline_fonts((KATEX_DIR / "katex.min.css").read_text(encoding="utf-8"))
    js = (KATEX_DIR / "katex.min.js").read_text(encoding="utf-8")
    auto = (KATEX_DIR / "contrib" / "auto-render.min.js").read_text(encoding="utf-8")
    return (
        f"<style>{css}</style>\n<script>{js}</script>\n<script>{auto}</script>\n"
        f"<script>{_RENDER}</script>\n"
    )
