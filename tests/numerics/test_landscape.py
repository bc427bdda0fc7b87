"""landscape_escape_time against independent references: the Eyring–Kramers formula of
escape_time (white noise, to the digits asked), exact 1-D MFPT quadrature (state-dependent D,
three interpretations) and the 2-D backward-Kolmogorov solve (constant anisotropic D on a
curved, rotated, non-separable valley)."""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

from flatminima.errors import ConvergenceError, ParameterError, ValidityWarning
from flatminima.numerics import escape_time, landscape_escape_time, mfpt_1d, mfpt_2d

X, Y = sp.symbols("x y")
CURVED = (X**2 - 1) ** 2 + 3 * (Y - X**2 / 2) ** 2
A, B = [-1.0, 0.5], [0.0, 0.0]


def _hessian(expr: sp.Expr, point: dict[sp.Symbol, sp.Expr]) -> list[list[sp.Expr]]:
    return [[sp.diff(expr, u, v).subs(point) for v in (X, Y)] for u in (X, Y)]


def test_white_noise_reduces_to_eyring_kramers_to_the_digits_asked() -> None:
    r = landscape_escape_time(
        CURVED, "white", minimum=A, saddle=B, diffusion="0.1", lr="0.01", dps=40, points=8
    )
    half = sp.Rational(1, 2)
    reference = escape_time(
        "white",
        hess_min=_hessian(CURVED, {X: -1, Y: half}),
        hess_saddle=_hessian(CURVED, {X: 0, Y: 0}),
        barrier=1,
        diffusion="0.1",
        lr="0.01",
        dps=40,
    )
    assert r.dps == 40
    with mpmath.workdps(40):
        assert abs(r.log_tau - reference.log_tau) < mpmath.mpf(10) ** -37
        assert abs(r.barrier - 10) < mpmath.mpf(10) ** -37
        assert abs(r.iterations / reference.iterations - 1) < mpmath.mpf(10) ** -37
    assert r.non_gibbs == 0
    assert "Eyring" in r.method
    d = r.to_dict()
    assert d["barrier"].startswith("10.0") and len(d["path"]) == r.path.shape[0]
    assert "LandscapeEscapeTime" in repr(r)


def test_general_prefactor_on_white_noise_has_no_non_gibbs_term() -> None:
    """The Bouchet–Reygner machinery (Riccati flow, Lyapunov Hessians, gMAM barrier) applied
    to a reversible case must reproduce Eyring–Kramers: I ≈ 0 and the same τ."""
    ek = landscape_escape_time(CURVED, "white", minimum=A, saddle=B, diffusion=0.1, points=8)
    br = landscape_escape_time(
        CURVED, "white", minimum=A, saddle=B, diffusion=0.1, points=8, prefactor="bouchet-reygner"
    )
    assert abs(br.non_gibbs) < 5e-3
    assert abs(float(br.log_tau - ek.log_tau)) < 5e-3


@pytest.mark.parametrize("interpretation", ["ito", "stratonovich", "anti-ito"])
def test_one_dimensional_state_dependent_noise_against_mfpt_1d(interpretation: str) -> None:
    """D(x) = ε(1 + x²) on the double well x⁴/4 − x²/2: the error against the exact MFPT to the
    other minimum falls like 1/ΔΦ (halving ε halves it)."""
    x = sp.Symbol("x0")
    loss = x**4 / 4 - x**2 / 2
    errors, barriers = [], []
    for eps in (sp.Rational(1, 30), sp.Rational(1, 60)):
        e = float(eps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ValidityWarning)
            r = landscape_escape_time(
                loss,
                lambda t, e=e: e * (1 + t[..., 0] ** 2),
                minimum=[-1.0],
                saddle=[0.0],
                interpretation=interpretation,
                points=8,
            )
        exact = mfpt_1d(loss, eps * (1 + x**2), start=-1, end=1, interpretation=interpretation)
        errors.append(abs(float(r.tau / exact.value) - 1))
        barriers.append(float(r.barrier))
    slope = math.log(errors[1] / errors[0]) / math.log(barriers[1] / barriers[0])
    assert errors[1] < 0.8 / barriers[1]  # c/ΔΦ with c = 0.26–0.6 measured for the 1-D formulas
    assert -1.3 < slope < -0.7


