"""Test landscapes with a real minibatch structure, in torch.

Each landscape is a loss L(θ) whose critical points, Hessians, barrier and switch point are known,
and a synthetic data set that makes minibatch SGD on it real: the per-sample losses are

    ℓ_i(θ) = λ L(θ) + Σ_j ε_ij ψ_j(θ_j),   ψ_j' = √(λ H_j(θ_j)),

with ε a fixed table of N samples, centred and whitened (mean 0, covariance I over the data set).
The full-batch loss is λL; the per-sample gradient covariance is λ·diag(H_j(θ_j)), where H_j is
the *harmonic switch* curvature: |L''| at the minimum on the minimum's side of the switch point
c_j, |L''| at the saddle on the saddle's side (docs/conventions.md §1, trap 2). So a minibatch of B samples
drawn with replacement has gradient-noise covariance C = λH_switch/B exactly: the SGD noise model
of the theory layer, produced by sampling data, not by adding Gaussian noise.

λ (``loss_scale``) sets the time-discretization parameter ηλH without changing the SGD
exponent, which depends on B/η only (docs/conventions.md §6: "scale the loss down to use ordinary η and B").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
import torch

from flatminima.numerics._cases import landscape_case
from flatminima.theory._conventions import registered_name
from flatminima.theory._formulas import compiled_formula

__all__ = ["LANDSCAPES", "Landscape", "landscape", "minibatch_noise_table"]


_X = sp.Symbol("x", real=True)


def _exact(value: float) -> sp.Expr:
    """A float as the exact rational of its decimal representation."""
    return sp.Rational(repr(float(value)))


def _switch_expr(c: Any, saddle_side: int, h_min: sp.Expr, h_saddle: sp.Expr) -> sp.Expr:
    condition = c > _X if saddle_side < 0 else c < _X
    return sp.Piecewise((h_saddle, condition), (h_min, True))


# the Styblinski–Tang slice and the double well: the case registry's (flatminima.numerics)
_ST = landscape_case("styblinski-tang-1d")
_DW = landscape_case("double-well")
_st, _st_grad, _st_hess = _ST.value, _ST.gradient, _ST.hessian
ST_A = _ST.minima[0][0]  # local minimum ≈ 2.7468
ST_B = _ST.saddles[0][0]  # saddle (local maximum) ≈ 0.1567
ST_C = float(_ST.switch[0])  # inflection point between them: the switch


@dataclass(frozen=True)
class Landscape:
    """A loss with one minimum a and one or more index-1 saddles, in torch.

    Attributes
    ----------
    minimum, saddles
        Coordinates of a and of the escape saddles.
    hess_min, hess_saddles
        Hessians of L (numpy) at a and at each saddle.
    barriers, switch_fractions
        ΔL and s per saddle (s: fraction of the barrier climbed on a's side of the switch).
    switch
        Per coordinate, the point where the noise curvature switches from the minimum's to the
        saddle's value.
    margin
        Escape: a path counts as escaped once it is ``margin`` beyond a saddle along the escape
        direction.
    noise_factor_fn, escape_normals
        A user's landscape (build it with `custom_landscape`, which fills every field): the
        per-sample noise factor S(x) and the escape surfaces' normals. The harmonic-switch
        fields (``switch_fractions``, ``switch``, ``noise_min``, ``noise_saddle``,
        ``saddle_side``) are then empty: they describe the shipped landscapes' noise.
    """

    name: str
    dim: int
    loss_fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    grad_fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    minimum: tuple[float, ...]
    saddles: tuple[tuple[float, ...], ...]
    hess_min: np.ndarray = field(repr=False)
    hess_saddles: tuple[np.ndarray, ...] = field(repr=False)
    barriers: tuple[float, ...]
    margin: float
    # the harmonic-switch noise model of the shipped landscapes (empty for a user's landscape)
    switch_fractions: tuple[float, ...] = ()
    switch: tuple[float, ...] = ()
    noise_min: tuple[
        float, ...
    ] = ()  # per coordinate: |L''| at a (the noise curvature on a's side)
    noise_saddle: tuple[float, ...] = ()  # per coordinate: |L''| at the saddle (its side)
    saddle_side: tuple[
        int, ...
    ] = ()  # per coordinate: −1 if the saddle is at smaller values than a
    description: str = ""
    noise_fn: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    other_minimum: tuple[float, ...] | None = None  # landscapes with two valleys
    sympy_loss: Callable[[], Any] | None = field(default=None, repr=False)  # 1-D: L(x) in SymPy
    sympy_noise: Callable[[], Any] | None = field(default=None, repr=False)  # 1-D: H_switch(x)
    # a user's landscape (`custom_landscape`): the per-sample noise factor S(x), (R, dim) for a
    # diagonal S or (R, dim, dim), used instead of the harmonic switch; and per saddle the unit
    # normal of the escape surface (the unstable direction, pointing away from the minimum)
    noise_factor_fn: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    escape_normals: tuple[tuple[float, ...], ...] | None = None

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.grad_fn(x)

    def noise_curvature(self, x: torch.Tensor) -> torch.Tensor:
        """The harmonic-switch curvature per coordinate, shape (R, dim)."""
        if self.noise_fn is not None:
            return self.noise_fn(x)
        if not self.switch:
            from flatminima.errors import ParameterError

            raise ParameterError(
                "landscape",
                "a landscape with a minibatch noise model for SGD (custom_landscape(..., noise=))",
                self.name,
            )
        out = torch.empty_like(x)
        for j in range(self.dim):
            on_saddle_side = (x[:, j] - self.switch[j]) * self.saddle_side[j] > 0
            out[:, j] = torch.where(
                on_saddle_side,
                torch.as_tensor(self.noise_saddle[j], dtype=x.dtype, device=x.device),
                torch.as_tensor(self.noise_min[j], dtype=x.dtype, device=x.device),
            )
        return out

    def escaped(self, x: torch.Tensor) -> torch.Tensor:
        """True where a path is ``margin`` beyond any saddle along its escape direction (a
        coordinate axis for the shipped landscapes, the saddle's unstable direction for a
        user's landscape)."""
        hit = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        if self.escape_normals is not None:
            for saddle, normal in zip(self.saddles, self.escape_normals, strict=True):
                s = torch.tensor(saddle, dtype=x.dtype, device=x.device)
                e = torch.tensor(normal, dtype=x.dtype, device=x.device)
                hit |= (x - s) @ e > self.margin
            return hit
        for saddle in self.saddles:
            for j in range(self.dim):
                if saddle[j] != self.minimum[j]:
                    side = math.copysign(1.0, saddle[j] - self.minimum[j])
                    hit |= (x[:, j] - saddle[j]) * side > self.margin
        return hit

    def start(
        self, replicas: int, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        return torch.tensor(self.minimum, dtype=dtype, device=device).repeat(replicas, 1)


def _st1d() -> Landscape:
    h_a, h_b = _st_hess(ST_A), abs(_st_hess(ST_B))
    barrier = _st(ST_B) - _st(ST_A)
    return Landscape(
        name="styblinski-tang-1d",
        dim=1,
        loss_fn=lambda x: _st(x[:, 0]),
        grad_fn=lambda x: _st_grad(x),
        minimum=(ST_A,),
        saddles=((ST_B,),),
        hess_min=np.array([[h_a]]),
        hess_saddles=(np.array([[-h_b]]),),
        barriers=(barrier,),
        switch_fractions=((_st(ST_C) - _st(ST_A)) / barrier,),
        switch=(ST_C,),
        noise_min=(h_a,),
        noise_saddle=(h_b,),
        saddle_side=(-1,),
        margin=0.5,
        description=_ST.description,
        sympy_loss=lambda: _ST.loss.subs(_ST.variables[0], _X),
        sympy_noise=lambda: _switch_expr(ST_C, -1, _exact(h_a), _exact(h_b)),
    )


def _st2d() -> Landscape:
    h_a, h_b = _st_hess(ST_A), abs(_st_hess(ST_B))
    barrier = _st(ST_B) - _st(ST_A)
    s = (_st(ST_C) - _st(ST_A)) / barrier
    return Landscape(
        name="styblinski-tang-2d",
        dim=2,
        loss_fn=lambda x: _st(x[:, 0]) + _st(x[:, 1]),
        grad_fn=lambda x: _st_grad(x),
        minimum=(ST_A, ST_A),
        saddles=((ST_B, ST_A), (ST_A, ST_B)),
        hess_min=np.diag([h_a, h_a]),
        hess_saddles=(np.diag([-h_b, h_a]), np.diag([h_a, -h_b])),
        barriers=(barrier, barrier),
        switch_fractions=(s, s),
        switch=(ST_C, ST_C),
        noise_min=(h_a, h_a),
        noise_saddle=(h_b, h_b),
        saddle_side=(-1, -1),
        margin=0.5,
        description="f(x) + f(y), Styblinski–Tang; minimum (a, a), two saddles (b, a) and (a, b): the rates add",
    )


def _double_well() -> Landscape:
    exact = _DW.exact
    h_a, h_b = float(exact["H_a"]), float(exact["H_b"])
    return Landscape(
        name="double-well",
        dim=1,
        loss_fn=lambda x: _DW.value(x[:, 0]),
        grad_fn=lambda x: _DW.gradient(x),
        minimum=_DW.minima[0],
        saddles=_DW.saddles,
        hess_min=np.array([[h_a]]),
        hess_saddles=(np.array([[-h_b]]),),
        barriers=(float(exact["Delta_L"]),),
        switch_fractions=(float(exact["s"]),),  # (L(c) − L(a))/ΔL = 4/9, c = −1/√3
        switch=(float(_DW.switch[0]),),
        noise_min=(h_a,),
        noise_saddle=(h_b,),
        saddle_side=(1,),
        margin=0.3,
        description=_DW.description,
        sympy_loss=lambda: _DW.loss.subs(_DW.variables[0], _X),
        sympy_noise=lambda: _switch_expr(_DW.switch[0], 1, exact["H_a"], exact["H_b"]),
    )


def _flat_sharp(
    which: str = "flat",
    h_flat: float = 1.0,
    h_sharp: float = 4.0,
    h_saddle: float = 2.0,
    barrier: float = 1.0,
) -> Landscape:
    """Two valleys of equal depth, a flat one (curvature h_flat) left of a saddle (|L''| = h_saddle)
    and a sharp one (h_sharp) right of it: three parabolas joined with matching value and slope
    (C¹). The noise curvature is |L''| on each piece: the harmonic switch model with
    s = h_saddle/(h_valley + h_saddle). ``which`` picks the valley the escape starts from."""
    from flatminima.errors import ParameterError

    if which not in ("flat", "sharp"):
        raise ParameterError("which", "'flat' or 'sharp'", which)
    reach_f = math.sqrt(2 * barrier * (h_flat + h_saddle) / (h_flat * h_saddle))
    reach_s = math.sqrt(2 * barrier * (h_sharp + h_saddle) / (h_sharp * h_saddle))
    x_b = 0.0
    x_f, x_s = -reach_f, reach_s
    j1 = x_f + h_saddle * reach_f / (h_flat + h_saddle)
    j2 = x_s - h_saddle * reach_s / (h_sharp + h_saddle)
    pieces = _ThreeParabolas(h_flat, h_sharp, h_saddle, barrier, x_f, x_s, j1, j2)
    h_a = h_flat if which == "flat" else h_sharp
    start, other = (x_f, x_s) if which == "flat" else (x_s, x_f)
    side = 1 if which == "flat" else -1
    margin = 0.5 * min(j2 - x_b, x_b - j1)
    return Landscape(
        name="flat-sharp",
        dim=1,
        loss_fn=pieces.loss,
        grad_fn=pieces.grad,
        minimum=(start,),
        saddles=((x_b,),),
        hess_min=np.array([[h_a]]),
        hess_saddles=(np.array([[-h_saddle]]),),
        barriers=(barrier,),
        switch_fractions=(float(compiled_formula("switch_fraction").value(h_a, h_saddle)),),
        switch=(j1 if which == "flat" else j2,),
        noise_min=(h_a,),
        noise_saddle=(h_saddle,),
        saddle_side=(side,),
        margin=margin,
        description=(
            f"flat valley (H = {h_flat}) | saddle (|H| = {h_saddle}) | sharp valley (H = {h_sharp}), "
            f"equal depth ΔL = {barrier}, C¹ piecewise quadratic"
        ),
        noise_fn=pieces.noise,
        other_minimum=(other,),
        sympy_loss=pieces.sympy_loss,
        sympy_noise=pieces.sympy_noise,
    )


@dataclass(frozen=True)
class _ThreeParabolas:
    """The flat-sharp landscape's pieces: the flat parabola (minimum ``x_f``) left of ``j1``, the
    inverted one (top ``barrier`` at 0) between ``j1`` and ``j2``, the sharp one (minimum
    ``x_s``) right of ``j2``; the loss, its gradient and the noise curvature |L''| in torch
    (batches) and SymPy (exact)."""

    h_flat: float
    h_sharp: float
    h_saddle: float
    barrier: float
    x_f: float
    x_s: float
    j1: float
    j2: float
    x_b: float = 0.0

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        u = x[:, 0]
        left = 0.5 * self.h_flat * (u - self.x_f) ** 2
        middle = self.barrier - 0.5 * self.h_saddle * (u - self.x_b) ** 2
        right = 0.5 * self.h_sharp * (u - self.x_s) ** 2
        return torch.where(u < self.j1, left, torch.where(u > self.j2, right, middle))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        left = self.h_flat * (x - self.x_f)
        middle = -self.h_saddle * (x - self.x_b)
        right = self.h_sharp * (x - self.x_s)
        return torch.where(x < self.j1, left, torch.where(x > self.j2, right, middle))

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        values = torch.full_like(x, self.h_saddle)
        values = torch.where(x < self.j1, torch.full_like(x, self.h_flat), values)
        return torch.where(x > self.j2, torch.full_like(x, self.h_sharp), values)

    def sympy_loss(self) -> sp.Expr:
        return sp.Piecewise(
            (_exact(self.h_flat) * (_X - _exact(self.x_f)) ** 2 / 2, _exact(self.j1) > _X),
            (_exact(self.h_sharp) * (_X - _exact(self.x_s)) ** 2 / 2, _exact(self.j2) < _X),
            (_exact(self.barrier) - _exact(self.h_saddle) * _X**2 / 2, True),
        )

    def sympy_noise(self) -> sp.Expr:
        return sp.Piecewise(
            (_exact(self.h_flat), _exact(self.j1) > _X),
            (_exact(self.h_sharp), _exact(self.j2) < _X),
            (_exact(self.h_saddle), True),
        )


LANDSCAPES: dict[str, Callable[..., Landscape]] = {
    "styblinski-tang-1d": _st1d,
    "styblinski-tang-2d": _st2d,
    "double-well": _double_well,
    "flat-sharp": _flat_sharp,
}
"""The test landscapes by name, each a factory taking keyword options; use
[`landscape`][flatminima.validation.landscape] to build one."""


def landscape(name: str, **options: Any) -> Landscape:
    """A test landscape by name: ``"styblinski-tang-1d"``, ``"styblinski-tang-2d"``,
    ``"double-well"`` or ``"flat-sharp"`` (options ``which``, ``h_flat``, ``h_sharp``,
    ``h_saddle``, ``barrier``)."""
    return LANDSCAPES[registered_name("landscape", name, LANDSCAPES)](**options)


def minibatch_noise_table(
    size: int, dim: int, seed: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The data set's per-sample noise coefficients ε (size × dim): centred and whitened exactly,
    so that the full-batch loss is the landscape and a B-sample minibatch has covariance I/B."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    eps = torch.randn(size, dim, generator=generator, dtype=torch.float64, device="cpu")
    eps = eps - eps.mean(0, keepdim=True)
    cov = eps.T @ eps / size
    whitening = torch.linalg.cholesky(torch.linalg.inv(cov))
    return (eps @ whitening).to(dtype)
