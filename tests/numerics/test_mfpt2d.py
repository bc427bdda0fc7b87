"""The 2-D grid solver: its grid error is measured, and it checks the n-D formulas on landscapes
that are not separable, for white noise and for SGD noise in the switch model (all α)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from flatminima.errors import FlatMinimaError
from flatminima.numerics import escape_time, landscape_case, mfpt_1d, mfpt_2d

# a sheared double well: minimum (−1, γ) with a rotated Hessian, saddle (0, 0)
H0, H1, GAMMA = 1.0, 0.5, 0.5


def sheared(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x**2 - 1) ** 2 + 0.5 * (H0 + H1 * x**2) * (y - GAMMA * x**2) ** 2


HA_SHEARED = np.array(
    [[8 + 4 * GAMMA**2 * (H0 + H1), -2 * GAMMA * (H0 + H1)], [-2 * GAMMA * (H0 + H1), H0 + H1]]
)
HB_SHEARED = np.array([[-4.0, 0.0], [0.0, H0]])
# the absorbing surface x = 0.52 lies on a cell face at every level (second-order convergence)
SHEARED = {
    "bounds": ((-2.2, 0.6), (-1.5, 2.5)),
    "shape": (70, 100),
    "start": (-1.0, GAMMA),
    "absorbing": lambda x, y: x > 0.52,
}


def test_grid_error_is_second_order_and_small() -> None:
    r = mfpt_2d(sheared, 0.125, levels=3, **SHEARED)
    assert r.order is not None and 1.6 < r.order < 2.6
    assert r.error / r.value < 1e-3
    assert abs(r.extrapolated - r.value) <= 1.01 * r.error


def test_white_noise_approaches_eyring_kramers_linearly_in_D() -> None:
    """ratio = formula/exact = 1 + c·D + …: measured at three D, the deviation per unit D is
    constant and the linear fit extrapolates to 1 at D → 0."""
    noises = np.array([0.2, 0.125, 0.0833])
    ratios = []
    for noise in noises:
        exact = mfpt_2d(sheared, noise, levels=2, **SHEARED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            formula = escape_time(
                "white",
                hess_min=HA_SHEARED,
                hess_saddle=HB_SHEARED,
                barrier=1,
                diffusion=float(noise),
            )
        assert exact.error / exact.value < 5e-3  # grid error ≪ asymptotic error
        ratios.append(float(formula.tau) / exact.extrapolated)
    ratios_arr = np.array(ratios)
    per_unit = (ratios_arr - 1) / noises
    assert np.ptp(per_unit) < 0.15 * abs(per_unit.mean())
    intercept = np.polyfit(noises, ratios_arr, 1)[1]
    assert abs(intercept - 1) < 0.01


# SGD: L = f(x) + ½ h(x) y², Styblinski–Tang in x, transverse stiffness varying with x
def st(x: np.ndarray) -> np.ndarray:
    return landscape_case("styblinski-tang-1d").value(x)


def st2(x: float) -> float:
    return 6 * x**2 - 16


def stiffness(x: np.ndarray) -> np.ndarray:
    return 2 + 0.5 * x


A, B, C = 2.7468027709908371, 0.15673125678034011, math.sqrt(8 / 3)
BARRIER = st(B) - st(A)
S = (st(C) - st(A)) / BARRIER


def coupled(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return st(x) + 0.5 * stiffness(x) * y**2


def switch_diffusion(kappa: float, h_a: np.ndarray, h_b: np.ndarray):
    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        near_b = (x < C)[..., None, None]
        return np.where(near_b, kappa * np.abs(h_b), kappa * h_a)

    return field


GRID = {
    "bounds": ((C - 3.0, C + 3.0), (-2.5, 2.5)),
    "shape": (120, 100),
    "start": (A, 0.0),
    "absorbing": lambda x, y: x < -1.0,
}


@pytest.mark.parametrize("interpretation", ["ito", "stratonovich", "anti-ito"])
def test_sgd_formula_on_a_coupled_landscape(interpretation: str) -> None:
    """Switch at x = c on a cell face; the transverse curvature differs at a and b and must
    cancel. ΔΦ = 10 and 14: the formula is within 2% and closer at the larger barrier."""
    h_a, h_b = np.diag([st2(A), stiffness(A)]), np.diag([st2(B), stiffness(B)])
    deviations = []
    for kappa in (0.126, 0.09):
        exact = mfpt_2d(
            coupled, switch_diffusion(kappa, h_a, h_b), interpretation=interpretation, **GRID
        )
        formula = escape_time(
            "sgd",
            hess_min=h_a,
            hess_saddle=h_b,
            barrier=BARRIER,
            lr=2 * kappa,
            batch_size=1,
            s=S,
            interpretation=interpretation,
        )
        assert exact.error / exact.value < 3e-3
        deviations.append(abs(float(formula.tau) / exact.extrapolated - 1))
    assert deviations[0] < 0.02 and deviations[1] < deviations[0]


def test_sgd_prefactor_ratio_between_interpretations() -> None:
    """τ_anti-Itô / τ_Itô = H_ae / |H_be| in the switch model, in any dimension (docs/conventions.md §2)."""
    h_a, h_b = np.diag([st2(A), stiffness(A)]), np.diag([st2(B), stiffness(B)])
    field = switch_diffusion(0.09, h_a, h_b)
    ito = mfpt_2d(coupled, field, interpretation="ito", **GRID)
    anti = mfpt_2d(coupled, field, interpretation="anti-ito", **GRID)
    assert anti.extrapolated / ito.extrapolated == pytest.approx(st2(A) / abs(st2(B)), rel=0.01)


def test_misaligned_escape_direction_is_an_approximation_that_worsens_with_the_barrier() -> None:
    """H_a rotated against e (coupling near a only): the formula with H_ae = eᵀH_a e is off,
    and more so at the larger barrier (what escape_time's warning reports)."""
    coupling, width = 8.0, 0.6

    def landscape(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return st(x) + 1.5 * y**2 + coupling * np.exp(-(((x - A) / width) ** 2)) * (x - A) * y

    h_a = np.array([[st2(A), coupling], [coupling, 3.0]])
    h_b = np.diag([st2(B), 3.0])
    deviations = []
    for kappa in (0.126, 0.09):
        exact = mfpt_2d(
            landscape, switch_diffusion(kappa, h_a, h_b), interpretation="anti-ito", **GRID
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            formula = escape_time(
                "sgd",
                hess_min=h_a,
                hess_saddle=h_b,
                barrier=BARRIER,
                lr=2 * kappa,
                batch_size=1,
                s=S,
                interpretation="anti-ito",
            )
        deviations.append(float(formula.tau) / exact.extrapolated - 1)
    assert 0.05 < deviations[0] < deviations[1]


def test_one_dimensional_limit_matches_mfpt_1d() -> None:
    """A separable landscape, constant D, absorbing surface on a cell face: the extrapolated 2-D
    MFPT equals the exact 1-D one, and the grid error estimate bounds the finest grid's error."""
    import sympy as sp

    x = sp.Symbol("x")
    exact = float(
        mfpt_1d(x**4 / 4 - x**2 / 2, sp.Rational(1, 16), start=-1, end="0.6", dps=20).value
    )
    r = mfpt_2d(
        lambda u, v: u**4 / 4 - u**2 / 2 + v**2,
        1 / 16,
        bounds=((-2.4, 0.9), (-1.5, 1.5)),
        shape=(66, 30),
        start=(-1.0, 0.0),
        absorbing=lambda u, v: u > 0.6,
        levels=3,
    )
    assert r.order is not None and 1.8 < r.order < 2.2
    assert r.extrapolated == pytest.approx(exact, rel=1e-5)
    assert abs(r.value - exact) <= 1.5 * r.error


def test_full_diffusion_tensor_on_a_rotated_problem() -> None:
    """A separable problem rotated by 45°: the constant anisotropic D has off-diagonal entries on
    the grid (the central-difference part of the scheme), the absorbing half-plane is a
    staircase. The MFPT depends on the u-motion only, so it must converge to mfpt_1d."""
    import sympy as sp

    x = sp.Symbol("x")
    exact = float(
        mfpt_1d(x**4 / 4 - x**2 / 2, sp.Rational(1, 16), start=-1, end="0.6", dps=20).value
    )
    r2 = math.sqrt(0.5)
    rotation = np.array([[r2, -r2], [r2, r2]])  # columns e_u, e_v
    tensor = rotation @ np.diag([1 / 16, 1 / 4]) @ rotation.T

    def loss(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        u, v = (xx + yy) * r2, (yy - xx) * r2
        return u**4 / 4 - u**2 / 2 + v**2

    r = mfpt_2d(
        loss,
        tensor,
        bounds=((-2.6, 2.0), (-2.6, 2.0)),
        shape=(80, 80),
        start=(-r2, -r2),
        absorbing=lambda xx, yy: (xx + yy) * r2 > 0.6,
        levels=3,
    )
    assert r.order is not None and 1.6 < r.order < 2.6
    assert r.extrapolated == pytest.approx(exact, rel=3e-3)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"bounds": ((1, 0), (0, 1))}, "bounds"),
        ({"shape": (2, 10)}, "shape"),
        ({"start": (5, 5)}, "start"),
        ({"absorbing": lambda x, y: np.zeros_like(x, dtype=bool)}, "absorbing"),
        ({"levels": 1}, "levels"),
        ({"interpretation": "x"}, "interpretation"),
        ({"diffusion": -1.0}, "diffusion"),
    ],
)
def test_bad_input(kwargs: dict, parameter: str) -> None:
    arguments = {"loss": sheared, "diffusion": 0.2, **SHEARED}
    arguments.update(kwargs)
    with pytest.raises(FlatMinimaError, match=parameter):
        mfpt_2d(**arguments)