def test_anisotropic_escape_time_against_mfpt_2d_reduced() -> None:
    """One point of the slow sweep below (ΔΦ ≈ 6.2, coarse grid): within 20%, where the
    aligned workaround D = eᵀDe gives the wrong exponent."""
    pytest.importorskip("scipy")
    rot = _rotation(0.5)
    d = 0.3 * rot @ np.diag([1.0, 0.25]) @ rot.T
    r = landscape_escape_time(CURVED, "anisotropic", minimum=A, saddle=B, diffusion=d, points=8)
    exact = mfpt_2d(_curved_np, d, levels=2, **GRID_CURVED)
    assert 6 < float(r.barrier) < 6.4
    assert abs(float(r.tau) / exact.extrapolated - 1) < 0.2


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _curved_np(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x**2 - 1) ** 2 + 3 * (y - x**2 / 2) ** 2


# the absorbing line x = 0.52 is on a cell face at each level, deep in the other basin's slope
GRID_CURVED = {
    "bounds": ((-2.2, 0.6), (-1.5, 2.5)),
    "shape": (70, 100),
    "start": (-1.0, 0.5),
    "absorbing": lambda x, y: x > 0.52,
}


@pytest.mark.slow
def test_anisotropic_error_falls_like_one_over_the_barrier() -> None:
    """ΔΦ ≈ 6, 9, 12: |τ/τ_exact − 1| falls with log-log slope in [−1.3, −0.7]. Measured
    (2026-12-02, points = 32, I = 0.425 ± 0.007): 9.8%, 6.3%, 4.7%, slope −1.07, i.e.
    τ/τ_exact ≈ 1 − 0.6/ΔΦ (with points = 64, I = 0.421 ± 0.002: slope −1.02). Before the
    linear-model tail of I (tail F/κ from a decay rate) the slope was −3: I was 0.04 high."""
    rot = _rotation(0.5)
    errors, barriers = [], []
    for eps, shape in ((0.3, (70, 100)), (0.2, (140, 200)), (0.15, (140, 200))):
        d = eps * rot @ np.diag([1.0, 0.25]) @ rot.T
        r = landscape_escape_time(
            CURVED, "anisotropic", minimum=A, saddle=B, diffusion=d, points=32
        )
        exact = mfpt_2d(_curved_np, d, levels=2, **{**GRID_CURVED, "shape": shape})
        assert exact.error / exact.value < 0.01
        errors.append(abs(float(r.tau) / exact.extrapolated - 1))
        barriers.append(float(r.barrier))
    slope = np.polyfit(np.log(barriers), np.log(errors), 1)[0]
    assert -1.3 < slope < -0.7


def test_maier_stein_saddle_gives_a_prefactor_that_names_the_regime() -> None:
    """|λ_b| above the saddle's stable curvature (the Maier–Stein regime, μ = λ_s/|λ_b| = 0.5)
    with a continuous D: a number, with the regime and μ named in ``method`` and in a
    ValidityWarning (the quasi-potential is not C² at the saddle; the tail of I is the
    linear-model arrival integral). Against exact references: tests/numerics/
    test_landscape_refs.py, case g."""
    shallow = (X**2 - 1) ** 2 + (Y - X**2 / 2) ** 2  # H_b = diag(−4, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = landscape_escape_time(
            shallow, "anisotropic", minimum=A, saddle=B, diffusion=[[0.2, 0], [0, 0.05]], points=8
        )
    assert math.isfinite(float(r.log_tau))
    assert "Maier–Stein regime, μ = λ_s/|λ_b| = 0.5" in r.method
    messages = [str(w.message) for w in caught if issubclass(w.category, ValidityWarning)]
    assert any("μ = 0.5 < 1, the Maier–Stein regime" in m for m in messages), messages


def test_maier_stein_saddle_with_switch_noise_is_shot_in_2d() -> None:
    """The same saddle with the harmonic-switch SGD noise (D jumps on a curved surface, where
    the smallest curvature vanishes): in 2-D the instanton is shot backwards from the saddle's
    stable manifold and V carried along it; the barrier integrated along that trajectory
    (Hamilton's equations, ∫ p·ẋ dt) agrees with gMAM's string, an independent computation
    (measured 18.06824 against 18.07219 with points = 8 and 18.06816 with points = 32), and
    V's values at the stops level off (the reported error)."""
    import re

    shallow = (X**2 - 1) ** 2 + (Y - X**2 / 2) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        r = landscape_escape_time(
            shallow, "sgd", minimum=A, saddle=B, lr="0.1", batch_size=4, points=8
        )
    assert math.isfinite(float(r.log_tau))
    assert "shot backwards from the saddle's stable manifold" in r.method
    shot = float(re.search(r"barrier along the shot instanton ([0-9.]+)", r.method).group(1))
    assert shot == pytest.approx(float(r.barrier), rel=5e-4)
    error = float(re.search(r"I = [-0-9.e]+ ± ([0-9.e+-]+);", r.method).group(1))
    assert error < 1e-3


