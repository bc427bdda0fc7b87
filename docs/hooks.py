"""mkdocs hook: pages generated from the code before every build (never retyped by hand).

- ``generated/derivations.md``: each derivation's own steps, from ``derive_escape_time``.
- ``generated/benchmarks.md``: the table ``make bench`` last wrote to ``benchmarks/RESULTS.md``.
- ``assets/katex/``: the KaTeX that ships inside the package (``flatminima/_vendor/katex``),
  added to the site so that maths renders offline (no CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CASES = [
    ("white", 1, "ito"),
    ("white", "n", "ito"),
    ("sgd", 1, "alpha"),
    ("sgd", 2, "anti-ito"),
    ("sgd", 2, "ito"),
    ("loss-dependent", 1, "ito"),
    ("loss-dependent", "n", "ito"),
]


def _derivations() -> str:
    from flatminima.theory import derive_escape_time, derive_selection_ratio, scaling_law

    parts = [
        "# Derivations, step by step",
        "",
        "Generated at build time from `flatminima.theory.derive_escape_time(...).steps` — the "
        "engine's own intermediate results, printed with `flatminima.theory.Derivation.format_steps`. "
        "Conventions: time t = η·iterations; curvature symbols are magnitudes (`H_b` is |H_be|); "
        "interpretation α enters the current J = −P L' − D^α (D^(1−α) P)'.",
        "",
    ]
    for noise, dim, interpretation in CASES:
        d = derive_escape_time(noise, dim=dim, interpretation=interpretation)
        parts += [
            f"## {noise}, dim {dim}, {d.interpretation}",
            "",
            f"**Model.** {d.model}",
            "",
            "**Assumptions.**",
            "",
            *[f"- {a}" for a in d.assumptions],
            "",
            "**Steps.**",
            "",
        ]
        for k, (title, expr) in enumerate(d.steps, 1):
            from flatminima.theory._derivation import to_latex

            parts += [f"{k}. {title}", "", f"    $$ {to_latex(expr)} $$", ""]
        parts += ["**Result.**", "", f"$$ {d.latex(equation=True)} $$", ""]
        if noise in ("white", "sgd") and dim != "n":
            law = scaling_law(d, "sharpness")
            parts += [f"Sharpness scaling (derived): {law.kind} — `{law.statement}`.", ""]
    ratio = derive_selection_ratio("sgd", 1, "anti-ito")
    parts += ["## Flat vs sharp (SGD, anti-Itô)", "", f"$$ {ratio.latex(equation=True)} $$", ""]
    return "\n".join(parts)


def _benchmarks(root: Path) -> str:
    source = root / "benchmarks" / "RESULTS.md"
    if not source.exists():
        return "# Benchmark table\n\nNo `benchmarks/RESULTS.md` yet: run `make bench`.\n"
    text = source.read_text(encoding="utf-8")
    return text.replace("# Benchmark results", "# Benchmark table (benchmarks/RESULTS.md)", 1)


def on_pre_build(config: Any, **kwargs: Any) -> None:
    docs = Path(config["docs_dir"])
    generated = docs / "generated"
    generated.mkdir(exist_ok=True)
    (generated / "derivations.md").write_text(_derivations(), encoding="utf-8")
    (generated / "benchmarks.md").write_text(_benchmarks(docs.parent), encoding="utf-8")


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    """Add the vendored KaTeX (scripts, CSS, woff2 fonts) under ``assets/katex/``."""
    from mkdocs.structure.files import File

    from flatminima._katex import KATEX_DIR

    for path in sorted(KATEX_DIR.rglob("*")):
        if path.suffix in (".js", ".css", ".woff2"):
            rel = "assets/katex/" + path.relative_to(KATEX_DIR).as_posix()
            files.append(File.generated(config, rel, abs_src_path=str(path)))
    return files
