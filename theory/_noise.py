"""Noise models: the diffusion D(θ) near the minimum, near the saddle and along the escape path.

Each model says, for the flux-over-population engine,

- the diffusion along eigen-direction ``i`` at a critical point (minimum or saddle), and
- the diffusion along the escape direction e as a function of the loss level ℓ along the path
  from the minimum (ℓ = L(a)) to the saddle (ℓ = L(b)), from which the quasi-potential
  ``Φ(b) − Φ(a) = ∫ ∇L·D⁻¹ dθ = ∫ dℓ / D_e(ℓ)`` follows,

and which physical model the resulting formula belongs to (docs/conventions.md §1–2).

Models
------
white
    GD with injected white noise: ``D`` constant and isotropic.
sgd
    SGD near critical points (Xie et al. 2021): ``D = κ[H]⁺``, ``κ = η/(2B)``, in the *harmonic
    switch* model: ``D = κH_a`` on a's side of a surface normal to e at loss level
    ``L(a) + sΔL``, ``D = κ|H_b|`` on b's side; H_a and H_b diagonal in a common eigenbasis.
    (``D = κ|L''|`` on a smooth path vanishes at the inflection point: docs/conventions.md trap 2.)
loss-dependent
    Mean-square losses near a minimum with ``L(a) > 0`` (Mori, Ziyin, Liu, Ueda 2022):
    ``D(θ) = (η L(θ) / B) H(a)``, with the outlier curvature of H(a) in the noise taken as one
    typical value ``h*``: ``D = (η h* L(θ) / B)`` on the n outlier directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from flatminima.errors import NoiseModelError

from ._conventions import NOISE, Dim, curvature, indexed_base, sym

__all__ = [
    "BUILT_IN_NOISE_MODELS",
    "NOISE",
    "Crossing",
    "NoiseModel",
    "Segment",
    "Site",
    "parse_built_in_noise",
    "register_noise_model",
]


@dataclass(frozen=True)
class Site:
    """A critical point: a minimum or an index-1 saddle, with its label and dimension."""

    label: str
    kind: str  # "minimum" | "saddle"
    dim: Dim

    def curvature(self, direction: int | sp.Expr) -> sp.Expr:
        """Curvature magnitude along eigen-direction ``direction`` (1 = the escape direction)."""
        if self.dim == 1:
            return curvature(self.label)
        if isinstance(self.dim, int):
            return curvature(self.label, direction)
        # symbolic dimension: every direction, e included, is an entry of the IndexedBase
        return indexed_base(self.label)[direction]

    @property
    def loss(self) -> sp.Symbol:
        """The loss value at this point, ``L_<label>``."""
        return sym(f"L_{self.label}")

    @property
    def diffusion_symbol(self) -> sp.Symbol:
        """``D_<label>``: the diffusion along e at this point (used in displayed steps)."""
        return sym(f"D_{self.label}")


@dataclass(frozen=True)
class Crossing:
    """One escape route: from ``minimum`` over ``saddle``, barrier ``barrier``, switch fraction
    ``switch`` (used by the SGD model only)."""

    minimum: Site
    saddle: Site
    barrier: sp.Symbol
    switch: sp.Symbol


@dataclass(frozen=True)
class Segment:
    """A stretch of the escape path in loss levels ``lower ≤ ℓ ≤ upper`` with diffusion along e
    ``diffusion`` (an expression in ``ell``)."""

    lower: sp.Expr
    upper: sp.Expr
    diffusion: sp.Expr


ELL = sym("ell")


class NoiseModel:
    """A noise model for the flux-over-population engine (subclass it to add one).

    Class attributes: ``name`` (lower-case registry name), ``model`` (one sentence),
    ``assumptions`` (sentences), ``keywords`` (its parameters as compiled formulas name them),
    ``state_dependent`` (whether the prefactor depends on the interpretation α),
    ``power_law_in_loss`` (D scales with the loss level: τ is written as a power of L(b)/L(a)). Methods:
    `diffusion` at a critical point, `path` (the diffusion along the escape direction as a
    function of the loss level ℓ, in segments) and `parameters`. Register an instance with
    [`register_noise_model`][flatminima.theory.register_noise_model]; docs/architecture.md walks
    through one.
    """

    name: str = ""
    model: str = ""
    assumptions: tuple[str, ...] = ()
    #: whether D scales with the loss level, so that τ is a power law in L(b)/L(a) (written as one)
    #: and two valleys compared at the same loss share L(a)
    power_law_in_loss: bool = False
    #: the noise's parameters as escape_time and compiled formulas name them (lr, batch_size,
    #: diffusion, s, loss_min, loss_saddle, h_star, or the model's own symbol names)
    keywords: tuple[str, ...] = ()
    #: whether the prefactor depends on the interpretation α
    state_dependent: bool = True

    def diffusion(self, crossing: Crossing, site: Site, direction: int | sp.Expr) -> sp.Expr:
        """Diffusion along eigen-direction ``direction`` at ``site`` (the minimum or the saddle
        of ``crossing``)."""
        raise NotImplementedError

    def loss_levels(self, crossing: Crossing) -> tuple[sp.Expr, sp.Expr]:
        """Loss at the minimum and at the saddle."""
        lower = crossing.minimum.loss
        return lower, lower + crossing.barrier

    def path(self, crossing: Crossing) -> list[Segment]:
        raise NotImplementedError

    def parameters(self) -> dict[str, sp.Symbol]:
        """The noise model's own symbols by documented name."""
        return {}