def test_maier_stein_saddle_with_switch_noise_is_refused_in_3d() -> None:
    """In 3-D the shooting would need two parameters: a clear error, not a number, that names
    the regime, μ and the reason."""
    z = sp.Symbol("z")
    shallow = (X**2 - 1) ** 2 + (Y - X**2 / 2) ** 2 + z**2
    with pytest.raises(ConvergenceError, match="stable curvature") as info:
        landscape_escape_time(
            shallow, "sgd", minimum=[*A, 0.0], saddle=[*B, 0.0], lr="0.1", batch_size=4, points=8
        )
    message = str(info.value)
    assert "Maier–Stein regime" in message
    assert "μ = λ_s/|λ_b| = 0.5 ≤ 1" in message
    assert "switch-model noise" in message and "2-D only" in message


def test_switch_fraction_read_off_the_path_is_the_derived_one_on_a_piecewise_quadratic_valley() -> (
    None
):
    """C¹ piecewise-quadratic valley, H_a = 3, |H_b| = 1, ΔL = 6 (junction at x = 1, saddle at
    x = 4) and a transverse stiffness changing along it: r.s equals derive_switch_fraction()
    evaluated at H_a, H_b (1/4), the junction found by bisection."""
    from flatminima.theory import derive_switch_fraction

    valley = (
        sp.Piecewise((sp.Rational(3, 2) * X**2, X < 1), (6 - (X - 4) ** 2 / 2, True))
        + (1 + X / 8) * Y**2 / 2
    )
    r = landscape_escape_time(
        valley, "white", minimum=[0.1, 0.0], saddle=[3.9, 0.0], diffusion="0.6", points=8
    )
    formula = derive_switch_fraction()
    expected = formula.value.subs({formula.symbols["H_a"]: 3, formula.symbols["H_b"]: 1})
    assert r.s == pytest.approx(float(expected), abs=1e-10)
    assert float(r.barrier) == pytest.approx(10.0, rel=1e-12)


def test_switch_fraction_on_a_smooth_valley_is_at_the_inflection() -> None:
    """x⁴/4 − x²/2 (+ a transverse term): the sign change is at x = −1/√3, s = 4/9, not the C¹
    model's 1/3 (the two definitions agree only on piecewise-quadratic valleys)."""
    r = landscape_escape_time(
        X**4 / 4 - X**2 / 2 + Y**2,
        "white",
        minimum=[-1, 0],
        saddle=[0, 0],
        diffusion="0.025",
        points=8,
    )
    assert r.s == pytest.approx(4 / 9, abs=1e-10)


def test_jump_in_d_is_found_and_a_steep_smooth_d_is_not() -> None:
    """D(θ) = d(x)·I on the segment from (−1, 0) to (0, 0): a 1% jump at x = −0.4 is found
    (to 10⁻⁹), a smooth change by a factor 3 over a width 0.01 at the same place is not."""
    from flatminima.numerics._loss_model import loss_model
    from flatminima.numerics._noise_models import find_jump, noise_model

    model = loss_model(X**4 / 4 - X**2 / 2 + Y**2, np.array([-1.0, 0.0]), None, None)
    line = np.stack([np.linspace(-1, 0, 33), np.zeros(33)], axis=1)

    def jump(theta: np.ndarray) -> np.ndarray:
        d = 0.1 * (1 + 0.01 * (theta[:, 0] > -0.4))
        return d[:, None, None] * np.eye(2)

    def steep(theta: np.ndarray) -> np.ndarray:
        d = 0.1 * (2 + np.tanh((theta[:, 0] + 0.4) / 0.01))
        return d[:, None, None] * np.eye(2)

    found = find_jump(noise_model(jump, model, line[0]), line)
    assert found is not None
    assert found[0][0] == pytest.approx(-0.4, abs=1e-9)
    assert found[1] == pytest.approx(0.01 / 1.01, rel=1e-6)
    assert find_jump(noise_model(steep, model, line[0]), line) is None


