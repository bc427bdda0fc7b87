"""The probe's escape prediction with the *full* measured noise covariance on the top subspace.

The k-dimensional harmonic valley model: in H's eigenbasis on the kept top directions,
L(x) = L(a) + ½xᵀHx with H = diag(λ), and the SDE dx = −Hx dt + √(2D) dW with the constant
anisotropic diffusion D = ηC/2 that the probe measured (C the minibatch-mean covariance, with
the without-replacement factor; off-diagonal terms included). Escape is the probe's criterion:
the loss reaching the level L(a) + ΔL, i.e. the first exit from the ellipsoid ½xᵀHx < ΔL.

- Quasi-potential: the process is linear (Ornstein–Uhlenbeck), its stationary density is
  exactly Gaussian N(0, Σ) with Σ from the Lyapunov equation HΣ + ΣH = 2D (the equation the
  Bouchet–Reygner prefactor of ``flatminima.numerics.landscape_escape_time`` solves at a
  minimum; here by ``scipy.linalg.solve_continuous_lyapunov``), so Φ(x) = ½xᵀΣ⁻¹x and the
  exponent is its minimum on the level set: ΔΦ = ΔL / λ_max(ΣH).
- Rate: the level set is a non-characteristic boundary (the drift −Hx points inward
  everywhere on it), for which the leading-order mean exit time from the stationary state is
  τ = ∫_Ω p_s dx / ∮_∂Ω p_s (−b·n) dS (Matkowsky & Schuss, SIAM J. Appl. Math. 33, 365 (1977):
  a boundary layer of width ~D/|b·n| carries the flux), with b = −Hx, n = Hx/|Hx|. By the
  co-area formula the surface integral is E_{x∼N(0,Σ)}[|Hx|² δ(½xᵀHx − ΔL)]; with x = Lz
  (Σ = LLᵀ), A = LᵀHL = U diag(a) Uᵀ and β_j = (UᵀLᵀH²LU)_jj it is the inverse Laplace
  transform (1/2πi)∫ e^{−tΔL} Σ_j β_j/(1 − ta_j) ∏_j (1 − ta_j)^{−1/2} dt, integrated along the
  vertical line through its real saddle point (steepest descent: no cancellation, whatever
  e^{−ΔΦ} is). ∫_Ω p_s = 1 − O(e^{−ΔΦ}) is taken as 1.
- Accuracy: the boundary-layer formula is the leading order in 1/ΔΦ; in 1-D the exact time
  (``mfpt_1d``) is longer by the factor 2√ΔΦ·F(√ΔΦ) = 1 + 1/(2ΔΦ) + … (F Dawson's integral).
  ``tests/validation/test_probe_valley.py`` measures it against ``mfpt_2d`` on a 2-D valley
  with strongly correlated noise.

In the 1-D case this is the probe's per-direction level passage; with a diagonal C it differs
from the sum of per-direction level passages, which treat each direction as reaching its own
level ΔL alone (a loss level reached by several directions at once is reached sooner).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize
from scipy.linalg import solve_continuous_lyapunov

from flatminima.errors import ParameterError

__all__ = ["ValleyLevel", "valley_level_passage"]


@dataclass(frozen=True)
class ValleyLevel:
    """Level passage of the k-D harmonic valley with constant anisotropic noise.

    Attributes
    ----------
    exponent
        ΔΦ = ΔL/λ_max(ΣH), the quasi-potential at the level set.
    log_rate
        log of the escape rate per unit SDE time t (t = η·iterations).
    direction
        Unit vector (in H's eigenbasis, kept directions) of the point of the level set where
        Φ is smallest: the most likely escape point (±).
    """

    exponent: float
    log_rate: float
    direction: np.ndarray


def _whitened(values: np.ndarray, diffusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, β): eigenvalues of A = LᵀHL and the diagonal of LᵀH²L in A's eigenbasis, where
    Σ = LLᵀ solves HΣ + ΣH = 2D (Σ may be singular: directions without noise)."""
    h = np.diag(values)
    sigma = solve_continuous_lyapunov(h, 2 * diffusion)
    sigma = (sigma + sigma.T) / 2
    s, v = np.linalg.eigh(sigma)
    if s.min() < -1e-10 * max(s.max(), 0.0):
        raise ParameterError("covariance", "a positive semi-definite noise covariance", s.min())
    root = v * np.sqrt(np.clip(s, 0.0, None))  # Σ = root rootᵀ
    a, u = np.linalg.eigh(root.T @ h @ root)
    hr = h @ root @ u
    return np.clip(a, 0.0, None), np.einsum("ij,ij->j", hr, hr)


def _saddle_point(a: np.ndarray, barrier: float) -> float:
    """The real t in (0, 1/a_max) where e^{−tΔL}∏(1 − ta_j)^{−1/2} is stationary."""
    top = float(a.max())

    def slope(t: float) -> float:
        return -barrier + 0.5 * float(np.sum(a / (1 - t * a)))

    high = (1 - 1e-13) / top  # the slope diverges at 1/a_max, is −ΔL + ½tr A < 0 at 0
    return float(optimize.brentq(slope, 0.0, high, xtol=1e-15 / top, rtol=1e-14))


def _log_flux(a: np.ndarray, beta: np.ndarray, barrier: float) -> float:
    """log E_z[zᵀBz δ(½zᵀAz − ΔL)] by the inverse Laplace transform along the steepest line."""
    t0 = _saddle_point(a, barrier)
    base = 1 - t0 * a
    log_f0 = -t0 * barrier - 0.5 * float(np.sum(np.log(base)))
    curvature = 0.5 * float(np.sum((a / base) ** 2))
    width = 1 / math.sqrt(curvature)

    turn = np.exp(1j * math.pi / 3)  # the line t0 + r·e^{iπ/3}: e^{−tΔL} decays along it

    def integrand(r: float) -> float:
        t = r * turn
        z = base - t * a
        log_f = -t * barrier - 0.5 * np.sum(np.log(z / base))
        return float((np.sum(beta / z) * np.exp(log_f) * turn).imag)

    pieces = [0.0, *(width * m for m in (1, 3, 10, 30)), math.inf]
    total = sum(
        integrate.quad(integrand, lo, hi, limit=200, epsabs=0, epsrel=1e-10)[0]
        for lo, hi in itertools.pairwise(pieces)
    )
    value = total / math.pi
    if not value > 0:
        raise ArithmeticError("valley_level_passage: the flux integral is not positive")
    return log_f0 + math.log(value)


def valley_level_passage(
    values: np.ndarray, diffusion: np.ndarray, barrier: float, *, max_exponent: float = math.inf
) -> ValleyLevel:
    """Escape of dx = −Hx dt + √(2D) dW, H = diag(values), through the level ½xᵀHx = ΔL.

    Parameters
    ----------
    values
        (k,) curvatures λ_i > 0 (H's eigenvalues on the kept directions).
    diffusion
        (k, k) constant diffusion matrix D (symmetric, positive semi-definite, not zero), in
        H's eigenbasis; the probe passes ηC/2.
    barrier
        ΔL > 0, above the mean stationary loss ½tr(ΣH) (else the valley is not metastable).
    max_exponent
        Above this ΔΦ the rate is taken as 0 (log rate −inf) without the flux integral
        (default inf: always computed).

    Returns
    -------
    ValleyLevel
        Exponent ΔΦ = ΔL/λ_max(ΣH), the log rate per unit time and the escape direction
        (see the module notes for the formula and its accuracy).
    """
    lam = np.asarray(values, dtype=float)
    d = np.asarray(diffusion, dtype=float)
    if lam.ndim != 1 or lam.size == 0 or not np.all(lam > 0) or not np.all(np.isfinite(lam)):
        raise ParameterError("values", "a non-empty vector of positive finite curvatures", lam)
    if d.shape != (lam.size, lam.size) or not np.all(np.isfinite(d)):
        raise ParameterError("diffusion", f"a finite {lam.size}×{lam.size} matrix", d.shape)
    d = (d + d.T) / 2
    a, beta = _whitened(lam, d)
    if not a.max() > 0:
        raise ParameterError("diffusion", "a diffusion that is not zero on the kept directions", d)
    if not (math.isfinite(barrier) and barrier > 0):
        raise ParameterError("barrier", "a positive finite ΔL", barrier)
    mean_loss = 0.5 * float(a.sum())
    if not barrier > mean_loss:
        raise ParameterError(
            "barrier",
            f"a level above the mean stationary loss ½tr(ΣH) = {mean_loss:.4g} (else there is "
            "no metastable valley to escape from)",
            barrier,
        )
    sigma = solve_continuous_lyapunov(np.diag(lam), 2 * d)
    w, v = np.linalg.eigh(np.sqrt(lam)[:, None] * sigma * np.sqrt(lam)[None, :])
    point = v[:, -1] / np.sqrt(lam)  # H^{-1/2}·(top eigenvector of H^{1/2}ΣH^{1/2})
    exponent = barrier / float(w[-1])
    return ValleyLevel(
        exponent=exponent,
        log_rate=_log_flux(a, beta, barrier) if exponent <= max_exponent else -math.inf,
        direction=point / np.linalg.norm(point),
    )
