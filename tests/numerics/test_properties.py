"""Property tests (hypothesis): symmetries, reductions, monotonicity, agreement of the log-space
and mpmath evaluations, and precision. Each property is a fact about the physics or the
arithmetic, checked on random instances."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatminima.errors import ValidityWarning
from flatminima.numerics import escape_time, log_escape_time, mfpt_1d

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
positive = st.floats(min_value=0.2, max_value=5.0, allow_nan=False, allow_infinity=False)
fraction = st.floats(min_value=0.05, max_value=0.95)


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        return function(*args, **kwargs)


def rotation(seed: int, n: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


@SETTINGS
@given(
    a=st.lists(positive, min_size=3, max_size=3),
    b=st.lists(positive, min_size=3, max_size=3),
    seed=st.integers(0, 10_000),
    noise=st.sampled_from(["white", "sgd"]),
)
def test_invariant_under_a_common_rotation(a, b, seed, noise) -> None:
    h_a, h_b = np.diag(a), np.diag([-b[0], *b[1:]])
    q = rotation(seed, 3)
    kwargs = (
        {"barrier": 2.0, "diffusion": 0.2}
        if noise == "white"
        else {"barrier": 2.0, "lr": 0.1, "batch_size": 8, "s": 0.4}
    )
    plain = quiet(escape_time, noise, hess_min=h_a, hess_saddle=h_b, dps=20, **kwargs)
    turned = quiet(
        escape_time, noise, hess_min=q @ h_a @ q.T, hess_saddle=q @ h_b @ q.T, dps=20, **kwargs
    )
    assert float(turned.log_tau) == pytest.approx(float(plain.log_tau), rel=1e-11)


@SETTINGS
@given(
    h_a=positive,
    h_b=positive,
    others=st.lists(positive, min_size=1, max_size=3),
    noise=st.sampled_from(["white", "sgd"]),
    interpretation=st.sampled_from(["ito", "stratonovich", "anti-ito"]),
)
def test_nd_reduces_to_1d_when_the_other_directions_are_identical(
    h_a, h_b, others, noise, interpretation
) -> None:
    """Directions with the same curvature at a and b change nothing (white, SGD). (Not for the
    loss-dependent noise: its transverse widths scale with L, so they do not cancel.)"""
    kwargs = (
        {"barrier": 1.5, "diffusion": 0.1}
        if noise == "white"
        else {"barrier": 1.5, "lr": 0.1, "batch_size": 4, "s": 0.3}
    )
    one = quiet(
        escape_time,
        noise,
        hess_min=h_a,
        hess_saddle=-h_b,
        interpretation=interpretation,
        dps=20,
        **kwargs,
    )
    many = quiet(
        escape_time,
        noise,
        hess_min=np.diag([h_a, *others]),
        hess_saddle=np.diag([-h_b, *others]),
        interpretation=interpretation,
        dps=20,
        **kwargs,
    )
    assert float(many.log_tau) == pytest.approx(float(one.log_tau), rel=1e-12)


@SETTINGS
@given(
    h_a=positive,
    h_b=positive,
    s=fraction,
    barrier=positive,
    lr=st.floats(0.01, 1.0),
    batch=st.floats(1, 256),
    factor=st.floats(1.01, 3.0),
)
def test_sgd_monotone_in_batch_size_learning_rate_and_barrier(
    h_a, h_b, s, barrier, lr, batch, factor
) -> None:
    def log_tau(**change):
        args = {"barrier": barrier, "lr": lr, "batch_size": batch, "s": s, **change}
        return log_escape_time("sgd", hess_min=h_a, hess_saddle=-h_b, **args)

    base = log_tau()
    assert log_tau(batch_size=batch * factor) > base  # larger batches: longer escapes
    assert log_tau(lr=lr * factor) < base  # larger steps: shorter
    assert log_tau(barrier=barrier * factor) > base  # higher barriers: longer


@SETTINGS
@given(
    h_a=positive,
    h_b=positive,
    barrier=positive,
    diffusion=st.floats(0.01, 2.0),
    factor=st.floats(1.01, 3.0),
)
def test_white_monotone_in_noise_and_barrier(h_a, h_b, barrier, diffusion, factor) -> None:
    def log_tau(**change):
        args = {"barrier": barrier, "diffusion": diffusion, **change}
        return log_escape_time("white", hess_min=h_a, hess_saddle=-h_b, **args)

    base = log_tau()
    assert log_tau(diffusion=diffusion * factor) < base
    assert log_tau(barrier=barrier * factor) > base


@SETTINGS
@given(
    h=st.lists(positive, min_size=2, max_size=2),
    b=st.lists(positive, min_size=2, max_size=2),
    s=fraction,
    lr=st.floats(0.001, 1.0),
    batch=st.floats(1, 4096),
    noise=st.sampled_from(["white", "sgd"]),
)
def test_log_space_agrees_with_mpmath(h, b, s, lr, batch, noise) -> None:
    kwargs = (
        {"barrier": 3.0, "diffusion": lr}
        if noise == "white"
        else {"barrier": 3.0, "lr": lr, "batch_size": batch, "s": s}
    )
    h_a, h_b = np.diag(h), np.diag([-b[0], b[1]])
    fast = log_escape_time(noise, hess_min=h_a, hess_saddle=h_b, **kwargs)
    exact = quiet(escape_time, noise, hess_min=h_a, hess_saddle=h_b, dps=30, **kwargs)
    assert fast == pytest.approx(float(exact.log_tau), rel=1e-12, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    h_a=positive,
    h_b=positive,
    barrier=positive,
    noise_level=st.floats(0.01, 0.5),
    dps=st.integers(15, 60),
)
def test_escape_time_at_dps_and_twice_dps_agree_to_dps_minus_5(
    h_a, h_b, barrier, noise_level, dps
) -> None:
    low = quiet(
        escape_time,
        "white",
        hess_min=h_a,
        hess_saddle=-h_b,
        barrier=barrier,
        diffusion=noise_level,
        dps=dps,
    )
    high = quiet(
        escape_time,
        "white",
        hess_min=h_a,
        hess_saddle=-h_b,
        barrier=barrier,
        diffusion=noise_level,
        dps=2 * dps,
    )
    with mpmath.workdps(2 * dps):
        assert abs(low.tau - high.tau) <= abs(high.tau) * mpmath.mpf(10) ** (-(dps - 5))


@settings(max_examples=4, deadline=None)
@given(noise_level=st.sampled_from(["0.05", "0.1", "0.02"]), dps=st.sampled_from([15, 20, 25]))
def test_mfpt_at_dps_and_twice_dps_agree_to_dps_minus_5(noise_level, dps) -> None:
    import sympy as sp

    x = sp.Symbol("x")
    low = mfpt_1d(x**4 / 4 - x**2 / 2, noise_level, start=-1, end=1, dps=dps)
    high = mfpt_1d(x**4 / 4 - x**2 / 2, noise_level, start=-1, end=1, dps=2 * dps)
    with mpmath.workdps(2 * dps):
        assert abs(low.value - high.value) <= abs(high.value) * mpmath.mpf(10) ** (-(dps - 5))


def test_verify_flag_reports_digits_and_catches_a_loss_of_precision() -> None:
    import sympy as sp

    from flatminima.errors import ConvergenceError

    result = quiet(
        escape_time,
        "white",
        hess_min=2,
        hess_saddle=-1,
        barrier=1,
        diffusion="0.05",
        dps=25,
        verify=True,
    )
    assert result.verified_digits is not None and result.verified_digits >= 20
    x = sp.Symbol("x")
    assert (
        mfpt_1d(x**4 / 4 - x**2 / 2, "0.1", start=-1, end=1, dps=20, verify=True).verified_digits
        >= 15
    )

    # a diffusion accurate only to the square root of the working precision (as a sloppy
    # inner algorithm would be): each run is self-consistent, the two precisions are not
    def sloppy(t):
        return mpmath.mpf("0.1") * (1 + mpmath.sqrt(mpmath.eps))

    with pytest.raises(ConvergenceError, match="agrees"):
        mfpt_1d(x**4 / 4 - x**2 / 2, sloppy, start=-1, end=1, dps=30, verify=True)
