"""The report: the main job behind ``flatminima report`` (``make demo`` runs ``--quick``).

What it holds today (the numerics and experiment sections arrive with their layers):

1. every escape-time formula derived by the theory layer (white, SGD, loss-dependent; 1-D, 2-D
   and symbolic n; Itô, Stratonovich, anti-Itô), with the time it took to derive them cold;
2. the scaling laws SymPy reads off log τ (sharpness, batch size, learning rate, loss ratio);
3. a worked example: the 1-D Styblinski–Tang slice f(x) = ½(x⁴ − 16x² + 5x), whose minimum,
   saddle, curvatures, barrier and switch fraction are computed here (SymPy + mpmath), and
   the derived formulas evaluated on it at ``dps`` digits;
4. a figure of the predicted log γ against sharpness k, SGD against white noise.

Output: ``report.html`` (self-contained, figures embedded), ``report.json``, ``figures/*.png``.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import mpmath
import sympy as sp

from flatminima import __version__
from flatminima._katex import katex_head
from flatminima.errors import ParameterError, PrecisionError
from flatminima.numerics import landscape_case
from flatminima.theory import (
    INTERPRETATIONS,
    NOISE_MODELS,
    Derivation,
    derive_escape_time,
    derive_selection_ratio,
    derive_switch_fraction,
    scaling_law,
)

from ._design import exact_kappa

if TYPE_CHECKING:
    from ._registry import Analysis, Case, JSONRecord

__all__ = ["case_table", "run_report", "styblinski_tang_slice"]

Derived = dict[tuple[str, str, str], Derivation]
"""Every escape-time derivation by (noise, dim, interpretation)."""

CriticalPoints = dict[str, mpmath.mpf]
"""The Styblinski–Tang slice's a, b, c, H_a, H_b, Delta_L and s (``styblinski_tang_slice``)."""


class ExactCheck(TypedDict):
    """One row of the exact references: mfpt_1d against a formula (numbers as text)."""

    case: str
    exact: str
    exact_error: str
    formula: str
    ratio: str
    barrier: str


class ExampleRecord(TypedDict):
    """The worked example in report.json: critical points and τ (numbers as text)."""

    landscape: str
    critical_points: dict[str, str]
    s_piecewise_quadratic: str
    tau: dict[str, str]
    log_tau: dict[str, str]


class Verdict(TypedDict):
    """An experiment's prediction, whether it held, and its one-line summary."""

    prediction: str
    held: bool
    summary: str


class ExperimentRecord(TypedDict):
    """An experiment in report.json: its verdict and the seconds it took."""

    verdict: Verdict
    seconds: float


class ReportRecord(TypedDict):
    """report.json, key for key in the order written."""

    version: str
    quick: bool
    dps: int
    derivation_seconds: float
    formulas: dict[str, JSONRecord]
    scaling_laws: list[JSONRecord]
    example: ExampleRecord
    exact_checks: list[ExactCheck]
    figures: list[str]
    experiments: dict[str, ExperimentRecord]


def styblinski_tang_slice(dps: int = 30) -> CriticalPoints:
    """Critical points of f(x) = ½(x⁴ − 16x² + 5x) at ``dps`` digits.

    Returns the local minimum a (≈ 2.7468), the saddle (local maximum) b (≈ 0.1567), the
    curvatures H_a = f''(a), H_b = |f''(b)|, the barrier ΔL = f(b) − f(a), the inflection point
    c = √(8/3) between them and the switch fraction s = (f(c) − f(a))/ΔL of the harmonic switch
    model placed at c (docs: Conventions). The values carry ``dps`` digits whatever the ambient
    ``mpmath.mp.dps``.
    """
    return landscape_case("styblinski-tang-1d").references(dps)


