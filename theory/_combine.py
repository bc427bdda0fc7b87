"""Derived consequences of the escape time: valley occupation, flat-vs-sharp selection, and the
switch fraction s of a piecewise-quadratic valley.

- Two valleys a and c joined by a saddle b, in quasi-equilibrium: the two-state master equation
  ``dP_a/dt = −γ_a P_a + γ_c P_c`` has the stationary ratio ``P_a/P_c = γ_c/γ_a = τ_a/τ_c``.
- Flat and sharp minima with the same barrier ΔL, switch fraction s and saddle: the rate ratio
  ``γ_sharp/γ_flat = τ_flat/τ_sharp``. SGD (α = 1): ``exp[(2BΔLs/η)(1/H_flat − 1/H_sharp)]``,
  exponential; white noise: ``√(det H_sharp/det H_flat)``, polynomial (docs/conventions.md §3).
- A C¹ valley made of the parabola ``L(a) + H_a u²/2`` glued to the inverted parabola
  ``L(b) − |H_b|(u − ℓ)²/2`` with matching value and slope: ``s = |H_b|/(H_a + |H_b|)``.
"""

from __future__ import annotations

import sympy as sp

from ._conventions import interpretation_alpha, parse_dim, parse_noise, sym
from ._derivation import Derivation, Formula
from ._derive import build_derivation
from ._noise import NOISE, Crossing, Site

__all__ = ["derive_occupation_ratio", "derive_selection_ratio", "derive_switch_fraction"]


def _eq(lhs: sp.Basic, rhs: sp.Basic) -> sp.Eq:
    return sp.Eq(lhs, rhs, evaluate=False)


def _escape(
    noise: str,
    minimum: str,
    dim: int | sp.Symbol,
    alpha: sp.Expr,
    barrier: sp.Symbol,
    switch: sp.Symbol,
) -> Derivation:
    site = Site(minimum, "minimum", dim)
    crossing = Crossing(site, Site("b", "saddle", dim), barrier, switch)
    return build_derivation(NOISE[noise], [crossing], alpha)


def _ratio_formula(
    quantity: str,
    numerator: Derivation,
    denominator: Derivation,
    steps: list[tuple[str, sp.Basic]],
    assumptions: list[str],
    model: str,
    substitutions: dict[sp.Basic, sp.Basic] | None = None,
) -> Formula:
    """value = τ_numerator/τ_denominator, simplified; log value = log τ_num − log τ_den."""
    subs = substitutions or {}
    value_raw = (numerator.tau / denominator.tau).subs(subs)
    log_value = sp.expand(
        sp.expand_log((numerator.log_tau - denominator.log_tau).subs(subs), force=True)
    )
    pre_num = numerator.prefactor.subs(subs)
    pre_den = denominator.prefactor.subs(subs)
    exponent = sp.Integer(0)
    if numerator.exponent is not None and denominator.exponent is not None:
        exponent = sp.factor_terms(
            sp.expand(numerator.exponent.subs(subs) - denominator.exponent.subs(subs))
        )
    if NOISE[numerator.noise].power_law_in_loss:
        value = sp.powsimp(sp.expand_power_base(value_raw, force=True), force=True, combine="exp")
    else:
        prefactor = sp.powsimp(
            sp.expand_power_base(pre_num / pre_den, force=True), force=True, combine="exp"
        )
        value = prefactor * sp.exp(exponent)
    if (
        sp.simplify(sp.expand_log(sp.log(value), force=True) - log_value) != 0
    ):  # consistency, not input
        raise RuntimeError(f"{quantity}: value and log value disagree")
    steps.append((quantity, _eq(sp.Symbol(quantity), value)))
    symbols = {**numerator.symbols, **denominator.symbols}
    free = {s for s in value.free_symbols if isinstance(s, sp.Symbol)}
    order = [p for p in (*numerator.parameters, *denominator.parameters) if p in free]
    parameters = tuple(dict.fromkeys(order)) + tuple(
        sorted(free - set(order), key=lambda s: s.name)
    )
    return Formula(
        quantity=quantity,
        value=value,
        log_value=log_value,
        parameters=parameters,
        symbols={
            k: v
            for k, v in symbols.items()
            if not isinstance(v, sp.Symbol) or v in free or k in {"n", "i"}
        },
        steps=steps,
        assumptions=assumptions,
        model=model,
    )