def test_d_not_positive_definite_on_the_path_is_named() -> None:
    """D(θ) positive definite at the minimum but with a negative eigenvalue near the saddle: a
    ParameterError naming ``noise`` and the point, before any string is relaxed (it was a
    'did not converge' error blaming the path)."""
    x, y = sp.symbols("x y")
    loss = (x**2 - 1) ** 2 + (y - x**2 / 2) ** 2

    def diffusion(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        out = np.zeros((*t.shape[:-1], 2, 2))
        out[..., 0, 0] = 0.1 * (1 - 1.5 * np.exp(-10 * t[..., 0] ** 2))  # < 0 near x = 0
        out[..., 1, 1] = 0.1
        return out

    with pytest.raises(ParameterError, match=r"noise: .*smallest eigenvalue -0\.0\d+ at θ"):
        landscape_escape_time(loss, diffusion, minimum=[-1, 0.5], saddle=[0, 0], points=8)


@pytest.mark.parametrize("stable", [[1.15], [1.15, 2.5]])
def test_linear_tail_is_the_integral_of_the_linear_riccati_flow(stable: list[float]) -> None:
    """The tail of the non-Gibbs integral beyond a stop near the saddle, ½ log det(Σ_b Q), equals
    ∫₀^∞ (tr D_b Q(t) − tr H_b) dt for the linear saddle model, Q(t) = Y X⁻¹ of the linear
    Hamiltonian flow from a Lagrangian plane off the Lyapunov one (quadrature, closed-form flow):
    a near-resonant saddle, λ_s/|λ_b| = 1.15, where Q − Q_b decays like e^{−0.15 t}."""
    from scipy.integrate import quad
    from scipy.linalg import solve_continuous_lyapunov
    from scipy.stats import special_ortho_group

    from flatminima.numerics._prefactor import SaddleModel, _linear_tail

    n = 1 + len(stable)
    rng = np.random.default_rng(3)
    basis = special_ortho_group.rvs(n, random_state=4)  # eigenvectors of H_b, columns
    lam = np.array([-1.0, *stable])
    h_b = basis @ np.diag(lam) @ basis.T
    root = rng.normal(size=(n, n))
    d_b = 0.3 * (root @ root.T / n + np.eye(n))
    sigma = solve_continuous_lyapunov(h_b, 2 * d_b)
    q_b = np.linalg.inv(sigma)
    e_s = basis[:, 1:]
    k = rng.normal(size=(n - 1, n - 1))
    c = 0.4 * (k + k.T) @ e_s.T @ q_b  # x-type stable columns, Lagrangian plane
    # X(t) = e^{At} + E_s e^{−Λ_s t} C with A = −H_b + 2D_bQ_b = Σ H_b Σ⁻¹, so
    # Q = Y X⁻¹ = Q_b (I + E_s e^{−Λ_s t} C e^{−At})⁻¹, e^{−At} = Σ E e^{−Λt} Eᵀ Σ⁻¹ (E = basis),
    # the exponents combined entrywise (no overflow)
    middle, back = c @ sigma @ basis, basis.T @ np.linalg.inv(sigma)

    def q_of(t: float) -> np.ndarray:
        decay = np.exp(-(lam[1:, None] + lam[None, :]) * t)
        return q_b @ np.linalg.inv(np.eye(n) + e_s @ (decay * middle) @ back)

    def f_of(t: float) -> float:
        return float(np.trace(d_b @ q_of(t)) - np.trace(h_b))

    rate = min(lam[1:]) - 1.0
    integral = sum(
        quad(f_of, lo, hi, limit=200, epsabs=1e-12, epsrel=1e-11)[0]
        for lo, hi in ((0, 5), (5, 50), (50, 400 / rate))
    )
    q0 = q_of(0.0)
    assert np.linalg.norm(q0 - q_b) > 0.05 * np.linalg.norm(q_b)  # far from the Lyapunov Q_b
    tail = _linear_tail(q0, f_of(0.0), SaddleModel(d_b, h_b, sigma, 1.0))
    assert abs(integral) > 1e-3
    assert tail == pytest.approx(integral, rel=1e-7, abs=1e-9)


def test_richardson_over_halving_stops_removes_the_power_series() -> None:
    """Values I + c₁r + c₂r² + c₃r³ at r = 0.16, 0.08, 0.04, 0.02 give I back; the error
    estimate is the change when a stop is dropped, an upper bound of the error with a quartic
    term added."""
    from flatminima.numerics._prefactor import _richardson

    stops = [0.16, 0.08, 0.04, 0.02]
    values = [1.25 + 3 * r - 7 * r**2 + 11 * r**3 for r in stops]
    value, error = _richardson(values)
    assert value == pytest.approx(1.25, abs=1e-12)
    assert error > 1e-3  # with a stop dropped the cubic term is left: 0.0056
    value, error = _richardson([v + 0.5 * r**4 for v, r in zip(values, stops, strict=True)])
    assert 0 < abs(value - 1.25) <= error
