"""The documentation is true: its examples run and print what they say, the API reference covers
every public name, and the derivation pages are generated from the engine's own steps.

The site itself is built with ``mkdocs build --strict`` by ``make docs`` (part of ``make test``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECT = re.compile(r"^(?P<indent>\s*)print\((?P<args>.*)\)\s+# -> (?P<expected>.+)$")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def checked(block: str) -> str:
    """The block with every ``print(...)  # -> expected`` line turned into a check that the
    printed text equals ``expected``."""
    lines = []
    for line in block.splitlines():
        match = EXPECT.match(line)
        if match is None:
            lines.append(line)
            continue
        indent, args, expected = match["indent"], match["args"], match["expected"]
        lines += [
            f"{indent}with __capture() as __out:",
            f"{indent}    print({args})",
            f"{indent}__expect(__out.getvalue().rstrip('\\n'), {expected!r})",
        ]
    return "\n".join(lines)


def _expect(got: str, expected: str) -> None:
    assert got == expected, f"the docs say {expected!r}, the code prints {got!r}"


def run_blocks(path: Path) -> int:
    namespace = {"__capture": _Capture, "__expect": _expect, "__name__": "__docs__"}
    checks = 0
    for k, block in enumerate(python_blocks(path)):
        code = checked(block)
        checks += code.count("__expect(")
        exec(compile(code, f"{path.name}[block {k}]", "exec"), namespace)
    return checks


class _Capture:
    def __enter__(self) -> io.StringIO:
        self.buffer = io.StringIO()
        self.redirect = contextlib.redirect_stdout(self.buffer)
        self.redirect.__enter__()
        return self.buffer

    def __exit__(self, *exc: object) -> None:
        self.redirect.__exit__(*exc)


def test_getting_started_runs_and_prints_what_it_says(tmp_path: Path, monkeypatch) -> None:
    """docs/index.md: a first formula, a first number against the exact MFPT, a first
    experiment (the quick batch-size run, with its figure)."""
    monkeypatch.chdir(tmp_path)
    checks = run_blocks(ROOT / "docs" / "index.md")
    assert checks >= 8
    assert (tmp_path / "runs" / "batch-size" / "figures" / "batch-size_double-well.png").exists()


def test_readme_example_runs_and_prints_what_it_says() -> None:
    assert run_blocks(ROOT / "README.md") >= 3


@pytest.mark.parametrize("page", ["theory.md", "numerics.md"])
def test_layer_pages_examples_run(page: str, tmp_path: Path, monkeypatch) -> None:
    """The self-contained examples on the layer pages run (those that use placeholder names such
    as ``loss`` or ``grad`` are skipped)."""
    monkeypatch.chdir(tmp_path)
    ran = 0
    for block in python_blocks(ROOT / "docs" / page):
        if re.search(r"\b(loss|diffusion|grad|x0|nx)\b,", block):
            continue
        if "from flatminima" not in block:
            continue
        namespace: dict = {"__capture": _Capture, "__expect": _expect}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(checked(block), page, "exec"), namespace)
        ran += 1
    assert ran >= 1


def _public_names() -> dict[str, list[str]]:
    names = {}
    for module in ("theory", "numerics", "validation"):
        mod = importlib.import_module(f"flatminima.{module}")
        names[f"flatminima.{module}"] = list(mod.__all__)
    return names


def test_api_reference_covers_every_public_name() -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    directives = set(re.findall(r"^::: (\S+)$", api, re.M))
    missing = [
        f"{module}.{name}"
        for module, names in _public_names().items()
        for name in names
        if f"{module}.{name}" not in directives
    ]
    assert not missing, f"docs/api.md lacks ::: directives for {missing}"
    # the errors module is rendered whole; the package face re-exports from it
    assert "flatminima.errors" in directives
    import flatminima
    import flatminima.errors

    for name in flatminima.__all__:
        assert name == "__version__" or name in flatminima.errors.__all__


def test_mkdocs_nav_points_at_existing_pages() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r":\s+(\S+\.md)\s*$", config, re.M)
    assert "api.md" in pages and "generated/derivations.md" in pages
    for page in pages:
        if page.startswith("generated/"):
            continue  # written by docs/hooks.py at build time
        assert (ROOT / "docs" / page).exists(), page


def test_derivation_pages_are_generated_from_the_engine_steps() -> None:
    """Every step of every derivation on the page is the engine's own step, rendered by the
    engine's LaTeX printer: change the engine and the page changes."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        hooks = importlib.import_module("hooks")
    finally:
        sys.path.remove(str(ROOT / "docs"))
    from flatminima.theory import derive_escape_time
    from flatminima.theory._derivation import to_latex

    page = hooks._derivations()
    for noise, dim, interpretation in hooks.CASES:
        d = derive_escape_time(noise, dim=dim, interpretation=interpretation)
        assert f"## {noise}, dim {dim}, {d.interpretation}" in page
        for title, expr in d.steps:
            assert title in page
            assert to_latex(expr) in page
        assert d.latex(equation=True) in page


def test_tutorial_runs_and_prints_what_it_says(tmp_path: Path, monkeypatch) -> None:
    """docs/tutorial.md, the notebook-style walk: every cell runs, every `# ->` holds, and the
    figure it saves exists in all three formats."""
    monkeypatch.chdir(tmp_path)
    assert run_blocks(ROOT / "docs" / "tutorial.md") >= 11
    for suffix in ("png", "pdf", "svg"):
        assert (tmp_path / "figures" / f"tau_vs_sharpness.{suffix}").exists()