class WhiteNoise(NoiseModel):
    name = "white"
    model = "GD with injected white noise: D constant and isotropic"
    assumptions = (
        "white noise: D(θ) = D, a positive constant, the same in every direction",
        "GD with injected noise of standard deviation σ per step has D = σ²/(2η)",
    )
    state_dependent = False
    keywords = ("diffusion",)

    def diffusion(self, crossing: Crossing, site: Site, direction: int | sp.Expr) -> sp.Expr:
        return sym("D")

    def path(self, crossing: Crossing) -> list[Segment]:
        lower, upper = self.loss_levels(crossing)
        return [Segment(lower, upper, sym("D"))]

    def parameters(self) -> dict[str, sp.Symbol]:
        return {"D": sym("D")}


class SGDNoise(NoiseModel):
    name = "sgd"
    model = (
        "SGD noise D = κ[H]⁺, κ = η/(2B), in the harmonic switch model: D = κH_a on the "
        "minimum's side of a surface normal to e (at loss L(a) + sΔL), D = κ|H_b| on the "
        "saddle's side"
    )
    assumptions = (
        "SGD noise covariance C ≈ H/B near critical points, so D = (η/2)C = κ[H]⁺, κ = η/(2B) "
        "(Xie, Sato, Sugiyama 2021); at the saddle the noise uses |H|",
        "harmonic switch model: D = κH_a on a's side of a surface normal to e, D = κ|H_b| on "
        "b's side; s ∈ (0, 1) is the fraction of the barrier climbed on a's side",
        "H_a and H_b are diagonal in a common eigenbasis and e is an eigen-direction of both",
    )
    keywords = ("lr", "batch_size", "s")

    @staticmethod
    def kappa() -> sp.Expr:
        return sym("eta") / (2 * sym("B"))

    def diffusion(self, crossing: Crossing, site: Site, direction: int | sp.Expr) -> sp.Expr:
        return self.kappa() * site.curvature(direction)

    def path(self, crossing: Crossing) -> list[Segment]:
        lower, upper = self.loss_levels(crossing)
        switch = lower + crossing.switch * crossing.barrier
        kappa = self.kappa()
        return [
            Segment(lower, switch, kappa * crossing.minimum.curvature(1)),
            Segment(switch, upper, kappa * crossing.saddle.curvature(1)),
        ]

    def parameters(self) -> dict[str, sp.Symbol]:
        return {"eta": sym("eta"), "B": sym("B"), "s": sym("s")}