def _exact_checks(example: CriticalPoints, dps: int) -> list[ExactCheck]:
    """mfpt_1d on the Styblinski–Tang slice against the compiled formulas."""
    from flatminima.numerics import escape_time, mfpt_1d

    case = landscape_case("styblinski-tang-1d")
    x, loss, c = case.variables[0], case.loss, case.switch[0]
    eta, batch = sp.Rational(85, 100000), sp.Rational(303, 100000)
    kappa = exact_kappa(eta, batch)
    with mpmath.workdps(dps):
        h_a = sp.Float(mpmath.nstr(example["H_a"], dps), dps)
        h_b = sp.Float(mpmath.nstr(example["H_b"], dps), dps)
    switch = sp.Piecewise((kappa * h_b, x < c), (kappa * h_a, True))
    start, end = example["a"], example["b"] - 1
    rows: list[ExactCheck] = []
    cases = [("white noise, D = 5", "white", 5, "ito")] + [
        (f"SGD, {name}", "sgd", switch, name) for name in INTERPRETATIONS
    ]
    for label, noise, diffusion, interpretation in cases:
        exact = mfpt_1d(
            loss, diffusion, start=start, end=end, interpretation=interpretation, dps=dps
        )
        white = noise == "white"
        import warnings

        from flatminima.errors import ValidityWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ValidityWarning)
            formula = escape_time(
                noise,
                hess_min=example["H_a"],
                hess_saddle=-example["H_b"],
                barrier=example["Delta_L"],
                interpretation=interpretation,
                diffusion=5 if white else None,
                lr=None if white else eta,
                batch_size=None if white else batch,
                s=None if white else example["s"],
                dps=dps,
            )
        with mpmath.workdps(dps):
            rows.append(
                ExactCheck(
                    case=label,
                    exact=mpmath.nstr(exact.value, 10),
                    exact_error=mpmath.nstr(exact.error, 2),
                    formula=mpmath.nstr(formula.tau, 10),
                    ratio=mpmath.nstr(formula.tau / exact.value, 6),
                    barrier=mpmath.nstr(exact.barrier, 5),
                )
            )
    return rows


def _figure_sharpness(path: Path, example: CriticalPoints) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sgd = derive_escape_time("sgd", dim=1, interpretation="ito").compile("numpy")
    white = derive_escape_time("white", dim=1).compile("numpy")
    k = np.geomspace(1, 8, 60)
    p = {key: float(val) for key, val in example.items()}
    log_rate_sgd = sgd.log_rate(
        H_a=k * p["H_a"], H_b=k * p["H_b"], Delta_L=p["Delta_L"], eta=8.5e-4, B=3.03e-3, s=p["s"]
    )
    log_rate_white = white.log_rate(H_a=k * p["H_a"], H_b=k * p["H_b"], Delta_L=p["Delta_L"], D=5.0)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].plot(1 / k, log_rate_sgd, label="SGD (Itô)")
    axes[0].plot(1 / k, log_rate_white, label="white noise, D = 5")
    axes[0].set_xlabel("1/k")
    axes[0].set_ylabel("log γ (predicted)")
    axes[0].set_title("SGD: log γ linear in 1/k")
    axes[1].plot(np.log(k), log_rate_sgd, label="SGD (Itô)")
    axes[1].plot(np.log(k), log_rate_white, label="white noise, D = 5")
    axes[1].set_xlabel("log k")
    axes[1].set_title("white noise: log γ linear in log k, slope 1")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Styblinski–Tang slice, sharpness L_k(θ) = L(√k θ) (theory only)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# After load, the page records how many of its figures failed to decode (make check-ui reads it).
_IMAGE_CHECK = (
    "<script>window.addEventListener('load',function(){var n=0;"
    "document.querySelectorAll('img').forEach(function(i){if(!i.complete||i.naturalWidth===0)"
    "{n++;}});document.body.setAttribute('data-images',document.images.length);"
    "document.body.setAttribute('data-broken-images',n);});</script>"
)


def _math(latex: str, display: bool = False) -> str:
    """LaTeX for the page's KaTeX: ``\\(...\\)`` inline, ``\\[...\\]`` displayed (HTML-escaped)."""
    return html.escape(f"\\[{latex}\\]" if display else f"\\({latex}\\)")


def _section(title: str, body: str, anchor: str = "") -> str:
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def case_table(cases: Sequence[Case]) -> str:
    """The default body of an experiment's section: one row per case (where, expected,
    measured, pass/FAIL)."""
    rows = "".join(
        f"<tr><td>{html.escape(c.label)}</td>"
        f"<td>{html.escape(c.expected)}</td>"
        f"<td>{html.escape(c.detail)}</td>"
        f"<td>{'pass' if c.held else '<b>FAIL</b>'}</td></tr>"
        for c in cases
    )
    return (
        "<table><tr><th>case</th><th>expected</th><th>measured</th><th>case</th></tr>"
        f"{rows}</table>"
    )


