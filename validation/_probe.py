"""``probe``: what the theory needs, measured at a user's trained network, and its predictions.

Given an ``nn.Module`` at (near) a minimum, a loss function and data, ``probe``

1. computes the top-k Hessian eigenpairs of L(θ) = loss_fn(model(x), y) + ½wd‖θ‖² by Lanczos
   with full reorthogonalisation on exact Hessian-vector products (the gradient of
   ``functional_call`` computed once with its graph, each product one backward pass through
   it), each with its residual ‖Hv − λv‖;
2. measures the gradient-noise covariance on that subspace from per-sample gradients
   (``vmap(grad)``, chunked): Σ = (1/N)Σ_n (g_n − ḡ)(g_n − ḡ)ᵀ (centred), and the covariance of
   the mean gradient of a minibatch of B samples drawn *without* replacement,
   C = Σ · (N − B)/((N − 1)B) (the finite-population factor; with replacement it would be Σ/B);
   it fits log Σ_ii against log λ_i in H's eigenbasis (the claim C ≈ H/B is slope 1, scale 1)
   and reports the per-direction ratios B·C_ii/λ_i;
3. predicts escape with the theory layer's formulas (``flatminima.numerics.escape_time``, no
   formula re-typed), twice: with the paper's noise D = κH (κ = η/2B) and with the measured
   noise (D_ii = ηC_ii/2, i.e. the same formula with an effective batch size B_i = λ_i/C_ii),
   plus white noise of the same mean strength for comparison, and how τ changes with B, η and
   sharpness;
4. optionally (``measure=True``) runs real minibatch SGD from the minimum with many replicas at
   once (``vmap`` over stacked parameter vectors) and counts escapes by a stated criterion.

The valley model of the prediction. A probe sees only the minimum, so the escape along each
top eigen-direction v_i is modelled as a symmetric valley: curvature λ_i at the minimum, a saddle
of curvature −λ_i at barrier height ΔL on each side (±v_i), which gives the switch fraction
s = ½ and the SGD exponent ΔΦ_i = 2BΔL/(ηλ_i). Directions with λ_i ≤ ``zero_tol``·λ_1 (zero
modes from symmetries, or negative curvature) are projected out ([H]⁺): they have no
restoring force, so no escape time, and are reported, not refused. The escape rates of the
kept directions add (2 saddles each). For the SGD formula the n-dimensional result along an
eigen-direction equals the 1-D one (only H_ae and |H_be| enter), so each direction is evaluated
in 1-D; the white-noise determinant ratio is 1 in this model.

Because the measured criterion is a loss level, not a saddle, a second reference is given for
it: the exact mean first-passage time (``flatminima.numerics.mfpt_1d``) of the harmonic valley
½λ_i x² to the level ΔL, with the measured noise, reflecting at the minimum (|x| reaching
√(2ΔL/λ_i)). For a level crossing the prefactor differs from the saddle formula's (the
first-passage time of a harmonic well to a level is shorter than Kramers' time over a saddle of
the same height by about 2√(πΔΦ)), while the exponent is the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flatminima.errors import ParameterError, ShapeError
from flatminima.numerics import escape_time, mfpt_1d
from flatminima.numerics._simulate import poisson_rate_interval

from ._covariance import SCALE_RANGE, SLOPE_RANGE
from ._design import kappa as sgd_kappa
from ._lanczos import lanczos_top
from ._persample import FunctionalModel

__all__ = ["EscapeMeasurement", "HessianTop", "NoiseFit", "Prediction", "ProbeResult", "probe"]


#: Level passages are computed for the directions whose exponent is within this of the smallest.
LEVEL_WINDOW = 30.0
#: ... and at most this large: above it the rate is below e^-LEVEL_MAX (nothing to measure),
#: and the quadrature of ``mfpt_1d`` slows down without bound (an exponent of ~1e30, from a
#: noise-free fit whose per-sample gradients are rounding errors, ran for minutes).
LEVEL_MAX = 1e6


class _Text(str):
    """A string shown without quotes in an error message."""

    def __repr__(self) -> str:
        return str(self)


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class HessianTop:
    """Top-k eigenpairs of the Hessian at the probed parameters.

    Attributes
    ----------
    values, residuals
        λ_1 ≥ … ≥ λ_k and ‖Hv_i − λ_i v_i‖ (an eigenvalue of H lies within that distance).
    vectors
        (P, k) eigenvectors on the CPU where ``keep_vectors=True``, else None.
    iterations
        Lanczos steps (Hessian-vector products).
    parameters, samples, loss, gradient_norm
        P, N, L(θ) and ‖∇L(θ)‖ at the probed point.
    """

    values: np.ndarray
    residuals: np.ndarray
    vectors: torch.Tensor | None
    iterations: int
    parameters: int
    samples: int
    loss: float
    gradient_norm: float
    seconds: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values.tolist(),
            "residuals": self.residuals.tolist(),
            "iterations": self.iterations,
            "parameters": self.parameters,
            "samples": self.samples,
            "loss": self.loss,
            "gradient_norm": self.gradient_norm,
            "seconds": self.seconds,
            "method": self.method,
        }


@dataclass(frozen=True)
class NoiseFit:
    """Gradient noise on the top subspace, against the claim C ≈ H/B.

    Attributes
    ----------
    covariance
        (k, k) C = Σ(N − B)/((N − 1)B) in H's eigenbasis: the covariance of a minibatch mean
        gradient, batches drawn without replacement.
    sigma
        (k,) Σ_ii, the per-sample gradient variance along v_i (centred, divided by N).
    ratios
        (k,) B·C_ii/λ_i: 1 where C = H/B holds along v_i (nan where λ_i ≤ 0).
    slope, scale
        Least-squares fit log Σ_ii = slope·log λ_i + log scale over the directions with λ_i > 0
        and Σ_ii > 0 (claim: slope 1, scale 1, i.e. Σ = H).
    off_diagonal
        ‖offdiag C‖_F / ‖C‖_F: how far C is from diagonal in H's eigenbasis.
    holds, verdict
        slope in [0.75, 1.25] and scale in [0.5, 2] (the criteria of the covariance experiment).
    """

    covariance: np.ndarray
    sigma: np.ndarray
    ratios: np.ndarray
    slope: float
    scale: float
    off_diagonal: float
    holds: bool
    verdict: str
    batch_size: int
    samples: int
    replacement_factor: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "covariance": self.covariance.tolist(),
            "sigma": self.sigma.tolist(),
            "ratios": _nan_list(self.ratios),
            "slope": _finite(self.slope),
            "scale": _finite(self.scale),
            "off_diagonal": self.off_diagonal,
            "holds": self.holds,
            "verdict": self.verdict,
            "batch_size": self.batch_size,
            "samples": self.samples,
            "replacement_factor": self.replacement_factor,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Prediction:
    """The theory's escape predictions at this minimum (per iteration; see the module notes).

    Attributes
    ----------
    barrier
        ΔL used (given, or the default: the barrier at which the sharpest direction's κH
        exponent 2BΔL/(ηλ_1) is 10).
    kept
        Indices of the directions with λ_i > zero_tol·λ_1 ([H]⁺); the others are projected out.
    exponent_kappa, log_iterations_kappa
        Per direction: ΔΦ_i = 2BΔL/(ηλ_i) and log τ_i/η from ``escape_time("sgd", …)`` (Itô,
        s = ½) with the noise κH.
    exponent_measured, log_iterations_measured
        The same with the measured noise (effective batch λ_i/C_ii); inf where C_ii = 0.
    log_iterations_white, white_diffusion
        White noise of diffusion D = η·mean(C_ii)/2 (the measured noise's mean strength).
    log_iterations_level
        Exact first-passage time (``mfpt_1d``) of the harmonic valley to the loss level ΔL with
        the measured noise: the reference for the measured criterion.
    log_rate_kappa, log_rate_measured, log_rate_white, log_rate_level
        log of the total rate per iteration (sum over kept directions; ×2 for the two saddles
        ±v_i in the saddle formulas).
    scaling
        Change of log τ (sharpest kept direction, κH noise) when B doubles, η halves, all
        curvatures double (SGD), and when curvatures double under white noise.
    """

    barrier: float
    lr: float
    batch_size: int
    kept: list[int]
    zero_modes: list[int]
    exponent_kappa: np.ndarray
    log_iterations_kappa: np.ndarray
    exponent_measured: np.ndarray
    log_iterations_measured: np.ndarray
    log_iterations_white: np.ndarray
    white_diffusion: float
    log_iterations_level: np.ndarray
    log_rate_kappa: float
    log_rate_measured: float
    log_rate_white: float
    log_rate_level: float
    scaling: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "barrier": self.barrier,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "kept": self.kept,
            "zero_modes": self.zero_modes,
            "exponent_kappa": _nan_list(self.exponent_kappa),
            "log_iterations_kappa": _nan_list(self.log_iterations_kappa),
            "exponent_measured": _nan_list(self.exponent_measured),
            "log_iterations_measured": _nan_list(self.log_iterations_measured),
            "log_iterations_white": _nan_list(self.log_iterations_white),
            "white_diffusion": _finite(self.white_diffusion),
            "log_iterations_level": _nan_list(self.log_iterations_level),
            "log_rate_kappa": _finite(self.log_rate_kappa),
            "log_rate_measured": _finite(self.log_rate_measured),
            "log_rate_white": _finite(self.log_rate_white),
            "log_rate_level": _finite(self.log_rate_level),
            "scaling": self.scaling,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class EscapeMeasurement:
    """Escapes of real minibatch SGD from the probed minimum (replicas restarted on escape).

    Criterion: a replica has escaped when its full-data loss L(θ) exceeds L(a) + ΔL, checked
    every ``check_every`` iterations. Rate per iteration = escapes / exposure (replica-iterations
    after ``burn_in``), with the exact Poisson (Garwood) 95% interval; ratios are measured /
    predicted rate; ``agrees[name]`` is True when that prediction lies within a factor 2 of
    the 95% interval. ``iterations``/``log_iterations``: the mean escape time in iterations,
    1/rate (the name ``EscapeTime.iterations`` uses).
    """

    criterion: str
    escapes: int
    exposure: float
    rate: float
    rate_low: float
    rate_high: float
    replicas: int
    steps: int
    burn_in: int
    check_every: int
    seconds: float
    ratio_kappa: float
    ratio_measured: float
    ratio_level: float
    agrees: dict[str, bool]

    @property
    def iterations(self) -> float:
        """Mean escape time in iterations, 1/rate (inf when nothing escaped)."""
        return 1 / self.rate if self.rate > 0 else math.inf

    @property
    def log_iterations(self) -> float:
        """log of the mean escape time in iterations, −log rate."""
        return -math.log(self.rate) if self.rate > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = _finite(v)  # an empty run has rate_high = inf: None in JSON
        return out


@dataclass(frozen=True)
class ProbeResult:
    """What ``probe`` found: ``hessian_top``, ``noise``, ``prediction``, ``measured`` (or None)."""

    hessian_top: HessianTop
    noise: NoiseFit
    prediction: Prediction
    measured: EscapeMeasurement | None
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (no NaN or inf: they become None)."""
        return {
            "settings": self.settings,
            "hessian_top": self.hessian_top.to_dict(),
            "noise": self.noise.to_dict(),
            "prediction": self.prediction.to_dict(),
            "measured": None if self.measured is None else self.measured.to_dict(),
        }

    def figures(self) -> dict[str, Any]:
        """matplotlib Figures: ``spectrum``, ``noise`` (C vs H/B), ``rates`` (prediction and,
        where measured, the measured rate)."""
        from ._probe_plots import probe_figures

        return probe_figures(self)

    def __repr__(self) -> str:
        h = self.hessian_top
        m = "" if self.measured is None else f", measured rate={self.measured.rate:.3g}/it"
        return (
            f"ProbeResult(P={h.parameters}, λ_1={h.values[0]:.4g}, k={len(h.values)}, "
            f"C≈H/B slope={self.noise.slope:.3g} scale={self.noise.scale:.3g} "
            f"({'holds' if self.noise.holds else 'fails'}), "
            f"log rate κH={self.prediction.log_rate_kappa:.4g} "
            f"measured-C={self.prediction.log_rate_measured:.4g}{m})"
        )


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _nan_list(a: np.ndarray) -> list[float | None]:
    return [_finite(float(v)) for v in np.asarray(a, dtype=float)]


# ---------------------------------------------------------------------------------------------
# input checks


def _device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(
            "device", "a torch device such as 'cpu', 'cuda' or 'cuda:0'", device
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "an available device (CUDA is not available here)", device)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ParameterError("device", f"a CUDA index below {torch.cuda.device_count()}", device)
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ParameterError("device", "'cpu', 'cuda' (or 'cuda:N') or 'mps'", device)
    return dev


def _data(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(data, "x") and hasattr(data, "y"):
        pair: Any = (data.x, data.y)
    elif hasattr(data, "tensors"):
        pair = data.tensors
    else:
        pair = data
    if not isinstance(pair, Sequence) or len(pair) != 2:
        given = type(data).__name__
        if hasattr(data, "tensors") and isinstance(pair, Sequence):
            given = f"a {given} of {len(pair)} tensors"
        raise ShapeError(
            "data",
            "a pair (inputs x, targets y), a TensorDataset of two tensors or an object with "
            ".x and .y",
            _Text(given),
        )
    try:
        x, y = (torch.as_tensor(np.asarray(v)) if not torch.is_tensor(v) else v for v in pair)
    except (TypeError, ValueError) as error:
        raise ShapeError("data", "arrays or tensors", _Text(str(error))) from None
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ShapeError(
            "data",
            "inputs x and targets y with the same number of samples along axis 0",
            _Text(f"x of shape {tuple(x.shape)}, y of shape {tuple(y.shape)}"),
        )
    if x.shape[0] < 2:
        raise ShapeError("data", "at least 2 samples", _Text(f"{x.shape[0]}"))
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ParameterError("data", "finite inputs", _Text("x with NaN or inf"))
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise ParameterError("data", "finite targets", _Text("y with NaN or inf"))
    return x.detach(), y.detach()


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ParameterError(name, "a positive finite number", value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, "a positive finite number", value) from None
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(name, "a positive finite number", value)
    return v


def _integer(name: str, value: Any, low: int, high: int, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(name, f"an integer from {low} to {high}{what}", value)
    if not low <= int(value) <= high:
        raise ParameterError(name, f"an integer from {low} to {high}{what}", value)
    return int(value)


_STOCHASTIC = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def _stochastic_layers(model: nn.Module) -> list[str]:
    return [
        f"{type(m).__name__} at {name or '<root>'!r}"
        for name, m in model.named_modules()
        if isinstance(m, _STOCHASTIC)
    ]


# ---------------------------------------------------------------------------------------------
# stages


def _fingerprint(fm: FunctionalModel, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    # parameters and data at float32 precision: a last-bit difference (a solver that is not
    # bit-reproducible between calls) must not invalidate the stored stages
    h.update(fm.theta0.detach().float().cpu().numpy().tobytes())
    h.update(np.asarray(fm.x.detach().float().cpu().numpy()).tobytes())
    return h.hexdigest()[:20]


class _Stages:
    """Finished stages on disk (``store`` folder): reused when the fingerprint matches."""

    def __init__(self, folder: str | Path | None, fingerprint: str) -> None:
        self.folder = None if folder is None else Path(folder)
        self.fingerprint = fingerprint
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def load(self, name: str) -> Any:
        if self.folder is None:
            return None
        path = self.folder / f"stage-{name}.pt"
        if not path.exists():
            return None
        blob = torch.load(path, weights_only=False)
        return blob["value"] if blob.get("fingerprint") == self.fingerprint else None

    def save(self, name: str, value: Any) -> None:
        if self.folder is None:
            return
        path = self.folder / f"stage-{name}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save({"fingerprint": self.fingerprint, "value": value}, tmp)
        tmp.replace(path)


def _hessian_stage(
    fm: FunctionalModel, k: int, tol: float, max_iter: int | None, seed: int, keep: bool
) -> dict[str, Any]:
    start = time.perf_counter()
    result = lanczos_top(
        fm.hvp_operator(),
        fm.size,
        k,
        dtype=fm.dtype,
        device=fm.device,
        tol=tol,
        max_iter=max_iter,
        seed=seed,
    )
    return {
        "values": result.values.detach().cpu().double().numpy(),
        "residuals": result.residuals.detach().cpu().double().numpy(),
        "vectors": result.vectors.detach().cpu(),
        "iterations": result.iterations,
        "seconds": time.perf_counter() - start,
        "keep": keep,
    }


def _noise_stage(fm: FunctionalModel, vectors: torch.Tensor) -> dict[str, Any]:
    start = time.perf_counter()
    projected = fm.projected_sample_gradients(vectors.to(device=fm.device, dtype=fm.dtype))
    centred = projected - projected.mean(0, keepdim=True)
    sigma = (centred.T @ centred / fm.samples).detach().cpu().double().numpy()
    return {"sigma": sigma, "seconds": time.perf_counter() - start}


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


def _escape(noise: str, lam: float, **kw: Any) -> tuple[float, float, list[str]]:
    """(ΔΦ, log iterations) of the symmetric valley of curvature λ (1-D, theory formulas)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = escape_time(noise, hess_min=lam, hess_saddle=-lam, dps=20, **kw)
    assert r.log_iterations is not None  # lr is always given
    return float(r.quasi_potential), float(r.log_iterations), [str(w.message) for w in caught]


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


def _predict(
    values: np.ndarray,
    noise: NoiseFit,
    lr: float,
    batch: int,
    barrier: float | None,
    zero_tol: float,
    weight_decay: float,
) -> Prediction:
    lam1 = float(values[0])
    if not lam1 > 0:
        raise ParameterError(
            "model",
            "a minimum with at least one positive Hessian eigenvalue",
            _Text(f"top eigenvalue {lam1:.3g}"),
        )
    kept = [i for i, v in enumerate(values) if v > zero_tol * lam1]
    zero = [i for i in range(len(values)) if i not in kept]
    if barrier is None:
        barrier = sgd_kappa(10 * lr * lam1, batch)  # ΔΦ = 10: 10·κλ₁ (κ = η/2B ∝ η)
    k = len(values)
    nan = np.full(k, np.nan)
    e_k, t_k, e_m, t_m, t_w, t_l = (nan.copy() for _ in range(6))
    cdiag = np.diag(noise.covariance)
    notes: list[str] = []
    kept_c = [i for i in kept if cdiag[i] > 0]
    white_d = lr * float(np.mean(cdiag[kept_c])) / 2 if kept_c else float("nan")
    for i in kept:
        lam = float(values[i])
        e_k[i], t_k[i], w = _escape("sgd", lam, barrier=barrier, lr=lr, batch_size=batch, s="0.5")
        notes += w
        if cdiag[i] > 0:
            b_eff = lam / float(cdiag[i])
            e_m[i], t_m[i], w = _escape(
                "sgd", lam, barrier=barrier, lr=lr, batch_size=b_eff, s="0.5"
            )
            notes += w
        else:
            e_m[i] = t_m[i] = t_l[i] = math.inf
        if math.isfinite(white_d):
            _, t_w[i], w = _escape("white", lam, barrier=barrier, lr=lr, diffusion=white_d)
            notes += w
    # the exact level passage (mfpt_1d quadrature) where it matters for the total rate: the
    # directions within LEVEL_WINDOW of the smallest measured-noise exponent
    finite = [i for i in kept if math.isfinite(e_m[i])]
    if finite:
        lowest = min(e_m[i] for i in finite)
        skipped = 0
        too_large = 0
        for i in finite:
            if e_m[i] > LEVEL_MAX:
                too_large += 1
            elif e_m[i] <= lowest + LEVEL_WINDOW:
                t_l[i] = _level_passage(float(values[i]), lr * float(cdiag[i]) / 2, barrier, lr)
            else:
                skipped += 1
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
    two = math.log(2)
    sel = np.array(kept, dtype=int)
    log_rate_k = _logsumexp(two - t_k[sel])
    log_rate_m = _logsumexp(two - t_m[sel])
    log_rate_w = _logsumexp(two - t_w[sel])
    log_rate_l = _logsumexp(-t_l[sel])
    # scaling, sharpest kept direction, κH noise (theory formulas at changed settings)
    lam = float(values[kept[0]])
    base = t_k[kept[0]]
    kw = {"barrier": barrier, "lr": lr, "batch_size": batch, "s": "0.5"}
    scaling = {
        "batch_size x2": _escape("sgd", lam, **{**kw, "batch_size": 2 * batch})[1] - base,
        "lr /2 (iterations)": _escape("sgd", lam, **{**kw, "lr": lr / 2})[1] - base,
        "sharpness x2": _escape("sgd", 2 * lam, **kw)[1] - base,
    }
    if math.isfinite(white_d):
        wkw = {"barrier": barrier, "lr": lr, "diffusion": white_d}
        scaling["sharpness x2 (white)"] = (
            _escape("white", 2 * lam, **wkw)[1] - _escape("white", lam, **wkw)[1]
        )
    if zero:
        notes.append(
            f"{len(zero)} of the top {k} directions have λ ≤ {zero_tol:g}·λ_1 (zero modes or "
            "negative curvature) and are projected out ([H]⁺): no escape time along them"
        )
    if weight_decay:
        notes.append(f"weight decay {weight_decay:g} adds to every eigenvalue and no noise")
    unique_notes = list(dict.fromkeys(n.split(";")[0] for n in notes))
    return Prediction(
        barrier=float(barrier),
        lr=lr,
        batch_size=batch,
        kept=kept,
        zero_modes=zero,
        exponent_kappa=e_k,
        log_iterations_kappa=t_k,
        exponent_measured=e_m,
        log_iterations_measured=t_m,
        log_iterations_white=t_w,
        white_diffusion=white_d,
        log_iterations_level=t_l,
        log_rate_kappa=log_rate_k,
        log_rate_measured=log_rate_m,
        log_rate_white=log_rate_w,
        log_rate_level=log_rate_l,
        scaling={k2: float(v) for k2, v in scaling.items()},
        notes=unique_notes,
    )


def _subsets(rows: int, n: int, size: int, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    """``rows`` independent uniform random subsets of ``size`` indices from range(n) (without
    replacement), by Floyd's algorithm vectorized over the rows: O(rows·size²), not O(rows·n)."""
    sel = torch.empty((rows, size), dtype=torch.long, device=dev)
    for c, j in enumerate(range(n - size, n)):
        t = (torch.rand(rows, generator=gen, device=dev, dtype=torch.float64) * (j + 1)).long()
        t = t.clamp_max(j)
        if c:
            dup = (sel[:, :c] == t[:, None]).any(1)
            t = torch.where(dup, torch.full_like(t, j), t)
        sel[:, c] = t
    return sel


def _measure(
    fm: FunctionalModel,
    *,
    lr: float,
    batch: int,
    barrier: float,
    replicas: int,
    max_steps: int,
    check_every: int,
    burn_in: int,
    target_escapes: int,
    seed: int,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Minibatch SGD (batches without replacement) on ``replicas`` copies of θ at once."""
    start = time.perf_counter()
    dev = fm.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    theta_a = fm.theta0.detach()
    level = float(fm.loss(theta_a)) + barrier
    thetas = theta_a.expand(replicas, -1).clone()
    grad_b = torch.func.vmap(torch.func.grad(fm.batch_loss), in_dims=(0, 0, 0))
    full = torch.func.vmap(fm.loss)
    n = fm.samples
    escapes = 0
    exposure = 0.0
    step = 0
    last = start
    while step < max_steps:
        for _ in range(check_every):
            idx = _subsets(replicas, n, batch, gen, dev)
            g = grad_b(thetas, fm.x[idx], fm.y[idx])
            thetas = thetas - lr * g
        step += check_every
        with torch.no_grad():
            losses = full(thetas)
        out = losses > level
        if step > burn_in:
            escapes += int(out.sum())
            exposure += replicas * check_every
        if bool(out.any()):
            thetas[out] = theta_a
        if not bool(torch.isfinite(losses).all()):
            bad = ~torch.isfinite(losses)
            thetas[bad] = theta_a
        if escapes >= target_escapes:
            break
        now = time.perf_counter()
        if progress is not None and now - last > 10:
            last = now
            rate = step / (now - start)
            progress(
                f"measure: step {step}/{max_steps}, {escapes} escapes, "
                f"ETA ≤ {(max_steps - step) / rate:.0f} s"
            )
    low, high = poisson_rate_interval(escapes, exposure, 0.95) if exposure > 0 else (0.0, math.inf)
    return {
        "escapes": escapes,
        "exposure": exposure,
        "rate": escapes / exposure if exposure > 0 else 0.0,
        "rate_low": low,
        "rate_high": high,
        "steps": step,
        "seconds": time.perf_counter() - start,
        "level": level,
    }


# ---------------------------------------------------------------------------------------------
# the public function


def probe(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    *,
    lr: float,
    batch_size: int,
    k: int = 20,
    device: str | torch.device = "cpu",
    measure: bool = False,
    barrier: float | None = None,
    weight_decay: float = 0.0,
    mode: str = "error",
    grad_tol: float = 1e-3,
    zero_tol: float = 1e-6,
    tol: float = 1e-6,
    max_iter: int | None = None,
    keep_vectors: bool = False,
    dtype: torch.dtype = torch.float64,
    chunk_size: int = 512,
    replicas: int = 64,
    max_steps: int = 20_000,
    check_every: int = 10,
    burn_in: int | None = None,
    target_escapes: int = 200,
    seed: int = 0,
    store: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProbeResult:
    r"""Probe a trained network: top Hessian eigenpairs, gradient noise, escape predictions and,
    with ``measure=True``, the escape rate of real minibatch SGD.

    Parameters
    ----------
    model
        An ``nn.Module`` at (near) a minimum of the loss. It is not modified: parameters and
        buffers are copied to ``device``/``dtype`` and used through ``functional_call``. Every
        module runs with ``training=False`` during the probe and gets its own flag back
        afterwards. A model with BatchNorm or dropout layers is refused (its loss is not a
        function of θ alone in training mode) unless ``mode="eval"``: then it is probed as in
        eval mode (dropout off, running statistics frozen).
    loss_fn
        ``loss_fn(model(x), y)`` → a scalar, the *mean* over the samples (e.g.
        ``nn.CrossEntropyLoss()``); a sum reduction is refused.
    data
        ``(x, y)`` tensors or arrays with the samples along axis 0, a ``TensorDataset`` of two
        tensors, or an object with ``.x`` and ``.y`` (the validation layer's ``Dataset``).
    lr, batch_size
        η and B of the SGD whose escape is predicted (and measured).
    k
        Number of top eigenpairs (1 ≤ k ≤ number of trainable parameters).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``: every tensor of the probe lives there.
    measure
        Also run ``replicas`` SGD copies from the minimum and count escapes (criterion: the
        full-data loss exceeds L(a) + ΔL, checked every ``check_every`` iterations; escaped
        replicas restart at the minimum; counted after ``burn_in`` iterations, default
        min(5/(ηλ_k⁺), max_steps/5)).
    barrier
        ΔL of the prediction and of the escape criterion. Default: the barrier at which the
        sharpest direction's SGD exponent 2BΔL/(ηλ_1) is 10.
    weight_decay
        Adds ½wd‖θ‖² to the loss (curvature wd in every direction, no noise).
    grad_tol
        Largest accepted ‖∇L(θ)‖: the theory is about a minimum.
    zero_tol
        Directions with λ_i ≤ zero_tol·λ_1 are projected out of the prediction ([H]⁺);
        0 ≤ zero_tol < 1.
    tol, max_iter
        Lanczos stopping tolerance (relative residual bound, > 0) and largest Krylov dimension
        (≥ k, or None).
    dtype
        Working precision, ``torch.float64`` (default, whatever the model's dtype) or
        ``torch.float32``.
    chunk_size, replicas, max_steps, check_every, target_escapes, burn_in, seed
        Samples per vmap chunk; the measurement's settings (positive integers, check_every ≤
        max_steps, burn_in ≥ 0); the random seed (integer ≥ 0). Every setting is checked
        before anything is computed: a bad one is a one-line ``ParameterError`` naming it.
    store
        Folder for finished stages (Hessian, noise, measurement): a second call with the same
        model, data and settings reuses them.
    progress
        Called with one line of text at each stage (and every ~10 s while measuring).

    Returns
    -------
    ProbeResult
        ``hessian_top``, ``noise``, ``prediction``, ``measured``, ``to_dict()``, ``figures()``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.randn(200, 3, dtype=torch.float64)
    >>> y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * torch.randn(200, dtype=torch.float64)
    >>> model = nn.Linear(3, 1, dtype=torch.float64)
    >>> w = torch.linalg.lstsq(torch.cat([x, torch.ones(200, 1, dtype=torch.float64)], 1), y).solution
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(w[:3].reshape(1, 3)); _ = model.bias.copy_(w[3:])
    >>> r = probe(model, lambda out, t: ((out.squeeze(-1) - t) ** 2).mean(), (x, y),
    ...           lr=0.05, batch_size=16, k=4)
    >>> len(r.hessian_top.values), r.prediction.barrier > 0
    (4, True)
    """
    if not isinstance(model, nn.Module):
        raise ParameterError("model", "a torch.nn.Module", _Text(type(model).__name__))
    if not callable(loss_fn):
        raise ParameterError("loss_fn", "a callable loss_fn(output, target)", loss_fn)
    dev = _device(device)
    x, y = _data(data)
    n = int(x.shape[0])
    lr = _positive("lr", lr)
    batch = _integer("batch_size", batch_size, 1, n - 1, " (below the number of samples)")
    if mode not in ("error", "eval"):
        raise ParameterError("mode", "'error' or 'eval'", mode)
    try:
        wd = float(weight_decay)
    except (TypeError, ValueError):
        raise ParameterError("weight_decay", "a finite number ≥ 0", weight_decay) from None
    if isinstance(weight_decay, bool) or not (math.isfinite(wd) and wd >= 0):
        raise ParameterError("weight_decay", "a finite number ≥ 0", weight_decay)
    weight_decay = wd
    grad_tol = _positive("grad_tol", grad_tol)
    tol = _positive("tol", tol)
    zt = zero_tol if not isinstance(zero_tol, bool) else math.nan
    try:
        zt = float(zt)
    except (TypeError, ValueError):
        zt = math.nan
    if not 0 <= zt < 1:
        raise ParameterError("zero_tol", "a number in [0, 1)", zero_tol)
    zero_tol = zt
    if dtype not in (torch.float32, torch.float64):
        raise ParameterError("dtype", "torch.float64 or torch.float32", dtype)
    chunk_size = _integer("chunk_size", chunk_size, 1, 2**31)
    seed = _integer("seed", seed, 0, 2**63 - 1)
    if measure:
        replicas = _integer("replicas", replicas, 1, 2**31)
        max_steps = _integer("max_steps", max_steps, 1, 2**62)
        check_every = _integer("check_every", check_every, 1, max_steps, " (≤ max_steps)")
        target_escapes = _integer("target_escapes", target_escapes, 1, 2**62)
        if burn_in is not None:
            burn_in = _integer("burn_in", burn_in, 0, 2**62)
    if barrier is not None:
        barrier = _positive("barrier", barrier)
    layers = _stochastic_layers(model)
    if layers and mode != "eval":
        raise ParameterError(
            "model",
            "a model without BatchNorm or dropout layers (in training mode its loss is not a "
            "function of θ alone)",
            _Text(f"a model with {', '.join(layers[:3])}"),
            "pass mode='eval' to probe it as in eval mode",
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ParameterError("model", "a model with trainable parameters", _Text("none"))
    total = sum(p.numel() for p in params)
    k = _integer("k", k, 1, total, f" (the number of trainable parameters is {total})")
    if max_iter is not None:
        max_iter = _integer("max_iter", max_iter, k, 2**31, " (at least k)")
    flags = {m: m.training for m in model.modules()}
    say = progress or (lambda line: None)
    try:
        model.eval()
        fm = FunctionalModel(
            model,
            loss_fn,
            x,
            y,
            dtype=dtype,
            device=dev,
            weight_decay=weight_decay,
            chunk_size=chunk_size,
        )
        _check_loss(fm)
        loss0 = float(fm.loss(fm.theta0))
        if not math.isfinite(loss0):
            raise ParameterError("model", "a finite loss at its parameters", loss0)
        gnorm = float(fm.gradient().norm())
        if gnorm > grad_tol:
            raise ParameterError(
                "model",
                f"parameters at a minimum of the loss (gradient norm ≤ grad_tol = {grad_tol:g})",
                _Text(f"gradient norm ‖∇L‖ = {gnorm:.3g}"),
                "train to convergence first, or raise grad_tol",
            )
        settings = {
            "lr": lr,
            "batch_size": batch,
            "k": k,
            "barrier": barrier,
            "weight_decay": weight_decay,
            "dtype": str(dtype),
            "device": str(dev),
            "tol": tol,
            "max_iter": max_iter,
            "seed": seed,
            "zero_tol": zero_tol,
            "mode": mode,
            "parameters": total,
            "samples": n,
        }
        stages = _Stages(
            store,
            _fingerprint(
                fm,
                {
                    "k": k,
                    "tol": tol,
                    "max_iter": max_iter,
                    "seed": seed,
                    "wd": weight_decay,
                    "dtype": str(dtype),
                },
            ),
        )
        say(f"hessian: top {k} eigenpairs of {total} parameters by Lanczos")
        hs = stages.load("hessian")
        if hs is None:
            hs = _hessian_stage(fm, k, tol, max_iter, seed, keep_vectors)
            stages.save("hessian", hs)
        else:
            say("hessian: reused from the store")
        hess = HessianTop(
            values=hs["values"],
            residuals=hs["residuals"],
            vectors=hs["vectors"] if keep_vectors else None,
            iterations=hs["iterations"],
            parameters=total,
            samples=n,
            loss=loss0,
            gradient_norm=gnorm,
            seconds=hs["seconds"],
            method=(
                "Lanczos with full reorthogonalisation on exact Hessian-vector products "
                f"(autograd, gradient graph kept), {dtype}, tol {tol:g}"
            ),
        )
        say(f"noise: per-sample gradients of {n} samples on the top-{k} subspace")
        ns = stages.load("noise")
        if ns is None:
            ns = _noise_stage(fm, hs["vectors"])
            stages.save("noise", ns)
        else:
            say("noise: reused from the store")
        fit = _fit_noise(hs["values"], ns["sigma"], batch, n, weight_decay)
        fit = _replace(fit, seconds=ns["seconds"])
        say("prediction: escape_time on the top subspace (κH and measured noise)")
        pred = _predict(hs["values"], fit, lr, batch, barrier, zero_tol, weight_decay)
        measured = None
        if measure:
            lam_low = float(hs["values"][pred.kept[-1]])
            burn = (
                burn_in
                if burn_in is not None
                else int(min(math.ceil(5 / (lr * lam_low)), max_steps // 5))
            )
            key = {
                "replicas": replicas,
                "max_steps": max_steps,
                "check_every": check_every,
                "burn_in": burn,
                "target": target_escapes,
                "lr": lr,
                "B": batch,
                "barrier": pred.barrier,
                "seed": seed,
            }
            name = (
                "measure-"
                + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
            )
            say(f"measure: {replicas} SGD replicas, up to {max_steps} iterations")
            ms = stages.load(name)
            if ms is None:
                ms = _measure(
                    fm,
                    lr=lr,
                    batch=batch,
                    barrier=pred.barrier,
                    replicas=replicas,
                    max_steps=max_steps,
                    check_every=check_every,
                    burn_in=burn,
                    target_escapes=target_escapes,
                    seed=seed,
                    progress=progress,
                )
                stages.save(name, ms)
            else:
                say("measure: reused from the store")
            measured = _measurement(ms, pred, replicas, burn, check_every)
    finally:
        for m, flag in flags.items():
            m.training = flag
    settings["barrier"] = pred.barrier
    return ProbeResult(hess, fit, pred, measured, settings)


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


def _measurement(
    ms: dict[str, Any], pred: Prediction, replicas: int, burn: int, check_every: int
) -> EscapeMeasurement:
    def ratio(log_rate: float) -> float:
        if not math.isfinite(log_rate) or ms["rate"] <= 0:
            return math.nan
        return ms["rate"] / math.exp(log_rate)

    def inside(log_rate: float) -> bool:
        if not math.isfinite(log_rate):
            return False
        r = math.exp(log_rate)
        return bool(ms["rate_low"] / 2 <= r <= ms["rate_high"] * 2)

    return EscapeMeasurement(
        criterion=(
            f"full-data loss above L(a) + ΔL = {ms['level']:.6g} (ΔL = {pred.barrier:.4g}), "
            f"checked every {check_every} iterations; escaped replicas restart at the minimum"
        ),
        escapes=ms["escapes"],
        exposure=ms["exposure"],
        rate=ms["rate"],
        rate_low=ms["rate_low"],
        rate_high=ms["rate_high"],
        replicas=replicas,
        steps=ms["steps"],
        burn_in=burn,
        check_every=check_every,
        seconds=ms["seconds"],
        ratio_kappa=ratio(pred.log_rate_kappa),
        ratio_measured=ratio(pred.log_rate_measured),
        ratio_level=ratio(pred.log_rate_level),
        agrees={
            "kappa": inside(pred.log_rate_kappa),
            "measured": inside(pred.log_rate_measured),
            "level": inside(pred.log_rate_level),
        },
    )


def _check_loss(fm: FunctionalModel) -> None:
    m = min(fm.samples, 8)
    xs, ys = fm.x[:m], fm.y[:m]
    try:
        out = fm.data_loss(fm.theta0, xs, ys)
    except Exception as error:  # the user's model or loss rejected the data
        raise ShapeError(
            "data",
            "inputs and targets that model and loss_fn accept",
            _Text(
                f"x of shape {tuple(fm.x.shape)}, y of shape {tuple(fm.y.shape)} "
                f"({type(error).__name__}: {str(error).splitlines()[0][:120]})"
            ),
        ) from None
    if not torch.is_tensor(out) or out.ndim != 0:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ParameterError(
            "loss_fn",
            "a scalar (0-dim) loss, the mean over the samples (reduction='mean')",
            _Text(f"an output of shape {shape}"),
        )
    singles = torch.stack([fm.data_loss(fm.theta0, xs[i : i + 1], ys[i : i + 1]) for i in range(m)])
    if not torch.allclose(singles.mean(), out, rtol=1e-5, atol=1e-12):
        raise ParameterError(
            "loss_fn",
            "the mean of the per-sample losses (reduction='mean')",
            _Text(
                f"{float(out):.6g} on {m} samples whose per-sample mean is "
                f"{float(singles.mean()):.6g}"
            ),
            _broadcast_hint(fm.output(fm.theta0, xs), ys),
        )


def _broadcast_hint(output: Any, target: torch.Tensor) -> str:
    """A hint when output and target shapes differ (e.g. (n, 1) against (n,): an elementwise
    loss then broadcasts to n×n, the commonest cause of a loss that is not a per-sample mean)."""
    if torch.is_tensor(output) and tuple(output.shape) != tuple(target.shape):
        return (
            f"the model's output has shape {tuple(output.shape)} and the targets "
            f"{tuple(target.shape)}: does loss_fn broadcast them?"
        )
    return ""
