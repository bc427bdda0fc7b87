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
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import torch

from flatminima.theory._formulas import compiled_formula

from ._design import kappa as sgd_kappa
from ._design import point_seed
from ._models import load_dataset, make_model, train_to_minimum
from ._network_escape import NetworkRatePoint, NetworkRateResult, NetworkSetup
from ._registry import Analysis, Record, rows_of

if TYPE_CHECKING:
    from ._experiments import SelectionCase

__all__ = ["network_selection_analysis", "network_selection_points"]


SETUP = NetworkSetup("xor", size=128, hidden=3, weight_decay=0.01, data_seed=0)


@dataclass(frozen=True)
class TrainedMinimum(Record):
    """A minimum of the network: the initialisation it was trained from, its loss, λ_max."""

    init_seed: int
    loss: float
    lambda_max: float


@dataclass(frozen=True)
class MinimaPair(Record):
    """The flat/sharp pair the selection experiment compares, and how many distinct minima
    the seeds found (stored in the analysis as ``to_dict()``)."""

    flat: TrainedMinimum
    sharp: TrainedMinimum
    distinct_minima: int


@cache
def pick_minima(seeds: int = 16) -> MinimaPair:
    """Train from ``seeds`` initialisations; return the flat/sharp pair (init seeds, losses,
    λ_max) of nearly equal loss with the largest sharpness ratio."""
    data = load_dataset(SETUP.dataset, seed=SETUP.data_seed, size=SETUP.size)
    model = make_model("mlp", data, hidden=SETUP.hidden, weight_decay=SETUP.weight_decay)
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
    return MinimaPair(TrainedMinimum(*flat), TrainedMinimum(*sharp), len(found))


def network_selection_points(quick: bool, device: str) -> list[NetworkRatePoint]:
    pair = pick_minima()
    lam_f, lam_s = pair.flat.lambda_max, pair.sharp.lambda_max
    eta = 0.1 / lam_s  # step bound ηλ_max ≤ 0.1 at both minima
    batches = [1, 2, 3] if quick else [1, 2, 3, 4]
    x_max = max(batches) / eta
    # E_flat = δ/(κλ_flat) at the largest B/η, so δ = E·λ_flat·κ(η = 1, B = x_max) (κ ∝ η)
    delta = sgd_kappa((4.0 if quick else 5.0) * lam_f, x_max)
    # log odds = log γ_sharp/γ_flat: the whole climb δ on the minimum's side (s = 1)
    log_odds = compiled_formula("selection_ratio_sgd").log_value
    slope = float(log_odds(H_flat=lam_f, H_sharp=lam_s, Delta_L=delta, eta=1.0, B=1.0, s=1.0))
    target = 200 if quick else 400
    return [
        NetworkRatePoint(
            experiment="selection",
            **SETUP.__dict__,
            init_seed=(pair.flat if which == "flat" else pair.sharp).init_seed,
            which=which,
            noise="sgd",
            lr=eta,
            B_over_eta=batch / eta,
            delta=delta,
            replicas=256,
            target_escapes=target,
            max_steps=400_000,
            check_every=1,
            seed=point_seed("network-selection", "sgd", which, batch),
            device=device,
            predicted_slope=slope,
            batch_size=batch,
        )
        for batch in batches
        for which in ("flat", "sharp")
    ]


def network_selection_analysis(
    points: list[NetworkRatePoint], results: list[NetworkRateResult]
) -> Analysis[SelectionCase]:
    from ._experiments import SelectionCase, log_odds_error, log_odds_slope

    table: dict[float, dict[str, NetworkRateResult]] = {}
    for point, result in zip(points, results, strict=True):
        assert point.B_over_eta is not None and point.which is not None
        table.setdefault(point.B_over_eta, {})[point.which] = result
    xs, odds, errors = [], [], []
    for ratio, both in sorted(table.items()):
        flat, sharp = both["flat"], both["sharp"]
        xs.append(ratio)
        odds.append(math.log(sharp.rate / flat.rate))
        errors.append(log_odds_error(sharp.escapes, flat.escapes))
    slope, slope_se, _ = log_odds_slope(xs, odds, errors)
    case = SelectionCase(
        model=SETUP.name,
        noise="sgd",
        expected="log odds of the flat minimum grow linearly in B/η",
        held=slope > 3 * slope_se,
        slope=slope,
        slope_se=slope_se,
        slope_formula=points[0].predicted_slope,
        slope_exact=None,
        B_over_eta=xs,
        log_odds=odds,
        log_odds_se=errors,
        fraction_flat=[1 / (1 + math.exp(-v)) for v in odds],
        minima=pick_minima(),
        criterion=f"training loss more than δ = {points[0].delta:.4g} above the minimum's own",
    )
    return Analysis(cases=[case], rows=rows_of(points, results))