def _experiment_section(analysis: Analysis[Any], folder: Path) -> str:
    """An experiment's section: headline, the body its registry entry writes, its figures."""
    from ._registry import get_experiment

    name, held = analysis.experiment, analysis.held
    passed = sum(1 for c in analysis.cases if c.held)
    headline = (
        f"<p><b>Prediction:</b> {html.escape(analysis.prediction)}<br>"
        f"<b>Outcome:</b> {passed} of {len(analysis.cases)} cases as predicted — "
        f"{'the prediction held' if held else 'the prediction did not hold on every case'}.</p>"
    )
    body = get_experiment(name).report_body(analysis)
    images = "".join(
        f'<img alt="{html.escape(fig)}" src="data:image/png;base64,'
        f'{base64.b64encode((folder / fig).read_bytes()).decode("ascii")}">'
        for fig in analysis.figures
        if fig.endswith(".png")
    )
    return _section(
        f"Experiment: {name} — {'held' if held else 'not held on every case'}",
        headline
        + body
        + images
        + f"<p>Data: experiments/{html.escape(name)}/results.json, results.csv, points.jsonl</p>",
        anchor=f"experiment-{name}",
    )


def _formulas_section(sections: list[str]) -> tuple[Derived, float]:
    """1. Every escape-time formula, derived and timed (and the seconds it took)."""
    print("[1/6] deriving the escape-time formulas ...", flush=True)
    start = time.perf_counter()
    derived: Derived = {}
    for noise in NOISE_MODELS:
        for dim in (1, 2, "n"):
            for interpretation in INTERPRETATIONS:
                derived[(noise, str(dim), interpretation)] = derive_escape_time(
                    noise, dim, interpretation
                )
    elapsed = time.perf_counter() - start
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(dim)}</td><td>{html.escape(it)}</td>"
        f'<td class="formula">{_math(d.latex())}</td></tr>'
        for (n, dim, it), d in derived.items()
    )
    sections.append(
        _section(
            "Derived escape times τ (continuous time, unit η·iterations)",
            f"<p>{len(derived)} derivations by flux over population in {elapsed:.2f} s "
            f"(every one below: {len(derived)} rows). Symbols: H_a, H_b the curvatures at the "
            "minimum and the saddle (magnitudes), ΔL the barrier, η the learning rate, B the "
            "batch size, s the switch fraction, D the white-noise diffusion.</p>"
            "<table><tr><th>noise</th><th>dim</th><th>interpretation</th><th>τ</th></tr>"
            f"{rows}</table>",
        )
    )
    print(f"      {len(derived)} formulas in {elapsed:.2f} s", flush=True)
    for shown in (("white", "1", "ito"), ("sgd", "1", "anti-ito"), ("loss-dependent", "1", "ito")):
        print(f"      {shown[0]:>14} {shown[2]:>9}: {derived[shown].text()}", flush=True)
    return derived, elapsed


def _scaling_section(derived: Derived, sections: list[str]) -> list[JSONRecord]:
    """2. The scaling laws SymPy reads off log τ (their records)."""
    print("[2/6] scaling laws of log tau ...", flush=True)
    laws: list[JSONRecord] = []
    for noise, wrts in (
        ("sgd", ("sharpness", "batch_size", "lr")),
        ("white", ("sharpness", "diffusion")),
        ("loss-dependent", ("loss_ratio", "sharpness")),
    ):
        for wrt in wrts:
            law = scaling_law(derived[(noise, "1", "ito")], wrt=wrt)
            laws.append({"noise": noise, **law.to_dict()})
            print(f"      {noise:>14} vs {wrt:<10}: {law.kind:<11} {law.statement}", flush=True)
    sections.append(
        _section(
            "Scaling laws (derived from log τ)",
            "<p>k is the sharpness (every Hessian eigenvalue times k), B the batch size, η the "
            "learning rate, ρ the loss ratio L(b)/L(a), D the white-noise diffusion; C collects "
            "every term that does not depend on the variable.</p>"
            "<table><tr><th>noise</th><th>variable</th><th>kind</th><th>law</th></tr>"
            + "".join(
                f"<tr><td>{law['noise']}</td><td>{law['wrt']}</td><td>{law['kind']}</td>"
                f"<td>{_math(law['latex'])}</td></tr>"
                for law in laws
            )
            + "</table>",
        )
    )
    return laws


