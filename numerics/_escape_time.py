"""Escape times from Hessians: the theory layer's formulas evaluated at any precision.

``escape_time`` takes the Hessians at the minimum and the saddle as matrices, checks them,
eigen-decomposes them at the working precision, and evaluates the derived formula compiled to
mpmath (the theory layer is the one source of the formulas). ``log_escape_time`` is the
vectorized float64 (or torch) version for parameter sweeps: log τ, never τ itself.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import numpy.typing as npt
import sympy as sp
from mpmath.libmp import fone, mpf_div, mpf_log, mpf_pos, mpf_sub

from flatminima.errors import HessianError, ParameterError, ShapeError, ValidityWarning
from flatminima.theory import derive_escape_time
from flatminima.theory._conventions import NOISE, interpretation_name, numeric_alpha
from flatminima.theory._noise import parse_built_in_noise
from flatminima.theory._progress import progress as show_progress

from ._budget import estimated_escape_seconds
from ._checks import (
    MAX_DPS,
    MIN_DPS,
    check_dps,
    in_open_unit_interval,
    matrix,
    positive,
    real_array,
    same_size,
    symmetric_arrays,
)
from ._eigen import (
    EigenData,
    eigen_data,
    eigen_data_float,
    float_matrix,
    one_dimensional,
    small_floats,
    two_by_two_floats,
)

if TYPE_CHECKING:  # imported with verify=True only (cold start)
    from ._verify import VerificationCheck

__all__ = [
    "VALIDITY_BARRIER",
    "EscapeTime",
    "escape_time",
    "escape_time_batch",
    "log_escape_time",
]

#: Below this quasi-potential barrier ΔΦ the asymptotic formulas are off by 5–30%.
#: Measured against mfpt_1d (docs/scripts/asymptotic_error.py, figure in docs/numerics.md) on the
#: double well x⁴/4 − x²/2 and the Styblinski–Tang slice, white noise and SGD noise (switch
#: model, Itô/Stratonovich/anti-Itô): at ΔΦ ≥ 5 the relative error is c/ΔΦ with c = 0.26–0.60
#: (12% at most at ΔΦ = 5, 3.5–5% at ΔΦ = 10); below 5 it is irregular, see _MEASURED_ERROR.
VALIDITY_BARRIER = 5

#: (ΔΦ up to, smallest, largest) relative error of the formulas measured in that regime, over
#: the 8 curves of docs/scripts/asymptotic_error.py (ΔΦ = 1, 1.5, 2, 3, 4, 5).
_MEASURED_ERROR = ((2.0, 0.006, 0.30), (3.0, 0.04, 0.21), (4.0, 0.05, 0.16), (5.0, 0.05, 0.12))

#: The scalar keyword parameters of escape_time and log_escape_time, in signature order.
_SCALARS = ("barrier", "lr", "batch_size", "diffusion", "s", "loss_min", "loss_saddle", "h_star")


@dataclass(frozen=True)
class EscapeTime:
    """An escape time evaluated from Hessians.

    Attributes
    ----------
    tau, log_tau, rate
        τ (continuous time, unit η·iterations), log τ and γ = 1/τ, as mpf at ``dps`` digits.
    iterations, log_iterations
        τ/η SGD iterations where a learning rate was given, else None.
    quasi_potential
        ΔΦ, the barrier in units of the noise; the formula is asymptotic in ΔΦ → ∞.
    eigen
        The eigen-data used (spectra, escape direction e, H_ae = eᵀH_a e, |H_be|, misalignment).
    method, formula
        How it was computed, and the formula (SymPy text) that was evaluated.
    """

    noise: str
    interpretation: str
    dps: int
    tau: mpmath.mpf
    log_tau: mpmath.mpf
    rate: mpmath.mpf
    iterations: mpmath.mpf | None
    log_iterations: mpmath.mpf | None
    quasi_potential: mpmath.mpf
    eigen: EigenData
    method: str
    formula_source: Any = field(default=None, repr=False, compare=False)
    verified_digits: float | None = None  # set by verify=True: agreement with 2·dps digits
    checks: tuple[VerificationCheck, ...] = ()  # set by verify=True: what was checked

    @property
    def formula(self) -> str:
        """The formula evaluated, as SymPy text (built when asked: printing costs more than
        the evaluation)."""
        source = self.formula_source
        if source is None:
            return ""
        if isinstance(source, str):
            return source
        derivation, dim = source
        text = str(derivation.text())
        return text if derivation.dim == dim else f"{text}  (n = {dim})"

    def to_dict(self) -> dict[str, Any]:
        values = {name: _text(getattr(self, name), self.dps) for name in _VALUE_FIELDS}
        head = {"noise": self.noise, "interpretation": self.interpretation, "dps": self.dps}
        return (
            head
            | values
            | {
                "eigen": self.eigen.to_dict(),
                "method": self.method,
                "formula": self.formula,
                "verified_digits": self.verified_digits,
                "checks": [check.to_dict() for check in self.checks],
            }
        )

    def __repr__(self) -> str:
        its = "" if self.iterations is None else f", iterations={mpmath.nstr(self.iterations, 10)}"
        return (
            f"EscapeTime(noise={self.noise!r}, interpretation={self.interpretation!r}, "
            f"tau={mpmath.nstr(self.tau, 10)}, log_tau={mpmath.nstr(self.log_tau, 10)}{its})"
        )

    def _repr_latex_(self) -> str:
        """Jupyter: the formula evaluated and its value, τ to 10 digits."""
        try:
            from flatminima.theory._derivation import to_latex

            formula = to_latex(sp.sympify(self.formula.split("=", 1)[-1]))
        except (sp.SympifyError, TypeError, SyntaxError):
            formula = ""
        value = (
            mpmath.nstr(self.tau, 10).replace("e+", r"\times 10^{").replace("e-", r"\times 10^{-")
        )
        if r"\times" in value:
            value += "}"
        head = rf"\tau = {formula} = " if formula else r"\tau = "
        return f"$${head}{value}$$"


_VALUE_FIELDS = ("tau", "log_tau", "rate", "iterations", "log_iterations", "quasi_potential")


def _text(x: mpmath.mpf | None, dps: int) -> str | None:
    return None if x is None else mpmath.nstr(x, dps)


_ALPHAS: dict[str, sp.Expr] = {}


def _interpretation(interpretation: Any) -> sp.Expr:
    """α of a named or numeric interpretation, memoised for the names (the common call)."""
    if type(interpretation) is str and interpretation in _ALPHAS:
        return _ALPHAS[interpretation]
    alpha = numeric_alpha(interpretation)
    if type(interpretation) is str:
        _ALPHAS[interpretation] = alpha
    return alpha


def _unused(noise: str, given: dict[str, Any]) -> None:
    allowed = set(NOISE[noise].keywords) | {"lr", "barrier"}
    for name, value in given.items():
        if value is not None and name not in allowed:
            raise ParameterError(
                name, f"not given for {noise} noise (it takes {sorted(allowed)})", value
            )


@cache
def _formula(noise: str, dim: int, alpha: sp.Expr) -> Any:
    return derive_escape_time(noise, dim=dim, interpretation=alpha)


@cache
def _compiled(noise: str, dim: int, alpha: sp.Expr, what: str, backend: str) -> Any:
    """The derived τ ("tau"), ΔΦ ("phi") or log τ − ΔΦ ("log_prefactor") compiled."""
    derivation = _formula(noise, dim, alpha)
    if what == "tau":
        return derivation.compile(backend)
    from flatminima.theory._compile import Kernel

    expr = derivation.quasi_potential
    if what == "log_prefactor":  # SymPy cancels the exponent: what is left is a few logs
        expr = sp.expand(derivation.log_value - derivation.quasi_potential)
    return Kernel(what, tuple(p.name for p in derivation.parameters), expr)


#: From this dimension on, the formula is the one derived for a symbolic dimension n, reduced to
#: log-determinants (the formulas depend on the transverse curvatures only through them).
REDUCED_FROM_DIM = 3


@cache
def _reduced(noise: str, alpha: sp.Expr) -> tuple[Any, Any, Any]:
    """(derivation at symbolic n, compiled log τ, compiled log ΔΦ) with ``Σ log H_a[i]`` →
    ``log_det_H_a``, ``Σ_{i≥2} log H_b[i]`` → ``log_det_H_b_transverse``, ``H_x[1]`` →
    ``H_x_1``. Raises if the derived formula depends on the curvatures otherwise."""
    from flatminima.theory._compile import Kernel

    derivation = derive_escape_time(noise, dim="n", interpretation=alpha)
    log_det_a = sp.Symbol("log_det_H_a", real=True)
    log_det_bt = sp.Symbol("log_det_H_b_transverse", real=True)
    h_a1 = sp.Symbol("H_a_1", positive=True)
    h_b1 = sp.Symbol("H_b_1", positive=True)

    def sums(expr: sp.Expr) -> sp.Expr:
        def replace(node: sp.Sum) -> sp.Expr:
            ((_, low, _),) = node.limits
            base = node.function.args[0].base.label.name if node.function.args else ""
            if isinstance(node.function, sp.log) and base == "H_a" and low == 1:
                return log_det_a
            if isinstance(node.function, sp.log) and base == "H_b" and low == 2:
                return log_det_bt
            raise RuntimeError(f"escape_time: unexpected sum in the derived formula: {node}")

        out = expr.replace(lambda e: isinstance(e, sp.Sum), replace)
        out = out.replace(
            lambda e: isinstance(e, sp.Indexed) and e.indices == (1,),
            lambda e: h_a1 if e.base.label.name == "H_a" else h_b1,
        )
        if out.has(sp.Indexed) or out.has(sp.Sum) or out.has(sp.Product):
            raise RuntimeError(f"escape_time: the derived formula is not reducible: {out}")
        return sp.expand_log(out, force=True)

    log_tau = sums(derivation.log_value)
    phi = sums(derivation.quasi_potential)
    order = [log_det_a, log_det_bt, h_a1, h_b1]
    rest = sorted(
        (x for x in (log_tau.free_symbols | phi.free_symbols) if x not in order),
        key=lambda x: x.name,
    )
    parameters = tuple(x for x in order if log_tau.has(x) or phi.has(x)) + tuple(rest)
    names = tuple(p.name for p in parameters)
    return derivation, Kernel("log_tau", names, log_tau), Kernel("quasi_potential", names, phi)


def _curvature_arguments(noise: str, eig: EigenData) -> dict[str, Any]:
    """Curvature values for the formula's symbols (direction 1 is e)."""
    n = eig.dim
    if n >= REDUCED_FROM_DIM:
        values: dict[str, Any] = {
            "H_a_1": eig.curvature_min_along_e,
            "H_b_1": eig.curvature_saddle_e,
            "n": n,
        }
        if eig.log_det_min is not None and eig.log_abs_det_saddle is not None:
            values["log_det_H_a"] = eig.log_det_min
            values["log_det_H_b_transverse"] = eig.log_abs_det_saddle - mpmath.log(
                eig.curvature_saddle_e
            )
        return values
    if n == 1:
        return {"H_a": eig.min_eigenvalues[0], "H_b": eig.curvature_saddle_e}
    values = {}
    if noise == "sgd":
        values["H_a_1"] = eig.curvature_min_along_e
    else:  # white and loss-dependent use det H_a: any order of the eigenvalues
        for i, v in enumerate(eig.min_eigenvalues, 1):
            values[f"H_a_{i}"] = v
    values["H_b_1"] = eig.curvature_saddle_e
    for i, v in enumerate(eig.saddle_eigenvalues[1:], 2):
        values[f"H_b_{i}"] = v
    return values


