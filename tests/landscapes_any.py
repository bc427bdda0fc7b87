"""Reference landscapes for escape times on any landscape (issue 10): a case registry.

Every case is a 2-D landscape that the escape-time code did not build, none of them separable:

a  ``rotated_white``      rotated asymmetric double well, curved valley, white noise
b  ``rotated_aniso``      the same with a constant anisotropic D = ε·R diag(1, ¼) Rᵀ whose axes
                          are aligned neither with H_a nor with H_b
c  ``misaligned_sgd``     the misaligned SGD landscape of docs/numerics.md: H_a rotated against
                          the escape direction e (‖H_a e − H_ae e‖/‖H_a e‖ = 0.26), switch noise
d  ``stiffening_sgd``     SGD switch noise, shared eigenvectors, transverse stiffness 1.0 at a and
                          1.36 at b (a path the switch model makes non-reversible)
e  ``two_saddles``        one valley, two saddles into two other basins (rates add), white noise
f  ``measured``           a two-minimum regression on 16 synthetic points; D = (η/2B)·C(θ) with C
                          the per-sample gradient covariance, a full state-dependent tensor

Each case knows its loss (a SymPy expression of ``x, y``), its minimum and saddle(s) (found by
Newton's method on the SymPy gradient), its noise at a given nominal barrier ``ΔΦ``
(``case.at(barrier)``) as a numpy field for the grid solvers and as the arguments
``landscape_escape_time`` takes, and its exact reference: the backward-Kolmogorov MFPT from the
minimum to an absorbing set inside the *other* basins (``mfpt_2d``, refined grids, Richardson).

Where the absorbing surface goes. A Kramers escape time τ = 1/γ is the mean time to reach the
other basin, i.e. to cross the saddle and not come back. Its reference is the MFPT from a to a
set on which the committor towards the other basin is 1 up to e^(−several): here a half-plane
through the other minimum, or beyond a line where the loss has fallen ≥ 8 noise units below
L(b). A surface just past the saddle is not the escape time: the MFPT to the saddle itself is
τ/2, and a line a fixed distance past it, or into a shallow basin, gives a time off τ by an
amount that need not vanish as ΔΦ grows (``test_absorbing_surface_through_the_saddle_gives_half_the_escape_time``).

The nominal barrier ``ΔΦ`` sets the noise scale: ΔL/D for white noise (exact), ΔL/(eᵀDe) for
constant D (the exact Freidlin–Wentzell barrier differs by a constant factor), the switch-model
exponent ΔL₁/(κH_ae) + ΔL₂/(κ|H_be|) for SGD noise (what the aligned formula uses), and ΔL/(eᵀD_b e)
for measured noise. The noise scale is ∝ 1/ΔΦ in every case, so a log-log slope against the
nominal ΔΦ equals the slope against the true quasi-potential barrier. ``case.at(ΔΦ)`` takes the
true barrier: it divides by ``case.exponent_ratio`` (ΔΦ_true/ΔΦ_nominal, 1 where the nominal one
is exact, measured from the references otherwise); ``case.at_nominal`` takes the nominal one.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from flatminima.numerics import escape_time, mfpt_2d
from flatminima.numerics._mfpt2d import _Grid
from flatminima.numerics._mfpt2d import _grid as cell_grid

X, Y = sp.symbols("x y", real=True)
Field = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@functools.cache
def _derivatives(loss: sp.Expr) -> tuple[Callable[..., Any], Callable[..., Any]]:
    grad = sp.lambdify((X, Y), [sp.diff(loss, X), sp.diff(loss, Y)], "numpy")
    hess = sp.lambdify((X, Y), sp.hessian(loss, (X, Y)).tolist(), "numpy")
    return grad, hess


def critical_point(loss: sp.Expr, guess: tuple[float, float]) -> np.ndarray:
    """Newton's method on the SymPy gradient (double precision, to 1e-13)."""
    grad, hess = _derivatives(loss)
    point = np.array(guess, dtype=float)
    for _ in range(100):
        step = np.linalg.solve(np.array(hess(*point), dtype=float), np.array(grad(*point)))
        point = point - step
        if np.linalg.norm(step) < 1e-14:
            break
    if np.linalg.norm(np.array(grad(*point), dtype=float)) > 1e-10:
        raise RuntimeError(f"no critical point near {guess}")
    return point


def hessian_at(loss: sp.Expr, point: np.ndarray) -> np.ndarray:
    return np.array(_derivatives(loss)[1](*point), dtype=float)


@functools.cache
def numpy_loss(loss: sp.Expr) -> Field:
    f = sp.lambdify((X, Y), loss, "numpy")
    return lambda x, y: np.asarray(f(x, y), dtype=float) + 0 * x