def _example_section(
    derived: Derived, dps: int, sections: list[str]
) -> tuple[CriticalPoints, ExampleRecord]:
    """3. The Styblinski–Tang slice and the formulas evaluated on it (and its record)."""
    print(f"[3/6] Styblinski-Tang slice evaluated at {dps} digits ...", flush=True)
    example = styblinski_tang_slice(dps)
    s_formula = derive_switch_fraction()
    with mpmath.workdps(dps):
        white = derived[("white", "1", "ito")].compile("mpmath")
        sgd = derived[("sgd", "1", "ito")].compile("mpmath")
        sgd_anti = derived[("sgd", "1", "anti-ito")].compile("mpmath")
        p = example
        eta, batch = mpmath.mpf("8.5e-4"), mpmath.mpf("3.03e-3")
        values = {
            "white, D = 5": white.tau(H_a=p["H_a"], H_b=p["H_b"], Delta_L=p["Delta_L"], D=5),
            "SGD Itô, η = 8.5e-4, B = 3.03e-3": sgd.tau(
                H_a=p["H_a"], H_b=p["H_b"], Delta_L=p["Delta_L"], eta=eta, B=batch, s=p["s"]
            ),
            "SGD anti-Itô, same": sgd_anti.tau(
                H_a=p["H_a"], H_b=p["H_b"], Delta_L=p["Delta_L"], eta=eta, B=batch, s=p["s"]
            ),
            "SGD Itô, η = 0.1, B = 128 (network scale)": sgd.tau(
                H_a=p["H_a"],
                H_b=p["H_b"],
                Delta_L=p["Delta_L"],
                eta=mpmath.mpf("0.1"),
                B=128,
                s=p["s"],
            ),
        }
        s_piecewise = s_formula.compile("mpmath").value(H_a=p["H_a"], H_b=p["H_b"])
        text_values = {k: mpmath.nstr(v, 12) for k, v in values.items()}
        log_values = {k: mpmath.nstr(mpmath.log(v), 12) for k, v in values.items()}
    record = ExampleRecord(
        landscape="f(x) = (x^4 - 16 x^2 + 5 x)/2",
        critical_points={k: mpmath.nstr(v, dps) for k, v in example.items()},
        s_piecewise_quadratic=mpmath.nstr(s_piecewise, 12),
        tau=text_values,
        log_tau=log_values,
    )
    for key, val in example.items():
        print(f"      {key:>8} = {mpmath.nstr(val, 15)}", flush=True)
    for key in values:
        print(f"      tau[{key}] = {text_values[key]}  (log tau = {log_values[key]})", flush=True)
    sections.append(
        _section(
            "Worked example: the Styblinski–Tang slice",
            "<p>f(x) = ½(x⁴ − 16x² + 5x); harmonic switch at the inflection point c = √(8/3). "
            "(A C¹ piecewise-quadratic valley with the same curvatures would have "
            f"s = H_b/(H_a + H_b) = {html.escape(mpmath.nstr(s_piecewise, 6))}.)</p>"
            "<table>"
            + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{html.escape(mpmath.nstr(v, 15))}</td></tr>"
                for k, v in example.items()
            )
            + "</table><table><tr><th>case</th><th>τ</th><th>log τ</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{text_values[k]}</td><td>{log_values[k]}</td></tr>"
                for k in values
            )
            + "</table>",
        )
    )
    return example, record


def _exact_section(example: CriticalPoints, dps: int, sections: list[str]) -> list[ExactCheck]:
    """4. mfpt_1d against the formulas (the rows)."""
    print("[4/6] exact first-passage times (mfpt_1d) against the formulas ...", flush=True)
    checks = _exact_checks(example, dps)
    for row in checks:
        print(
            f"      {row['case']:<34} exact tau = {row['exact']:<14} "
            f"formula/exact = {row['ratio']}  (ΔΦ = {row['barrier']})",
            flush=True,
        )
    sections.append(
        _section(
            "Exact references: mfpt_1d against the asymptotic formulas",
            "<p>Same slice; SGD noise in the harmonic switch model (switch at c), "
            "η = 8.5e-4, B = 3.03e-3. The formulas are asymptotic in ΔΦ; the ratio shows by how "
            "much they are off at this barrier.</p><table><tr><th>case</th><th>exact τ</th>"
            "<th>formula / exact</th><th>ΔΦ</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(r['case'])}</td><td>{r['exact']}</td><td>{r['ratio']}</td>"
                f"<td>{r['barrier']}</td></tr>"
                for r in checks
            )
            + "</table>",
        )
    )
    return checks


