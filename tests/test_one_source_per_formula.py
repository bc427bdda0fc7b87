"""No formula the theory layer derives is typed again in the validation or numerics layers, the
package face (flatminima/: the command line) and the benchmarks: a grep for the shapes such a copy takes, with the deliberate
exceptions listed (and explained in docs/architecture.md, "One source per formula").

Patterns (Python source, comments and docstrings excluded):

- κ = η/(2B): ``lr / (2 * batch)``, ``/ (2 * float(batch_size))``, ``eta / (2 * B)``
- the SGD exponent 2BΔL(s/H_a + (1 − s)/H_b)/η: ``2 * batch * …``, ``(1 - s) / …``
- the switch fraction H_b/(H_a + H_b): ``h_saddle / (h_a + h_saddle)``
- the flat-vs-sharp slope 2δ(1/λ_flat − 1/λ_sharp): ``(1 / lam_f - 1 / lam_s)``
- the Styblinski–Tang loss: ``x**4 - 16 * x**2``
- the double-well loss: ``x**4 / 4 - x**2 / 2``
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCHED = ("validation/**/*.py", "numerics/**/*.py", "flatminima/*.py", "benchmarks/*.py")

PATTERNS = {
    "kappa": re.compile(
        r"\b(lr|eta|η)\w*\s*\)?\s*/\s*\(\s*2\s*\*|/\s*\(\s*2\s*\*\s*(float\()?(batch|B\b)"
    ),
    "sgd exponent": re.compile(r"\b2\s*\*\s*(batch|B\b)\w*\s*\*|\(\s*1\s*-\s*s\s*\)\s*/"),
    "switch fraction": re.compile(r"/\s*\(\s*h_a\s*\+\s*h_(b|saddle)\b"),
    "selection slope": re.compile(r"\(\s*1\s*/\s*\w+\s*-\s*1\s*/\s*\w+\s*\)"),
    "styblinski-tang": re.compile(r"\*\*\s*4\s*-\s*16\s*\*"),
    "double well": re.compile(r"\*\*\s*4\s*/\s*4\s*-\s*\w+(\[[^]]*\])?\s*\*\*\s*2\s*/\s*2"),
}

#: (path, pattern) → why the copy stays. The case registry and the theory layer are the sources.
ALLOWED: dict[tuple[str, str], str] = {
    ("numerics/_cases.py", "styblinski-tang"): "the case registry: the one declaration (SymPy "
    "form and the array callable a test checks against it)",
    ("numerics/_cases.py", "double well"): "the case registry: the one declaration",
    ("benchmarks/run.py", "sgd exponent"): "the hand-written mpmath floor that the compiled "
    "formula is timed against (the thing compared, not a prediction)",
    ("benchmarks/run.py", "double well"): "the peer columns (scipy quad, the kramers package) "
    "define the double well themselves: a peer computes from its own definition",
}


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, code) with comments and string literals (docstrings) blanked out."""
    text = path.read_text()
    lines = text.splitlines()
    blank: dict[int, list[tuple[int, int]]] = {}
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            (r0, c0), (r1, c1) = token.start, token.end
            for row in range(r0, r1 + 1):
                start = c0 if row == r0 else 0
                end = c1 if row == r1 else len(lines[row - 1])
                blank.setdefault(row, []).append((start, end))
    out = []
    for number, line in enumerate(lines, 1):
        chars = list(line)
        for start, end in blank.get(number, []):
            chars[start:end] = " " * (end - start)
        out.append((number, "".join(chars)))
    return out


def _files() -> list[Path]:
    return [path for pattern in SEARCHED for path in sorted(ROOT.glob(pattern))]


def find_copies() -> list[tuple[str, int, str, str]]:
    found = []
    for path in _files():
        relative = path.relative_to(ROOT).as_posix()
        for number, code in _code_lines(path):
            for name, pattern in PATTERNS.items():
                if pattern.search(code) and (relative, name) not in ALLOWED:
                    found.append((relative, number, name, code.strip()))
    return found


def test_no_formula_is_typed_again_outside_the_theory_layer() -> None:
    copies = find_copies()
    assert not copies, (
        "re-typed formulas (use flatminima.theory._formulas or the case registry):\n"
        + "\n".join(f"  {path}:{line} [{name}] {code}" for path, line, name, code in copies)
    )


def test_the_grep_finds_what_it_looks_for(tmp_path: Path) -> None:
    """Each pattern catches the copy it was written for (the test can fail)."""
    samples = {
        "kappa": "kappa = lr / (2 * batch)",
        "sgd exponent": "eta = 2 * batch_size * q / phi",
        "switch fraction": "s = h_saddle / (h_a + h_saddle)",
        "selection slope": "slope = 2 * delta * (1 / lam_f - 1 / lam_s)",
        "styblinski-tang": "f = 0.5 * (x**4 - 16 * x**2 + 5 * x)",
        "double well": "loss = x[:, 0] ** 4 / 4 - x[:, 0] ** 2 / 2",
    }
    for name, code in samples.items():
        assert PATTERNS[name].search(code), name
        path = tmp_path / "sample.py"
        path.write_text(f"# {code}\n'''{code}'''\n")
        assert all(not PATTERNS[name].search(line) for _, line in _code_lines(path))


def test_every_allowed_copy_is_still_there() -> None:
    """An allow-list entry whose copy is gone is stale: remove it."""
    present = set()
    for path in _files():
        relative = path.relative_to(ROOT).as_posix()
        for _, code in _code_lines(path):
            for name, pattern in PATTERNS.items():
                if pattern.search(code):
                    present.add((relative, name))
    assert set(ALLOWED) <= present, set(ALLOWED) - present


def test_the_architecture_page_examples_run_and_print_what_they_say() -> None:
    """docs/architecture.md, "One source per formula": its examples (the noise-model section
    runs in its own process: tests/theory/test_add_noise_model.py)."""
    from test_docs import _Capture, _expect, checked

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("## One source per formula")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace = {"__capture": _Capture, "__expect": _expect, "__name__": "__docs__"}
    checks = 0
    for block in blocks:
        code = checked(block)
        checks += code.count("__expect(")
        exec(compile(code, "architecture.md", "exec"), namespace)
    assert checks >= 2