def derive_occupation_ratio(
    noise: str = "sgd", dim: int | str = 1, interpretation: str | float = "ito"
) -> Formula:
    r"""Quasi-equilibrium occupation ratio P(V_a)/P(V_c) of two valleys a and c joined by one
    saddle b.

    The two-state master equation :math:`\dot P_a = -\gamma_a P_a + \gamma_c P_c`,
    :math:`P_a + P_c = 1`, is solved by SymPy; its stationary ratio is
    :math:`P_a/P_c = \gamma_c/\gamma_a = \tau_a/\tau_c`, with τ_a, τ_c from
    [`derive_escape_time`][flatminima.theory.derive_escape_time]'s engine. Barriers ``Delta_L_a`` = L(b) − L(a) and ``Delta_L_c``,
    switch fractions ``s_a``, ``s_c``; curvatures ``H_a``, ``H_c`` and the shared ``H_b``.

    Parameters
    ----------
    noise
        ``"white"``, ``"sgd"`` (default) or ``"loss-dependent"``, as for ``derive_escape_time``.
    dim
        Number of dimensions (default 1) or ``"n"`` for a symbolic dimension.
    interpretation
        ``"ito"`` (default), ``"stratonovich"``, ``"anti-ito"`` or a number α ∈ [0, 1].

    Examples
    --------
    >>> derive_occupation_ratio("white").value
    sqrt(H_c)*exp((Delta_L_a - Delta_L_c)/D)/sqrt(H_a)
    """
    noise_name = parse_noise(noise)
    dim_value = parse_dim(dim)
    alpha = interpretation_alpha(interpretation)
    tau_a = _escape(noise_name, "a", dim_value, alpha, sym("Delta_L_a"), sym("s_a"))
    tau_c = _escape(noise_name, "c", dim_value, alpha, sym("Delta_L_c"), sym("s_c"))
    gamma_a, gamma_c, p_a, p_c, t = sp.symbols("gamma_a gamma_c P_a P_c t", positive=True)
    balance = [sp.Eq(0, -gamma_a * p_a + gamma_c * p_c), sp.Eq(p_a + p_c, 1)]
    solution = sp.solve(balance, [p_a, p_c], dict=True)[0]
    ratio = sp.simplify(solution[p_a] / solution[p_c])
    steps: list[tuple[str, sp.Basic]] = [
        ("Escape time from valley a", _eq(sp.Symbol("tau_a"), tau_a.tau)),
        ("Escape time from valley c", _eq(sp.Symbol("tau_c"), tau_c.tau)),
        (
            "Master equation",
            _eq(sp.Derivative(sp.Function("P_a")(t), t), -gamma_a * p_a + gamma_c * p_c),
        ),
        ("Stationary solution", _eq(sp.Symbol("P_a/P_c"), ratio)),
        ("With γ = 1/τ", _eq(sp.Symbol("P_a/P_c"), sp.Symbol("tau_a") / sp.Symbol("tau_c"))),
    ]
    if sp.simplify(ratio - gamma_c / gamma_a) != 0:  # the derivation itself, checked
        raise RuntimeError(f"master equation gave {ratio}")
    assumptions = list(dict.fromkeys([*tau_a.assumptions, *tau_c.assumptions]))
    assumptions.append(
        "quasi-equilibrium between the two valleys: each relaxes within itself much faster than "
        "it escapes, and the rates are the Kramers rates γ = 1/τ"
    )
    return _ratio_formula("occupation_ratio", tau_a, tau_c, steps, assumptions, tau_a.model)


