"""The flux-over-population engine: SymPy derives the escape time step by step.

Method (Kramers 1940; Hänggi, Talkner, Borkovec 1990 §IV; docs/conventions.md §2)
-----------------------------------------------------------------------
For ``dθ = −∇L dt + √(2D) dW`` with Fokker–Planck current (interpretation α, D diagonal in the
common eigenbasis) ``J_e = −P ∂_e L − D_e ∂_e P − (1−α)(∂_e D_e) P``:

1. Zero current gives the quasi-stationary density ``p_s = C·D_e^{α−1} e^{−Φ}`` with the
   quasi-potential ``∂_e Φ = ∂_e L / D_e``.
2. Quasi-potential barrier along the path, with the loss level ℓ = L(θ) as coordinate:
   ``ΔΦ = Φ(b) − Φ(a) = ∫_{L(a)}^{L(b)} dℓ / D_e(ℓ)``.
3. Near the minimum p_s is Gaussian with the covariance Σ that solves the Lyapunov equation
   ``H_a Σ + Σ H_a = 2 D_a`` (in the eigenbasis ``Σ_i = D_{a,i}/H_{a,i}``); the population is its
   integral ``N = D_{a,e}^{α−1} e^{−Φ(a)} ∏_i √(2π Σ_i)``.
4. Near the saddle ``P = p_s f(y)`` with f = 1 inside the valley and 0 beyond; the current
   ``J_e = −D_e p_s ∂_y f`` integrated over the transverse Gaussian is constant, which fixes
   ``I = D_{b,e}^{α} e^{−Φ(b)} ∏_{i≠e} √(2π D_{b,i}/H_{b,i}) / √(2π D_{b,e}/|H_{b,e}|)``.
5. ``τ = N / I``, ``γ = 1/τ``; several saddles: ``τ = N / Σ_p I_p``.

Every step is computed by SymPy (solve, integrate, simplify) from the noise model, and kept as a
(title, expression) pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import sympy as sp

from ._conventions import ALPHA, INDEX, N_DIM, Dim
from ._noise import ELL, Crossing, NoiseModel, Site
from ._progress import current as progress_line

__all__ = ["EngineResult", "Step", "flux_over_population", "product_over_directions"]

Step = tuple[str, sp.Basic]

THETA = sp.Symbol("theta", real=True)
_P, _L, _D, _PHI = (sp.Function(name) for name in ("P", "L", "D", "Phi"))


class DerivationFailed(RuntimeError):
    """An internal consistency check of a derivation failed (a bug, not bad input)."""


@dataclass(frozen=True)
class EngineResult:
    """What the engine derives for one minimum and one or more saddles."""

    population: sp.Expr
    currents: tuple[sp.Expr, ...]
    barriers: tuple[sp.Expr, ...]  # ΔΦ per saddle
    tau: sp.Expr
    prefactor: sp.Expr
    exponent: sp.Expr | None  # shared exponent when there is one saddle
    steps: tuple[Step, ...]


def _eq(lhs: sp.Basic, rhs: sp.Basic) -> sp.Eq:
    """An unevaluated equation for display (SymPy would otherwise try to decide it)."""
    return sp.Eq(lhs, rhs, evaluate=False)


# ---------------------------------------------------------------------------------------------
# products over eigen-directions (explicit or symbolic dimension)


def _split_product(product: sp.Product) -> sp.Expr:
    """Pull constants and constant powers out of ``Product(f(i), (i, lo, n))``.

    ``Product(c·g(i)^p) → c^(n−lo+1) · Product(g(i))^p`` for positive g (all curvature and
    diffusion symbols are positive), so that determinants appear as ``Product(H_a[i])``.
    """
    (index, lower, upper) = product.limits[0]
    count = upper - lower + 1
    result = sp.Integer(1)
    inner = sp.Integer(1)
    for factor in sp.Mul.make_args(sp.powsimp(sp.expand_power_base(product.function, force=True))):
        if not factor.has(index):
            result *= factor**count
        elif factor.is_Pow and not factor.exp.has(index) and factor.base.is_positive:
            result *= sp.Product(factor.base, (index, lower, upper)) ** factor.exp
        else:
            inner *= factor
    if inner != 1:
        result *= sp.Product(inner, (index, lower, upper))
    return result


def product_over_directions(
    factor: Callable[[int | sp.Expr], sp.Expr], start: int, dim: Dim
) -> sp.Expr:
    """``∏_{i=start}^{dim} factor(i)``: a plain product for an integer dim, a SymPy Product over
    the index i for the symbolic dimension n."""
    if isinstance(dim, int):
        return sp.Mul(*(factor(i) for i in range(start, dim + 1)))
    product = sp.Product(factor(INDEX), (INDEX, start, N_DIM))
    return _split_product(product)


# ---------------------------------------------------------------------------------------------
# the generic pieces (derived once, cached)


@cache
def _fokker_planck_current() -> sp.Expr:
    """1-D current along e: J = −P L' − D^α (D^{1−α} P)'."""
    P, L, D = _P(THETA), _L(THETA), _D(THETA)
    return -P * L.diff(THETA) - D**ALPHA * sp.diff(D ** (1 - ALPHA) * P, THETA)


def _current_display() -> sp.Expr:
    """The current as written, the derivative left unevaluated."""
    P, L, D = _P(THETA), _L(THETA), _D(THETA)
    return -P * L.diff(THETA) - D**ALPHA * sp.Derivative(D ** (1 - ALPHA) * P, THETA)


@cache
def _quasi_stationary() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """Solve J = 0 for the density: returns (d log P/dθ, p_s, Φ definition).

    J = 0 is linear in P' and P; SymPy solves it for P'/P, integrates the D'/D term (a
    logarithm) and leaves ∫ L'/D = Φ, the quasi-potential. The result is checked by substitution.
    """
    P, L, D = _P(THETA), _L(THETA), _D(THETA)
    current = _fokker_planck_current()
    (dP,) = sp.solve(_eq(current, 0), P.diff(THETA))
    dlogP = sp.simplify(sp.expand(dP / P))
    # split dlogP = −L'/D − (1−α) D'/D and integrate the second part
    drift_part = -L.diff(THETA) / D
    remainder = sp.simplify(dlogP - drift_part)
    log_prefactor = sp.integrate(sp.expand(remainder), THETA)
    # exp(c·log D) → D^c
    coefficient = sp.simplify(log_prefactor / sp.log(D))
    if coefficient.has(THETA):
        raise DerivationFailed(f"unexpected density prefactor exp({log_prefactor})")
    density = D**coefficient * sp.exp(-_PHI(THETA))
    # check: the current of p_s vanishes when Φ' = L'/D
    check = current.subs(P, density).doit()
    check = check.subs(_PHI(THETA).diff(THETA), L.diff(THETA) / D)
    if sp.simplify(check) != 0:
        raise DerivationFailed(f"quasi-stationary density does not cancel the current: {check}")
    phi_definition = sp.Integral(L.diff(THETA) / D, THETA)
    return dlogP, density, phi_definition


@cache
def _gaussian_integral() -> tuple[sp.Symbol, sp.Expr]:
    """∫_{−∞}^{∞} exp(−x²/(2σ)) dx, by SymPy: returns (σ, result)."""
    x = sp.Symbol("x", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    return sigma, sp.integrate(sp.exp(-(x**2) / (2 * sigma)), (x, -sp.oo, sp.oo))


def _gauss(variance: sp.Expr) -> sp.Expr:
    sigma, result = _gaussian_integral()
    return result.subs(sigma, variance)


@cache
def _lyapunov_diagonal() -> tuple[sp.Symbol, sp.Symbol, sp.Symbol, sp.Expr]:
    """Solve the diagonal entry of the Lyapunov equation H Σ + Σ H = 2 D: 2 h σ = 2 d."""
    h, d, s = (sp.Symbol(name, positive=True) for name in ("h", "d", "sigma"))
    (solution,) = sp.solve(_eq(2 * h * s, 2 * d), s)
    return h, d, s, solution


def _local_variance(curv: sp.Expr, diffusion: sp.Expr) -> sp.Expr:
    h, d, _, solution = _lyapunov_diagonal()
    return solution.subs({h: curv, d: diffusion})


@cache
def _saddle_flux_solution() -> tuple[tuple[sp.Symbol, ...], sp.Expr]:
    """Solve for the total current I through a saddle.

    Near b: p_s = K e^{+c y²/2} with K = C_b e^{−Φ(b)}·(transverse integral T) after integrating
    over the transverse directions, c = |H_be|/D_be. Constant current I = −D_be K e^{c y²/2} f'(y)
    gives f' = −I e^{−c y²/2}/(D_be K); f falls from 1 to 0 across the saddle: ∫ f' dy = −1.
    """
    current, d_e, k, c = sp.symbols("I D_e K c", positive=True)
    y = sp.Symbol("y", real=True)
    f_prime = -current * sp.exp(-c * y**2 / 2) / (d_e * k)
    drop = sp.integrate(f_prime, (y, -sp.oo, sp.oo))
    (solution,) = sp.solve(_eq(drop, -1), current)
    return (d_e, k, c), solution


# ---------------------------------------------------------------------------------------------


@cache
def _density_prefactor() -> sp.Expr:
    """The factor of p_s in front of e^{−Φ}: D(θ)^(α−1)."""
    _, density, _ = _quasi_stationary()
    prefactor = density * sp.exp(_PHI(THETA))
    if prefactor.has(_PHI(THETA)):
        raise DerivationFailed(f"density prefactor still depends on Φ: {prefactor}")
    return prefactor


def _alpha_prefactor(noise: NoiseModel, crossing: Crossing, site: Site) -> sp.Expr:
    """C_site = D_e(site)^(α−1), read off the derived density p_s = D^(α−1) e^{−Φ}."""
    return _density_prefactor().subs(_D(THETA), noise.diffusion(crossing, site, 1))


def flux_over_population(
    noise: NoiseModel,
    crossings: Sequence[Crossing],
    alpha: sp.Expr,
) -> EngineResult:
    """Derive τ for escape from ``crossings[0].minimum`` over every saddle in ``crossings``."""
    steps: list[Step] = []
    _noise_steps(noise, crossings, steps)  # 1. noise model at the critical points
    _density_steps(alpha, steps)  # 2. Fokker–Planck current and its zero-current density
    barriers = _barrier_steps(noise, crossings, steps)  # 3. quasi-potential barriers
    population = _population(noise, crossings[0], alpha, steps)  # 4. population of the valley
    currents = _currents(noise, crossings, alpha, steps)  # 5. current through each saddle
    return _escape_time(crossings, population, currents, barriers, steps)  # 6. τ = N / ΣI


def _noise_steps(noise: NoiseModel, crossings: Sequence[Crossing], steps: list[Step]) -> None:
    """Step 1: the noise model's diffusion along e at the minimum and at each saddle."""
    minimum = crossings[0].minimum
    steps.append(
        (
            f"Noise model ({noise.name}): diffusion along e at the minimum",
            _eq(minimum.diffusion_symbol, noise.diffusion(crossings[0], minimum, 1)),
        )
    )
    for crossing in crossings:
        saddle = crossing.saddle
        steps.append(
            (
                f"Noise model ({noise.name}): diffusion along e at the saddle {saddle.label}",
                _eq(saddle.diffusion_symbol, noise.diffusion(crossing, saddle, 1)),
            )
        )