class LossDependentNoise(NoiseModel):
    name = "loss-dependent"
    model = (
        "loss-dependent SGD noise D(θ) = (η L(θ)/B) H(a) for mean-square losses, outlier "
        "curvature in the noise taken as h* (Mori, Ziyin, Liu, Ueda 2022)"
    )
    assumptions = (
        "mean-square loss with L(a) > 0: Σ(θ) ≈ 2 L(θ) H(a), so D(θ) = (η L(θ)/B) H(a) "
        "(Mori, Ziyin, Liu, Ueda 2022)",
        "the noise's curvature on the n outlier directions is one typical value h*, so D is "
        "isotropic there: D(θ) = η h* L(θ) / B; the Hessians in the prefactor are Ĥ, the "
        "Hessians restricted to the outlier subspace",
        "the escape path climbs monotonically in L from L(a) to L(b)",
    )
    keywords = ("lr", "batch_size", "loss_min", "loss_saddle", "h_star")
    power_law_in_loss = True

    @staticmethod
    def h_star(minimum: Site) -> sp.Symbol:
        """The noise curvature h* of the valley: ``h_star`` for minimum a, ``h_star_<label>``
        for another."""
        return sym("h_star") if minimum.label == "a" else sym(f"h_star_{minimum.label}")

    def scale(self, crossing: Crossing) -> sp.Expr:
        return sym("eta") * self.h_star(crossing.minimum) / sym("B")

    def diffusion(self, crossing: Crossing, site: Site, direction: int | sp.Expr) -> sp.Expr:
        return self.scale(crossing) * site.loss

    def loss_levels(self, crossing: Crossing) -> tuple[sp.Expr, sp.Expr]:
        return crossing.minimum.loss, crossing.saddle.loss

    def path(self, crossing: Crossing) -> list[Segment]:
        lower, upper = self.loss_levels(crossing)
        return [Segment(lower, upper, self.scale(crossing) * ELL)]

    def parameters(self) -> dict[str, sp.Symbol]:
        return {"eta": sym("eta"), "B": sym("B"), "h_star": sym("h_star")}


NOISE.update(
    {
        "white": WhiteNoise(),
        "sgd": SGDNoise(),
        "loss-dependent": LossDependentNoise(),
    }
)

#: The models the package ships (the numerics layer's ``escape_time`` evaluates these from
#: Hessians; a registered model is evaluated through its compiled derivation).
BUILT_IN_NOISE_MODELS: tuple[str, ...] = tuple(NOISE)


def parse_built_in_noise(noise: object) -> str:
    """The canonical name of a built-in noise model (``BUILT_IN_NOISE_MODELS``); a registered
    model is refused with a message that says how to evaluate it (its compiled derivation)."""
    from ._conventions import parse_noise

    name = parse_noise(noise)
    if name not in BUILT_IN_NOISE_MODELS:
        raise NoiseModelError(
            "noise",
            "a built-in noise model (" + ", ".join(map(repr, BUILT_IN_NOISE_MODELS)) + ")",
            noise,
            f"evaluate a registered model with derive_escape_time({name!r}).compile('mpmath')",
        )
    return name


def register_noise_model(model: NoiseModel) -> None:
    """Add a noise model to the registry (``NOISE``, ``NOISE_MODELS``): every layer then sees it.

    ``model`` is an instance of a `NoiseModel` subclass with a new lower-case ``name``, a
    ``model`` sentence, ``assumptions``, ``keywords`` and the methods ``diffusion``, ``path``
    and ``parameters``; docs/architecture.md "How to add a noise model" walks through one.
    Registered models are derived in memory only (the on-disk cache keys on the package source,
    which does not cover them).

    Examples
    --------
    >>> from flatminima.theory import NOISE_MODELS
    >>> "white" in NOISE_MODELS
    True
    """
    if not isinstance(model, NoiseModel):
        raise NoiseModelError("model", "an instance of a NoiseModel subclass", model)
    name = model.name
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise NoiseModelError("model.name", "a non-empty lower-case name", name)
    if name in NOISE:
        raise NoiseModelError("model.name", f"a name not yet registered ({list(NOISE)})", name)
    NOISE[name] = model
