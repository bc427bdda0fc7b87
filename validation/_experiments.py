"""The escape experiments on test landscapes: points to run, analysis, verdicts.

Every experiment is a list of sweep points (run by `_sweep`, resumable) and an analysis
that turns the measured rates into fits, theory comparisons and a verdict. Theory enters twice:
the asymptotic formula (theory layer → numerics ``escape_time``) and the exact MFPT of the
continuous SDE (``mfpt_1d``), so a disagreement can be placed: formula vs exact is the
asymptotic error, measured vs exact is the discrete chain and the statistics.

Sharpness k (L_k(θ) = L(√kθ)) is run as step size: SGD or white-noise GD on L_k with step η is
exactly the same update on L with step kη (docs/conventions.md §6; checked in the tests), so a point with
multiplier k runs with ``lr = kη`` and its rate per iteration is the rate on L_k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._design import Design, point_seed, sgd_design, white_design
from ._design import kappa as _kappa
from ._fits import compare_laws
from ._landscapes import landscape
from ._predict import predictions

__all__ = ["EXPERIMENTS", "LandscapeExperiment"]

Point = dict[str, Any]


def _rate_point(
    experiment: str,
    land_name: str,
    noise: str,
    design: Design,
    *,
    lr: float,
    label: dict[str, Any],
    target: int,
    device: str,
    batch_size: int | None = None,
    diffusion: float | None = None,
    options: dict[str, Any] | None = None,
    steps_goal: int = 6000,
) -> Point:
    """A rate point, with replicas sized from the formula's rate so a run takes ~steps_goal."""
    point: Point = {
        "task": "rate",
        "experiment": experiment,
        "landscape": land_name,
        "noise": noise,
        "lr": float(lr),
        "loss_scale": float(design.loss_scale),
        "device": device,
        **label,
    }
    if options:
        point["landscape_options"] = options
    if noise == "sgd":
        point["batch_size"] = batch_size if batch_size is not None else design.batch_size
    else:
        point["diffusion"] = diffusion if diffusion is not None else design.diffusion
    rate = predictions(point)["formula"]["rate"]
    replicas = int(
        min(16384, max(256, 2 ** math.ceil(math.log2(max(target / (rate * steps_goal), 1)))))
    )
    point["replicas"] = replicas
    point["target_escapes"] = target
    point["max_steps"] = int(20 * target / (rate * replicas)) + 1000
    point["seed"] = point_seed(
        experiment, land_name, noise, *(f"{k}={v}" for k, v in sorted(label.items())), options
    )
    return point