def _density_steps(alpha: sp.Expr, steps: list[Step]) -> None:
    """Step 2: the Fokker–Planck current, its zero-current density and the quasi-potential."""
    dlogP, density, phi_definition = _quasi_stationary()
    steps.append(
        (
            "Fokker–Planck current along e, interpretation α (J = −P L' − D^α (D^{1−α} P)')",
            _eq(sp.Function("J")(THETA), _current_display()),
        )
    )
    steps.append(("Zero current: d log P / dθ", _eq(sp.log(_P(THETA)).diff(THETA), dlogP)))
    steps.append(("Quasi-potential", _eq(_PHI(THETA), phi_definition)))
    steps.append(("Quasi-stationary density", _eq(sp.Symbol("p_s"), density)))
    if alpha != ALPHA:
        steps.append(("Interpretation", _eq(ALPHA, alpha)))


def _barrier_steps(
    noise: NoiseModel, crossings: Sequence[Crossing], steps: list[Step]
) -> list[sp.Expr]:
    """Step 3: the quasi-potential barrier ∫ dℓ/D_e(ℓ) along each path."""
    minimum = crossings[0].minimum
    barriers: list[sp.Expr] = []
    line, work = progress_line(), 3 * len(crossings)  # progress: barriers, currents, rates
    for crossing in crossings:
        line.update("quasi-potential barriers", len(barriers), work)
        integral = sp.Add(
            *(
                sp.Integral(1 / segment.diffusion, (ELL, segment.lower, segment.upper))
                for segment in noise.path(crossing)
            )
        )
        value = _tidy_barrier(integral)
        label = crossing.saddle.label
        delta_phi = sp.Symbol(f"Phi_{label}") - sp.Symbol(f"Phi_{minimum.label}")
        steps.append((f"Quasi-potential barrier to {label}, ℓ = L(θ)", _eq(delta_phi, integral)))
        steps.append((f"Quasi-potential barrier to {label}", _eq(delta_phi, value)))
        barriers.append(value)
    return barriers


