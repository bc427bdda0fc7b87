"""What the theory predicts for a measured point: the asymptotic formula (numerics layer's
``escape_time``, i.e. the theory layer's derivation) and the exact mean first-passage time of the
continuous SDE (``mfpt_1d``), both as escape rates per iteration.

Units: the SDE with D = (η/2)C runs in time t = η·iterations, so a continuous escape time T is
T/η iterations and the rate per iteration is η/T. For SGD, C = λH_switch/B (the landscapes'
minibatch noise, sampled with replacement); for white noise D is given.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import sympy as sp

from flatminima.errors import ValidityWarning
from flatminima.numerics import escape_time, mfpt_1d

from ._design import exact_kappa
from ._landscapes import landscape

__all__ = ["exact_rate", "formula_rate"]


def _key(point: dict[str, Any]) -> tuple[Any, ...]:
    options = tuple(sorted(point.get("landscape_options", {}).items()))
    return (
        point["landscape"],
        options,
        point["noise"],
        float(point["lr"]),
        float(point["loss_scale"]),
        point.get("batch_size"),
        point.get("diffusion"),
        point.get("interpretation", "ito"),
    )


def formula_rate(point: dict[str, Any]) -> dict[str, float]:
    """Rate per iteration from the asymptotic formula (rates of several saddles add)."""
    return dict(_formula(_key(point)))


@lru_cache(maxsize=4096)
def _formula(key: tuple[Any, ...]) -> tuple[tuple[str, float], ...]:
    name, options, noise, lr, lam, batch, diffusion, interpretation = key
    land = landscape(name, **dict(options))
    rate = 0.0
    phi = math.inf
    for hess_saddle, barrier, s in zip(
        land.hess_saddles, land.barriers, land.switch_fractions, strict=True
    ):
        kwargs: dict[str, Any] = {
            "barrier": lam * barrier,
            "lr": lr,
            "interpretation": interpretation,
            "dps": 20,
        }
        if noise == "sgd":
            kwargs.update(batch_size=batch, s=s)
        else:
            kwargs.update(diffusion=diffusion)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ValidityWarning)
            result = escape_time(
                noise, hess_min=lam * land.hess_min, hess_saddle=lam * hess_saddle, **kwargs
            )
        assert result.iterations is not None  # lr is always given here
        rate += 1 / float(result.iterations)
        phi = min(phi, float(result.quasi_potential))
    return (("rate", rate), ("log_rate", math.log(rate)), ("quasi_potential", phi))


def exact_rate(point: dict[str, Any]) -> dict[str, float] | None:
    """Rate per iteration from the exact MFPT of the continuous SDE (1-D landscapes; for the
    separable 2-D Styblinski–Tang, twice the 1-D rate, exact when escapes are rare). None where
    no exact reference is available."""
    result = _exact(_key(point))
    return None if result is None else dict(result)


@lru_cache(maxsize=4096)
def _exact(key: tuple[Any, ...]) -> tuple[tuple[str, float], ...] | None:
    name, options, noise, lr, lam, batch, diffusion, interpretation = key
    land = landscape(name, **dict(options))
    copies = 1
    if name == "styblinski-tang-2d":
        land, copies = landscape("styblinski-tang-1d"), 2
    if land.sympy_loss is None or land.dim != 1:
        return None
    lam_exact = sp.Rational(repr(lam))
    loss = lam_exact * land.sympy_loss()
    if noise == "sgd":
        assert land.sympy_noise is not None
        kappa = exact_kappa(sp.Rational(repr(lr)), int(batch))
        noise_expr = kappa * lam_exact * land.sympy_noise()
    else:
        noise_expr = sp.Rational(repr(float(diffusion)))
    a, b = land.minimum[0], land.saddles[0][0]
    end = b + math.copysign(land.margin, b - a)
    m = mfpt_1d(
        loss, noise_expr, start=repr(a), end=repr(end), interpretation=interpretation, dps=15
    )
    rate = copies * lr / float(m.value)
    return (("rate", rate), ("log_rate", math.log(rate)), ("quasi_potential", float(m.barrier)))


def predictions(point: dict[str, Any]) -> dict[str, Any]:
    """Both predictions for a point (exact may be None)."""
    return {"formula": formula_rate(point), "exact": exact_rate(point)}
