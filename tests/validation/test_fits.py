"""Poisson fits recover known laws from simulated counts, and the decision between the
exponential and the power law goes the right way on data made from each."""

from __future__ import annotations

import numpy as np

from flatminima.validation import compare_laws, poisson_fit


def test_poisson_fit_recovers_coefficients_with_honest_errors() -> None:
    rng = np.random.default_rng(0)
    x = np.array([1.0, 1.5, 2.0, 3.0, 4.5])
    exposure = np.full(5, 1e7)
    truth = (-3.0, 6.0)
    misses = 0
    for _ in range(200):
        rate = np.exp(truth[0] - truth[1] / x) * x
        counts = rng.poisson(rate * exposure / 1e3)
        fit = poisson_fit(
            counts,
            exposure / 1e3,
            np.column_stack([np.ones(5), -1 / x]),
            ("a", "E"),
            offset=np.log(x),
        )
        e, se = fit.coefficients[1], fit.standard_errors[1]
        misses += abs(e - truth[1]) > 1.96 * se
    assert 3 <= misses <= 20  # ~5% of 200 outside the 95% interval: the errors are right


def test_decision_follows_the_data() -> None:
    rng = np.random.default_rng(1)
    k = np.array([1.0, 1.5, 2.0, 3.0])
    exposure = np.full(4, 1e6)
    exponential = rng.poisson(k * np.exp(-6 / k) * 0.1 * exposure)
    power = rng.poisson(k * 1e-4 * exposure)
    assert compare_laws(k, exponential, exposure, variable="k").preferred == "exponential"
    result = compare_laws(k, power, exposure, variable="k")
    assert result.preferred == "polynomial"
    p, se = result.power.coefficient("p")
    assert abs(p - 1) < 3 * se
