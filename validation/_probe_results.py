"""The result types of ``probe`` (frozen dataclasses, JSON-safe ``to_dict``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._probe_checks import ProbeSettings
    from ._registry import JSONRecord, JSONValue

__all__ = ["EscapeMeasurement", "HessianTop", "NoiseFit", "Prediction", "ProbeResult"]


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

    def to_dict(self) -> JSONRecord:
        return _json_fields(self, exclude=("vectors",))


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

    def to_dict(self) -> JSONRecord:
        return _json_fields(self)


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
    exponent_full, log_rate_full
        The measured noise with its off-diagonal terms: the k-dimensional harmonic valley on
        the kept directions, dx = −Hx dt + √(2D) dW with the constant D = ηC/2, leaving through
        the loss level ΔL (the measured criterion). ΔΦ = ΔL/λ_max(ΣH) with HΣ + ΣH = 2D, and
        the log rate per iteration of the boundary-flux formula (leading order in 1/ΔΦ; see
        ``valley_level_passage``).
    log_rate_full_diagonal
        The same k-D level passage with diag(C): the difference from ``log_rate_full`` is the
        effect of C's off-diagonal terms.
    escape_direction
        (k,) unit vector in H's eigenbasis (0 on projected-out directions): where on the level
        set the quasi-potential of the full-C valley is smallest (±).
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
    exponent_full: float = math.nan
    log_rate_full: float = math.nan
    log_rate_full_diagonal: float = math.nan
    escape_direction: np.ndarray = field(default_factory=lambda: np.zeros(0))
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> JSONRecord:
        return _json_fields(self)


@dataclass(frozen=True)
class EscapeMeasurement:
    """Escapes of real minibatch SGD from the probed minimum (replicas restarted on escape).

    Criterion: a replica has escaped when its full-data loss L(θ) exceeds L(a) + ΔL, checked
    every ``check_every`` iterations. Rate per iteration = escapes / exposure (replica-iterations
    after ``burn_in``), with the exact Poisson (Garwood) 95% interval; ratios are measured /
    predicted rate (``ratio_full``: against the k-D level passage with the full measured C,
    ``Prediction.log_rate_full``); ``agrees[name]`` is True when that prediction lies within a
    factor 2 of the 95% interval. ``iterations``/``log_iterations``: the mean escape time in iterations,
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
    ratio_full: float = math.nan

    @property
    def iterations(self) -> float:
        """Mean escape time in iterations, 1/rate (inf when nothing escaped)."""
        return 1 / self.rate if self.rate > 0 else math.inf

    @property
    def log_iterations(self) -> float:
        """log of the mean escape time in iterations, −log rate."""
        return -math.log(self.rate) if self.rate > 0 else math.inf

    def to_dict(self) -> JSONRecord:
        return _json_fields(self)  # an empty run has rate_high = inf: None in JSON


@dataclass(frozen=True)
class ProbeResult:
    """What ``probe`` found: ``hessian_top``, ``noise``, ``prediction``, ``measured`` (or None)."""

    hessian_top: HessianTop
    noise: NoiseFit
    prediction: Prediction
    measured: EscapeMeasurement | None
    settings: ProbeSettings

    def to_dict(self) -> JSONRecord:
        """Plain JSON-safe dict (no NaN or inf: they become None)."""
        return {
            "settings": self.settings,
            "hessian_top": self.hessian_top.to_dict(),
            "noise": self.noise.to_dict(),
            "prediction": self.prediction.to_dict(),
            "measured": None if self.measured is None else self.measured.to_dict(),
        }

    def figures(self) -> dict[str, Figure]:
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


def _nan_list(a: np.ndarray) -> list[Any]:
    """An array as nested lists, NaN and inf as None."""
    a = np.asarray(a, dtype=float)
    if a.ndim > 1:
        return [_nan_list(row) for row in a]
    return [_finite(float(v)) for v in a]


def _json_value(value: object) -> JSONValue:
    if isinstance(value, np.ndarray):
        return _nan_list(value)
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _json_fields(obj: Any, exclude: tuple[str, ...] = ()) -> JSONRecord:
    """A result dataclass's fields as a JSON-safe dict: arrays as lists, NaN and inf as None."""
    names = [f.name for f in dataclasses.fields(obj) if f.name not in exclude]
    return {name: _json_value(getattr(obj, name)) for name in names}