def _population(
    noise: NoiseModel, crossing: Crossing, alpha: sp.Expr, steps: list[Step]
) -> sp.Expr:
    """Step 4: the probability mass of the valley, a Gaussian integral around the minimum."""
    minimum = crossing.minimum
    _, _, lyap_sigma, lyap_solution = _lyapunov_diagonal()
    steps.append(
        (
            "Lyapunov equation H_a Σ + Σ H_a = 2 D_a, diagonal entry in the eigenbasis",
            _eq(lyap_sigma, lyap_solution),
        )
    )

    def variance(i: int | sp.Expr) -> sp.Expr:
        return _local_variance(minimum.curvature(i), noise.diffusion(crossing, minimum, i))

    c_min = _alpha_prefactor(noise, crossing, minimum).subs(ALPHA, alpha)
    phi_a = sp.Symbol(f"Phi_{minimum.label}")
    gaussian = product_over_directions(lambda i: _gauss(variance(i)), 1, minimum.dim)
    population = c_min * sp.exp(-phi_a) * gaussian
    steps.append(("Population of the valley (Gaussian integral)", _eq(sp.Symbol("N"), population)))
    return population


def _currents(
    noise: NoiseModel, crossings: Sequence[Crossing], alpha: sp.Expr, steps: list[Step]
) -> list[sp.Expr]:
    """Step 5: the probability current through each saddle (transverse Gaussian × flux)."""
    (d_e, k_sym, c_sym), flux_solution = _saddle_flux_solution()
    dim = crossings[0].minimum.dim
    currents: list[sp.Expr] = []
    line, work = progress_line(), 3 * len(crossings)
    for crossing in crossings:
        line.update("currents through the saddles", len(crossings) + len(currents), work)
        saddle = crossing.saddle
        c_sad = _alpha_prefactor(noise, crossing, saddle).subs(ALPHA, alpha)

        def transverse_factor(i: int | sp.Expr, c: Crossing = crossing) -> sp.Expr:
            return _gauss(noise.diffusion(c, c.saddle, i) / c.saddle.curvature(i))

        transverse = product_over_directions(transverse_factor, 2, dim)
        phi_b = sp.Symbol(f"Phi_{saddle.label}")
        d_be = noise.diffusion(crossing, saddle, 1)
        flux = flux_solution.subs(
            {
                d_e: d_be,
                k_sym: c_sad * sp.exp(-phi_b) * transverse,
                c_sym: saddle.curvature(1) / d_be,
            }
        )
        flux = sp.powsimp(flux)
        currents.append(flux)
        steps.append(
            (
                f"Current through the saddle {saddle.label} (transverse Gaussian × flux along e)",
                _eq(sp.Symbol(f"I_{saddle.label}"), flux),
            )
        )
    return currents


