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
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import sympy as sp

from flatminima.errors import ValidityWarning
from flatminima.numerics import escape_time, mfpt_1d

from ._design import exact_kappa
from ._landscapes import landscape

if TYPE_CHECKING:
    from ._rate_points import RatePoint

__all__ = ["RatePrediction", "RateSetting", "exact_rate", "formula_rate", "predictions"]


@dataclass(frozen=True)
class RateSetting:
    """What a rate prediction depends on: the landscape (name, options, loss scale λ), the
    noise (``"sgd"`` with ``batch_size``, or ``"white"`` with ``diffusion``), the step ``lr``
    and the interpretation. Hashable: the predictions are cached on it."""

    landscape: str
    noise: str
    lr: float
    loss_scale: float
    landscape_options: tuple[tuple[str, float | str], ...] = ()
    batch_size: int | None = None
    diffusion: float | None = None
    interpretation: str = "ito"

    @classmethod
    def of(cls, point: RatePoint) -> RateSetting:
        """The setting of a landscape rate point."""
        return cls(
            landscape=point.landscape,
            noise=point.noise,
            lr=float(point.lr),
            loss_scale=float(point.loss_scale),
            landscape_options=tuple(sorted((point.landscape_options or {}).items())),
            batch_size=point.batch_size,
            diffusion=point.diffusion,
        )


@dataclass(frozen=True)
class RatePrediction:
    """A predicted escape rate per iteration, its log and the quasi-potential ΔΦ behind it."""

    rate: float
    log_rate: float
    quasi_potential: float


def formula_rate(setting: RateSetting) -> RatePrediction:
    """Rate per iteration from the asymptotic formula (rates of several saddles add)."""
    return _formula(setting)


@lru_cache(maxsize=4096)
def _formula(setting: RateSetting) -> RatePrediction:
    noise, lr, lam = setting.noise, setting.lr, setting.loss_scale
    land = landscape(setting.landscape, **dict(setting.landscape_options))
    rate = 0.0
    phi = math.inf
    for hess_saddle, barrier, s in zip(
        land.hess_saddles, land.barriers, land.switch_fractions, strict=True
    ):
        sgd = noise == "sgd"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ValidityWarning)
            result = escape_time(
                noise,
                hess_min=lam * land.hess_min,
                hess_saddle=lam * hess_saddle,
                barrier=lam * barrier,
                lr=lr,
                batch_size=setting.batch_size if sgd else None,
                s=s if sgd else None,
                diffusion=None if sgd else setting.diffusion,
                interpretation=setting.interpretation,
                dps=20,
            )
        assert result.iterations is not None  # lr is always given here
        rate += 1 / float(result.iterations)
        phi = min(phi, float(result.quasi_potential))
    return RatePrediction(rate, math.log(rate), phi)


def exact_rate(setting: RateSetting) -> RatePrediction | None:
    """Rate per iteration from the exact MFPT of the continuous SDE (1-D landscapes; for the
    separable 2-D Styblinski–Tang, twice the 1-D rate, exact when escapes are rare). None where
    no exact reference is available."""
    return _exact(setting)


@lru_cache(maxsize=4096)
def _exact(setting: RateSetting) -> RatePrediction | None:
    name, noise, lr, lam = setting.landscape, setting.noise, setting.lr, setting.loss_scale
    land = landscape(name, **dict(setting.landscape_options))
    copies = 1
    if name == "styblinski-tang-2d":
        land, copies = landscape("styblinski-tang-1d"), 2
    if land.sympy_loss is None or land.dim != 1:
        return None
    lam_exact = sp.Rational(repr(lam))
    loss = lam_exact * land.sympy_loss()
    if noise == "sgd":
        assert land.sympy_noise is not None
        assert setting.batch_size is not None
        kappa = exact_kappa(sp.Rational(repr(lr)), int(setting.batch_size))
        noise_expr = kappa * lam_exact * land.sympy_noise()
    else:
        noise_expr = sp.Rational(repr(float(setting.diffusion)))  # type: ignore[arg-type]
    a, b = land.minimum[0], land.saddles[0][0]
    end = b + math.copysign(land.margin, b - a)
    m = mfpt_1d(
        loss,
        noise_expr,
        start=repr(a),
        end=repr(end),
        interpretation=setting.interpretation,
        dps=15,
    )
    rate = copies * lr / float(m.value)
    return RatePrediction(rate, math.log(rate), float(m.barrier))


def predictions(point: RatePoint) -> tuple[RatePrediction, RatePrediction | None]:
    """Both predictions for a landscape rate point: (formula, exact); exact may be None."""
    setting = RateSetting.of(point)
    return formula_rate(setting), exact_rate(setting)
