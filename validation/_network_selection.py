"""Flat against sharp on a real network: two distinct minima of one small MLP, under SGD.

A 2→3→2 tanh MLP on noisy XOR data (weight decay 0.01) has several distinct minima (trained from
different seeds by L-BFGS). Two of nearly equal loss (within 0.02) and different sharpness
(λ_max) are picked automatically. From each, the escape rate is measured with the network
escape machinery: the training loss rising δ above *that* minimum's loss, so both valleys have the
same "barrier" δ by construction. The quasi-equilibrium odds of the flat minimum are
γ_sharp/γ_flat (the two-state master equation).

Prediction: with D = κH near each minimum the quasi-potential to the level δ is δ/(κλ_max), so
log odds = 2(B/η)δ(1/λ_flat − 1/λ_sharp) + const: linear in B/η with a positive slope.

No white-noise arm on the network (it is on the landscape): a loss-jump escape with isotropic
white noise in n = 17 dimensions is dominated by the n/2 "entropic" term of the level-set
crossing (the loss of a white-noise chain at equilibrium is n·D/2 above the minimum's), so
white noise at the SGD temperature of the flat minimum (D = κλ_flat) sits above the level δ and
escapes at once — measured: 10–30 iterations per escape at every B/η, against 80–20 000 for
SGD. A fair white-noise comparison on a network needs a saddle-crossing escape, which this small
model does not offer between its minima.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import torch

from flatminima.theory._formulas import compiled_formula

from ._design import kappa as sgd_kappa
from ._design import point_seed
from ._models import load_dataset, make_model, train_to_minimum

__all__ = ["network_selection_analysis", "network_selection_points"]

SETUP: dict[str, Any] = {
    "dataset": "xor",
    "size": 128,
    "hidden": 3,
    "weight_decay": 0.01,
    "data_seed": 0,
}


@cache
def pick_minima(seeds: int = 16) -> dict[str, Any]:
    """Train from ``seeds`` initialisations; return the flat/sharp pair (init seeds, losses,
    λ_max) of nearly equal loss with the largest sharpness ratio."""
    data = load_dataset(SETUP["dataset"], seed=SETUP["data_seed"], size=SETUP["size"])
    model = make_model("mlp", data, hidden=SETUP["hidden"], weight_decay=SETUP["weight_decay"])
    minima: dict[tuple[float, float], tuple[int, float, float]] = {}
    for seed in range(seeds):
        try:
            theta, info = train_to_minimum(model, data, seed=seed)
        except Exception:  # a seed that does not converge is skipped
            continue
        hessian = torch.func.hessian(lambda t: model.loss(t, data.x, data.y))(theta)
        values = torch.linalg.eigvalsh(0.5 * (hessian + hessian.T))
        if values[0] <= 0:
            continue
        key = (round(info["loss"], 3), round(float(values[-1]), 2))
        minima.setdefault(key, (seed, info["loss"], float(values[-1])))
    found = sorted(minima.values(), key=lambda m: m[2])
    best: tuple[float, tuple[int, float, float], tuple[int, float, float]] | None = None
    for i, flat in enumerate(found):
        for sharp in found[i + 1 :]:
            if abs(flat[1] - sharp[1]) < 0.02 and sharp[2] > flat[2]:
                ratio = sharp[2] / flat[2]
                if best is None or ratio > best[0]:
                    best = (ratio, flat, sharp)
    if best is None:
        raise RuntimeError(f"no flat/sharp pair of equal loss among the minima {found}")
    _, flat, sharp = best
    return {
        "flat": {"init_seed": flat[0], "loss": flat[1], "lambda_max": flat[2]},
        "sharp": {"init_seed": sharp[0], "loss": sharp[1], "lambda_max": sharp[2]},
        "distinct_minima": len(found),
    }


def network_selection_points(quick: bool, device: str) -> list[dict[str, Any]]:
    pair = pick_minima()
    lam_f, lam_s = pair["flat"]["lambda_max"], pair["sharp"]["lambda_max"]
    eta = 0.1 / lam_s  # step bound ηλ_max ≤ 0.1 at both minima
    batches = [1, 2, 3] if quick else [1, 2, 3, 4]
    x_max = max(batches) / eta
    # E_flat = δ/(κλ_flat) at the largest B/η, so δ = E·λ_flat·κ(η = 1, B = x_max) (κ ∝ η)
    delta = sgd_kappa((4.0 if quick else 5.0) * lam_f, x_max)
    # log odds = log γ_sharp/γ_flat: the whole climb δ on the minimum's side (s = 1)
    log_odds = compiled_formula("selection_ratio_sgd").log_value
    slope = float(log_odds(H_flat=lam_f, H_sharp=lam_s, Delta_L=delta, eta=1.0, B=1.0, s=1.0))
    target = 200 if quick else 400
    points = []
    for batch in batches:
        for noise in ("sgd",):
            for which in ("flat", "sharp"):
                point: dict[str, Any] = {
                    "task": "network-rate",
                    "experiment": "selection",
                    **{k: v for k, v in SETUP.items()},
                    "init_seed": pair[which]["init_seed"],
                    "which": which,
                    "noise": noise,
                    "lr": eta,
                    "B_over_eta": batch / eta,
                    "delta": delta,
                    "replicas": 256,
                    "target_escapes": target,
                    "max_steps": 400_000,
                    "check_every": 1,
                    "seed": point_seed("network-selection", noise, which, batch),
                    "device": device,
                    "predicted_slope": slope,
                }
                point["batch_size"] = batch
                points.append(point)
    return points


def network_selection_analysis(
    points: list[dict[str, Any]], results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    table: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
    for point, result in zip(points, results, strict=True):
        table.setdefault((point["noise"], point["B_over_eta"]), {})[point["which"]] = {
            **point,
            **result,
        }
    pair = pick_minima()
    cases = []
    for noise in ("sgd",):
        xs, odds, errors = [], [], []
        for (n, ratio), both in sorted(table.items()):
            if n != noise:
                continue
            flat, sharp = both["flat"], both["sharp"]
            xs.append(ratio)
            odds.append(math.log(sharp["rate"] / flat["rate"]))
            errors.append(math.sqrt(1 / max(sharp["escapes"], 1) + 1 / max(flat["escapes"], 1)))
        x = np.array(xs)
        y = np.array(odds)
        w = 1 / np.array(errors) ** 2
        X = np.column_stack([np.ones_like(x), x])
        cov = np.linalg.inv((X.T * w) @ X)
        coef = cov @ ((X.T * w) @ y)
        slope, slope_se = float(coef[1]), float(math.sqrt(cov[1, 1]))
        predicted = points[0]["predicted_slope"]
        held = slope > 3 * slope_se
        cases.append(
            {
                "model": f"mlp({SETUP['hidden']})/{SETUP['dataset']}",
                "noise": noise,
                "expected": "log odds of the flat minimum grow linearly in B/η",
                "held": held,
                "slope": slope,
                "slope_se": slope_se,
                "slope_formula": predicted,
                "slope_exact": None,
                "B_over_eta": xs,
                "log_odds": odds,
                "log_odds_se": errors,
                "fraction_flat": [1 / (1 + math.exp(-v)) for v in odds],
                "minima": pair,
                "criterion": f"training loss more than δ = {points[0]['delta']:.4g} above the minimum's own",
            }
        )
    return cases
