"""The docs site reads offline and cites only its own pages: KaTeX from the package (no CDN),
Sphinx :math: roles converted for the API page, no reference to files the repository lacks."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["flatminima", "theory", "numerics", "validation", "docs", "README.md", "mkdocs.yml"]


def _files() -> list[Path]:
    out: list[Path] = []
    for name in PRODUCT:
        path = ROOT / name
        if path.is_file():
            out.append(path)
        else:
            out += [p for p in path.rglob("*") if p.suffix in (".py", ".md", ".yml", ".js")]
    return [p for p in out if "_vendor" not in p.parts and "generated" not in p.parts]


def test_no_reference_to_the_design_notes() -> None:
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _files()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "THEORY.md" in line or "DESIGN.md" in line
    ]
    assert not hits, hits


def _mkdocs() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def test_maths_renderer_is_local() -> None:
    config = _mkdocs()
    assets = config["extra_javascript"] + config["extra_css"]
    assert not [a for a in assets if re.match(r"https?:", a)], assets
    from flatminima._katex import KATEX_DIR

    for asset in assets:
        if asset.startswith("assets/katex/"):
            assert (KATEX_DIR / asset.removeprefix("assets/katex/")).is_file(), asset
        else:
            assert (ROOT / "docs" / asset).is_file(), asset
    assert config["theme"].get("font") is False  # no font CDN either
    nav = str(config["nav"])
    assert "conventions.md" in nav and "what-you-see.md" in nav


def test_math_roles_become_katex_maths() -> None:
    spec = importlib.util.spec_from_file_location("griffe_math", ROOT / "docs" / "griffe_math.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from flatminima.numerics import escape_time

    doc = escape_time.__doc__ or ""
    assert doc.count(":math:`") >= 2  # the real docstring, with a role over two lines
    converted = module.convert(doc)
    assert ":math:" not in converted
    inline = re.findall(r"\$([^$]+)\$", converted)
    assert any(r"\exp\left[" in m and "\n" not in m for m in inline)
