"""escape_time and log_escape_time against hand-written formulas with independent linear algebra
(mpmath.det, rotations), overflow, precision, and every input error."""

from __future__ import annotations

import re
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

from flatminima.errors import (
    FlatMinimaError,
    HessianError,
    ParameterError,
    ShapeError,
    ValidityWarning,
)
from flatminima.numerics import escape_time, log_escape_time, mfpt_1d

X = sp.Symbol("x")

HA = [[3.0, 0.8], [0.8, 2.0]]  # not diagonal, not aligned with HB's eigenvectors
HB = [[-1.0, 0.5], [0.5, 4.0]]


def rotation(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def test_white_noise_is_langer_for_general_hessians() -> None:
    """τ = 2π/|λ₋(H_b)| · sqrt(|det H_b| / det H_a) · e^{ΔL/D}, with mpmath's det and eig."""
    r = escape_time("white", hess_min=HA, hess_saddle=HB, barrier="1.5", diffusion="0.2", dps=40)
    with mpmath.workdps(40):
        a, b = mpmath.matrix(HA), mpmath.matrix(HB)
        lam = min(mpmath.eig(b)[0], key=lambda v: mpmath.re(v))
        ref = (
            2
            * mpmath.pi
            / abs(lam)
            * mpmath.sqrt(abs(mpmath.det(b)) / mpmath.det(a))
            * mpmath.exp(mpmath.mpf("1.5") / mpmath.mpf("0.2"))
        )
        assert mpmath.almosteq(r.tau, ref, rel_eps=mpmath.mpf(10) ** -35)
        assert mpmath.almosteq(r.rate * r.tau, 1, rel_eps=mpmath.mpf(10) ** -35)


@pytest.mark.parametrize("noise", ["white", "sgd"])
def test_invariant_under_a_common_rotation(noise: str) -> None:
    kwargs = (
        {"barrier": 2, "diffusion": "0.25"}
        if noise == "white"
        else {"barrier": 1, "lr": "0.1", "batch_size": 16, "s": "0.4"}
    )
    diag_a, diag_b = np.diag([2.0, 5.0]), np.diag([-1.0, 3.0])
    base = escape_time(noise, hess_min=diag_a, hess_saddle=diag_b, dps=30, **kwargs)
    for theta in (0.3, 1.1, 2.5):
        q = rotation(theta)
        turned = escape_time(
            noise, hess_min=q @ diag_a @ q.T, hess_saddle=q @ diag_b @ q.T, dps=30, **kwargs
        )
        assert mpmath.almosteq(
            turned.log_tau, base.log_tau, rel_eps=1e-13
        )  # float64 rotation matrices


def test_sgd_is_the_paper_formula_with_iterations() -> None:
    r = escape_time(
        "sgd",
        hess_min=[[2, 0], [0, 5]],
        hess_saddle=[[-1, 0], [0, 3]],
        barrier="0.5",
        lr="0.1",
        batch_size=128,
        s="0.5",
        interpretation="anti-ito",
        dps=30,
    )
    with mpmath.workdps(30):
        eta = mpmath.mpf("0.1")
        log_ref = mpmath.log(2 * mpmath.pi / 1) + 2 * 128 * mpmath.mpf("0.5") / eta * (
            mpmath.mpf("0.5") / 2 + mpmath.mpf("0.5") / 1
        )
        assert mpmath.almosteq(r.log_tau, log_ref, rel_eps=mpmath.mpf(10) ** -25)
        assert mpmath.almosteq(r.iterations, r.tau / eta, rel_eps=mpmath.mpf(10) ** -25)
        assert mpmath.almosteq(
            r.log_iterations, log_ref - mpmath.log(eta), rel_eps=mpmath.mpf(10) ** -25
        )
    assert r.log_tau > 709  # e^{log τ} overflows float64; the mpf does not


def test_misaligned_escape_direction_uses_the_rayleigh_quotient_and_warns() -> None:
    with pytest.warns(ValidityWarning, match="not an eigenvector"):
        r = escape_time(
            "sgd", hess_min=HA, hess_saddle=HB, barrier=1, lr="0.1", batch_size=8, s="0.4", dps=30
        )
    with mpmath.workdps(30):
        b = mpmath.matrix(HB)
        values, vectors = mpmath.eigsy(b)
        k = min(range(2), key=lambda i: values[i])
        e = vectors[:, k]
        h_ae = (e.T * mpmath.matrix(HA) * e)[0]
        assert mpmath.almosteq(r.eigen.curvature_min_along_e, h_ae, rel_eps=mpmath.mpf(10) ** -25)
        assert r.eigen.misalignment > mpmath.mpf("1e-3")
        log_ref = mpmath.log(2 * mpmath.pi / h_ae) + 2 * 8 / mpmath.mpf("0.1") * (
            mpmath.mpf("0.4") / h_ae + mpmath.mpf("0.6") / -values[k]
        )
        assert mpmath.almosteq(r.log_tau, log_ref, rel_eps=mpmath.mpf(10) ** -25)


def test_dps_and_double_dps_agree() -> None:
    kwargs = {
        "hess_min": [[2, "0.3"], ["0.3", 5]],
        "hess_saddle": [[-1, "0.1"], ["0.1", 3]],
        "barrier": "0.7",
        "lr": "0.05",
        "batch_size": 32,
        "s": "0.45",
    }
    with pytest.warns(ValidityWarning, match="not an eigenvector"):
        low = escape_time("sgd", dps=25, **kwargs)
    with pytest.warns(ValidityWarning, match="not an eigenvector"):
        high = escape_time("sgd", dps=50, **kwargs)
    with mpmath.workdps(50):
        assert mpmath.almosteq(low.tau, high.tau, rel_eps=mpmath.mpf(10) ** -20)


def test_loss_dependent_power_law() -> None:
    r = escape_time(
        "loss-dependent",
        hess_min=2,
        hess_saddle=-1,
        lr="0.1",
        batch_size=4,
        loss_min="0.1",
        loss_saddle="0.4",
        h_star=2,
        dps=30,
    )
    with mpmath.workdps(30):
        power = 4 / (mpmath.mpf("0.1") * 2) + mpmath.mpf(1) / 2  # Itô: B/(ηh*) + 1/2
        ref = 2 * mpmath.pi / mpmath.sqrt(2) * mpmath.mpf(4) ** power
        assert mpmath.almosteq(r.tau, ref, rel_eps=mpmath.mpf(10) ** -25)


def test_validity_warning_says_how_far_outside() -> None:
    with pytest.warns(ValidityWarning, match=r"ΔΦ = 2\.0 < 5"):
        escape_time("white", hess_min=2, hess_saddle=-1, barrier=1, diffusion="0.5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        escape_time(
            "white", hess_min=2, hess_saddle=-1, barrier=1, diffusion="0.05"
        )  # ΔΦ = 20: silent


@pytest.mark.parametrize("diffusion", ["0.125", "0.1", "0.075", "0.0625"])
def test_validity_warning_quotes_the_error_mfpt_1d_measures(diffusion: str) -> None:
    """The band the warning quotes contains the error measured here, independently, against the
    exact MFPT on the double well x⁴/4 − x²/2 (H_a = 2, |H_b| = 1, ΔL = 1/4; ΔΦ = 2, 2.5, 3.3, 4)."""
    with pytest.warns(ValidityWarning) as record:
        r = escape_time("white", hess_min=2, hess_saddle=-1, barrier="0.25", diffusion=diffusion)
    message = str(record[0].message)
    low, high = (float(v) / 100 for v in re.search(r"was (\d+)% to (\d+)%", message).groups())
    exact = mfpt_1d(X**4 / 4 - X**2 / 2, sp.Float(diffusion, 30), start=-1, end=1, dps=20)
    error = abs(float(r.tau / exact.value) - 1)
    assert low <= error <= high, (message, error)


def test_log_space_matches_mpmath_on_arrays_and_batched_hessians() -> None:
    lrs = np.array([0.01, 0.05, 0.2])
    batched_a = np.stack([np.array(HA) * k for k in (1.0, 2.0, 4.0)])
    batched_b = np.stack([np.array(HB) * k for k in (1.0, 2.0, 4.0)])
    out = log_escape_time(
        "white", hess_min=batched_a, hess_saddle=batched_b, barrier=30.0, diffusion=lrs / 10
    )
    for i, k in enumerate((1.0, 2.0, 4.0)):
        exact = escape_time(
            "white",
            hess_min=np.array(HA) * k,
            hess_saddle=np.array(HB) * k,
            barrier=30,
            diffusion=lrs[i] / 10,
        )
        assert out[i] == pytest.approx(float(exact.log_tau), rel=1e-12)
    assert out.max() > 709  # the log of an overflowing τ, exact


def test_log_space_torch_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    kwargs = {"barrier": 1.0, "lr": 0.1, "s": 0.4, "interpretation": "stratonovich"}
    n = log_escape_time(
        "sgd",
        hess_min=np.array(HA),
        hess_saddle=np.array(HB),
        batch_size=np.array([8.0, 64.0]),
        **kwargs,
    )
    t = log_escape_time(
        "sgd",
        hess_min=torch.tensor(HA, dtype=torch.float64),
        hess_saddle=torch.tensor(HB, dtype=torch.float64),
        batch_size=torch.tensor([8.0, 64.0], dtype=torch.float64),
        **kwargs,
    )
    assert isinstance(t, torch.Tensor)
    assert np.allclose(t.numpy(), n, rtol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "error", "parameter"),
    [
        ({"hess_min": [[-1, 0], [0, 2]]}, HessianError, "hess_min"),
        ({"hess_min": [[1, 0], [0, 0]]}, HessianError, "hess_min"),
        ({"hess_saddle": [[1, 0], [0, 2]]}, HessianError, "hess_saddle"),
        ({"hess_saddle": [[-1, 0], [0, -2]]}, HessianError, "hess_saddle"),
        ({"hess_saddle": [[-1, 0], [0, 0]]}, HessianError, "hess_saddle"),
        ({"hess_min": [[2, 1], [0, 2]]}, HessianError, "hess_min"),  # not symmetric
        ({"hess_min": [[2, 0, 0], [0, 2, 0], [0, 0, 2]]}, ShapeError, "hess_saddle"),
        ({"hess_min": [[2, 0], [0]]}, ShapeError, "hess_min"),
        ({"hess_min": [1, 2]}, ShapeError, "hess_min"),
        ({"hess_min": [[float("nan"), 0], [0, 2]]}, FlatMinimaError, "hess_min"),
        ({"hess_min": "matrix"}, FlatMinimaError, "hess_min"),
        ({"barrier": 0}, FlatMinimaError, "barrier"),
        ({"barrier": -1}, FlatMinimaError, "barrier"),
        ({"barrier": float("inf")}, FlatMinimaError, "barrier"),
        ({"lr": 0}, FlatMinimaError, "lr"),
        ({"batch_size": -4}, FlatMinimaError, "batch_size"),
        ({"s": 1}, FlatMinimaError, "s"),
        ({"s": 0}, FlatMinimaError, "s"),
        ({"s": None}, FlatMinimaError, "s"),
        ({"diffusion": 0.1}, FlatMinimaError, "diffusion"),  # not an SGD parameter
        ({"dps": 5}, FlatMinimaError, "dps"),
        ({"dps": 30.5}, FlatMinimaError, "dps"),
        ({"interpretation": "alpha"}, FlatMinimaError, "interpretation"),
        ({"interpretation": -0.5}, FlatMinimaError, "interpretation"),
        ({"lr": True}, FlatMinimaError, "lr"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, error: type, parameter: str) -> None:
    arguments = {
        "hess_min": [[2, 0], [0, 5]],
        "hess_saddle": [[-1, 0], [0, 3]],
        "barrier": 1,
        "lr": "0.1",
        "batch_size": 8,
        "s": "0.5",
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=parameter):
        escape_time("sgd", **arguments)


def test_bad_noise_and_missing_white_parameters() -> None:
    with pytest.raises(FlatMinimaError, match="noise"):
        escape_time("pink", hess_min=2, hess_saddle=-1, barrier=1)
    with pytest.raises(FlatMinimaError, match="diffusion"):
        escape_time("white", hess_min=2, hess_saddle=-1, barrier=1)
    with pytest.raises(FlatMinimaError, match="loss_saddle"):
        escape_time(
            "loss-dependent",
            hess_min=2,
            hess_saddle=-1,
            lr=1,
            batch_size=1,
            h_star=1,
            loss_min=1,
            loss_saddle="0.5",
        )
    with pytest.raises(FlatMinimaError, match="lr"):
        log_escape_time(
            "sgd",
            hess_min=2.0,
            hess_saddle=-1.0,
            barrier=1.0,
            lr=np.array([0.1, -0.1]),
            batch_size=8,
            s=0.5,
        )


def test_repeated_parameters_are_read_at_each_calls_precision() -> None:
    """The per-call memo of parsed parameters is keyed by precision: "0.1" at 20 digits must
    not be reused at 80 (the 1-D SGD log τ against the formula by hand at 80 digits)."""
    kwargs = {"barrier": "0.5", "lr": "0.1", "batch_size": 64, "s": "0.3"}
    escape_time("sgd", hess_min=[[2.0]], hess_saddle=[[-1.0]], dps=20, **kwargs)
    r = escape_time("sgd", hess_min=[[2.0]], hess_saddle=[[-1.0]], dps=80, **kwargs)
    with mpmath.workdps(100):
        eta, s = mpmath.mpf("0.1"), mpmath.mpf("0.3")
        phi = 2 * 64 * mpmath.mpf("0.5") / eta * (s / 2 + (1 - s) / 1)
        log_tau = mpmath.log(2 * mpmath.pi / 2) + phi  # Itô: 2π/H_a
        assert abs(r.log_tau - log_tau) < mpmath.mpf(10) ** -75 * log_tau
        assert abs(r.log_iterations - (log_tau - mpmath.log(eta))) < mpmath.mpf(10) ** -75 * log_tau
        assert abs(r.quasi_potential - phi) < mpmath.mpf(10) ** -75 * phi


def test_two_by_two_float_misalignment_matches_the_exact_one() -> None:
    """Float 2×2 input reports the misalignment from float64 (as the n-D float path does);
    exact input (mpf) computes it at the working precision: they agree to ~1e-14."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        kwargs = {"barrier": "0.5", "lr": "0.1", "batch_size": 64, "s": "0.3", "dps": 30}
        floats = escape_time("sgd", hess_min=HA, hess_saddle=HB, **kwargs)
        exact = escape_time(
            "sgd",
            hess_min=[[mpmath.mpf(x) for x in row] for row in HA],
            hess_saddle=[[mpmath.mpf(x) for x in row] for row in HB],
            **kwargs,
        )
    assert exact.eigen.misalignment > 0.01  # not aligned: a real comparison
    assert abs(floats.eigen.misalignment - exact.eigen.misalignment) < 1e-14
    assert mpmath.almosteq(floats.log_tau, exact.log_tau, rel_eps=mpmath.mpf(10) ** -28)


def test_array_path_reads_its_inputs_without_changing_them_and_names_a_bad_entry() -> None:
    """log_escape_time checks large arrays by reductions and does not copy float64 inputs:
    the caller's arrays stay as they were, and a NaN deep inside is still named by index."""
    rng = np.random.default_rng(3)
    lr = rng.uniform(0.01, 0.2, 10_000)
    batch = rng.uniform(8, 256, 10_000)
    kept_lr, kept_batch = lr.copy(), batch.copy()
    hessians = {"hess_min": np.diag([2.5, 4.0]), "hess_saddle": np.diag([-1.25, 3.0])}
    out = log_escape_time("sgd", lr=lr, batch_size=batch, barrier=0.75, s=0.4, **hessians)
    assert np.array_equal(lr, kept_lr) and np.array_equal(batch, kept_batch)
    # one entry against the scalar (mpmath) path
    one = escape_time("sgd", lr=float(lr[7]), batch_size=float(batch[7]), barrier=0.75, s=0.4,
                      dps=20, **hessians)  # fmt: skip
    assert out[7] == pytest.approx(float(one.log_tau), rel=1e-12)
    lr[6543] = np.nan
    with pytest.raises(ParameterError, match=r"lr.*6543"):
        log_escape_time("sgd", lr=lr, batch_size=batch, barrier=0.75, s=0.4, **hessians)
    batch[17] = -1.0
    lr[6543] = 0.1
    with pytest.raises(ParameterError, match=r"batch_size.*17"):
        log_escape_time("sgd", lr=lr, batch_size=batch, barrier=0.75, s=0.4, **hessians)
