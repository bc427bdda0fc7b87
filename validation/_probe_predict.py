"""The noise fit (C against H/B) and the escape predictions of ``probe`` at the probed minimum
(the valley model: see ``flatminima.validation._probe``)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np

from flatminima.errors import ParameterError
from flatminima.numerics import escape_time, mfpt_1d

from ._covariance import SCALE_RANGE, SLOPE_RANGE
from ._design import kappa as sgd_kappa
from ._probe_checks import _Text
from ._probe_results import NoiseFit, Prediction
from ._probe_valley import valley_level_passage

#: Level passages are computed for the directions whose exponent is within this of the smallest.
LEVEL_WINDOW = 30.0
#: ... and at most this large: above it the rate is below e^-LEVEL_MAX (nothing to measure),
#: and the quadrature of ``mfpt_1d`` slows down without bound (an exponent of ~1e30, from a
#: noise-free fit whose per-sample gradients are rounding errors, ran for minutes).
LEVEL_MAX = 1e6


def _fit_noise(
    values: np.ndarray, sigma: np.ndarray, batch: int, samples: int, weight_decay: float
) -> NoiseFit:
    factor = (samples - batch) / ((samples - 1) * batch)
    cov = sigma * factor
    diag = np.diag(sigma).copy()
    data_curv = values - weight_decay  # weight decay adds curvature but no noise
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(data_curv > 0, batch * np.diag(cov) / data_curv, np.nan)
    ok = (data_curv > 0) & (diag > 0)
    if ok.sum() >= 2:
        slope, intercept = np.polyfit(np.log(data_curv[ok]), np.log(diag[ok]), 1)
        scale = float(math.exp(intercept))
    elif ok.sum() == 1:
        slope, scale = float("nan"), float(diag[ok][0] / data_curv[ok][0])
    else:
        slope, scale = float("nan"), float("nan")
    total = float(np.linalg.norm(cov))
    off = float(np.linalg.norm(cov - np.diag(np.diag(cov))) / total) if total > 0 else 0.0
    holds = bool(
        math.isfinite(slope)
        and SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1]
        and SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]
    )
    verdict = (
        f"C ≈ H/B {'holds' if holds else 'does not hold'} on the top {len(values)} directions: "
        f"log Σ_ii vs log λ_i slope {slope:.3g} (claim 1, accepted {SLOPE_RANGE}), scale "
        f"{scale:.3g} (claim 1, accepted {SCALE_RANGE}); B·C_ii/λ_i from "
        f"{np.nanmin(ratios) if np.isfinite(ratios).any() else float('nan'):.3g} to "
        f"{np.nanmax(ratios) if np.isfinite(ratios).any() else float('nan'):.3g}"
    )
    return NoiseFit(
        covariance=cov,
        sigma=diag,
        ratios=ratios,
        slope=float(slope),
        scale=scale,
        off_diagonal=off,
        holds=holds,
        verdict=verdict,
        batch_size=batch,
        samples=samples,
        replacement_factor=float((samples - batch) / (samples - 1)),
        seconds=0.0,
    )


@dataclass(frozen=True)
class _Sgd:
    """The SGD whose escape is predicted: barrier ΔL, step η and batch size B (an effective,
    non-integer B for the measured noise)."""

    barrier: float
    lr: float
    batch_size: float

    def sgd(self, lam: float) -> tuple[float, float, list[str]]:
        """``_escape`` of the valley of curvature λ with the noise κH (Itô, s = ½)."""
        return _escape("sgd", lam, self, None)

    def white(self, lam: float, diffusion: float) -> tuple[float, float, list[str]]:
        """``_escape`` of the valley of curvature λ with white noise of that diffusion."""
        return _escape("white", lam, self, diffusion)


def _escape(
    noise: str, lam: float, sgd: _Sgd, diffusion: float | None
) -> tuple[float, float, list[str]]:
    """(ΔΦ, log iterations, warnings) of the symmetric valley of curvature λ (1-D, theory
    formulas): SGD noise κH with s = ½, or white noise of ``diffusion`` (B then unused)."""
    white = noise == "white"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = escape_time(
            noise,
            hess_min=lam,
            hess_saddle=-lam,
            barrier=sgd.barrier,
            lr=sgd.lr,
            batch_size=None if white else sgd.batch_size,
            s=None if white else "0.5",
            diffusion=diffusion,
            dps=20,
        )
    assert r.log_iterations is not None  # lr is always given
    return float(r.quasi_potential), float(r.log_iterations), [str(w.message) for w in caught]


@dataclass(frozen=True)
class _PerDirection:
    """Per top direction (nan where projected out): exponent and log iterations with κH noise,
    with the measured noise, with white noise and of the exact level passage (filled by
    ``_level_predictions``); the fields of `Prediction` with the same names."""

    exponent_kappa: np.ndarray
    log_iterations_kappa: np.ndarray
    exponent_measured: np.ndarray
    log_iterations_measured: np.ndarray
    log_iterations_white: np.ndarray
    log_iterations_level: np.ndarray

    @classmethod
    def empty(cls, size: int) -> _PerDirection:
        return cls(*(np.full(size, np.nan) for _ in range(6)))


@dataclass(frozen=True)
class _FullNoise:
    """The k-D level passage with the full measured C (exponent, log rate per iteration, the
    escape direction in H's eigenbasis) and the same with diag(C) (log rate)."""

    exponent_full: float
    log_rate_full: float
    log_rate_full_diagonal: float
    escape_direction: np.ndarray


def _level_passage(lam: float, diffusion: float, barrier: float, lr: float) -> float:
    """log iterations of the exact first passage of ½λx² (drift −λx, diffusion D) from 0 to
    the level ΔL, reflecting at 0 (``mfpt_1d``)."""
    import sympy as sp

    x = sp.Symbol("x")
    # in units u = x·√(λ/(2ΔL)) the level is u = 1: du = −λu dt + √(2D_u) dW with
    # D_u = Dλ/(2ΔL), the potential λu²/2 (barrier over noise ΔL/D, unchanged)
    du = diffusion * lam / (2 * barrier)
    m = mfpt_1d(sp.Float(lam / 2, 17) * x**2, sp.Float(du, 17), start=0, end=1, left=0, dps=15)
    return float(m.log_value) - math.log(lr)


def _logsumexp(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return -math.inf
    top = float(v.max())
    return top + math.log(float(np.exp(v - top).sum()))


def _kept_directions(values: np.ndarray, zero_tol: float) -> tuple[list[int], list[int]]:
    """([H]⁺) the directions with λ_i > zero_tol·λ_1, and the others (zero modes, λ ≤ 0)."""
    lam1 = float(values[0])
    if not lam1 > 0:
        raise ParameterError(
            "model",
            "a minimum with at least one positive Hessian eigenvalue",
            _Text(f"top eigenvalue {lam1:.3g}"),
        )
    kept = [i for i, v in enumerate(values) if v > zero_tol * lam1]
    return kept, [i for i in range(len(values)) if i not in kept]


def _saddle_predictions(
    values: np.ndarray, kept: list[int], cdiag: np.ndarray, white_d: float, sgd: _Sgd
) -> tuple[_PerDirection, list[str]]:
    """Per kept direction: exponent and log iterations with κH noise, with the measured noise
    (effective batch λ_i/C_ii) and with white noise of diffusion ``white_d``."""
    out = _PerDirection.empty(len(values))
    notes: list[str] = []
    for i in kept:
        lam = float(values[i])
        out.exponent_kappa[i], out.log_iterations_kappa[i], w = sgd.sgd(lam)
        notes += w
        if cdiag[i] > 0:
            b_eff = lam / float(cdiag[i])
            measured = dataclasses.replace(sgd, batch_size=b_eff)
            out.exponent_measured[i], out.log_iterations_measured[i], w = measured.sgd(lam)
            notes += w
        else:
            out.exponent_measured[i] = out.log_iterations_measured[i] = math.inf
            out.log_iterations_level[i] = math.inf
        if math.isfinite(white_d):
            _, out.log_iterations_white[i], w = sgd.white(lam, white_d)
            notes += w
    return out, notes


def _level_predictions(
    values: np.ndarray,
    kept: list[int],
    cdiag: np.ndarray,
    p: _PerDirection,
    barrier: float,
    lr: float,
) -> list[str]:
    """Fill ``p.log_iterations_level``, the exact level passage (``mfpt_1d`` quadrature), where it matters for
    the total rate: the directions within LEVEL_WINDOW of the smallest measured-noise exponent
    and below LEVEL_MAX. Returns the notes on the directions skipped."""
    e_m = p.exponent_measured
    finite = [i for i in kept if math.isfinite(e_m[i])]
    if not finite:
        return []
    lowest = min(e_m[i] for i in finite)
    skipped = too_large = 0
    for i in finite:
        if e_m[i] > LEVEL_MAX:
            too_large += 1
        elif e_m[i] <= lowest + LEVEL_WINDOW:
            p.log_iterations_level[i] = _level_passage(
                float(values[i]), lr * float(cdiag[i]) / 2, barrier, lr
            )
        else:
            skipped += 1
    notes = []
    if skipped:
        notes.append(
            f"level passage not computed for {skipped} directions whose exponent exceeds "
            f"the smallest by more than {LEVEL_WINDOW} (their rates are below e^-{LEVEL_WINDOW} "
            "of the fastest)"
        )
    if too_large:
        notes.append(
            f"level passage not computed for {too_large} directions whose measured-noise "
            f"exponent exceeds {LEVEL_MAX:g} (rate below e^-{LEVEL_MAX:g}: the gradient "
            "noise along them is nil or rounding error)"
        )
    return notes


def _full_noise(
    values: np.ndarray, kept: list[int], cov: np.ndarray, barrier: float, lr: float
) -> tuple[_FullNoise, list[str]]:
    """The level passage of the k-D harmonic valley on the kept directions with the full
    measured noise D = ηC/2 (off-diagonal terms included), and the same with diag(C) only
    (``valley_level_passage``); log rates per iteration."""
    sel = np.array(kept, dtype=int)
    lam = np.asarray(values, dtype=float)[sel]
    full = lr * np.asarray(cov, dtype=float)[np.ix_(sel, sel)] / 2
    exponent, direction = math.inf, np.zeros(len(values))
    log_rate = {"full": -math.inf, "full_diagonal": -math.inf}
    if not np.any(np.diag(full) > 0):
        out = _FullNoise(exponent, log_rate["full"], log_rate["full_diagonal"], direction)
        return out, ["no measured noise on the kept directions: no escape with the full C"]
    notes: list[str] = []
    for name, d in (("full", full), ("full_diagonal", np.diag(np.diag(full)))):
        try:
            v = valley_level_passage(lam, d, barrier, max_exponent=LEVEL_MAX)
        except ParameterError as error:  # a level below the valley's mean loss
            notes.append(f"k-D level passage ({name.replace('_', ' ')} C) not computed: {error}")
            log_rate[name] = math.nan
            continue
        log_rate[name] = v.log_rate + math.log(lr)
        if name == "full":
            exponent = v.exponent
            direction[sel] = v.direction
        if v.exponent > LEVEL_MAX:
            notes.append(
                f"k-D level passage ({name.replace('_', ' ')} C): exponent {v.exponent:.3g} "
                f"exceeds {LEVEL_MAX:g} (rate taken as 0: the noise is nil or rounding error)"
            )
    return _FullNoise(exponent, log_rate["full"], log_rate["full_diagonal"], direction), notes


def _scaling(lam: float, base: float, white_d: float, sgd: _Sgd) -> dict[str, float]:
    """Change of log τ (sharpest kept direction λ, κH noise, log iterations ``base``) when B
    doubles, η halves, the curvature doubles; and the curvature doubling under white noise."""
    scaling = {
        "batch_size x2": dataclasses.replace(sgd, batch_size=2 * sgd.batch_size).sgd(lam)[1],
        "lr /2 (iterations)": dataclasses.replace(sgd, lr=sgd.lr / 2).sgd(lam)[1],
        "sharpness x2": sgd.sgd(2 * lam)[1],
    }
    scaling = {name: value - base for name, value in scaling.items()}
    if math.isfinite(white_d):
        scaling["sharpness x2 (white)"] = (
            sgd.white(2 * lam, white_d)[1] - sgd.white(lam, white_d)[1]
        )
    return {name: float(value) for name, value in scaling.items()}


def _predict(
    values: np.ndarray,
    noise: NoiseFit,
    lr: float,
    batch: int,
    barrier: float | None,
    zero_tol: float,
    weight_decay: float,
) -> Prediction:
    kept, zero = _kept_directions(values, zero_tol)
    if barrier is None:
        barrier = sgd_kappa(10 * lr * float(values[0]), batch)  # ΔΦ = 10: 10·κλ₁ (κ = η/2B ∝ η)
    cdiag = np.diag(noise.covariance)
    kept_c = [i for i in kept if cdiag[i] > 0]
    white_d = lr * float(np.mean(cdiag[kept_c])) / 2 if kept_c else float("nan")
    sgd = _Sgd(barrier=float(barrier), lr=lr, batch_size=batch)
    p, notes = _saddle_predictions(values, kept, cdiag, white_d, sgd)
    notes += _level_predictions(values, kept, cdiag, p, barrier, lr)
    full, more = _full_noise(values, kept, noise.covariance, barrier, lr)
    notes += more
    two, sel = math.log(2), np.array(kept, dtype=int)
    if zero:
        notes.append(
            f"{len(zero)} of the top {len(values)} directions have λ ≤ {zero_tol:g}·λ_1 (zero "
            "modes or negative curvature) and are projected out ([H]⁺): no escape time along "
            "them"
        )
    if weight_decay:
        notes.append(f"weight decay {weight_decay:g} adds to every eigenvalue and no noise")
    return Prediction(
        **vars(sgd),  # barrier, lr, batch_size
        kept=kept,
        zero_modes=zero,
        white_diffusion=white_d,
        **vars(p),
        # total rate per iteration over the kept directions; ×2 for the two saddles ±v_i in
        # the saddle formulas
        log_rate_kappa=_logsumexp(two - p.log_iterations_kappa[sel]),
        log_rate_measured=_logsumexp(two - p.log_iterations_measured[sel]),
        log_rate_white=_logsumexp(two - p.log_iterations_white[sel]),
        log_rate_level=_logsumexp(-p.log_iterations_level[sel]),
        scaling=_scaling(float(values[kept[0]]), p.log_iterations_kappa[kept[0]], white_d, sgd),
        **vars(full),
        notes=list(dict.fromkeys(n.split(";")[0] for n in notes)),
    )
