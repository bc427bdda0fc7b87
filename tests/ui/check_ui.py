"""Browser check (``make check-ui``): the demo report and the docs site, opened offline in
headless Chromium, show rendered maths, load their figures and state the covariance rule.

Usage: ``python tests/ui/check_ui.py REPORT_HTML SITE_DIR [--screenshots DIR]``.

For each page Chromium runs the page's JavaScript (KaTeX) and dumps the DOM; the checks read
the *visible* text (scripts, styles and KaTeX's hidden MathML copy removed):

- no raw LaTeX (``\\frac``, ``\\sqrt``, ``\\(``, ``\\[``) is left;
- KaTeX rendered the formulas (``.katex`` elements; the report: at least one per derivation);
- figures load: the report records, after load, how many of its images failed to decode
  (``data-broken-images``, must be 0); the site's ``<img>`` files exist and are PNG/SVG;
- the report's covariance section states its rule (top 3 directions, slope and scale bands)
  and says what held and what did not.

No network: Chromium runs with background networking off and the pages reference only files.
Exit status 0 when every check passes, 1 otherwise (each failure printed).
"""

from __future__ import annotations

import argparse
import html.parser
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
]
SITE_PAGES = (
    "theory/index.html",
    "conventions/index.html",
    "api/index.html",
    "generated/derivations/index.html",
    "validation/index.html",
)
WITH_MATHS = set(SITE_PAGES) - {"validation/index.html"}
RAW_LATEX = re.compile(r"\\(frac|sqrt|left|right|Delta|tau)\b|\\\(|\\\[")


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(binary: str, url: str, extra: list[str]) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=180,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed on {url}: {proc.stderr[-1500:]}")
    return proc.stdout


def dump_dom(binary: str, url: str) -> str:
    return run_chromium(binary, url, ["--dump-dom"])


def screenshot(binary: str, url: str, path: Path, size: str = "1200,1400") -> None:
    run_chromium(
        binary, url, [f"--screenshot={path}", f"--window-size={size}", "--hide-scrollbars"]
    )


class _Visible(html.parser.HTMLParser):
    """Visible text of a DOM dump, and a few facts about it."""

    HIDDEN = frozenset({"script", "style", "noscript", "head", "title", "annotation"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []
        self.katex = 0
        self.body: dict[str, str] = {}
        self.images: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        hidden = tag in self.HIDDEN or "katex-mathml" in classes
        parent_hidden = bool(self.stack) and self.stack[-1][1]
        if tag in ("img", "br", "meta", "link", "input", "hr"):
            if tag == "img":
                self.images.append(a.get("src", ""))
            return
        self.stack.append((tag, hidden or parent_hidden))
        if "katex" in classes:
            self.katex += 1
        if tag == "body":
            self.body = a
        if tag == "section" and a.get("id"):
            self._section = a["id"]
            self.sections[self._section] = []

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            name, _ = self.stack.pop()
            if name == tag:
                break
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][1]:
            return
        self.parts.append(data)
        if self._section:
            self.sections[self._section].append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def parse(dom: str) -> _Visible:
    page = _Visible()
    page.feed(dom)
    return page


def check_report(binary: str, report: Path, failures: list[str]) -> _Visible:
    page = parse(dump_dom(binary, report.resolve().as_uri()))
    where = f"report {report}"
    if page.body.get("data-math-rendered") != "true":
        failures.append(f"{where}: KaTeX did not run (no data-math-rendered on <body>)")
    raw = RAW_LATEX.findall(page.text)
    if raw:
        failures.append(f"{where}: raw LaTeX in the visible text: {raw[:5]}")
    match = re.search(r"(\d+) derivations", page.text)
    derivations = int(match.group(1)) if match else 0
    if derivations < 27 or page.katex < derivations:
        failures.append(f"{where}: {page.katex} rendered formulas for {derivations} derivations")
    if page.body.get("data-broken-images") != "0" or int(page.body.get("data-images", "0")) < 3:
        failures.append(
            f"{where}: figures: {page.body.get('data-images')} images, "
            f"{page.body.get('data-broken-images')} failed to load"
        )
    covariance = " ".join(" ".join(page.sections.get("experiment-covariance", [])).split())
    for phrase in ("Rule.", "3 directions of largest curvature", "[0.75, 1.25]", "[0.5, 2",
                   "What held.", "What did not hold.", "filled markers"):  # fmt: skip
        if phrase not in covariance:
            failures.append(f"{where}: the covariance section does not state {phrase!r}")
    print(
        f"report: {page.katex} formulas rendered ({derivations} derivations), "
        f"{page.body.get('data-images')} figures loaded, covariance rule stated"
        if not failures
        else f"report: {len(failures)} problem(s)"
    )
    return page


def check_site(binary: str, site: Path, failures: list[str]) -> None:
    for rel in SITE_PAGES:
        path = site / rel
        if not path.exists():
            failures.append(f"site {rel}: missing (was the site built?)")
            continue
        dom = dump_dom(binary, path.resolve().as_uri())
        if "cdn.jsdelivr" in dom or "googleapis" in dom:
            failures.append(f"site {rel}: references a CDN")
        page = parse(dom)
        raw = RAW_LATEX.findall(page.text)
        if raw:
            failures.append(f"site {rel}: raw LaTeX in the visible text: {raw[:5]}")
        if ":math:" in page.text:
            failures.append(f"site {rel}: a Sphinx :math: role printed literally")
        if rel in WITH_MATHS and page.katex == 0:
            failures.append(f"site {rel}: no rendered formula")
        for src in page.images:
            if src.startswith("data:"):
                continue
            target = (path.parent / src.split("#")[0]).resolve()
            head = target.read_bytes()[:8] if target.is_file() else b""
            if not (head.startswith(b"\x89PNG") or head.lstrip().startswith(b"<")):
                failures.append(f"site {rel}: figure {src} does not load")
        print(f"site {rel}: {page.katex} formulas rendered, {len(page.images)} figures")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("site", type=Path)
    parser.add_argument("--screenshots", type=Path, help="write PNG screenshots here")
    args = parser.parse_args(argv)
    binary = chromium()
    if binary is None:
        print("check-ui: FAILED: no chromium found (apt-get install -y chromium)")
        return 1
    failures: list[str] = []
    check_report(binary, args.report, failures)
    check_site(binary, args.site, failures)
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        url = args.report.resolve().as_uri()
        screenshot(binary, url, args.screenshots / "report.png", "1100,1300")
        source = args.report.read_text(encoding="utf-8")
        start = source.find('<section id="experiment-covariance">')
        if start >= 0:  # the covariance section alone, with the report's head (styles, KaTeX)
            end = source.index("</section>", start) + len("</section>")
            body = source.index("<body>") + len("<body>")
            with tempfile.TemporaryDirectory() as tmp:
                alone = Path(tmp) / "covariance.html"
                alone.write_text(source[:body] + source[start:end] + "</body></html>", "utf-8")
                shot = args.screenshots / "report-covariance.png"
                screenshot(binary, alone.as_uri(), shot, "1100,1700")
    for failure in failures:
        print(f"check-ui: FAILED: {failure}")
    pages = ["report", *(f"site {p}" for p in SITE_PAGES)]
    failed = sum(1 for p in pages if any(f.startswith(p) for f in failures))
    print(f"check-ui: {len(pages) - failed} passed, {failed} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
