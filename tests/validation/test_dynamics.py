"""measure_rate: a rate against the exact MFPT, the burn-in, and input errors."""

from __future__ import annotations

import math

import pytest

from flatminima.errors import FlatMinimaError
from flatminima.validation import landscape, measure_rate
from flatminima.validation._predict import RateSetting, exact_rate

POINT = RateSetting("double-well", "sgd", lr=0.5, loss_scale=0.05, batch_size=2)


def test_low_barrier_rate_matches_exact_mfpt_only_with_burn_in() -> None:
    """At ΔΦ ≈ 2 the replicas start synchronised at the minimum; without the burn-in the
    renewal count is biased low (the reason the burn-in exists), with it the rate is right."""
    exact = exact_rate(POINT)
    assert exact is not None and exact.quasi_potential < 3
    land = landscape("double-well")
    kwargs = {
        "noise": "sgd",
        "lr": 0.5,
        "loss_scale": 0.05,
        "batch_size": 2,
        "replicas": 4096,
        "target_escapes": 1000,
        "max_steps": 100_000,
        "seed": 2,
    }
    with_burn = measure_rate(land, **kwargs)
    sigma = 1 / math.sqrt(with_burn.escapes)
    assert abs(math.log(with_burn.rate / exact.rate)) < 3 * sigma + 0.03
    without = measure_rate(land, **kwargs, burn_in=0)
    assert without.rate < exact.rate * (1 - 3 / math.sqrt(without.escapes))


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"noise": "pink"}, "noise"),
        ({"lr": 0}, "lr"),
        ({"loss_scale": -1}, "loss_scale"),
        ({"batch_size": 0}, "batch_size"),
        ({"noise": "white", "diffusion": None}, "diffusion"),
        ({"replicas": 0}, "replicas"),
        ({"device": "cuda:7"}, "device"),
    ],
)
def test_bad_input(kwargs: dict, parameter: str) -> None:
    arguments = {
        "noise": "sgd",
        "lr": 0.5,
        "loss_scale": 0.05,
        "batch_size": 2,
        "replicas": 8,
        "target_escapes": 1,
        "max_steps": 10,
    }
    arguments.update(kwargs)
    with pytest.raises(FlatMinimaError, match=parameter):
        measure_rate(landscape("double-well"), **arguments)
