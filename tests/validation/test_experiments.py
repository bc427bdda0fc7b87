"""The reduced (quick) experiments: each asserts the predicted kind of scaling with fixed seeds,
and the measured numbers are compared with the exact references where the landscape is known.

Statistics: every rate point has 150–300 escapes (±6–8% per point); the fits are Poisson
maximum likelihood; "exponential" needs the exponent > 3 standard errors and the power law
rejected; "polynomial" needs the exponent within 3 standard errors of 0.
"""

from __future__ import annotations

import math

import pytest


def case(analysis: dict, **where: str) -> dict:
    found = [c for c in analysis["cases"] if all(c.get(k) == v for k, v in where.items())]
    assert len(found) == 1, (
        where,
        [
            {k: c.get(k) for k in ("landscape", "model", "dataset", "noise")}
            for c in analysis["cases"]
        ],
    )
    return found[0]


def test_sharpness_sgd_exponential_white_polynomial(quick_run) -> None:
    analysis = quick_run[1]["sharpness"]
    sgd = case(analysis, landscape="double-well", noise="sgd")
    assert sgd["preferred"] == "exponential"
    e, e_se = (
        sgd["fits"]["exponential"]["coefficients"][1],
        sgd["fits"]["exponential"]["standard_errors"][1],
    )
    # the measured exponent against the exact continuous MFPT's (the discrete chain and the
    # statistics are the only differences left): within 3 standard errors + 3%
    assert abs(e - sgd["theory"]["exact"]["E"]) < 3 * e_se + 0.03 * sgd["theory"]["exact"]["E"]
    white = case(analysis, landscape="double-well", noise="white")
    assert white["preferred"] == "polynomial"
    p, p_se = (
        white["fits"]["power"]["coefficients"][1],
        white["fits"]["power"]["standard_errors"][1],
    )
    assert abs(p - 1) < 3 * p_se
    # every measured point agrees with the exact MFPT rate within its statistics (3σ) + 5%
    for row in sgd["points"] + white["points"]:
        sigma = 1 / math.sqrt(row["escapes"])
        assert abs(math.log(row["measured_over_exact"])) < 3 * sigma + 0.05, row


def test_batch_size_and_learning_rate_slopes(quick_run) -> None:
    for name in ("batch-size", "learning-rate"):
        c = case(quick_run[1][name], landscape="double-well")
        assert c["preferred"] == "exponential" and c["held"]
        assert abs(c["slope"] - c["slope_exact"]) < 3 * c["slope_se"] + 0.03 * c["slope_exact"], c


def test_selection_sgd_prefers_flat_exponentially_white_does_not(quick_run) -> None:
    analysis = quick_run[1]["selection"]
    landscape_cases = {"cases": [c for c in analysis["cases"] if "model" not in c]}
    sgd = case(landscape_cases, noise="sgd")
    white = case(landscape_cases, noise="white")
    assert sgd["slope"] > 3 * sgd["slope_se"]
    assert abs(sgd["slope"] - sgd["slope_exact"]) < 3 * sgd["slope_se"] + 0.1 * sgd["slope_exact"]
    assert abs(white["slope"]) < 3 * white["slope_se"]
    assert sgd["fraction_flat"][-1] > white["fraction_flat"][-1]


def test_selection_between_two_minima_of_a_network(quick_run) -> None:
    network = case(quick_run[1]["selection"], model="mlp(3)/xor", noise="sgd")
    assert network["minima"]["sharp"]["lambda_max"] > network["minima"]["flat"]["lambda_max"]
    assert network["slope"] > 3 * network["slope_se"]  # the flat minimum's odds grow with B/η


def test_network_sharpness(quick_run) -> None:
    analysis = quick_run[1]["sharpness"]
    sgd = case(analysis, model="mlp(4)/two-blobs", noise="sgd")
    white = case(analysis, model="mlp(4)/two-blobs", noise="white")
    assert sgd["preferred"] == "exponential" and sgd["held"]
    assert white["preferred"] == "polynomial" and white["held"]  # and its power within 3σ of 1


def test_covariance_near_minimum_and_at_init(quick_run) -> None:
    analysis = quick_run[1]["covariance"]
    for model in ("logistic", "mlp"):
        minimum = case(analysis, model=model, dataset="two-blobs", noise="minimum")
        assert minimum["holds"], minimum["preferred"]
        assert abs(minimum["slope"] - 1) < 0.25 and 0.5 < minimum["scale"] < 2
    mlp_init = case(analysis, model="mlp", dataset="two-blobs", noise="init")
    assert not mlp_init["holds"] and mlp_init["negative_spectrum_fraction"] > 0.01  # H indefinite
    # the measurement itself: minibatch covariances equal sampling theory Σ(N−B)/((N−1)B)
    for c in analysis["cases"]:
        for row in c["minibatches"]:
            assert row["median_ratio_to_sampling_theory"] == pytest.approx(1, abs=0.1), (
                c["model"],
                c["dataset"],
                row,
            )


def test_output_files(quick_run) -> None:
    base, analyses = quick_run
    for name in analyses:
        folder = base / "experiments" / name
        for file in ("results.json", "results.csv", "points.jsonl"):
            assert (folder / file).stat().st_size > 0
        assert analyses[name]["figures"] and all(
            (folder / f).exists() for f in analyses[name]["figures"]
        )