def _escape_time(
    crossings: Sequence[Crossing],
    population: sp.Expr,
    currents: list[sp.Expr],
    barriers: list[sp.Expr],
    steps: list[Step],
) -> EngineResult:
    """Step 6: τ = N / ΣI, the quasi-potentials substituted (Φ(a) = 0); one saddle keeps the
    shape prefactor · exp(barrier), several add their rates."""
    total = sp.Add(*currents)
    tau_raw = population / total
    steps.append(("Escape time: population over current", _eq(sp.Symbol("tau"), tau_raw)))
    substitutions = {sp.Symbol(f"Phi_{crossings[0].minimum.label}"): 0}
    for crossing, barrier in zip(crossings, barriers, strict=True):
        substitutions[sp.Symbol(f"Phi_{crossing.saddle.label}")] = barrier
    if len(crossings) == 1:
        prefactor = _simplify_prefactor(
            (population / total).subs(substitutions) * sp.exp(-barriers[0])
        )
        exponent: sp.Expr | None = barriers[0]
        tau = prefactor * sp.exp(barriers[0])
    else:
        prefactor = sp.Integer(1)
        exponent = None
        rates: list[sp.Expr] = []
        line, work = progress_line(), 3 * len(crossings)
        for flux, barrier in zip(currents, barriers, strict=True):
            line.update("rates over the saddles", 2 * len(crossings) + len(rates), work)
            rates.append(
                _simplify_prefactor((flux / population).subs(substitutions) * sp.exp(barrier))
                * sp.exp(-barrier)
            )
        tau = 1 / sp.Add(*rates)
    steps.append(("Escape time", _eq(sp.Symbol("tau"), tau)))
    return EngineResult(
        population=population,
        currents=tuple(currents),
        barriers=tuple(barriers),
        tau=tau,
        prefactor=prefactor,
        exponent=exponent,
        steps=tuple(steps),
    )


def _tidy_barrier(integral: sp.Expr) -> sp.Expr:
    """Evaluate the path integral segment by segment and keep the paper's shape:
    (2BΔL/η)(s/H_a + (1 − s)/H_b), (B/(ηh*)) log(L_b/L_a), ΔL/D."""
    pieces = (sp.factor_terms(sp.expand(term.doit())) for term in sp.Add.make_args(integral))
    value = sp.factor_terms(sp.Add(*pieces))
    return value.replace(
        lambda e: isinstance(e, sp.Add) and e.has(sp.log), lambda e: sp.logcombine(e)
    )


def _simplify_prefactor(expr: sp.Expr) -> sp.Expr:
    """Simplify a prefactor (no exponential of the barrier left in it): split powers of
    products, then combine exponents of equal bases. All symbols are positive, so this is exact."""
    tidy = sp.powsimp(sp.expand_power_base(expr, force=True), force=True, combine="exp")
    if tidy.has(sp.exp, sp.log):
        tidy = sp.simplify(tidy)
    return tidy
