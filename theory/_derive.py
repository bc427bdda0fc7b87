"""``derive_escape_time``: the public entry point of the flux-over-population derivation."""

from __future__ import annotations

import numbers
from functools import cache
from typing import Any

import sympy as sp

from flatminima.errors import ParameterError

from ._budget import check_derivation_budget
from ._conventions import (
    ALPHA,
    INDEX,
    N_DIM,
    Dim,
    indexed_base,
    interpretation_alpha,
    interpretation_name,
    parse_dim,
    parse_noise,
    sym,
)
from ._derivation import Derivation
from ._engine import flux_over_population
from ._logsumexp import LogSumExp
from ._noise import NOISE, Crossing, NoiseModel, Site
from ._progress import progress as show_progress

__all__ = ["derive_escape_time"]

GENERAL_ASSUMPTIONS = (
    "overdamped Langevin dynamics dθ = −∇L dt + √(2D(θ)) dW, time t = η·iterations "
    "(τ/η iterations); the small-η limit of the discrete update",
    "flux-over-population (Kramers) asymptotics: accurate when the quasi-potential barrier ΔΦ "
    "is large; relative corrections are O(1/ΔΦ)",
    "L is locally quadratic around the minimum and the saddle, over a few noise widths",
    "τ is the mean time to pass well beyond the saddle; the mean first-passage time to the "
    "saddle itself is about τ/2",
)


def _parse_saddles(saddles: Any) -> int:
    if isinstance(saddles, bool) or not isinstance(saddles, numbers.Integral) or saddles < 1:
        raise ParameterError(
            "saddles", "a positive integer (the number of escape saddles)", saddles
        )
    return int(saddles)


def derive_escape_time(
    noise: str = "sgd",
    dim: int | str | sp.Symbol = 1,
    interpretation: str | float | sp.Expr = "ito",
    *,
    saddles: int = 1,
    progress: bool | None = None,
) -> Derivation:
    r"""Derive the escape time τ of a valley by flux over population, step by step, with SymPy.

    Parameters
    ----------
    noise
        ``"white"`` (GD with injected white noise, D constant), ``"sgd"`` (D = κ[H]⁺,
        κ = η/(2B), harmonic switch model), or ``"loss-dependent"`` (D = (ηL(θ)/B)H(a), Mori et
        al. 2022).
    dim
        Number of dimensions: 1, 2, … (one symbol per Hessian eigenvalue, ``H_a_1`` …) or
        ``"n"`` for a symbolic dimension (products over ``H_a[i]``). Direction 1 is the escape
        direction e.
    interpretation
        How the state-dependent noise enters the Fokker–Planck equation: ``"ito"`` (α = 0, what
        discrete SGD is), ``"stratonovich"`` (α = ½), ``"anti-ito"`` (α = 1, the form whose
        prefactor Xie et al. report), a number α ∈ [0, 1], or ``"alpha"`` to keep α symbolic.
    saddles
        Number of escape saddles out of the valley; with more than one, the currents add
        (γ = Σ_p γ_p) and each saddle p has its own symbols (``H_b1``, ``Delta_L_b1``, …).
    progress
        Show the derivation's stage and an ETA on stderr: None (default) when stderr is a
        terminal and the derivation is estimated at more than 2 s (about 50 saddles), True
        always, False never (a derivation already in the cache shows nothing).

    Returns
    -------
    Derivation
        ``tau``, ``rate``, ``log_tau`` (SymPy), ``steps``, ``symbols``, ``assumptions``,
        ``latex()``, ``compile(backend)``.

    Notes
    -----
    Conventions: time unit η·iterations; curvature symbols are magnitudes (``H_b`` is |H_be|);
    the barrier is ``Delta_L`` = L(b) − L(a). Results (docs/conventions.md §2):

    - white, 1-D: :math:`\tau = \frac{2\pi}{\sqrt{H_a H_b}} e^{\Delta L/D}`;
      n-D: :math:`\tau = \frac{2\pi}{|H_{be}|}\sqrt{\frac{|\det H_b|}{\det H_a}} e^{\Delta L/D}`
      (Eyring–Kramers).
    - SGD: :math:`\tau = \frac{2\pi}{|H_{be}|}\left(\frac{|H_{be}|}{H_{ae}}\right)^{1-\alpha}
      \exp\left[\frac{2B\Delta L}{\eta}\left(\frac{s}{H_{ae}} + \frac{1-s}{|H_{be}|}\right)\right]`;
      α = 1 is Xie, Sato, Sugiyama (2021), eq. for τ.
    - loss-dependent: a power law in L(b)/L(a); α = 0 is Mori, Ziyin, Liu, Ueda (2022).

    Examples
    --------
    >>> from flatminima.theory import derive_escape_time
    >>> d = derive_escape_time("white", dim=1)
    >>> d.tau
    2*pi*exp(Delta_L/D)/(sqrt(H_a)*sqrt(H_b))
    >>> derive_escape_time("sgd", interpretation="anti-ito").tau
    2*pi*exp(2*B*Delta_L*((1 - s)/H_b + s/H_a)/eta)/H_b

    A bad name says what was expected:

    >>> derive_escape_time("brownian")
    Traceback (most recent call last):
    ...
    flatminima.errors.NoiseModelError: noise: expected one of 'white', 'sgd', ...
    """
    dim_value, saddle_count = parse_dim(dim), _parse_saddles(saddles)
    estimate = check_derivation_budget(dim_value, saddle_count)
    with show_progress("derive_escape_time", estimate, progress):
        return _derive(
            parse_noise(noise), dim_value, interpretation_alpha(interpretation), saddle_count
        )