def numpy_grad(loss: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """∇L on a batch (n, 2) → (n, 2), for simulate_escape."""
    gx = sp.lambdify((X, Y), sp.diff(loss, X), "numpy")
    gy = sp.lambdify((X, Y), sp.diff(loss, Y), "numpy")

    def grad(theta: np.ndarray) -> np.ndarray:
        x, y = theta[:, 0], theta[:, 1]
        return np.stack([gx(x, y) + 0 * x, gy(x, y) + 0 * x], axis=1)

    return grad


def escape_direction(hess_saddle: np.ndarray) -> np.ndarray:
    _, v = np.linalg.eigh(hess_saddle)
    return v[:, 0]


def constant_field(matrix: np.ndarray) -> Field:
    return lambda x, y: np.broadcast_to(matrix, (*np.shape(x), 2, 2)).copy()


def callable_noise(field_: Field) -> Callable[[np.ndarray], np.ndarray]:
    """D(θ) as the callable `landscape_escape_time` takes: a point (2,) → (2, 2), or a batch
    (m, 2) → (m, 2, 2) in one numpy call."""

    def at(theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if theta.ndim == 2:
            return field_(theta[:, 0], theta[:, 1])
        return field_(theta[0], theta[1])

    return at


def rotation(cos: float, sin: float) -> np.ndarray:
    return np.array([[cos, -sin], [sin, cos]])


# --------------------------------------------------------------------------------------------
# the case type
# --------------------------------------------------------------------------------------------


@dataclass
class Instance:
    """A case at one noise level: everything a solver or a formula needs."""

    case: Case
    barrier: float  # nominal ΔΦ
    diffusion: Field  # D(x, y) → (..., 2, 2), for mfpt_2d and the reference solvers
    diffusion_at: Callable[[np.ndarray], np.ndarray]  # D(θ) for θ of shape (2,) → (2, 2)
    landscape_kwargs: dict[str, Any]  # noise=..., and the noise's parameters
    aligned_kwargs: list[dict[str, Any]]  # escape_time(**kw) per saddle (rates add)
    interpretation: str = "ito"
    nominal: float = 0.0

    def exact(self, levels: int = 2, refine: int = 1) -> Reference:
        """Backward-Kolmogorov MFPT from the minimum to the other basins (mfpt_2d)."""
        grid = self.case.grid
        shape = (grid["shape"][0] * refine, grid["shape"][1] * refine)
        r = mfpt_2d(
            self.case.loss_np,
            self.diffusion,
            bounds=grid["bounds"],
            shape=shape,
            start=tuple(self.case.minimum),
            absorbing=grid["absorbing"],
            interpretation=self.interpretation,
            levels=levels,
        )
        return Reference(r.extrapolated, r.error, r.order, r.values)

    def aligned(self) -> float:
        """Today's aligned formula (escape_time with H_ae = eᵀH_a e), rates summed over saddles."""
        rate = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for kwargs in self.aligned_kwargs:
                rate += 1.0 / float(escape_time(**kwargs).tau)
        return 1.0 / rate


@dataclass(frozen=True)
class Reference:
    tau: float  # Richardson-extrapolated MFPT
    error: float  # Richardson error estimate of the finest grid
    order: float | None
    values: tuple[float, ...]


@dataclass
class Case:
    """A reference landscape: loss, critical points, noise model, reference grid."""

    key: str
    name: str
    description: str
    loss: sp.Expr
    minimum: np.ndarray
    saddles: list[np.ndarray]
    noise: str  # the noise model's name
    make: Callable[[Case, float], Instance]  # nominal ΔΦ → instance
    grid: dict[str, Any]  # bounds, shape (coarsest, levels double it), absorbing
    aligned_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # ΔΦ_true / ΔΦ_nominal: 1 where the nominal barrier is exact (white noise; the symmetric
    # switch case d, whose instanton is y = 0); otherwise measured once from the references as
    # the slope d log τ_exact / dΔΦ_nominal (fit log τ = βΔΦ + c₀ + c₁/ΔΦ, nominal ΔΦ 6–16 on
    # refined grids), re-measured by a slow test
    exponent_ratio: float = 1.0

    @property
    def loss_np(self) -> Field:
        return numpy_loss(self.loss)

    @property
    def hess_min(self) -> np.ndarray:
        return hessian_at(self.loss, self.minimum)

    def hess_saddle(self, index: int = 0) -> np.ndarray:
        return hessian_at(self.loss, self.saddles[index])

    def barrier_loss(self, index: int = 0) -> float:
        f = self.loss_np
        a, b = self.minimum, self.saddles[index]
        return float(f(np.array(b[0]), np.array(b[1])) - f(np.array(a[0]), np.array(a[1])))

    def at(self, barrier: float) -> Instance:
        """The case at the barrier ΔΦ (true, via exponent_ratio); ``nominal`` on the result is
        the nominal barrier that set the noise."""
        instance = self.make(self, barrier / self.exponent_ratio)
        instance.nominal = instance.barrier
        instance.barrier = barrier
        return instance

    def at_nominal(self, nominal: float) -> Instance:
        instance = self.make(self, nominal)
        instance.nominal = nominal
        instance.barrier = nominal * self.exponent_ratio
        return instance


# --------------------------------------------------------------------------------------------
# a, b: rotated asymmetric double well with a curved valley
# --------------------------------------------------------------------------------------------

# valley coordinates (u, v) = Rᵀ(x, y), R the rotation with cos = 4/5, sin = 3/5 (rational)
_U = sp.Rational(4, 5) * X + sp.Rational(3, 5) * Y
_V = -sp.Rational(3, 5) * X + sp.Rational(4, 5) * Y
_DELTA, _GAMMA = sp.Rational(3, 20), sp.Rational(1, 2)
ROTATED_LOSS = (
    _U**4 / 4 - _U**2 / 2 - _DELTA * _U + (1 + _U**2 / 2) * (_V - _GAMMA * _U**2) ** 2 / 2
)


def _u_root(guess: float) -> float:
    u = sp.Symbol("u")
    return float(sp.nsolve(u**3 - u - _DELTA, u, guess))


def _valley_point(u: float) -> np.ndarray:
    v = float(_GAMMA) * u**2
    return np.array([0.8 * u - 0.6 * v, 0.6 * u + 0.8 * v])


_UA, _UB, _UC = _u_root(-0.9), _u_root(-0.15), _u_root(1.1)


def _absorb_past_c(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.8 * x + 0.6 * y > _UC  # the half-plane u > u_c through the deeper minimum c


ROTATED_GRID = {
    # the box around u ∈ [−1.9, 1.25], v ∈ [−1.3, 3.2]; reflecting edges where L − L(a) > 2
    "bounds": ((-3.05, 2.1), (-1.6, 3.0)),
    "shape": (103, 92),  # h = 0.05 (levels double it)
    "absorbing": _absorb_past_c,
}


def _aligned_white(case: Case, diffusion: float, saddle: int = 0) -> dict[str, Any]:
    """``escape_time("white", ...)`` keywords over one saddle of the case, with scalar D."""
    return {
        "noise": "white",
        "hess_min": case.hess_min,
        "hess_saddle": case.hess_saddle(saddle),
        "barrier": case.barrier_loss(saddle),
        "diffusion": diffusion,
    }


def _make_rotated_white(case: Case, barrier: float) -> Instance:
    dl = case.barrier_loss()
    d = dl / barrier
    return Instance(
        case=case,
        barrier=barrier,
        diffusion=constant_field(d * np.eye(2)),
        diffusion_at=lambda theta: d * np.eye(2),
        landscape_kwargs={"noise": "white", "diffusion": d},
        aligned_kwargs=[_aligned_white(case, d)],
    )


# D's principal axes at 60° to the u axis (H_a's axes are near 0° and 90°, H_b's exactly)
_COS_D, _SIN_D = 0.5, math.sqrt(3) / 2
_R_D = rotation(0.8, 0.6) @ rotation(_COS_D, _SIN_D)
ANISO_SHAPE = _R_D @ np.diag([1.0, 0.25]) @ _R_D.T  # D = ε · ANISO_SHAPE


def _constant_aniso(shape: np.ndarray) -> Callable[[Case, float], Instance]:
    """An instance maker for D = ε · shape, ε set so that ΔL / (eᵀDe) is the barrier asked."""

    def make(case: Case, barrier: float) -> Instance:
        dl = case.barrier_loss()
        e = escape_direction(case.hess_saddle())
        eps = dl / (barrier * float(e @ shape @ e))
        matrix = eps * shape
        return Instance(
            case=case,
            barrier=barrier,
            diffusion=constant_field(matrix),
            diffusion_at=lambda theta: matrix,
            landscape_kwargs={"noise": "anisotropic", "diffusion": matrix},
            aligned_kwargs=[_aligned_white(case, float(e @ matrix @ e))],
        )

    return make


_make_rotated_aniso = _constant_aniso(ANISO_SHAPE)


# --------------------------------------------------------------------------------------------
# c, d: SGD noise in the harmonic switch model on a Styblinski–Tang valley
# --------------------------------------------------------------------------------------------


def _st(x: Any) -> Any:
    return (x**4 - 16 * x**2 + 5 * x) / 2


ST_A, ST_B = 2.7468027709908371, 0.15673125678034011
ST_C = math.sqrt(8 / 3)  # inflection of the Styblinski–Tang slice: the switch surface x = c
ST_GRID = {
    # the switch x = c is a cell face at every level; absorbing well inside the deep basin
    # (L(−1) is 10 below L(b): more than 8 noise units at the smallest barrier)
    "bounds": ((ST_C - 3.0, ST_C + 3.0), (-2.5, 2.5)),
    "shape": (120, 100),
    "absorbing": lambda x, y: x < -1.0,
}

_COUPLING, _WIDTH = 8, sp.Rational(3, 5)
_A_SYM = sp.Rational("2.7468027709908371")  # exact: a float literal in SymPy is refused
MISALIGNED_LOSS = (
    _st(X)
    + sp.Rational(3, 2) * Y**2
    + _COUPLING * sp.exp(-(((X - _A_SYM) / _WIDTH) ** 2)) * (X - _A_SYM) * Y
)

# d: a double well x⁴/4 − x²/2 (a = −1, b = 0, H_a = 2, |H_b| = 1) with a transverse stiffness
# linear in x, 1.0 at a and 1.36 at b; the switch at the inflection x = −1/√3. On the
# Styblinski–Tang valley (H_a = 29, |H_b| = 16 ≫ the stiffness) the same stiffness change leaves
# the aligned formula right: the transverse motion is too slow to matter there.
DW_SWITCH = -1 / math.sqrt(3)
STIFFENING_LOSS = X**4 / 4 - X**2 / 2 + (1 + sp.Rational(36, 100) * (X + 1)) * Y**2 / 2
DW_GRID = {
    # the switch is a cell face at every level (28 coarse cells to its left); absorbing past
    # the other minimum x = 1 (L there is ΔL below L(b): 7.7 noise units at ΔΦ = 6)
    "bounds": ((DW_SWITCH - 1.4, DW_SWITCH + 1.8), (-2.0, 2.0)),
    "shape": (64, 80),
    "absorbing": lambda x, y: x > 1.0,
}


def switch_field(
    kappa: float, h_a: np.ndarray, h_b: np.ndarray, switch: float = ST_C, a_right: bool = True
) -> Field:
    """D = κH_a on a's side of x = switch, κ|H_b| (eigenvalues made positive) on b's side."""
    abs_b = _abs_matrix(h_b)

    def diffusion(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xx = np.asarray(x)
        near_b = ((xx < switch) if a_right else (xx > switch))[..., None, None]
        return np.where(near_b, kappa * abs_b, kappa * h_a) + 0 * np.asarray(y)[..., None, None]

    return diffusion


def switch_plane(theta: np.ndarray, switch: float) -> np.ndarray:
    """g(θ) = θ₁ − switch: the switch surface x = switch as the zero set of a callable."""
    return np.asarray(theta, dtype=float)[..., 0] - switch


def _abs_matrix(h: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(h)
    return (v * np.abs(w)) @ v.T


def _switch_barrier_per_kappa(case: Case) -> float:
    """ΔL₁/H_ae + ΔL₂/|H_be|: the switch model's exponent × κ along the escape direction."""
    f = case.loss_np
    a, b = case.minimum, case.saddles[0]
    e = escape_direction(case.hess_saddle())
    h_ae = float(e @ case.hess_min @ e)
    h_be = abs(float(np.linalg.eigvalsh(case.hess_saddle())[0]))
    lc = float(f(np.array(case.extra["switch"]), np.array(0.0)))
    la = float(f(np.array(a[0]), np.array(a[1])))
    lb = float(f(np.array(b[0]), np.array(b[1])))
    return (lc - la) / h_ae + (lb - lc) / h_be


def _make_switch(interpretation: str) -> Callable[[Case, float], Instance]:
    def make(case: Case, barrier: float) -> Instance:
        kappa = _switch_barrier_per_kappa(case) / barrier
        h_a, h_b = case.hess_min, case.hess_saddle()
        switch = case.extra["switch"]
        field_ = switch_field(kappa, h_a, h_b, switch, bool(case.minimum[0] > switch))
        dl = case.barrier_loss()
        lc = float(case.loss_np(np.array(switch), np.array(0.0)))
        la = float(case.loss_np(np.array(case.minimum[0]), np.array(case.minimum[1])))
        s = (lc - la) / dl

        at = callable_noise(field_)

        return Instance(
            case=case,
            barrier=barrier,
            diffusion=field_,
            diffusion_at=at,
            # the toolkit's SGD noise with the harmonic switch on the same plane x = switch (the
            # same D as ``at``, a callable D(θ) with a jump, which is refused)
            landscape_kwargs={
                "noise": "sgd",
                "lr": 2 * kappa,
                "batch_size": 1,
                "switch": functools.partial(switch_plane, switch=switch),
            },
            aligned_kwargs=[
                {
                    "noise": "sgd",
                    "hess_min": h_a,
                    "hess_saddle": h_b,
                    "barrier": dl,
                    "lr": 2 * kappa,
                    "batch_size": 1,
                    "s": s,
                    "interpretation": interpretation,
                }
            ],
            interpretation=interpretation,
        )

    return make


# --------------------------------------------------------------------------------------------
# e: two saddles out of one valley
# --------------------------------------------------------------------------------------------

TWO_SADDLE_LOSS = (
    (X**6 / 6 - 5 * X**4 / 4 + 2 * X**2) / 2
    - X / 50
    + (1 + X / 2 + X**2 / 4) * (Y - sp.Rational(3, 10) * X**2) ** 2 / 2
)


def _make_two_saddles(case: Case, barrier: float) -> Instance:
    dl = min(case.barrier_loss(0), case.barrier_loss(1))
    d = dl / barrier
    return Instance(
        case=case,
        barrier=barrier,
        diffusion=constant_field(d * np.eye(2)),
        diffusion_at=lambda theta: d * np.eye(2),
        landscape_kwargs={"noise": "white", "diffusion": d},
        aligned_kwargs=[_aligned_white(case, d, i) for i in range(2)],
    )


# --------------------------------------------------------------------------------------------
# f: measured noise on a two-minimum regression
# --------------------------------------------------------------------------------------------


def regression_data(m: int = 16, seed: int = 7) -> dict[str, np.ndarray]:
    """Synthetic data: x, z ~ N(0, 1), u ~ N(0, ¼); target 1.5x + 0.4u + 0.5z + 0.3·noise.

    With the model below the loss has two minima in w₁ (w₁ ≈ −1.07, the shallower one, and
    w₁ ≈ 1.11) and a saddle between them at w₁ ≈ −0.17."""
    rng = np.random.default_rng(seed)
    x, u, z, noise = rng.standard_normal((4, m))
    u = 0.5 * u
    return {"x": x, "u": u, "z": z, "y": 1.5 * x + 0.4 * u + 0.5 * z + 0.3 * noise}


def regression_model(data: dict[str, np.ndarray]) -> tuple[sp.Expr, sp.Matrix]:
    """Model ŷ = w₁²x + w₁u + w₂z (w₁ = x, w₂ = y of the landscape): loss ½·mean residual² and
    the per-sample gradient covariance C(w) = mean (g_i − ḡ)(g_i − ḡ)ᵀ,
    g_i = r_i (2w₁x_i + u_i, z_i), as SymPy polynomials (data as exact rationals of the
    doubles; polynomial arithmetic, so building them is fast)."""
    rows = list(zip(data["x"], data["u"], data["z"], data["y"], strict=True))
    m = len(rows)
    residuals, grads = [], []
    for xi, ui, zi, yi in rows:
        xs, us, zs, ys = (sp.Rational(float(v)) for v in (xi, ui, zi, yi))
        r = sp.Poly(X**2 * xs + X * us + Y * zs - ys, X, Y)
        residuals.append(r)
        grads.append((r * sp.Poly(2 * X * xs + us, X, Y), r * sp.Poly(zs, X, Y)))
    zero = sp.Poly(0, X, Y)
    loss = sum((r * r for r in residuals), zero) * sp.Rational(1, 2 * m)
    mean = [sum((g[k] for g in grads), zero) * sp.Rational(1, m) for k in range(2)]
    cov = sp.zeros(2, 2)
    for i in range(2):
        for j in range(2):
            second = sum((g[i] * g[j] for g in grads), zero) * sp.Rational(1, m)
            cov[i, j] = (second - mean[i] * mean[j]).as_expr()
    return loss.as_expr(), cov


def covariance_field(data: dict[str, np.ndarray]) -> Field:
    """C(w) evaluated from the data in numpy (the same quantity as `regression_model`'s SymPy
    matrix, much faster on grids and in simulations)."""
    xs, us, zs, ys = (np.asarray(data[k], dtype=float) for k in ("x", "u", "z", "y"))

    def field_(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
        w1, w2 = np.broadcast_arrays(np.asarray(w1, dtype=float), np.asarray(w2, dtype=float))
        a, b = w1[..., None], w2[..., None]
        r = a * a * xs + a * us + b * zs - ys
        g0, g1 = r * (2 * a * xs + us), r * zs  # (..., m) each
        g0 = g0 - g0.mean(axis=-1, keepdims=True)
        g1 = g1 - g1.mean(axis=-1, keepdims=True)
        out = np.empty((*w1.shape, 2, 2))
        out[..., 0, 0] = (g0 * g0).mean(axis=-1)
        out[..., 1, 1] = (g1 * g1).mean(axis=-1)
        out[..., 0, 1] = out[..., 1, 0] = (g0 * g1).mean(axis=-1)
        return out

    return field_


def _make_measured(case: Case, barrier: float) -> Instance:
    cov_field = case.extra["cov_field"]
    dl = case.barrier_loss()
    b = case.saddles[0]
    e = escape_direction(case.hess_saddle())
    c_b = float(e @ cov_field(np.array(b[0]), np.array(b[1])) @ e)
    batch_size = 1
    lr = 2 * batch_size * dl / (barrier * c_b)  # D = (η/2B)·C, nominal ΔΦ = ΔL/(eᵀD_b e)
    scale = lr / (2 * batch_size)

    def diffusion(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return scale * cov_field(x, y)

    at = callable_noise(diffusion)

    h_a, h_b = case.hess_min, case.hess_saddle()
    h_ae, h_be = float(e @ h_a @ e), abs(float(np.linalg.eigvalsh(h_b)[0]))
    return Instance(
        case=case,
        barrier=barrier,
        diffusion=diffusion,
        diffusion_at=at,
        landscape_kwargs={"noise": at},
        aligned_kwargs=[
            {
                # the paper's D ≈ κH assumption, s from the C¹ piecewise-quadratic valley
                "noise": "sgd",
                "hess_min": h_a,
                "hess_saddle": h_b,
                "barrier": dl,
                "lr": lr,
                "batch_size": batch_size,
                "s": h_be / (h_ae + h_be),
                "interpretation": "ito",
            }
        ],
    )


# --------------------------------------------------------------------------------------------
# g: a saddle in the Maier–Stein regime (μ = 0.5) with a constant misaligned D
# --------------------------------------------------------------------------------------------

SHALLOW_LOSS = (X**2 - 1) ** 2 + (Y - X**2 / 2) ** 2  # H_b = diag(−4, 2): μ = λ_s/|λ_b| = 0.5
_R_SHALLOW = rotation(math.cos(0.5), math.sin(0.5))
SHALLOW_SHAPE = _R_SHALLOW @ np.diag([1.0, 0.25]) @ _R_SHALLOW.T  # D = ε · SHALLOW_SHAPE
SHALLOW_GRID = {
    # reflecting edges where L − L(a) ≥ 3 (the barrier is 1); absorbing past x = 0.52, a cell
    # face at each level, on the slope into the other basin (minimum at x = 1)
    "bounds": ((-2.2, 0.6), (-1.5, 2.5)),
    "shape": (140, 200),
    "absorbing": lambda x, y: x > 0.52,
}


_make_shallow = _constant_aniso(SHALLOW_SHAPE)


# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------


def _build() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    a, b = _valley_point(_UA), _valley_point(_UB)
    rot_a = critical_point(ROTATED_LOSS, (float(a[0]), float(a[1])))
    rot_b = critical_point(ROTATED_LOSS, (float(b[0]), float(b[1])))
    cases["a"] = Case(
        "a",
        "rotated_white",
        "rotated asymmetric double well, curved valley, transverse stiffness 1 + u²/2; white noise",
        ROTATED_LOSS,
        rot_a,
        [rot_b],
        "white",
        _make_rotated_white,
        ROTATED_GRID,
        "Eyring–Kramers (Langer) with det H_a, |det H_b|, |λ₋(H_b)|",
    )
    cases["b"] = Case(
        "b",
        "rotated_aniso",
        "the same landscape, constant D = ε·R diag(1, ¼)Rᵀ, axes at 60° to the valley",
        ROTATED_LOSS,
        rot_a,
        [rot_b],
        "anisotropic",
        _make_rotated_aniso,
        # the small axis of D makes the noise half as wide: h = 0.025 on the coarsest grid
        {**ROTATED_GRID, "shape": (206, 184)},
        "white-noise formula with the scalar D = eᵀDe (the only workaround today)",
        exponent_ratio=1.261,
    )
    mis_a = critical_point(MISALIGNED_LOSS, (ST_A, 0.0))
    mis_b = critical_point(MISALIGNED_LOSS, (ST_B, 0.0))
    cases["c"] = Case(
        "c",
        "misaligned_sgd",
        "Styblinski–Tang valley, H_a rotated against e (misalignment 0.26); SGD switch noise, Itô",
        MISALIGNED_LOSS,
        mis_a,
        [mis_b],
        "sgd (switch)",
        _make_switch("ito"),
        ST_GRID,
        "the paper's SGD formula with H_ae = eᵀH_a e, s at the switch",
        extra={"switch": ST_C},
        exponent_ratio=0.9845,
    )
    stiff_a = critical_point(STIFFENING_LOSS, (-1.0, 0.0))
    stiff_b = critical_point(STIFFENING_LOSS, (0.0, 0.0))
    cases["d"] = Case(
        "d",
        "stiffening_sgd",
        "double well x⁴/4 − x²/2, transverse stiffness 1.0 at a → 1.36 at b (linear in x); "
        "SGD switch noise at the inflection, Itô",
        STIFFENING_LOSS,
        stiff_a,
        [stiff_b],
        "sgd (switch)",
        _make_switch("ito"),
        DW_GRID,
        "the paper's SGD formula, s at the switch",
        extra={"switch": DW_SWITCH},
    )
    two_a = critical_point(TWO_SADDLE_LOSS, (0.0, 0.0))
    two_b = [critical_point(TWO_SADDLE_LOSS, (s, 0.3)) for s in (1.0, -1.0)]
    two_c = [critical_point(TWO_SADDLE_LOSS, (s, 1.2)) for s in (2.0, -2.0)]
    cases["e"] = Case(
        "e",
        "two_saddles",
        "one valley with two saddles (to the right and to the left) into two deeper basins; "
        "curved valley, transverse stiffness different at the two saddles; white noise",
        TWO_SADDLE_LOSS,
        two_a,
        two_b,
        "white",
        _make_two_saddles,
        {
            "bounds": ((-2.4, 2.4), (-1.6, 3.2)),
            "shape": (96, 96),
            "absorbing": lambda x, y, cr=two_c[0][0], cl=two_c[1][0]: (x > cr) | (x < cl),
        },
        "Eyring–Kramers per saddle, rates summed",
    )
    data = regression_data()
    reg_loss, reg_cov = regression_model(data)
    reg_a = critical_point(reg_loss, (-1.07, 0.5))
    reg_b = critical_point(reg_loss, (-0.17, 0.5))
    reg_c = critical_point(reg_loss, (1.11, 0.5))
    cases["f"] = Case(
        "f",
        "measured",
        "regression ŷ = w₁²x + w₁u + w₂z on 16 synthetic points, two minima in w₁; D = (η/2B)·C(w) "
        "with C the per-sample gradient covariance (full, state dependent), Itô",
        reg_loss,
        reg_a,
        [reg_b],
        "measured",
        _make_measured,
        {
            # reflecting edges where L − L(a) > 1 (six barriers); absorbing past the deeper
            # minimum c
            "bounds": ((-2.2, 1.4), (-1.5, 2.5)),
            "shape": (144, 160),
            "absorbing": lambda x, y, c=reg_c[0]: x > c,
        },
        "the paper's SGD formula (D ≈ κH), s = |H_be|/(H_ae + |H_be|)",
        extra={"data": data, "cov": reg_cov, "cov_field": covariance_field(data), "c": reg_c},
        exponent_ratio=0.327,
    )
    cases["g"] = Case(
        "g",
        "maier_stein_toy",
        "double well (x² − 1)² + (y − x²/2)², H_b = diag(−4, 2) (μ = 0.5, the Maier–Stein "
        "regime); constant D = ε·R diag(1, ¼)Rᵀ, R by 0.5 rad",
        SHALLOW_LOSS,
        critical_point(SHALLOW_LOSS, (-1.0, 0.5)),
        [critical_point(SHALLOW_LOSS, (0.0, 0.0))],
        "anisotropic",
        _make_shallow,
        SHALLOW_GRID,
        "white-noise formula with the scalar D = eᵀDe",
        exponent_ratio=1.2736,
    )
    return cases


CASES = _build()


# --------------------------------------------------------------------------------------------
# an independent reference solver (not mfpt_2d): nine-point exponential fitting
# --------------------------------------------------------------------------------------------


def kolmogorov_mfpt(
    loss: Field, diffusion: Field, grid: _Grid, start: tuple[float, float], alpha: float = 0.0
) -> float:
    """MFPT from ``start`` to the absorbing cells of ``grid`` (`cell_grid(bounds, shape,
    absorbing)`: the same cell-centred grid as `mfpt_2d`'s, not its scheme) for dθ = (−∇L + α∇·D)dt + √(2D)dW (Itô
    form of the α-interpretation), reflecting box edges; a scheme independent of `mfpt_2d`.

    Generator 𝓛u = b·∇u + D:∇∇u, b = −∇L + α∇·D. D is split on the nine-point stencil,
    D = Σ_k c_k d_k d_kᵀ over the grid vectors d ∈ {(h_x, 0), (0, h_y), (h_x, ±h_y)} (needs
    D_xx ≥ |D_xy| h_x/h_y and D_yy ≥ |D_xy| h_y/h_x; where that fails the cross term is cut to
    the largest allowed: keep such cells far above the saddle), and every pair of neighbours
    gets the rates c_k·exp(±½ d_kᵀD⁻¹b) (exponential fitting: positive rates at any barrier,
    an M-matrix; expanded it is 𝓛 to second order, since Σ_k c_k d_k d_kᵀ D⁻¹ b = b).
    The rates c_k(x ± d/2) make the symmetric part ∇·(D∇u), so the exponent uses
    b − ∇·D = −∇L + (α − 1)∇·D. ∇L and ∇·D by central differences (step h/100) at the edge
    midpoints, where D is also evaluated; T = 0 at the centres of absorbing cells. D must be smooth (no switch jumps).
    ``scipy.sparse.linalg.spsolve``; second order in h — refine and extrapolate.
    """
    import scipy.sparse as sparse
    import scipy.sparse.linalg as sparse_linalg

    (x0, _), (y0, _) = grid.bounds
    nx, ny = grid.shape
    hx, hy, gx, gy, index = grid.hx, grid.hy, grid.X, grid.Y, grid.index
    absorb = index < 0
    n = int((~absorb).sum())
    eps_x, eps_y = hx / 100, hy / 100

    def drift(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        grad = np.stack(
            [
                (loss(x + eps_x, y) - loss(x - eps_x, y)) / (2 * eps_x),
                (loss(x, y + eps_y) - loss(x, y - eps_y)) / (2 * eps_y),
            ],
            axis=-1,
        )
        # the symmetric rates c(x ± d/2) discretize ∇·(D∇u) = D:∇∇u + (∇·D)·∇u: the
        # exponent carries (α − 1)∇·D so that the generator is b·∇u + D:∇∇u
        b = -grad
        if alpha != 1:
            div = (diffusion(x + eps_x, y)[..., :, 0] - diffusion(x - eps_x, y)[..., :, 0]) / (
                2 * eps_x
            ) + (diffusion(x, y + eps_y)[..., :, 1] - diffusion(x, y - eps_y)[..., :, 1]) / (
                2 * eps_y
            )
            b = b + (alpha - 1) * div
        return b

    rows, cols, vals = [], [], []
    diagonal = np.zeros(n)
    for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):
        # pairs (i, j) → (i + di, j + dj) inside the grid
        si = slice(max(0, -di), nx - max(0, di))
        sj = slice(max(0, -dj), ny - max(0, dj))
        ti = slice(max(0, di), nx - max(0, -di))
        tj = slice(max(0, dj), ny - max(0, -dj))
        xm, ym = gx[si, sj] + di * hx / 2, gy[si, sj] + dj * hy / 2
        dm = diffusion(xm, ym)
        dxx, dyy = dm[..., 0, 0], dm[..., 1, 1]
        dxy = 0.5 * (dm[..., 0, 1] + dm[..., 1, 0])
        # where the split is impossible (|D_xy| too large for this cell shape) the cross term
        # is reduced to the largest the split allows: a local change of the generator, to be
        # kept where the loss is far above the saddle (checked by comparing with mfpt_2d)
        cross = np.minimum(np.abs(dxy), np.minimum(dxx * hy / hx, dyy * hx / hy))
        dxy = np.sign(dxy) * cross
        if (di, dj) == (1, 0):
            c = (dxx - np.abs(dxy) * hx / hy) / hx**2
        elif (di, dj) == (0, 1):
            c = (dyy - np.abs(dxy) * hy / hx) / hy**2
        elif (di, dj) == (1, 1):
            c = np.maximum(dxy, 0) / (hx * hy)
        else:
            c = np.maximum(-dxy, 0) / (hx * hy)
        # ψ with the tensor actually split, so that the drift is b wherever the cut applies
        effective = np.stack(
            [np.stack([dxx, dxy], axis=-1), np.stack([dxy, dyy], axis=-1)], axis=-2
        )
        b, dinv = drift(xm, ym), np.linalg.inv(effective)
        d_vec = np.array([di * hx, dj * hy])
        psi = np.einsum("i,...ij,...j->...", d_vec, dinv, b)
        forward, backward = c * np.exp(0.5 * psi), c * np.exp(-0.5 * psi)
        s_idx, t_idx = index[si, sj], index[ti, tj]
        for src, dst, rate in ((s_idx, t_idx, forward), (t_idx, s_idx, backward)):
            ok = (src >= 0) & (rate > 0)
            np.add.at(diagonal, src[ok], -rate[ok])
            keep = ok & (dst >= 0)
            rows.append(src[keep])
            cols.append(dst[keep])
            vals.append(rate[keep])
    matrix = sparse.coo_matrix(
        (
            np.concatenate([*vals, diagonal]),
            (np.concatenate([*rows, np.arange(n)]), np.concatenate([*cols, np.arange(n)])),
        ),
        shape=(n, n),
    ).tocsc()
    solution = sparse_linalg.spsolve(matrix, -np.ones(n))
    T = np.zeros(gx.shape)
    T[~absorb] = solution
    fx, fy = (start[0] - x0) / hx - 0.5, (start[1] - y0) / hy - 0.5
    i0, j0 = int(np.clip(np.floor(fx), 0, nx - 2)), int(np.clip(np.floor(fy), 0, ny - 2))
    tx, ty = fx - i0, fy - j0
    return float(
        (1 - tx) * (1 - ty) * T[i0, j0]
        + tx * (1 - ty) * T[i0 + 1, j0]
        + (1 - tx) * ty * T[i0, j0 + 1]
        + tx * ty * T[i0 + 1, j0 + 1]
    )


def kolmogorov_reference(instance: Instance, levels: int = 3) -> Reference:
    """`kolmogorov_mfpt` on ``levels`` grids (each halving h) with Richardson extrapolation at
    the measured order (2 assumed if it is out of (1, 4))."""
    from flatminima.theory import interpretation_alpha

    grid = instance.case.grid
    alpha = float(interpretation_alpha(instance.interpretation))
    values = []
    for level in range(levels):
        shape = (grid["shape"][0] * 2**level, grid["shape"][1] * 2**level)
        values.append(
            kolmogorov_mfpt(
                instance.case.loss_np,
                instance.diffusion,
                cell_grid(grid["bounds"], shape, grid["absorbing"]),
                tuple(instance.case.minimum),
                alpha,
            )
        )
    order, p = None, 2.0
    if levels >= 3:
        d1, d2 = values[-3] - values[-2], values[-2] - values[-1]
        if d1 * d2 > 0:
            order = math.log2(d1 / d2)
            if 1 < order < 4:
                p = order
    error = abs(values[-1] - values[-2]) / (2**p - 1)
    return Reference(
        values[-1] + (values[-1] - values[-2]) / (2**p - 1), error, order, tuple(values)
    )