def _from_symbol_names(names: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """escape_time's keywords for the formula's symbol names (eta → lr, B → batch_size, …)."""
    from flatminima.theory._compile import ALIASES

    symbols = {v: k for k, v in ALIASES.items()}
    out: dict[str, Any] = {}
    for name, value in names.items():
        if name not in symbols:
            raise ParameterError(
                name,
                "a parameter of escape_time (hess_min, hess_saddle, barrier, lr, batch_size, "
                "diffusion, s, loss_min, loss_saddle, h_star, interpretation, dps, verify) or a "
                f"symbol name ({', '.join(symbols)})",
                name,
            )
        keyword = symbols[name]
        if given[keyword] is not None:
            raise ParameterError(name, f"either {keyword}= or {name}=, not both", value)
        out[keyword] = value
    return out


def escape_time(
    noise: str,
    *,
    hess_min: Any,
    hess_saddle: Any,
    barrier: Any = None,
    lr: Any = None,
    batch_size: Any = None,
    diffusion: Any = None,
    s: Any = None,
    loss_min: Any = None,
    loss_saddle: Any = None,
    h_star: Any = None,
    interpretation: Any = "ito",
    dps: int = 30,
    verify: bool = False,
    progress: bool | None = None,
    **symbol_names: Any,
) -> EscapeTime:
    r"""Escape time of a valley from its Hessians, at ``dps`` digits, whatever its size.

    Parameters
    ----------
    noise
        ``"white"`` (needs ``diffusion``), ``"sgd"`` (needs ``lr``, ``batch_size``, ``s``) or
        ``"loss-dependent"`` (needs ``lr``, ``batch_size``, ``loss_min``, ``loss_saddle``,
        ``h_star``).
    hess_min, hess_saddle
        Hessians at the minimum (positive definite) and the saddle (exactly one negative
        eigenvalue): numpy arrays, nested lists, mpmath matrices, or numbers in 1-D.
    barrier
        ΔL = L(saddle) − L(minimum) > 0 (white, sgd; for loss-dependent it is
        ``loss_saddle − loss_min`` and may be omitted).
    lr, batch_size
        η > 0 and B > 0. B need not be an integer here: it only sets the noise scale κ = η/(2B).
        ``lr`` also converts τ to iterations, for every noise.
    diffusion
        White-noise D > 0 (noise of std σ per GD step is D = σ²/(2η)).
    s
        SGD switch fraction in (0, 1): the fraction of the barrier climbed on the minimum's
        side (docs/conventions.md §2). For a C¹ piecewise-quadratic valley s = |H_be|/(H_ae + |H_be|)
        ([`flatminima.theory.derive_switch_fraction`][flatminima.theory.derive_switch_fraction]).
    interpretation
        ``"ito"`` (default, discrete SGD), ``"stratonovich"``, ``"anti-ito"`` (the paper's
        prefactor) or α ∈ [0, 1]. White noise does not depend on it.
    dps
        Decimal digits (15 to 10000, default 30). Strings are read at this precision:
        ``lr="0.1"``.
    verify
        Evaluate again at 2·dps digits and require τ itself to agree to dps − 5 digits (else
        [`ConvergenceError`][flatminima.errors.ConvergenceError]); ``verified_digits`` and
        ``checks`` report it.
    progress
        Show the stage and an ETA on stderr: None (default) when stderr is a terminal and the
        Hessians are large enough for more than 2 s of work (n ≳ 330), True always, False never.
    **symbol_names
        The formula's symbol names are accepted for the same values: ``eta`` (= ``lr``), ``B``
        (= ``batch_size``), ``Delta_L`` (= ``barrier``), ``D`` (= ``diffusion``), ``L_a``
        (= ``loss_min``), ``L_b`` (= ``loss_saddle``). Any other name, or both names of one
        value, raises [`ParameterError`][flatminima.errors.ParameterError].

    Returns
    -------
    EscapeTime
        ``tau``, ``log_tau``, ``rate``, ``iterations`` (τ/η), the eigen-data and the method.

    Warns
    -----
    ValidityWarning
        When ΔΦ < 5 (the formula is asymptotic; the warning says by how much it is outside),
        or, for SGD, when the escape direction e is not an eigenvector of H_a (misalignment
        above 1e-3). The SGD formula assumes a common eigenbasis; with misalignment it uses the
        curvature along e, H_ae = eᵀH_a e, which is only an approximation: on a 2-D landscape
        with misalignment 0.26 the exact MFPT (``mfpt_2d``) differed from it by 12–14% at
        ΔΦ = 10 and 22–23% at ΔΦ = 14 — the exponent itself is off, so the error grows with the
        barrier.

    Notes
    -----
    Formulas (derived by [`flatminima.theory.derive_escape_time`][flatminima.theory.derive_escape_time]): white noise,
    :math:`\tau = \frac{2\pi}{|H_{be}|}\sqrt{\frac{|\det H_b|}{\det H_a}}e^{\Delta L/D}`;
    SGD, :math:`\tau = \frac{2\pi}{|H_{be}|}\left(\frac{|H_{be}|}{H_{ae}}\right)^{1-\alpha}
    \exp\left[\frac{2B\Delta L}{\eta}\left(\frac{s}{H_{ae}}+\frac{1-s}{|H_{be}|}\right)\right]`.

    Examples
    --------
    >>> r = escape_time("sgd", hess_min=[[2, 0], [0, 5]], hess_saddle=[[-1, 0], [0, 3]],
    ...                 barrier="0.5", lr="0.1", batch_size=64, s="0.5", dps=20)
    >>> mpmath.nstr(r.log_tau, 12), mpmath.nstr(r.log_iterations, 12)  # Itô: log(2π/H_ae) + ΔΦ
    ('481.144729886', '483.447314979')

    Good: pass decimals as strings (``lr="0.1"``) to get them at ``dps`` digits. Bad:
    ``lr=0.1`` is the double 0.1000000000000000055…, exact for that double but not for 0.1.
    """
    scalars = (barrier, lr, batch_size, diffusion, s, loss_min, loss_saddle, h_star)
    given = dict(zip(_SCALARS, scalars, strict=True))
    if symbol_names:
        given.update(_from_symbol_names(symbol_names, given))
    noise = parse_built_in_noise(noise)
    dps = dps if type(dps) is int and MIN_DPS <= dps <= MAX_DPS else check_dps(dps)
    if verify:
        from ._verify import verified

        def at(digits: int) -> EscapeTime:
            return escape_time(
                noise,
                hess_min=hess_min,
                hess_saddle=hess_saddle,
                interpretation=interpretation,
                dps=digits,
                progress=progress,
                **given,
            )

        # τ itself: log τ rounded to dps digits would lose log10(log τ) digits
        return verified(at, dps, lambda r: r.tau, "escape_time")
    alpha = _interpretation(interpretation)
    _unused(noise, given)
    ctx = mpmath.mp
    saved = ctx.prec
    ctx.dps = dps + 10
    try:
        with show_progress("escape_time", estimated_escape_seconds(hess_min), progress) as line:
            line.update("eigen-data of the Hessians (float64, refined at dps + 10 digits)", 0)
            eig = _eigen(noise, hess_min, hess_saddle)
        values = _curvature_arguments(noise, eig)
        values.update(_noise_values(noise, given, dps))
        derivation, log_tau, phi = _evaluate(noise, eig.dim, alpha, values)
        tau = mpmath.exp(log_tau)  # no overflow in mpmath: one evaluation, not two
        eta = values.get("eta") if given["lr"] is not None else None
        if given["lr"] is not None and eta is None:  # white noise: lr only converts τ
            eta = _parsed("lr", given["lr"], positive)
    finally:
        ctx.prec = saved
    _warn_validity(noise, phi, eig)
    return _result(noise, alpha, dps, derivation, eig, tau, log_tau, phi, eta)


def _evaluate(
    noise: str, dim: int, alpha: sp.Expr, values: dict[str, Any]
) -> tuple[Any, mpmath.mpf, mpmath.mpf]:
    """(derivation, log τ, ΔΦ) at the working precision: log τ = ΔΦ + log(prefactor), the
    exponent evaluated once."""
    if dim >= REDUCED_FROM_DIM:
        derivation, tau_compiled, phi_compiled = _reduced(noise, alpha)
        arguments = [values[name] for name in tau_compiled.parameters]
        return derivation, tau_compiled._value(*arguments), phi_compiled._value(*arguments)
    phi_compiled = _compiled(noise, dim, alpha, "phi", "mpmath")
    prefactor = _compiled(noise, dim, alpha, "log_prefactor", "mpmath")
    phi = phi_compiled._value(*[values[name] for name in phi_compiled.parameters])
    log_prefactor = prefactor._value(*[values[name] for name in prefactor.parameters])
    return _formula(noise, dim, alpha), phi + log_prefactor, phi


def _noise_values(noise: str, given: dict[str, Any], dps: int) -> dict[str, mpmath.mpf]:
    """The noise's parameters by formula symbol, checked and read at the working precision."""
    values: dict[str, mpmath.mpf] = {}
    if noise == "white":
        values["D"] = _required("diffusion", given["diffusion"], positive)
        values["Delta_L"] = _required("barrier", given["barrier"], positive)
        return values
    values["eta"] = _required("lr", given["lr"], positive)
    values["B"] = _required("batch_size", given["batch_size"], positive)
    if noise == "sgd":
        detail = (
            "the fraction of the barrier climbed on the minimum's side; "
            "s = |H_be|/(H_ae + |H_be|) for a C¹ piecewise-quadratic valley"
        )
        values["s"] = _required("s", given["s"], in_open_unit_interval, detail)
        values["Delta_L"] = _required("barrier", given["barrier"], positive)
        return values
    values["h_star"] = _required("h_star", given["h_star"], positive)
    detail = "L(a) > 0: the loss-dependent noise needs a positive loss at the minimum"
    low = _required("loss_min", given["loss_min"], positive, detail)
    high = _required("loss_saddle", given["loss_saddle"], positive)
    if high <= low:
        raise ParameterError(
            "loss_saddle", f"a loss above loss_min = {mpmath.nstr(low, 8)}", given["loss_saddle"]
        )
    barrier = given["barrier"]
    if barrier is not None and abs(positive("barrier", barrier) - (high - low)) > (
        mpmath.mpf(10) ** (-dps) * high
    ):
        raise ParameterError("barrier", "loss_saddle − loss_min (or leave it out)", barrier)
    values["L_a"], values["L_b"] = low, high
    return values


def _result(
    noise: str,
    alpha: sp.Expr,
    dps: int,
    derivation: Any,
    eig: EigenData,
    tau: mpmath.mpf,
    log_tau: mpmath.mpf,
    phi: mpmath.mpf,
    eta: mpmath.mpf | None,
) -> EscapeTime:
    """The EscapeTime record: every value rounded once to ``dps`` digits (raw libmp)."""
    prec = mpmath.libmp.dps_to_prec(dps)
    make = mpmath.mp.make_mpf

    def rounded(x: Any) -> mpmath.mpf:
        return make(mpf_pos(x, prec, "n"))

    iterations = log_iterations = None
    if eta is not None:
        work = mpmath.libmp.dps_to_prec(dps + 10)  # the working precision of the call
        iterations = make(mpf_div(tau._mpf_, eta._mpf_, prec, "n"))
        log_iterations = rounded(mpf_sub(log_tau._mpf_, _log(eta, work), work))
    return EscapeTime(
        noise=noise,
        interpretation=interpretation_name(alpha),
        dps=dps,
        tau=rounded(tau._mpf_),
        log_tau=rounded(log_tau._mpf_),
        rate=make(mpf_div(fone, tau._mpf_, prec, "n")),
        iterations=iterations,
        log_iterations=log_iterations,
        quasi_potential=rounded(phi._mpf_),
        eigen=eig,
        method=_method(derivation.model, eig.dim, alpha, eig.method, dps),
        formula_source=(derivation, eig.dim),
    )


def escape_time_batch(
    noise: str, *, hess_min: Any, hess_saddle: Any, **parameters: Any
) -> list[EscapeTime]:
    """[`escape_time`][flatminima.numerics.escape_time] for many Hessian pairs with the same
    other parameters.

    Parameters
    ----------
    noise
        As for ``escape_time``.
    hess_min, hess_saddle
        Stacks of Hessians of equal length: arrays of shape ``(k, n, n)`` or sequences of
        matrices (any input ``escape_time`` takes).
    **parameters
        The other keyword arguments of ``escape_time`` (``barrier``, ``lr``, ``dps``, …), shared
        by every pair.

    Returns
    -------
    list[EscapeTime]
        One result per pair, in order; the same values as one ``escape_time`` call per pair.

    Notes
    -----
    The derived formula, its compiled form and the parsed interpretation are shared by the
    calls; each pair is eigen-decomposed on its own (float64 ``eigh`` and exact refinement, or
    the closed forms in 1-D and 2-D). For float64 log τ of very many pairs at once, use
    [`log_escape_time`][flatminima.numerics.log_escape_time] (batched ``eigh``).

    Examples
    --------
    >>> rs = escape_time_batch("white", hess_min=[[[2.0]], [[3.0]]],
    ...                        hess_saddle=[[[-1.0]], [[-1.0]]], barrier="2", diffusion="0.25")
    >>> [mpmath.nstr(r.log_tau, 10) for r in rs]
    ['9.491303476', '9.288570922']
    """
    for name, stack in (("hess_min", hess_min), ("hess_saddle", hess_saddle)):
        if (
            not hasattr(stack, "__len__")
            or isinstance(stack, str | bytes)
            or getattr(stack, "ndim", 1) == 0  # a 0-d array has __len__ but no length
        ):
            raise ShapeError(name, "a stack of Hessians (k, n, n) or a sequence of matrices", stack)
    if len(hess_min) != len(hess_saddle):
        raise ShapeError(
            "hess_saddle",
            f"as many Hessians as hess_min ({len(hess_min)})",
            f"{len(hess_saddle)}",
        )
    return [
        escape_time(noise, hess_min=a, hess_saddle=b, **parameters)
        for a, b in zip(hess_min, hess_saddle, strict=True)
    ]


def _eigen(noise: str, hess_min: Any, hess_saddle: Any) -> EigenData:
    """Eigen-data at the working precision: the float64 path for float input (vectorised
    conversion, eigh, exact refinement), the mpmath path for exact input or as fallback."""
    h_a, h_b = _curvature(hess_min), _curvature(hess_saddle)
    if h_a is not None and h_b is not None:  # 1-D numbers: no numpy
        return one_dimensional(h_a, h_b)
    if type(hess_min) in (list, tuple) and type(hess_saddle) in (list, tuple):
        a_flat = small_floats("hess_min", hess_min)  # 2×2 lists of floats: no numpy either
        b_flat = small_floats("hess_saddle", hess_saddle) if a_flat is not None else None
        if a_flat is not None and b_flat is not None and len(a_flat) == len(b_flat) == 4:
            return two_by_two_floats(a_flat, b_flat)
    a = float_matrix("hess_min", hess_min)
    b = float_matrix("hess_saddle", hess_saddle) if a is not None else None
    if a is not None and b is not None:
        if a.shape != b.shape:
            raise ShapeError(
                "hess_saddle",
                f"a {a.shape[0]}x{a.shape[0]} matrix like hess_min",
                f"{b.shape[0]}x{b.shape[1]}",
            )
        eig = eigen_data_float(a, b, need_det=noise != "sgd")
        if eig is not None:
            return eig
    h_a = matrix("hess_min", hess_min)
    h_b = matrix("hess_saddle", hess_saddle)
    same_size(("hess_min", "hess_saddle"), h_a, h_b)
    return eigen_data(h_a, h_b)


def _curvature(value: Any) -> float | None:
    """A 1-D Hessian given as a Python number or ``[[number]]``, as a float when that is
    exact; None for anything else (the general paths read it)."""
    if type(value) in (list, tuple) and len(value) == 1:
        row = value[0]
        value = row[0] if type(row) in (list, tuple) and len(row) == 1 else None
    kind = type(value)
    if kind is float:
        return value if -math.inf < value < math.inf else None
    if kind is int and abs(value) <= 2**53:
        return float(value)
    return None


def _required(name: str, value: Any, check: Any, detail: str = "") -> mpmath.mpf:
    if value is None:
        expected = {
            "positive": "a positive finite number",
            "in_open_unit_interval": "a number in (0, 1)",
        }.get(check.__name__, "a value")
        raise ParameterError(name, expected, None, detail or "it is required for this noise")
    return _parsed(name, value, check)


#: Checked parameters by (check, type, value, precision): a call repeated with the same
#: strings or numbers ("0.05", 32) reads them once. Only immutable plain types are memoised.
_PARSED: dict[tuple[Any, ...], mpmath.mpf] = {}
_LOGS: dict[tuple[Any, int], Any] = {}
_MEMO_SIZE = 4096


def _parsed(name: str, value: Any, check: Any) -> mpmath.mpf:
    """``check(name, value)`` at the working precision, memoised for str, int and float."""
    kind = type(value)
    if kind is not str and kind is not int and kind is not float:
        return check(name, value)
    key = (check, kind, value, mpmath.mp.prec)
    hit = _PARSED.get(key)
    if hit is None:
        hit = check(name, value)
        if len(_PARSED) >= _MEMO_SIZE:
            _PARSED.clear()
        _PARSED[key] = hit
    return hit


def _log(x: mpmath.mpf, prec: int) -> Any:
    """log x as a raw libmp value at ``prec`` bits, memoised (log η for the iterations)."""
    key = (x._mpf_, prec)
    hit = _LOGS.get(key)
    if hit is None:
        hit = mpf_log(x._mpf_, prec, "n")
        if len(_LOGS) >= _MEMO_SIZE:
            _LOGS.clear()
        _LOGS[key] = hit
    return hit


@cache
def _method(model: str, dim: int, alpha: sp.Expr, eigen_method: str, dps: int) -> str:
    dim_text = dim if dim < REDUCED_FROM_DIM else f"n = {dim}, reduced to log det"
    return (
        f"{model}; formula derived by flatminima.theory (flux over population, "
        f"dim {dim_text}, {interpretation_name(alpha)}), compiled to mpmath; Hessians: "
        f"{eigen_method} (working precision {dps + 10} digits)"
    )


#: Misalignment above which the SGD formula warns (e not an eigenvector of H_a).
_MISALIGNED = 1e-3


def _warn_validity(noise: str, phi: mpmath.mpf, eig: EigenData) -> None:
    if phi < VALIDITY_BARRIER:
        k = next(k for k, row in enumerate(_MEASURED_ERROR) if phi <= row[0])
        upto, low, high = _MEASURED_ERROR[k]
        regime = f"ΔΦ ≤ {upto:g}" if k == 0 else f"{_MEASURED_ERROR[k - 1][0]:g} < ΔΦ ≤ {upto:g}"
        warnings.warn(
            f"the asymptotic escape-time formula is used at a quasi-potential barrier ΔΦ = "
            f"{mpmath.nstr(phi, 4)} < {VALIDITY_BARRIER} (barrier not large against the noise); "
            f"measured against exact MFPTs on two test landscapes, its relative error at "
            f"{regime} was {low:.0%} to {high:.0%} (it falls like 0.26/ΔΦ to 0.6/ΔΦ only "
            "above ΔΦ = 5); use flatminima.numerics.mfpt_1d for an exact value",
            ValidityWarning,
            stacklevel=3,
        )
    if noise == "sgd" and eig.dim > 1 and eig.misalignment > _MISALIGNED:
        warnings.warn(
            f"the escape direction e is not an eigenvector of hess_min (misalignment "
            f"‖H_a e − H_ae e‖/‖H_a e‖ = {float(eig.misalignment):.3g}); the SGD formula "
            "assumes a common eigenbasis and here uses H_ae = eᵀ H_a e, an approximation whose "
            "error grows with the barrier (measured on a 2-D landscape with misalignment 0.26: "
            "12–14% at ΔΦ = 10, 22–23% at ΔΦ = 14 against the exact MFPT); check with "
            "flatminima.numerics.mfpt_2d",
            ValidityWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------
# vectorized log space


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _array(
    name: str, value: Any, xp: Any, positive_only: bool = True, upper: float | None = None
) -> Any:
    """A parameter for the array path: checked by the shared ``real_array`` (numbers, arrays,
    tensors, mpmath/SymPy numbers, decimal strings; no bool, complex, NaN, inf, empty); torch
    tensors are kept as they are (device, dtype, autograd) once their values passed."""
    if value is None:
        return None
    arr = real_array(name, value, positive_only=positive_only, upper=upper, copy=False)
    if xp is np:
        return arr
    import torch

    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value
    return torch.as_tensor(arr, dtype=torch.float64, device="cpu")


def _batched_eigen(
    name_min: str, h_a: Any, name_saddle: str, h_b: Any, xp: Any
) -> tuple[Any, Any, Any, Any]:
    """Eigenvalues of H_a, of H_b, |H_be| and H_ae = eᵀH_a e, batched over leading axes.

    Both are checked as escape_time checks them (finite, real, symmetric square matrices of
    one size) before any decomposition."""
    a_checked = symmetric_arrays(name_min, h_a)
    b_checked = symmetric_arrays(name_saddle, h_b)
    if b_checked.shape[-1] != a_checked.shape[-1]:
        raise ShapeError(
            name_saddle,
            f"square matrices of the size of {name_min} ({a_checked.shape[-1]})",
            f"shapes {a_checked.shape} and {b_checked.shape}",
        )
    a: Any
    b: Any
    if xp is np:
        a, b = a_checked, b_checked
        va, _ = np.linalg.eigh(a)
        vb, wb = np.linalg.eigh(b)
        e = wb[..., :, 0]
        h_ae = np.einsum("...i,...ij,...j->...", e, a, e)
    else:
        import torch

        def tensor(original: Any, checked: np.ndarray, like: Any = None) -> Any:
            if isinstance(original, torch.Tensor) and original.is_floating_point():
                t = original.reshape(checked.shape)
                return 0.5 * (t + t.transpose(-1, -2))
            if like is not None:
                return torch.as_tensor(checked, dtype=like.dtype, device=like.device)
            return torch.as_tensor(checked, dtype=torch.float64, device="cpu")

        a = tensor(h_a, a_checked)
        b = tensor(h_b, b_checked, like=a)
        if b.dtype != a.dtype or b.device != a.device:
            b = b.to(dtype=a.dtype, device=a.device)
        va = torch.linalg.eigvalsh(a)
        vb, wb = torch.linalg.eigh(b)
        e = wb[..., :, 0]
        h_ae = torch.einsum("...i,...ij,...j->...", e, a, e)
    if bool((va[..., 0] <= 0).any()):
        raise HessianError(
            name_min, "positive definite matrices", "a matrix with an eigenvalue ≤ 0"
        )
    negatives = (vb < 0).sum(-1)
    if bool((negatives != 1).any()) or bool((vb == 0).any()):
        raise HessianError(
            name_saddle, "matrices with exactly one negative eigenvalue", "a matrix without"
        )
    return va, vb, -vb[..., 0], h_ae


#: An array of values, or a torch tensor (``log_escape_time`` keeps tensors as they are).
ArrayOrTensor = npt.ArrayLike | Any


def log_escape_time(
    noise: str,
    *,
    hess_min: ArrayOrTensor,
    hess_saddle: ArrayOrTensor,
    barrier: ArrayOrTensor | None = None,
    lr: ArrayOrTensor | None = None,
    batch_size: ArrayOrTensor | None = None,
    diffusion: ArrayOrTensor | None = None,
    s: ArrayOrTensor | None = None,
    loss_min: ArrayOrTensor | None = None,
    loss_saddle: ArrayOrTensor | None = None,
    h_star: ArrayOrTensor | None = None,
    interpretation: Any = "ito",
    **symbol_names: Any,
) -> Any:
    """log τ on arrays (numpy float64, or torch where any input is a tensor), for sweeps.

    Same parameters as [`escape_time`][flatminima.numerics.escape_time] (the formula's symbol
    names ``eta``, ``B``, ``Delta_L``, ``D``, ``L_a``, ``L_b`` too); every scalar parameter may
    be an array, and the Hessians may be batched (``(..., n, n)``); everything broadcasts.
    Never forms τ, so no overflow whatever the barrier. Add ``-log(lr)`` for log iterations.

    Parameters
    ----------
    noise, hess_min, hess_saddle, barrier, lr, batch_size, diffusion, s, loss_min, loss_saddle
        As for ``escape_time``; arrays broadcast.
    h_star
        As for ``escape_time``.
    interpretation
        ``"ito"`` (default), ``"stratonovich"``, ``"anti-ito"`` or a number α ∈ [0, 1].
    **symbol_names
        The formula's names for the same values: ``eta``, ``B``, ``Delta_L``, ``D``, ``L_a``,
        ``L_b``.

    Examples
    --------
    >>> out = log_escape_time("sgd", hess_min=2.0, hess_saddle=-1.0, barrier=0.5,
    ...                       lr=np.array([0.05, 0.1]), batch_size=64, s=0.5)
    >>> np.round(out, 6)
    array([961.14473, 481.14473])
    """
    noise = parse_built_in_noise(noise)
    alpha = _interpretation(interpretation)
    scalars: tuple[Any, ...] = (
        barrier,
        lr,
        batch_size,
        diffusion,
        s,
        loss_min,
        loss_saddle,
        h_star,
    )
    given = dict(zip(_SCALARS, scalars, strict=True))
    if symbol_names:
        given.update(_from_symbol_names(symbol_names, given))
        scalars = tuple(given[k] for k in _SCALARS)
    _unused(noise, given)
    xp: Any = np
    backend = "numpy"
    if any(_is_torch(v) for v in (hess_min, hess_saddle, *scalars)):
        import torch

        xp, backend = torch, "torch"
    va, vb, h_be, h_ae = _batched_eigen("hess_min", hess_min, "hess_saddle", hess_saddle, xp)
    n = int(va.shape[-1])
    values = _array_curvatures(noise, va, vb, h_be, h_ae)
    values.update(_array_values(noise, given, xp))
    compiled = _compiled(noise, n, alpha, "tau", backend)
    arguments = {name: values[name] for name in compiled.parameters}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = compiled.log_tau(**arguments)
    if not _all_finite(out, xp):
        _blame_overflow(compiled, arguments, xp)
    return out


def _array_curvatures(noise: str, va: Any, vb: Any, h_be: Any, h_ae: Any) -> dict[str, Any]:
    """The curvature symbols of the n-D formula from batched eigenvalues (direction 1 is e)."""
    n = int(va.shape[-1])
    if n == 1:
        return {"H_a": va[..., 0], "H_b": h_be}
    values: dict[str, Any] = {}
    if noise == "sgd":
        values["H_a_1"] = h_ae
    else:
        for i in range(n):
            values[f"H_a_{i + 1}"] = va[..., i]
    values["H_b_1"] = h_be
    for i in range(1, n):
        values[f"H_b_{i + 1}"] = vb[..., i]
    return values


def _array_values(noise: str, given: dict[str, Any], xp: Any) -> dict[str, Any]:
    """The noise's parameters as checked arrays (or tensors), by formula symbol."""

    def get(name: str, upper: float | None = None) -> Any:
        return _array(name, _need(name, given[name]), xp, upper=upper)

    if noise == "white":
        return {"D": get("diffusion"), "Delta_L": get("barrier")}
    values = {"eta": get("lr"), "B": get("batch_size")}
    if noise == "sgd":
        values["s"] = get("s", upper=1.0)
        values["Delta_L"] = get("barrier")
        return values
    values["h_star"] = get("h_star")
    values["L_a"], values["L_b"] = get("loss_min"), get("loss_saddle")
    if bool((values["L_b"] <= values["L_a"]).any()):
        raise ParameterError("loss_saddle", "values above loss_min", "a value ≤ loss_min")
    return values


#: The user's name of each formula symbol (curvatures: the Hessians).
_USER_NAMES = {
    "D": "diffusion",
    "Delta_L": "barrier",
    "eta": "lr",
    "B": "batch_size",
    "s": "s",
    "h_star": "h_star",
    "L_a": "loss_min",
    "L_b": "loss_saddle",
}


def _all_finite(out: Any, xp: Any) -> bool:
    if xp is np:
        return bool(np.all(np.isfinite(out)))
    return bool(xp.all(xp.isfinite(out)))


def _blame_overflow(compiled: Any, arguments: dict[str, Any], xp: Any) -> None:
    """log τ is not finite in float64 (2BΔL/η beyond 1.8·10³⁰⁸, η = 10⁻³⁰⁸): raise naming the
    parameter that, set to an ordinary value, makes it finite."""
    for symbol, value in arguments.items():
        trial = dict(arguments)
        trial[symbol] = value * 0 + (0.5 if symbol == "s" else 1.0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if _all_finite(compiled.log_tau(**trial), xp):
                break
    else:
        symbol = next(iter(arguments))
    name = _USER_NAMES.get(symbol, "hess_saddle" if symbol.startswith("H_b") else "hess_min")
    shown = arguments[symbol]
    if name in ("hess_min", "hess_saddle"):
        shown = "its eigenvalues"
    elif xp is not np or np.ndim(shown):
        shown = f"values from {float(shown.min()):g} to {float(shown.max()):g}"
    raise ParameterError(
        name,
        "a value for which log τ fits in float64 (|log τ| < 1.8e308)",
        shown,
        "log τ overflows the float64 array evaluation; escape_time evaluates it at any size "
        "in mpmath",
    )


def _need(name: str, value: Any) -> Any:
    if value is None:
        raise ParameterError(name, "a value (it is required for this noise)", None)
    return value