def saddle_labels(saddles: int) -> list[str]:
    """Labels of the saddles: ``["b"]`` for one, ``["b1", "b2", …]`` for several."""
    return ["b"] if saddles == 1 else [f"b{p}" for p in range(1, saddles + 1)]


def crossing_symbols(saddle_label: str) -> tuple[sp.Symbol, sp.Symbol]:
    """(barrier ΔL, switch fraction s) symbols for the crossing over ``saddle_label``."""
    if saddle_label == "b":
        return sym("Delta_L"), sym("s")
    return sym(f"Delta_L_{saddle_label}"), sym(f"s_{saddle_label}")


@cache
def _derive(noise: str, dim: Dim, alpha: sp.Expr, saddles: int) -> Derivation:
    from ._cache import cached
    from ._noise import BUILT_IN_NOISE_MODELS
    from ._shipped import lookup

    if noise not in BUILT_IN_NOISE_MODELS:  # a registered model: its source is not in the key
        return _derive_uncached(noise, dim, alpha, saddles)
    key = (noise, dim, alpha, saddles)
    shipped: Derivation | None = lookup("derive_escape_time", key)  # precomputed, in the package
    if shipped is not None:
        return shipped
    return cached("derive_escape_time", key, lambda: _derive_uncached(noise, dim, alpha, saddles))


def _derive_uncached(noise: str, dim: Dim, alpha: sp.Expr, saddles: int) -> Derivation:
    model = NOISE[noise]
    minimum = Site("a", "minimum", dim)
    crossings = []
    for label in saddle_labels(saddles):
        barrier, switch = crossing_symbols(label)
        crossings.append(Crossing(minimum, Site(label, "saddle", dim), barrier, switch))
    return build_derivation(model, crossings, alpha)


def build_derivation(model: NoiseModel, crossings: list[Crossing], alpha: sp.Expr) -> Derivation:
    """Run the engine on ``crossings`` and package the result as a [`Derivation`][flatminima.theory.Derivation]."""
    minimum = crossings[0].minimum
    dim = minimum.dim
    result = flux_over_population(model, crossings, alpha)
    steps = list(result.steps)
    tau = result.tau

    if len(crossings) == 1:
        assert result.exponent is not None
        prefactor, exponent = result.prefactor, result.exponent
        if model.power_law_in_loss:
            tau, prefactor, exponent, power_step = _power_law_form(
                model, crossings[0], prefactor, exponent
            )
            steps.append(power_step)
        log_tau = sp.expand_log(sp.log(prefactor)) + exponent
    else:
        prefactor, exponent = sp.Integer(1), None
        log_rates = [sp.expand_log(sp.log(sp.powsimp(term))) for term in _rate_terms(tau)]
        log_tau = -LogSumExp(*log_rates)  # log τ = −log Σ_p γ_p, overflow-free

    curvatures: list[sp.Basic] = []
    sites = [minimum] + [c.saddle for c in crossings]
    for site in sites:
        if isinstance(dim, int):
            curvatures += [site.curvature(i) for i in range(1, dim + 1)]
        else:
            curvatures.append(indexed_base(site.label))

    symbols = _symbols(tau, sites, model, alpha)
    parameters = _parameter_order(tau, sites, model, alpha)
    assumptions = list(GENERAL_ASSUMPTIONS) + list(model.assumptions)
    assumptions.append(_interpretation_assumption(model, alpha))
    if dim != 1:
        assumptions.append(
            "n-D: H_a and H_b diagonal in a common eigenbasis; direction 1 is the escape direction "
            "e (H_a_1 = H_ae, H_b_1 = |H_be|)"
            + (
                "; for white noise the result depends only on det H_a, |det H_b| and |H_be| and "
                "holds for any H_a, H_b (Langer)"
                if not model.state_dependent
                else ""
            )
        )
    if len(crossings) > 1:
        assumptions.append(
            "several saddles: the valley's population is shared and the currents through the "
            "saddles add, γ = Σ_p γ_p (each saddle region treated independently)"
        )
    return Derivation(
        quantity="tau",
        value=tau,
        log_value=log_tau,
        parameters=parameters,
        symbols=symbols,
        steps=steps,
        assumptions=assumptions,
        model=model.model,
        noise=model.name,
        dim=dim,
        interpretation=interpretation_name(alpha),
        alpha=alpha,
        prefactor=prefactor,
        exponent=exponent,
        saddles=len(crossings),
        curvatures=tuple(curvatures),
        quasi_potential=result.barriers[0] if len(crossings) == 1 else None,
    )


