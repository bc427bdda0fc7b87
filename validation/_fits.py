"""Fitting escape-rate laws to counts, with uncertainty, and deciding which law the data prefer.

Escape counts n_j in exposure T_j (replica-iterations) are Poisson with mean T_j γ_j. A law is
a log-linear model ``log γ_j = Σ_m β_m f_m(x_j) + o_j`` (o a known offset); it is fitted by
maximum likelihood (IRLS), with standard errors from the Fisher information, the deviance as
goodness of fit (χ² with n − p degrees of freedom) and the AIC for comparison.

The two laws the theory opposes (docs/conventions.md §3):

- exponential in 1/x: ``log γ = a − E/x + q log x`` (q = 1 for sharpness and learning rate:
  the iteration rate carries one power of the step; ``x`` = k or η);
- exponential in x: ``log γ = a − S x`` (batch size);
- power law: ``log γ = a + p log x`` (white noise: p = 1 for sharpness).

A power law γ ∝ k is the exponential law with E = 0, so "polynomial" means E is consistent with
0; "exponential" means E > 0 by more than three standard errors and the power law is rejected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ._registry import JSONRecord

__all__ = ["PoissonFit", "ScalingComparison", "compare_laws", "poisson_fit"]


@dataclass(frozen=True)
class PoissonFit:
    """A fitted log-linear rate law."""

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    standard_errors: tuple[float, ...]
    deviance: float
    dof: int
    p_value: float  # goodness of fit: P(χ²_dof ≥ deviance)
    aic: float

    def coefficient(self, name: str) -> tuple[float, float]:
        i = self.names.index(name)
        return self.coefficients[i], self.standard_errors[i]

    def to_dict(self) -> JSONRecord:
        return asdict(self)


def poisson_fit(
    counts: np.ndarray,
    exposure: np.ndarray,
    features: np.ndarray,
    names: tuple[str, ...],
    *,
    offset: np.ndarray | None = None,
) -> PoissonFit:
    """Maximum-likelihood Poisson regression log μ = log T + X β + offset, by IRLS.

    Parameters
    ----------
    counts, exposure
        Events counted and the exposure T of each observation.
    features, names
        The design matrix X, one column per coefficient, and the coefficients' names.
    offset
        A known term added to log μ (default None: zero).
    """
    n = np.asarray(counts, dtype=float)
    t = np.asarray(exposure, dtype=float)
    X = np.asarray(features, dtype=float)
    o = np.zeros_like(n) if offset is None else np.asarray(offset, dtype=float)
    base = np.log(t) + o
    # start: least squares on the log of (n + ½)/T
    beta = np.linalg.lstsq(X, np.log((n + 0.5) / t) - o, rcond=None)[0]
    for _ in range(100):
        eta = base + X @ beta
        mu = np.exp(eta)
        z = X @ beta + (n - mu) / mu
        W = mu
        XtW = X.T * W
        new = np.linalg.solve(XtW @ X, XtW @ z)
        if np.max(np.abs(new - beta)) < 1e-12 * (1 + np.max(np.abs(beta))):
            beta = new
            break
        beta = new
    mu = np.exp(base + X @ beta)
    covariance = np.linalg.inv((X.T * mu) @ X)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > 0, n * np.log(n / mu), 0.0) - (n - mu)
    deviance = float(2 * terms.sum())
    dof = len(n) - X.shape[1]
    p_value = float(stats.chi2.sf(deviance, dof)) if dof > 0 else float("nan")
    log_likelihood = float(np.sum(n * np.log(mu) - mu - np.array([math.lgamma(v + 1) for v in n])))
    return PoissonFit(
        names=names,
        coefficients=tuple(float(b) for b in beta),
        standard_errors=tuple(float(s) for s in np.sqrt(np.diag(covariance))),
        deviance=deviance,
        dof=dof,
        p_value=p_value,
        aic=2 * X.shape[1] - 2 * log_likelihood,
    )


@dataclass(frozen=True)
class ScalingComparison:
    """Both laws fitted to one data set, and what the data prefer."""

    variable: str
    exponential: PoissonFit
    power: PoissonFit
    preferred: str  # "exponential", "polynomial" or "inconclusive"
    reason: str

    def to_dict(self) -> JSONRecord:
        return asdict(self)  # the two fits as PoissonFit.to_dict writes them


def compare_laws(
    x: np.ndarray,
    counts: np.ndarray,
    exposure: np.ndarray,
    *,
    variable: str,
    inverse: bool = True,
    prefactor_power: float = 1.0,
    significance: float = 3.0,
    reject_p: float = 0.01,
) -> ScalingComparison:
    """Fit the exponential law (in 1/x when ``inverse``, else in x) and the power law, and say
    which one the data prefer.

    ``exponential`` is preferred when the exponent's coefficient is positive by more than
    ``significance`` standard errors and the power law is rejected (goodness-of-fit p-value below
    ``reject_p``) or is worse by more than 10 in AIC; ``polynomial`` when the coefficient is
    consistent with zero and the power law is not rejected; otherwise ``inconclusive``.

    Parameters
    ----------
    x, counts, exposure
        The variable's values, the escapes counted at each and the exposure (time at risk).
    variable
        Its name, for the report.
    inverse
        Exponential in 1/x (default True: sharpness, batch size) or in x.
    prefactor_power
        The exponential law's known power-law prefactor x^p, an offset (default 1.0).
    significance
        Standard errors by which the exponent's coefficient must exceed zero (default 3.0).
    reject_p
        Goodness-of-fit p-value below which the power law is rejected (default 0.01).
    """
    x = np.asarray(x, dtype=float)
    ones = np.ones_like(x)
    argument = 1 / x if inverse else x
    exp_fit = poisson_fit(
        counts,
        exposure,
        np.column_stack([ones, -argument]),
        ("a", "E" if inverse else "S"),
        offset=prefactor_power * np.log(x),
    )
    pow_fit = poisson_fit(counts, exposure, np.column_stack([ones, np.log(x)]), ("a", "p"))
    slope, slope_se = exp_fit.coefficients[1], exp_fit.standard_errors[1]
    z = slope / slope_se if slope_se > 0 else math.inf
    power_rejected = pow_fit.p_value < reject_p or pow_fit.aic - exp_fit.aic > 10
    if z > significance and power_rejected:
        preferred = "exponential"
        reason = (
            f"exponent {slope:.4g} ± {slope_se:.2g} ({z:.1f} standard errors above 0); power law "
            f"rejected (p = {pow_fit.p_value:.2g}, ΔAIC = {pow_fit.aic - exp_fit.aic:.1f})"
        )
    elif abs(z) <= significance and pow_fit.p_value >= reject_p:
        preferred = "polynomial"
        p, p_se = pow_fit.coefficients[1], pow_fit.standard_errors[1]
        reason = (
            f"exponent {slope:.3g} ± {slope_se:.2g} consistent with 0; power law fits "
            f"(p = {pow_fit.p_value:.2g}) with power {p:.3f} ± {p_se:.3f}"
        )
    else:
        preferred = "inconclusive"
        reason = (
            f"exponent {slope:.4g} ± {slope_se:.2g}; power-law fit p = {pow_fit.p_value:.2g}, "
            f"exponential-law fit p = {exp_fit.p_value:.2g}"
        )
    return ScalingComparison(variable, exp_fit, pow_fit, preferred, reason)