def derive_selection_ratio(
    noise: str = "sgd", dim: int | str = 1, interpretation: str | float = "anti-ito"
) -> Formula:
    r"""Escape-rate ratio γ_sharp/γ_flat of a sharp and a flat minimum with the same barrier ΔL,
    switch fraction s and saddle b.

    ``γ_sharp/γ_flat = τ_flat/τ_sharp``. For SGD at α = 1 (the paper's form)
    :math:`\exp[(2B\Delta L s/\eta)(1/H_{flat} - 1/H_{sharp})]` — exponential in the sharpness
    difference; for white noise :math:`\sqrt{\det H_{sharp}/\det H_{flat}}` — polynomial. For
    loss-dependent noise both minima sit at the same loss ``L_a`` and each valley has its own
    noise curvature ``h_star_flat``/``h_star_sharp``.

    Parameters
    ----------
    noise, dim
        The noise model (``"sgd"``, the default, ``"white"`` or ``"loss-dependent"``) and the
        number of dimensions (default 1, or ``"n"``), as for ``derive_occupation_ratio``.
    interpretation
        ``"anti-ito"`` (default: α = 1, the paper's form), ``"ito"``, ``"stratonovich"`` or a
        number α ∈ [0, 1].

    Examples
    --------
    >>> derive_selection_ratio("sgd").value
    exp(2*B*Delta_L*s*(-1/H_sharp + 1/H_flat)/eta)
    >>> derive_selection_ratio("white").value
    sqrt(H_sharp)/sqrt(H_flat)
    """
    noise_name = parse_noise(noise)
    dim_value = parse_dim(dim)
    alpha = interpretation_alpha(interpretation)
    barrier, switch = sym("Delta_L"), sym("s")
    flat = _escape(noise_name, "flat", dim_value, alpha, barrier, switch)
    sharp = _escape(noise_name, "sharp", dim_value, alpha, barrier, switch)
    substitutions: dict[sp.Basic, sp.Basic] = {}
    if NOISE[noise_name].power_law_in_loss:
        substitutions = {sym("L_flat"): sym("L_a"), sym("L_sharp"): sym("L_a")}
    steps: list[tuple[str, sp.Basic]] = [
        ("Escape time from the flat minimum", _eq(sp.Symbol("tau_flat"), flat.tau)),
        ("Escape time from the sharp minimum", _eq(sp.Symbol("tau_sharp"), sharp.tau)),
        (
            "Rate ratio",
            _eq(
                sp.Symbol("gamma_sharp/gamma_flat"), sp.Symbol("tau_flat") / sp.Symbol("tau_sharp")
            ),
        ),
    ]
    assumptions = list(dict.fromkeys([*flat.assumptions, *sharp.assumptions]))
    assumptions.append(
        "the two minima share the saddle b, the barrier ΔL and the switch fraction s"
    )
    return _ratio_formula("rate_ratio", flat, sharp, steps, assumptions, flat.model, substitutions)


def derive_switch_fraction() -> Formula:
    r"""The switch fraction s of a C¹ piecewise-quadratic 1-D valley, derived.

    The parabola :math:`L(a) + H_a u^2/2` (u from a) meets the inverted parabola
    :math:`L(a) + \Delta L - H_b (u - \ell)^2/2` (ℓ = distance from a to b) at the switch point
    u_c with matching value and slope. SymPy solves for u_c and ℓ; then
    :math:`s = (L(u_c) - L(a))/\Delta L = H_b/(H_a + H_b)`.

    Examples
    --------
    >>> derive_switch_fraction().value
    H_b/(H_a + H_b)
    """
    h_a, h_b, barrier = sym("H_a"), sym("H_b"), sym("Delta_L")
    u, u_c, ell = sym("u"), sym("u_c"), sym("ell")
    left = h_a * u**2 / 2
    right = barrier - h_b * (u - ell) ** 2 / 2
    equations = [
        sp.Eq(left.subs(u, u_c), right.subs(u, u_c)),
        sp.Eq(sp.diff(left, u).subs(u, u_c), sp.diff(right, u).subs(u, u_c)),
    ]
    solutions = [
        sol
        for sol in sp.solve(equations, [u_c, ell], dict=True)
        if sol[u_c].is_positive is not False and sol[ell].is_positive is not False
    ]
    if len(solutions) != 1:
        raise RuntimeError(f"piecewise-quadratic valley: expected one solution, got {solutions}")
    solution = solutions[0]
    s_value = sp.simplify(left.subs(u, solution[u_c]) / barrier)
    steps: list[tuple[str, sp.Basic]] = [
        ("Loss on a's side, u from a (relative to L(a))", _eq(sp.Function("L_left")(u), left)),
        ("Loss on b's side", _eq(sp.Function("L_right")(u), right)),
        ("Value and slope match at u_c", sp.And(*equations)),
        ("Switch point", _eq(u_c, solution[u_c])),
        ("Distance from a to b", _eq(ell, solution[ell])),
        ("Fraction of the barrier climbed on a's side", _eq(sym("s"), s_value)),
    ]
    return Formula(
        quantity="s",
        value=s_value,
        log_value=sp.expand_log(sp.log(s_value), force=True),
        parameters=(h_a, h_b),
        symbols={"H_a": h_a, "H_b": h_b, "Delta_L": barrier, "u_c": u_c, "ell": ell},
        steps=steps,
        assumptions=[
            "1-D valley: parabola of curvature H_a around a glued, with matching value and slope, "
            "to an inverted parabola of curvature −H_b around b (C¹, piecewise quadratic)",
            "the switch of the SGD noise from κH_a to κ|H_b| happens where the pieces meet",
        ],
        model="C¹ piecewise-quadratic valley (harmonic switch at the junction)",
    )