def _figure_section(example: CriticalPoints, folder: Path, sections: list[str]) -> list[str]:
    """5. The predicted sharpness dependence (the figures' paths in ``folder``)."""
    print("[5/6] figure ...", flush=True)
    figure = folder / "figures" / "sharpness_theory.png"
    _figure_sharpness(figure, example)
    encoded = base64.b64encode(figure.read_bytes()).decode("ascii")
    selection = derive_selection_ratio("sgd", 1, "anti-ito")
    sections.append(
        _section(
            "Predicted sharpness dependence",
            f'<img alt="log rate vs sharpness" src="data:image/png;base64,{encoded}">'
            "<p>Flat vs sharp (SGD, anti-Itô): "
            f"{_math(selection.latex(equation=True), display=True)}</p>",
        )
    )
    return [str(figure.relative_to(folder))]


def _experiment_sections(
    folder: Path, quick: bool, device: str, executor: Any, seed: int, sections: list[str]
) -> dict[str, ExperimentRecord]:
    """6. Every registered experiment, run (resumably) and written up (their records)."""
    print(f"[6/6] experiments ({'quick' if quick else 'full'}) ...", flush=True)
    from ._runner import validate

    analyses = validate(
        "all", folder / "experiments", quick=quick, device=device, executor=executor, seed=seed
    )
    records: dict[str, ExperimentRecord] = {}
    for name, analysis in analyses.items():
        verdict = Verdict(
            prediction=analysis.prediction, held=analysis.held, summary=analysis.summary
        )
        records[name] = ExperimentRecord(verdict=verdict, seconds=analysis.seconds)
        sections.append(_experiment_section(analysis, folder / "experiments" / name))
    return records


def _write_page(folder: Path, quick: bool, record: ReportRecord, sections: list[str]) -> Path:
    """The self-contained report.html and report.json."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>flatminima report</title>"
        + katex_head()
        + "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top}code{font-size:90%}img{max-width:100%}td.formula{overflow-x:auto;"
        "max-width:700px}p.rule{background:#f4f6fa;padding:.6em;border-left:4px solid #4a6fa5}"
        "</style></head><body>"
        f"<h1>flatminima {html.escape(__version__)} report{' (quick)' if quick else ''}</h1>"
        + "\n".join(sections)
        + _IMAGE_CHECK
        + "</body></html>"
    )
    report = folder / "report.html"
    report.write_text(page, encoding="utf-8")
    (folder / "report.json").write_text(
        json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    print(f"report: {report}", flush=True)
    print(f"data:   {folder / 'report.json'}", flush=True)
    return report


def run_report(
    out: str | Path = "flatminima-report",
    *,
    quick: bool = False,
    dps: int = 30,
    device: str = "cpu",
    executor: Any = None,
    seed: int = 0,
) -> Path:
    """Derive, evaluate, run the experiments and write the report to ``out``; returns the path
    of report.html.

    Parameters
    ----------
    out
        Output folder (created if missing; default ``"flatminima-report"``). The experiments
        write to ``out/experiments`` and resume from there when the report is run again.
    quick
        The quick version of every experiment (``make demo``: a few minutes on 2 cores).
    dps
        Decimal digits for the mpmath evaluations (at least 15); default 30.
    device, executor
        Where the experiments run (see [`flatminima.validation.validate`][flatminima.validation.validate]):
        default ``device="cpu"`` and ``executor=None`` (local processes).
    seed
        0 (the default) reproduces the recorded results; another integer repeats the
        experiments with other random draws.

    Returns
    -------
    Path
        The path of report.html.
    """
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 15:
        raise PrecisionError("dps", "an integer of at least 15 digits", dps)
    if not isinstance(out, str | Path) or not str(out):
        raise ParameterError("out", "a folder path", out)
    from ._runner import _check_device

    _check_device(device)  # before minutes of work, not after
    folder = Path(out)
    try:
        (folder / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ._store import OutputError

        raise OutputError("out", "a folder that can be created", str(folder), str(exc)) from None
    sections: list[str] = []
    derived, seconds = _formulas_section(sections)
    laws = _scaling_section(derived, sections)
    example, example_record = _example_section(derived, dps, sections)
    checks = _exact_section(example, dps, sections)
    figures = _figure_section(example, folder, sections)
    experiments = _experiment_sections(folder, quick, device, executor, seed, sections)
    record = ReportRecord(
        version=__version__,
        quick=quick,
        dps=dps,
        derivation_seconds=seconds,
        formulas={" / ".join(key): d.to_dict() for key, d in derived.items()},
        scaling_laws=laws,
        example=example_record,
        exact_checks=checks,
        figures=figures,
        experiments=experiments,
    )
    return _write_page(folder, quick, record, sections)