def _rate_terms(tau: sp.Expr) -> list[sp.Expr]:
    """τ = 1/Σ γ_p → [γ_1, γ_2, …]."""
    return list(sp.Add.make_args(1 / tau))


def _power_law_form(
    model: NoiseModel, crossing: Crossing, prefactor: sp.Expr, exponent: sp.Expr
) -> tuple[sp.Expr, sp.Expr, sp.Expr, tuple[str, sp.Basic]]:
    """Write a loss-dependent τ as (curvature prefactor) · (L_b/L_a)^p, p derived as the
    elasticity ρ ∂ log τ/∂ρ of τ in the loss ratio ρ = L_b/L_a."""
    lower, upper = model.loss_levels(crossing)
    rho = sp.Symbol("rho", positive=True)
    tau_rho = (prefactor * sp.exp(exponent)).subs(upper, rho * lower)
    log_tau_rho = sp.expand_log(sp.log(tau_rho), force=True)
    power = sp.factor_terms(sp.expand(rho * sp.diff(log_tau_rho, rho)))
    if power.has(rho):
        raise RuntimeError(f"loss-dependent τ is not a power law in the loss ratio: {power}")
    # τ(ρ) = τ(1)·ρ^p exactly once the elasticity p is constant
    rest = sp.powsimp(tau_rho.subs(rho, 1), combine="exp")
    if rest.has(rho) or rest.has(lower):
        raise RuntimeError(f"loss-dependent prefactor depends on the losses: {rest}")
    ratio = upper / lower
    tau = rest * sp.Pow(ratio, power)
    exponent_out = power * sp.log(ratio)
    step = ("Power law in the loss ratio L_b/L_a", sp.Eq(sp.Symbol("tau"), tau))
    return tau, rest, exponent_out, step


def _interpretation_assumption(model: NoiseModel, alpha: sp.Expr) -> str:
    name = interpretation_name(alpha)
    text = (
        f"interpretation {name} (α = {alpha}) of the state-dependent noise: "
        "J = −P∇L − D^α∇(D^(1−α)P)"
    )
    if not model.state_dependent:
        text += "; the noise is constant, so τ does not depend on α"
    return text


def _symbols(
    tau: sp.Expr, sites: list[Site], model: NoiseModel, alpha: sp.Expr
) -> dict[str, sp.Basic]:
    symbols: dict[str, sp.Basic] = {}
    for atom in sorted(tau.free_symbols, key=lambda s: s.name if hasattr(s, "name") else str(s)):
        if isinstance(atom, sp.Symbol):
            symbols[atom.name] = atom
    symbols.update(model.parameters())
    if not isinstance(sites[0].dim, int):
        symbols["n"] = N_DIM
        symbols["i"] = INDEX
        for site in sites:
            base = indexed_base(site.label)
            symbols[base.name] = base
    if alpha == ALPHA:
        symbols["alpha"] = ALPHA
    return symbols


def _parameter_order(
    tau: sp.Expr, sites: list[Site], model: NoiseModel, alpha: sp.Expr
) -> tuple[sp.Symbol, ...]:
    """Free symbols of τ in a documented order: curvatures (minimum, then saddles, direction
    1..n), barriers and losses, the noise model's parameters, α."""
    free = {s for s in tau.free_symbols if isinstance(s, sp.Symbol)}
    order: list[sp.Symbol] = []

    def add(symbol: sp.Basic) -> None:
        if isinstance(symbol, sp.Symbol) and symbol in free and symbol not in order:
            order.append(symbol)

    for site in sites:
        if isinstance(site.dim, int):
            for i in range(1, site.dim + 1):
                add(site.curvature(i))
        else:
            add(indexed_base(site.label).label)
    for name in sorted(s.name for s in free):
        if name.startswith(("Delta_L", "L_")):
            add(sym(name))
    for symbol in model.parameters().values():
        add(symbol)
    for name in sorted(s.name for s in free):
        if name.startswith("s_"):
            add(sym(name))
    add(ALPHA)
    add(N_DIM)
    for symbol in sorted(free - set(order), key=lambda s: s.name):
        order.append(symbol)
    return tuple(order)