def _per_point(points: list[Point], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for point, result in zip(points, results, strict=True):
        pred = predictions(point)
        row = {**{k: v for k, v in point.items() if k not in ("task", "device")}, **result}
        row["formula_rate"] = pred["formula"]["rate"]
        row["quasi_potential"] = pred["formula"]["quasi_potential"]
        row["exact_rate"] = pred["exact"]["rate"] if pred["exact"] else None
        row["measured_over_exact"] = (
            result["rate"] / row["exact_rate"] if row["exact_rate"] else None
        )
        rows.append(row)
    return rows


def _line_fit(
    x: np.ndarray, log_rate: np.ndarray, features: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Least-squares coefficients of a log-linear law on noise-free (theory) values."""
    return np.linalg.lstsq(features(x), log_rate, rcond=None)[0]


@dataclass(frozen=True)
class LandscapeExperiment:
    """An experiment on test landscapes: ``build(quick, device)`` gives the points,
    ``analyse(points, results)`` the numbers and the verdict."""

    name: str
    prediction: str
    build: Callable[[bool, str], list[Point]]
    analyse: Callable[[list[Point], list[dict[str, Any]]], dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# sharpness


def _sharpness_config(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "landscapes": ["double-well"],
            "sgd_k": [1.0, 1.5, 2.0, 3.0],
            "sgd_phi": 6.0,
            "white_k": [1.0, 2.0, 4.0, 8.0],
            "white_phi": 5.0,
            "target": 300,
        }
    return {
        "landscapes": ["double-well", "styblinski-tang-1d", "styblinski-tang-2d"],
        "sgd_k": [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0],
        "sgd_phi": 8.0,
        "white_k": [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0],
        "white_phi": 6.0,
        "target": 600,
    }


def _sharpness_points(quick: bool, device: str) -> list[Point]:
    cfg = _sharpness_config(quick)
    points = []
    for name in cfg["landscapes"]:
        land = landscape(name)
        sgd = sgd_design(
            land, batch_size=4, barrier_phi=cfg["sgd_phi"], largest_step=max(cfg["sgd_k"])
        )
        for k in cfg["sgd_k"]:
            points.append(
                _rate_point(
                    "sharpness",
                    name,
                    "sgd",
                    sgd,
                    lr=k * sgd.lr,
                    label={"k": k},
                    target=cfg["target"],
                    device=device,
                )
            )
        white = white_design(land, barrier_phi=cfg["white_phi"], largest_step=max(cfg["white_k"]))
        for k in cfg["white_k"]:
            points.append(
                _rate_point(
                    "sharpness",
                    name,
                    "white",
                    white,
                    lr=k * white.lr,
                    label={"k": k},
                    target=cfg["target"],
                    device=device,
                )
            )
    return points


def _sharpness_analysis(points: list[Point], results: list[dict[str, Any]]) -> dict[str, Any]:
    rows = _per_point(points, results)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["landscape"], row["noise"]), []).append(row)
    cases = []
    for (name, noise), group in groups.items():
        group.sort(key=lambda r: r["k"])
        k = np.array([r["k"] for r in group])
        counts = np.array([r["escapes"] for r in group])
        exposure = np.array([r["exposure"] for r in group])
        comparison = compare_laws(
            k, counts, exposure, variable="k", inverse=True, prefactor_power=1.0
        )
        exact = np.array([r["exact_rate"] or np.nan for r in group])
        formula = np.array([r["formula_rate"] for r in group])
        theory: dict[str, Any] = {}
        for label, values in (("formula", formula), ("exact", exact)):
            if np.all(np.isfinite(values)):
                _, e = _line_fit(
                    k,
                    np.log(values) - np.log(k),
                    lambda v: np.column_stack([np.ones_like(v), -1 / v]),
                )
                p = _line_fit(
                    k, np.log(values), lambda v: np.column_stack([np.ones_like(v), np.log(v)])
                )[1]
                theory[label] = {"E": float(e), "power": float(p)}
        if noise == "sgd":
            held = comparison.preferred == "exponential"
            expected = "exponential in 1/k"
        else:
            p, p_se = comparison.power.coefficient("p")
            held = comparison.preferred == "polynomial" and abs(p - 1) <= 3 * p_se
            expected = "polynomial, rate ∝ k"
        cases.append(
            {
                "landscape": name,
                "noise": noise,
                "expected": expected,
                "preferred": comparison.preferred,
                "held": held,
                "reason": comparison.reason,
                "fits": comparison.to_dict(),
                "theory": theory,
                "points": group,
            }
        )
    return {"cases": cases, "held": all(c["held"] for c in cases), "rows": rows}


# ---------------------------------------------------------------------------------------------
# batch size and learning rate


def _batch_config(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "landscapes": ["double-well"],
            "batch": [2, 3, 4, 5, 6],
            "phi_max": 6.0,
            "target": 300,
        }
    return {
        "landscapes": ["double-well", "styblinski-tang-1d"],
        "batch": [2, 3, 4, 5, 6, 7, 8],
        "phi_max": 8.0,
        "target": 600,
    }


def _batch_points(quick: bool, device: str) -> list[Point]:
    cfg = _batch_config(quick)
    points = []
    for name in cfg["landscapes"]:
        land = landscape(name)
        design = sgd_design(land, batch_size=max(cfg["batch"]), barrier_phi=cfg["phi_max"])
        for b in cfg["batch"]:
            points.append(
                _rate_point(
                    "batch-size",
                    name,
                    "sgd",
                    design,
                    lr=design.lr,
                    batch_size=b,
                    label={"B": b},
                    target=cfg["target"],
                    device=device,
                )
            )
    return points


def _lr_config(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "landscapes": ["double-well"],
            "lr_multipliers": [1.0, 1.25, 1.6, 2.0, 2.5],
            "phi": 6.0,
            "target": 300,
        }
    return {
        "landscapes": ["double-well", "styblinski-tang-1d"],
        "lr_multipliers": [1.0, 1.2, 1.45, 1.75, 2.1, 2.5, 3.0],
        "phi": 8.0,
        "target": 600,
    }


def _lr_points(quick: bool, device: str) -> list[Point]:
    cfg = _lr_config(quick)
    points = []
    for name in cfg["landscapes"]:
        land = landscape(name)
        design = sgd_design(
            land, batch_size=4, barrier_phi=cfg["phi"], largest_step=max(cfg["lr_multipliers"])
        )
        for m in cfg["lr_multipliers"]:
            points.append(
                _rate_point(
                    "learning-rate",
                    name,
                    "sgd",
                    design,
                    lr=m * design.lr,
                    label={"eta": m * design.lr},
                    target=cfg["target"],
                    device=device,
                )
            )
    return points


def _slope_analysis(
    points: list[Point], results: list[dict[str, Any]], variable: str, inverse: bool
) -> dict[str, Any]:
    """−log γ linear in B (``inverse`` False) or in 1/η (True, with the log η prefactor)."""
    rows = _per_point(points, results)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["landscape"], []).append(row)
    cases = []
    key = "B" if variable == "B" else "eta"
    for name, group in groups.items():
        group.sort(key=lambda r: r[key])
        x = np.array([r[key] for r in group], dtype=float)
        counts = np.array([r["escapes"] for r in group])
        exposure = np.array([r["exposure"] for r in group])
        comparison = compare_laws(
            x,
            counts,
            exposure,
            variable=variable,
            inverse=inverse,
            prefactor_power=1.0 if inverse else 0.0,
        )
        slope, slope_se = (
            comparison.exponential.coefficients[1],
            comparison.exponential.standard_errors[1],
        )
        theory = {}
        for label in ("formula", "exact"):
            values = np.array([r[f"{label}_rate"] or np.nan for r in group])
            if np.all(np.isfinite(values)):
                offset = np.log(x) if inverse else np.zeros_like(x)
                design = np.column_stack([np.ones_like(x), -(1 / x if inverse else x)])
                theory[label] = float(
                    np.linalg.lstsq(design, np.log(values) - offset, rcond=None)[0][1]
                )
        reference = theory.get("exact", theory.get("formula"))
        deviation = (slope - reference) / reference if reference else None
        held = comparison.preferred == "exponential"
        cases.append(
            {
                "landscape": name,
                "expected": f"−log γ linear in {'1/η' if inverse else 'B'}",
                "preferred": comparison.preferred,
                "held": held,
                "slope": slope,
                "slope_se": slope_se,
                "slope_formula": theory.get("formula"),
                "slope_exact": theory.get("exact"),
                "slope_relative_deviation_from_exact": deviation,
                "reason": comparison.reason,
                "fits": comparison.to_dict(),
                "points": group,
            }
        )
    return {"cases": cases, "held": all(c["held"] for c in cases), "rows": rows}


# ---------------------------------------------------------------------------------------------
# selection: flat vs sharp


SELECTION_LANDSCAPE = {"h_flat": 1.0, "h_sharp": 4.0, "h_saddle": 2.0, "barrier": 1.0}


def _selection_config(quick: bool) -> dict[str, Any]:
    if quick:
        return {"ratios": [1.0, 1.5, 2.0, 2.5, 3.0], "batch": 2, "target": 200}
    return {"ratios": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5], "batch": 2, "target": 500}


def _selection_points(quick: bool, device: str) -> list[Point]:
    cfg = _selection_config(quick)
    batch = cfg["batch"]
    largest_lr = batch / min(cfg["ratios"])
    lam = 0.05 / (largest_lr * SELECTION_LANDSCAPE["h_sharp"])
    points = []
    for ratio in cfg["ratios"]:
        lr = batch / ratio
        for noise in ("sgd", "white"):
            # white noise at the SGD temperature of the flat minimum: D = (η/2B) λ H_flat
            diffusion = (
                _kappa(lr, batch) * lam * SELECTION_LANDSCAPE["h_flat"]
                if noise == "white"
                else None
            )
            design = Design(lr=lr, loss_scale=lam, batch_size=batch, diffusion=diffusion)
            for which in ("flat", "sharp"):
                points.append(
                    _rate_point(
                        "selection",
                        "flat-sharp",
                        noise,
                        design,
                        lr=lr,
                        label={"B_over_eta": ratio, "which": which},
                        target=cfg["target"],
                        device=device,
                        options={**SELECTION_LANDSCAPE, "which": which},
                    )
                )
    # one direct check of the two-state picture: start half in each valley, run long, count
    ratio = min(cfg["ratios"])
    lr = batch / ratio
    points.append(
        {
            "task": "occupation",
            "experiment": "selection",
            "landscape": "flat-sharp",
            "landscape_options": {**SELECTION_LANDSCAPE, "which": "flat"},
            "noise": "sgd",
            "lr": lr,
            "loss_scale": lam,
            "batch_size": batch,
            "replicas": 2048,
            "steps": 40_000 if quick else 100_000,
            "seed": point_seed("selection-occupation", ratio),
            "B_over_eta": ratio,
            "device": device,
        }
    )
    return points


def _selection_analysis(points: list[Point], results: list[dict[str, Any]]) -> dict[str, Any]:
    rate_pairs = [(p, r) for p, r in zip(points, results, strict=True) if p["task"] == "rate"]
    rows = _per_point([p for p, _ in rate_pairs], [r for _, r in rate_pairs])
    table: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
    for row in rows:
        table.setdefault((row["noise"], row["B_over_eta"]), {})[
            row["landscape_options"]["which"]
        ] = row
    cases = []
    for noise in ("sgd", "white"):
        ratios, log_odds, errors, formula_odds, exact_odds = [], [], [], [], []
        for (n, ratio), pair in sorted(table.items()):
            if n != noise:
                continue
            flat, sharp = pair["flat"], pair["sharp"]
            # quasi-equilibrium: P_flat / P_sharp = γ_sharp / γ_flat
            ratios.append(ratio)
            log_odds.append(math.log(sharp["rate"] / flat["rate"]))
            errors.append(math.sqrt(1 / max(sharp["escapes"], 1) + 1 / max(flat["escapes"], 1)))
            formula_odds.append(math.log(sharp["formula_rate"] / flat["formula_rate"]))
            exact_odds.append(math.log(sharp["exact_rate"] / flat["exact_rate"]))
        x = np.array(ratios)
        y = np.array(log_odds)
        w = 1 / np.array(errors) ** 2
        X = np.column_stack([np.ones_like(x), x])
        cov = np.linalg.inv((X.T * w) @ X)
        coef = cov @ ((X.T * w) @ y)
        slope, slope_se = float(coef[1]), float(math.sqrt(cov[1, 1]))
        chi2 = float(np.sum(w * (y - X @ coef) ** 2))
        slope_exact = float(np.polyfit(x, exact_odds, 1)[0])
        slope_formula = float(np.polyfit(x, formula_odds, 1)[0])
        if noise == "sgd":
            held = slope > 3 * slope_se
            expected = "log odds of the flat valley grow linearly in B/η (exponential preference)"
        else:
            held = abs(slope) <= 3 * slope_se
            expected = "log odds do not depend on B/η (white noise at matched temperature)"
        cases.append(
            {
                "noise": noise,
                "expected": expected,
                "held": held,
                "slope": slope,
                "slope_se": slope_se,
                "slope_formula": slope_formula,
                "slope_exact": slope_exact,
                "chi2": chi2,
                "dof": len(x) - 2,
                "B_over_eta": ratios,
                "log_odds": log_odds,
                "log_odds_se": errors,
                "log_odds_formula": formula_odds,
                "log_odds_exact": exact_odds,
                "fraction_flat": [1 / (1 + math.exp(-v)) for v in log_odds],
            }
        )
    direct = {}
    for point, result in zip(points, results, strict=True):
        if point["task"] != "occupation":
            continue
        pair = table[("sgd", point["B_over_eta"])]
        predicted = pair["sharp"]["rate"] / (pair["sharp"]["rate"] + pair["flat"]["rate"])
        fraction = result["fraction"]
        se = math.sqrt(fraction * (1 - fraction) / result["replicas"])
        direct = {
            "B_over_eta": point["B_over_eta"],
            "fraction_flat_direct": fraction,
            "standard_error": se,
            "fraction_flat_from_rates": predicted,
            "steps": result["steps"],
        }
    return {
        "cases": cases,
        "direct_occupation": direct,
        "held": all(c["held"] for c in cases),
        "rows": rows,
    }


def _split(
    points: list[Point], results: list[dict[str, Any]], task: str
) -> tuple[list[Point], list[dict[str, Any]], list[Point], list[dict[str, Any]]]:
    mine = [(p, r) for p, r in zip(points, results, strict=True) if p["task"] == task]
    rest = [(p, r) for p, r in zip(points, results, strict=True) if p["task"] != task]
    return [p for p, _ in mine], [r for _, r in mine], [p for p, _ in rest], [r for _, r in rest]


def _sharpness_all_points(quick: bool, device: str) -> list[Point]:
    from ._network_escape import network_sharpness_points

    return _sharpness_points(quick, device) + network_sharpness_points(quick, device)


def _sharpness_all_analysis(points: list[Point], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Landscape cases and network cases (a trained MLP at its minimum), one verdict."""
    from ._network_escape import network_sharpness_analysis

    net_p, net_r, land_p, land_r = _split(points, results, "network-rate")
    analysis = _sharpness_analysis(land_p, land_r)
    network = network_sharpness_analysis(net_p, net_r)
    analysis["cases"] += network["cases"]
    analysis["rows"] += network["rows"]
    analysis["held"] = all(c["held"] for c in analysis["cases"])
    return analysis


def _selection_all_points(quick: bool, device: str) -> list[Point]:
    from ._network_selection import network_selection_points

    return _selection_points(quick, device) + network_selection_points(quick, device)


def _selection_all_analysis(points: list[Point], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The two-valley landscape (SGD and white noise) and two minima of a real MLP (SGD)."""
    from ._network_selection import network_selection_analysis

    net_p, net_r, land_p, land_r = _split(points, results, "network-rate")
    analysis = _selection_analysis(land_p, land_r)
    analysis["cases"] += network_selection_analysis(net_p, net_r)
    analysis["rows"] += [{**p, **r} for p, r in zip(net_p, net_r, strict=True)]
    analysis["held"] = all(c["held"] for c in analysis["cases"])
    return analysis


EXPERIMENTS: dict[str, LandscapeExperiment] = {
    "sharpness": LandscapeExperiment(
        "sharpness",
        "SGD: log γ linear in 1/k (exponential); white noise: γ ∝ k (polynomial) — on test landscapes and at a trained network's minimum",
        _sharpness_all_points,
        _sharpness_all_analysis,
    ),
    "batch-size": LandscapeExperiment(
        "batch-size",
        "SGD: −log γ linear in B",
        _batch_points,
        lambda p, r: _slope_analysis(p, r, "B", inverse=False),
    ),
    "learning-rate": LandscapeExperiment(
        "learning-rate",
        "SGD: −log γ linear in 1/η",
        _lr_points,
        lambda p, r: _slope_analysis(p, r, "eta", inverse=True),
    ),
    "selection": LandscapeExperiment(
        "selection",
        "SGD's preference for the flat valley grows exponentially in B/η; white noise's does not — on a two-valley landscape and between two minima of a real MLP",
        _selection_all_points,
        _selection_all_analysis,
    ),
}
