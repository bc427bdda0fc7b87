"""The measured error of the asymptotic escape-time formulas against the exact 1-D MFPT.

For each landscape (double well x⁴/4 − x²/2; the Styblinski–Tang slice (x⁴ − 16x² + 5x)/2
escaping from its local minimum) and each noise (white; SGD in the harmonic switch model,
switch at the inflection point, Itô / Stratonovich / anti-Itô), the derived formula's τ is
divided by the exact mean first-passage time from ``flatminima.numerics.mfpt_1d`` over a range
of barrier heights ΔΦ (the barrier in units of the noise). Writes

- ``docs/figures/numerics/asymptotic_error.png``: |τ_formula/τ_exact − 1| against ΔΦ, log-log,
  with the 1/ΔΦ guide and the ΔΦ = 5 threshold of ``ValidityWarning``;
- ``docs/figures/numerics/asymptotic_error.json``: every point, and the fitted log-log slopes.

Run: ``.venv/bin/python docs/scripts/asymptotic_error.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mpmath
import numpy as np
import sympy as sp

from flatminima.numerics import mfpt_1d
from flatminima.theory import derive_escape_time

x = sp.Symbol("x")
OUT = Path(__file__).resolve().parents[1] / "figures" / "numerics"
# ΔΦ targets: from well inside the ValidityWarning regime to far outside it
TARGETS = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0]
INTERPRETATIONS = ("ito", "stratonovich", "anti-ito")


def _landscapes() -> dict[str, dict]:
    dw = x**4 / 4 - x**2 / 2
    st = (x**4 - 16 * x**2 + 5 * x) / 2
    a_st = sp.nsolve(sp.diff(st, x), x, 2.7, prec=40)
    b_st = sp.nsolve(sp.diff(st, x), x, 0.15, prec=40)
    return {
        "double well": {"loss": dw, "a": sp.Integer(-1), "b": sp.Integer(0), "end": 1,
                        "c": -1 / sp.sqrt(3)},
        "Styblinski–Tang slice": {"loss": st, "a": a_st, "b": b_st, "end": -1,
                                  "c": sp.sqrt(sp.Rational(8, 3))},
    }  # fmt: skip


def _curvatures(spec: dict) -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
    loss, a, b, c = spec["loss"], spec["a"], spec["b"], spec["c"]
    h_a = sp.diff(loss, x, 2).subs(x, a)
    h_b = -sp.diff(loss, x, 2).subs(x, b)
    barrier = loss.subs(x, b) - loss.subs(x, a)
    s = (loss.subs(x, c) - loss.subs(x, a)) / barrier
    return h_a, h_b, barrier, s


def _switch_diffusion(spec: dict, kappa: sp.Expr, h_a: sp.Expr, h_b: sp.Expr) -> sp.Expr:
    near_b = sp.Lt(x, spec["c"]) if spec["b"] < spec["a"] else sp.Gt(x, spec["c"])
    return sp.Piecewise((kappa * h_b, near_b), (kappa * h_a, True))


def measure() -> dict:
    white = derive_escape_time("white", 1).compile("mpmath")
    sgd = {i: derive_escape_time("sgd", 1, i).compile("mpmath") for i in INTERPRETATIONS}
    results: dict = {"targets": TARGETS, "curves": []}
    for name, spec in _landscapes().items():
        h_a, h_b, barrier, s = _curvatures(spec)
        hn = {k: sp.N(v, 30) for k, v in (("H_a", h_a), ("H_b", h_b), ("Delta_L", barrier))}
        # white: ΔΦ = ΔL/D
        curve: dict = {"landscape": name, "noise": "white", "interpretation": "ito", "points": []}
        for phi in TARGETS:
            D = sp.nsimplify(barrier / sp.Float(phi, 30), rational=True)
            exact = mfpt_1d(spec["loss"], D, start=spec["a"], end=spec["end"], dps=20)
            with mpmath.workdps(25):
                formula = white.tau(**hn, D=sp.N(D, 30))
            curve["points"].append(_point(exact, formula))
        results["curves"].append(curve)
        # SGD switch model: ΔΦ = (ΔL/κ)(s/H_a + (1 − s)/H_b)
        unit = float(barrier * (s / h_a + (1 - s) / h_b))
        for interpretation in INTERPRETATIONS:
            curve = {"landscape": name, "noise": "sgd", "interpretation": interpretation,
                     "points": []}  # fmt: skip
            for phi in TARGETS:
                kappa = sp.nsimplify(sp.Float(unit / phi, 30), rational=True)
                diffusion = _switch_diffusion(spec, kappa, h_a, h_b)
                exact = mfpt_1d(spec["loss"], diffusion, start=spec["a"], end=spec["end"],
                                interpretation=interpretation, dps=20)  # fmt: skip
                with mpmath.workdps(25):
                    formula = sgd[interpretation].tau(
                        **hn, eta=sp.N(2 * kappa, 30), B=1, s=sp.N(s, 30)
                    )
                curve["points"].append(_point(exact, formula))
            results["curves"].append(curve)
        print(name, "done", file=sys.stderr)
    for curve in results["curves"]:
        phis = np.array([p["barrier"] for p in curve["points"]])
        err = np.array([abs(p["ratio"] - 1) for p in curve["points"]])
        large = phis >= 5
        curve["slope_above_5"] = float(np.polyfit(np.log(phis[large]), np.log(err[large]), 1)[0])
        curve["c_above_5"] = [float(v) for v in (err * phis)[large][[0, -1]]]
    return results


def _point(exact, formula) -> dict:
    return {
        "barrier": float(exact.barrier),
        "exact": mpmath.nstr(exact.value, 15),
        "formula": mpmath.nstr(formula, 15),
        "ratio": float(formula / exact.value),
        "exact_error": float(exact.error),
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    landscapes = list(dict.fromkeys(c["landscape"] for c in results["curves"]))
    styles = {"white": "k-o", "ito": "C0-s", "stratonovich": "C1-^", "anti-ito": "C2-v"}
    for ax, name in zip(axes, landscapes, strict=True):
        for curve in (c for c in results["curves"] if c["landscape"] == name):
            phis = [p["barrier"] for p in curve["points"]]
            err = [abs(p["ratio"] - 1) for p in curve["points"]]
            key = "white" if curve["noise"] == "white" else curve["interpretation"]
            label = "white noise" if key == "white" else f"SGD, {key}"
            ax.loglog(
                phis,
                err,
                styles[key],
                ms=4,
                label=f"{label} (slope {curve['slope_above_5']:.2f} above ΔΦ = 5)",
            )
        guide = np.array([1, 40.0])
        ax.loglog(guide, 0.5 / guide, ":", color="grey", label="0.5/ΔΦ")
        ax.axvline(5, color="red", lw=0.8, ls="--")
        ax.text(4.8, 0.03, "ValidityWarning below ΔΦ = 5", color="red", fontsize=8,
                ha="right", va="bottom", transform=ax.get_xaxis_transform())  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel("ΔΦ (barrier in units of the noise)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|τ_formula / τ_exact − 1|")
    fig.suptitle("Asymptotic escape-time formulas against the exact 1-D MFPT (mfpt_1d)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    results = measure()
    (OUT / "asymptotic_error.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, OUT / "asymptotic_error.png")
    for c in results["curves"]:
        row = ", ".join(f"{p['barrier']:.1f}:{p['ratio']:.4f}" for p in c["points"])
        print(f"{c['landscape']:24s} {c['noise']:5s} {c['interpretation']:12s} "
              f"slope {c['slope_above_5']:.2f}  {row}")  # fmt: skip


if __name__ == "__main__":
    main()
