"""Compile derived expressions to mpmath, numpy or torch functions, once, with a cache.

- ``"mpmath"``: exact at any working precision. The expression holds only Integer, Rational,
  π and symbols (docs/conventions.md trap 4: no double-precision Float literal), and the mpmath printer
  writes a rational p/q as ``mpf(p)/mpf(q)``, so it is evaluated at ``mpmath.mp.dps``. Real
  arguments run straight-line ``mpmath.libmp`` code (``_libmp``), rounded as ``mpf``
  arithmetic rounds, 2× faster; the ``mpf`` expression is the fallback.
- ``"numpy"`` and ``"torch"``: float64 (or the tensors' dtype) on arrays, broadcasting. Use
  ``log_tau``: it never exponentiates the barrier, so e^(10^5) is no overflow; ``tau`` itself
  overflows to inf past log τ ≈ 709 (docs/conventions.md trap 3).

The generated source is kept on the compiled object (``.source``) and is exactly what runs.
It has no nesting limit: sums, products and log-sum-exps of more than ``CHUNK`` terms (the
determinants of a 1000-dimensional Hessian, many saddles) are accumulated over statements, so
Python's parser (200 nested parentheses) and compiler (one recursion per nested operation)
accept any dimension.
"""

from __future__ import annotations

import builtins
import keyword
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, cast

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import MpmathPrinter

from flatminima.errors import ParameterError

from ._libmp import RAW_NAMESPACE_SOURCE, raw_body
from ._logsumexp import LogSumExp

__all__ = ["ALIASES", "BACKENDS", "CompiledFormula", "compile_formula", "generate_source"]

#: The names ``escape_time`` and the command line use, accepted by compiled formulas beside the
#: symbol names: one vocabulary (lr = η, batch_size = B, barrier = ΔL, diffusion = D).
ALIASES: dict[str, str] = {
    "lr": "eta",
    "batch_size": "B",
    "barrier": "Delta_L",
    "diffusion": "D",
    "loss_min": "L_a",
    "loss_saddle": "L_b",
}

BACKENDS = ("mpmath", "numpy", "torch")


def _fold_constants(expr: sp.Expr) -> sp.Expr:
    """Replace constant subexpressions (log 2, √π, …) by 17-digit Floats (numpy/torch only)."""
    if expr.is_number and not expr.is_Number:
        return sp.Float(expr.evalf(17), 17)
    if not expr.args or isinstance(expr, sp.Indexed):
        return expr
    return expr.func(*(_fold_constants(arg) for arg in expr.args))


def _check_exact(expr: sp.Expr) -> None:
    floats = expr.atoms(sp.Float)
    if floats:  # a bug in a derivation, never user input
        raise RuntimeError(f"float literal {sorted(map(str, floats))} in a derived expression")


class _IndexedMixin:
    """Symbolic dimension n: ``H_a[i]`` (1-based in SymPy) reads entry i − 1 of the sequence
    ``H_a``; ``Product`` becomes a product over ``range``; ``Sum`` is SymPy's own loop."""

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        (index,) = expr.indices
        return f"{expr.base.label.name}[{self._print(index - 1)}]"  # type: ignore[attr-defined]

    def _print_Product(self, expr: sp.Product) -> str:
        (index, lower, upper) = expr.limits[0]
        body = self._print(expr.function)  # type: ignore[attr-defined]
        i, a, b = (self._print(v) for v in (index, lower, upper))  # type: ignore[attr-defined]
        return f"_product({body} for {i} in range({a}, {b} + 1))"


class _Mpmath(_IndexedMixin, MpmathPrinter):
    pass


class _NumPy(_IndexedMixin, NumPyPrinter):
    pass


def _printer(backend: str) -> Any:
    settings = {"fully_qualified_modules": True}
    if backend == "mpmath":
        return _Mpmath(settings)
    if backend == "numpy":
        return _NumPy(settings)
    from sympy.printing.pytorch import TorchPrinter

    class _Torch(_IndexedMixin, TorchPrinter):
        pass

    return _Torch(settings)


def _product(factors: Any) -> Any:
    result: Any = 1
    for factor in factors:
        result = result * factor
    return result


#: Sums, products and log-sum-exps of more terms than this are split over statements.
CHUNK = 32


def _flat(expr: sp.Expr, printer: Any) -> tuple[list[str], str]:
    """``(statements, expression)``: code for ``expr`` in which no sum, product or log-sum-exp
    has more than ``CHUNK`` terms; longer ones are accumulated in temporaries ``_f0``, ``_f1``
    … by the statements (run them first). Small expressions print as ``printer`` prints them."""
    lines: list[str] = []

    def temporary() -> sp.Symbol:
        return sp.Symbol(f"_f{len(lines)}")

    def visit(node: sp.Basic) -> sp.Basic:
        if not node.args or isinstance(node, sp.Sum | sp.Product | sp.Indexed):
            return node  # bound indices: a temporary outside the loop could not see them
        args = [visit(arg) for arg in node.args]
        if len(args) > CHUNK and isinstance(node, sp.Add | sp.Mul | LogSumExp):
            name = temporary()
            chunks = [args[i : i + CHUNK] for i in range(0, len(args), CHUNK)]
            lines.append(f"{name} = {printer.doprint(node.func(*chunks[0]))}")
            for chunk in chunks[1:]:
                lines.append(f"{name} = {printer.doprint(node.func(name, *chunk))}")
            return name
        if all(new is old for new, old in zip(args, node.args, strict=True)):
            return node
        return node.func(*args)

    body = printer.doprint(visit(expr))
    return lines, body


def generate_source(
    name: str,
    parameters: Sequence[str],
    expr: sp.Expr,
    backend: str,
    doc: str = "",
    fast: bool = False,
) -> str:
    """Python source of ``def name(*parameters): return expr`` for ``backend``.

    With ``fast=True`` (mpmath only, what `compile` runs) real arguments take a straight-line
    ``mpmath.libmp`` path (``flatminima.theory._libmp``) before the ``mpf`` expression,
    which stays as the fallback and as the readable form (``fast=False``, what
    ``Derivation.python()`` prints).
    """
    if backend == "mpmath":
        _check_exact(expr)
    else:
        expr = _fold_constants(expr)
    flat, body = _flat(expr, _printer(backend))
    args = ", ".join(parameters)
    numeric = [p for p in parameters if p != "n"]  # n, the symbolic dimension, stays an int
    raw = raw_body(expr, list(parameters)) if fast and backend == "mpmath" else None
    lines = [*raw[1], ""] if raw and raw[1] else []
    flat_lines = [f"    {line}" for line in flat]
    lines.append(f"def {name}({args}):")
    if doc:
        lines.append(f'    """{doc}"""')
    if raw:
        # the common call passes mpf already: one type test each, then straight-line libmp;
        # anything else is converted (to mpf, or mpc/lists that take mpf arithmetic)
        other = " or ".join(f"type({p}) is not _mpf" for p in parameters)
        lines.append(f"    if {other}:")
        lines += [f"        {p} = {p} if type({p}) is _mpf else _to_mpf({p})" for p in numeric]
        lines.append(f"        if {other}:")
        lines += [f"        {line}" for line in flat_lines]
        lines.append(f"            return {body}")
        lines.append("    try:  # real arguments: libmp on the raw tuples, rounded as mpf rounds")
        lines.append("        p = mpmath.mp.prec")
        lines += [f"        {line}" for line in raw[2]]
        lines.append(f"        return _make({raw[0]})")
        lines.append("    except _ComplexResult:  # a complex intermediate: mpf arithmetic")
        lines += [f"    {line}" for line in flat_lines]
        lines.append(f"        return {body}")
        return "\n".join(lines) + "\n"
    if numeric and backend == "mpmath":
        # every argument an mpf before any arithmetic; an inline type test keeps the common
        # case (already an mpf) cheap
        for parameter in numeric:
            lines.append(
                f"    {parameter} = {parameter} if type({parameter}) is _mpf else _to_mpf({parameter})"
            )
    elif numeric:
        converter = {"numpy": "_as_float_arrays", "torch": "_as_tensors"}[backend]
        names = ", ".join(numeric)
        lines.append(f"    {names}, = {converter}({names})")
    lines += flat_lines
    lines.append(f"    return {body}")
    return "\n".join(lines) + "\n"


def _to_mpf(value: Any) -> Any:
    """An argument as an mpf (sequences elementwise) before any arithmetic: Python floats
    multiplied together first would round in float64 and spoil the working precision."""
    import mpmath

    if isinstance(value, mpmath.mpf | mpmath.mpc):
        return value
    if isinstance(value, numbers.Rational):  # int, bool, Fraction, SymPy Rational: exact p/q
        return mpmath.mpf(int(value.numerator)) / int(value.denominator)
    if isinstance(value, str):
        return mpmath.mpf(value)
    if hasattr(value, "is_number") and getattr(value, "is_real", False):  # SymPy Float, π, √2
        return +value.evalf(mpmath.mp.dps + 5)._to_mpmath(mpmath.mp.prec + 10)
    if isinstance(value, numbers.Real):  # float, numpy floats: the double itself
        return mpmath.mpf(float(value))
    if isinstance(value, Iterable):
        return [_to_mpf(v) for v in value]
    return mpmath.mpmathify(value)


MPMATH_HEADER = '''\
import builtins

import mpmath

_mpf = mpmath.mpf


def _to_mpf(v):
    """An argument as an mpf (sequences elementwise) before any arithmetic, so that nothing is
    rounded to float64 on the way; strings are read at the working precision."""
    if isinstance(v, (list, tuple)):
        return [_to_mpf(x) for x in v]
    return mpmath.mpf(v)


def _product(factors):
    result = 1
    for factor in factors:
        result = result * factor
    return result
'''


def _as_float_arrays(*values: Any) -> tuple[Any, ...]:
    import numpy

    out = []
    for value in values:
        array = numpy.asarray(value)
        if not numpy.issubdtype(array.dtype, numpy.floating):
            array = array.astype(numpy.float64)
        out.append(array if array.ndim else array[()])
    return tuple(out)


def _as_tensors(*values: Any) -> tuple[Any, ...]:
    import torch

    reference = next(
        (v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()), None
    )
    dtype = reference.dtype if reference is not None else torch.float64
    device = reference.device if reference is not None else None
    return tuple(
        v
        if isinstance(v, torch.Tensor) and v.is_floating_point()
        else torch.as_tensor(v, dtype=dtype, device=device)
        for v in values
    )


def _namespace(backend: str) -> dict[str, Any]:
    if backend == "mpmath":
        import mpmath

        return {
            "mpmath": mpmath,
            "builtins": builtins,
            "_product": _product,
            "_mpf": mpmath.mpf,
            "_to_mpf": _to_mpf,
        }
    if backend == "numpy":
        import numpy

        return {
            "numpy": numpy,
            "builtins": builtins,
            "_product": _product,
            "_as_float_arrays": _as_float_arrays,
        }
    try:
        import torch
    except ImportError as exc:  # torch is an extra
        raise ParameterError(
            "backend", "an installed backend", "torch", "pip install 'flatminima[validation]'"
        ) from exc
    return {
        "torch": torch,
        "math": math,
        "builtins": builtins,
        "_product": _product,
        "_as_tensors": _as_tensors,
    }


@cache
def _build(
    name: str, parameters: tuple[str, ...], expr: sp.Expr, backend: str
) -> tuple[Callable[..., Any], str]:
    source = generate_source(name, parameters, expr, backend, fast=True)
    namespace = _namespace(backend)
    if backend == "mpmath":
        exec(RAW_NAMESPACE_SOURCE, namespace)
    exec(compile(source, f"<flatminima {backend} {name}>", "exec"), namespace)
    return namespace[name], source


class Kernel:
    """One generated mpmath function (``_value``) of positional ``parameters``: what a
    `CompiledFormula` holds twice (value and log), for callers that need only one."""

    def __init__(self, name: str, parameters: tuple[str, ...], expr: sp.Expr) -> None:
        self.parameters = parameters
        self._value, self.source = _build(name, parameters, expr, "mpmath")


#: Names the generated code uses itself (its precision ``p``, modules); private names start with _.
_RESERVED = {"p", "mpmath", "math", "builtins", "torch", "np", "numpy"}


def mpmath_function(expr: sp.Expr, symbol: sp.Symbol) -> Callable[[Any], Any]:
    """``expr`` as a function of ``symbol`` for mpmath numbers: the straight-line
    ``mpmath.libmp`` code of `compile` (about 2× ``sympy.lambdify(modules="mpmath")`` on
    polynomials at 100 digits), or ``lambdify`` where it cannot be generated (a symbol name
    that is not a Python identifier, a float literal)."""
    name = symbol.name
    if name.isidentifier() and not keyword.iskeyword(name) and name not in _RESERVED | {""}:
        if name.startswith("_"):
            return cast(Callable[[Any], Any], sp.lambdify(symbol, expr, "mpmath"))
        try:
            return _build("function", (name,), expr, "mpmath")[0]
        except Exception:  # any generation failure: SymPy's printer instead
            pass
    return cast(Callable[[Any], Any], sp.lambdify(symbol, expr, "mpmath"))


class CompiledFormula:
    """A derived formula compiled for one backend.

    Call ``value``/``log_value`` (or, for escape times, ``tau``, ``log_tau``, ``rate``,
    ``log_rate``) with the parameters by name (see `parameters`) or position. The names
    ``escape_time`` uses are accepted for the same values: ``lr`` (= ``eta``), ``batch_size``
    (= ``B``), ``barrier`` (= ``Delta_L``), ``diffusion`` (= ``D``), ``loss_min``/``loss_saddle``
    (= ``L_a``/``L_b``). ``expression`` is the SymPy expression compiled.
    For a symbolic dimension n, the eigenvalue parameters ``H_a``, ``H_b`` are sequences
    (entry 0 is direction 1, the escape direction) and ``n`` is their length.
    The functions are raw kernels: they do not check that values are positive; the numerics
    layer ([`flatminima.numerics.escape_time`][flatminima.numerics.escape_time]) does.
    """

    def __init__(
        self,
        backend: str,
        parameters: tuple[str, ...],
        value: sp.Expr,
        log_value: sp.Expr,
        quantity: str,
    ) -> None:
        self.backend = backend
        self.parameters = parameters
        self.quantity = quantity
        self.expression = value  # the derived expression compiled (shown by _repr_latex_)
        self._value, value_source = _build(quantity, parameters, value, backend)
        self._log_value, log_source = _build(f"log_{quantity}", parameters, log_value, backend)
        self.source = value_source + "\n" + log_source

    def __repr__(self) -> str:
        return (
            f"CompiledFormula({self.quantity}, backend={self.backend!r}, "
            f"parameters={self.parameters})"
        )

    def _repr_latex_(self) -> str:
        """Jupyter: the formula compiled, as displayed maths."""
        from ._derivation import to_latex

        lhs = {"tau": r"\tau", "rate": r"\gamma"}.get(
            self.quantity, rf"\mathrm{{{self.quantity}}}".replace("_", r"\_")
        )
        return f"$${lhs} = {to_latex(self.expression)}$$"

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        if not args and len(kwargs) == len(self.parameters):  # the common call: all by name
            try:
                return [kwargs[p] for p in self.parameters]
            except KeyError:
                pass  # fall through to the checks, which name the parameter
        if len(args) > len(self.parameters):
            raise ParameterError(
                "args", f"at most {len(self.parameters)} positional values {self.parameters}", args
            )
        values = dict(zip(self.parameters, args, strict=False))
        for name, val in kwargs.items():
            key = name if name in self.parameters else ALIASES.get(name, name)
            if key not in self.parameters:
                raise ParameterError(
                    name,
                    f"one of the parameters {self.parameters} (or the names escape_time uses: "
                    f"{', '.join(k for k, v in ALIASES.items() if v in self.parameters)})",
                    name,
                )
            if key in values:
                raise ParameterError(key, "the value once (positional or keyword)", val)
            values[key] = val
        missing = [p for p in self.parameters if p not in values]
        if missing:
            raise ParameterError(missing[0], f"a value for every parameter {self.parameters}", None)
        return [values[p] for p in self.parameters]

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not args:  # all by name: Python binds them; a wrong or missing name falls through
            try:
                return fn(**kwargs)
            except TypeError:
                pass  # the checks below name the parameter (or the error recurs as it was)
        return fn(*self._arguments(args, kwargs))

    def value(self, *args: Any, **kwargs: Any) -> Any:
        """The quantity itself (τ for an escape time)."""
        return self._call(self._value, args, kwargs)

    def log_value(self, *args: Any, **kwargs: Any) -> Any:
        """Its natural logarithm, evaluated without forming the exponential."""
        return self._call(self._log_value, args, kwargs)

    # escape-time names
    def tau(self, *args: Any, **kwargs: Any) -> Any:
        """Escape time τ (continuous time, unit η·iterations)."""
        return self._call(self._value, args, kwargs)

    def log_tau(self, *args: Any, **kwargs: Any) -> Any:
        """log τ, safe on arrays whatever the size of τ."""
        return self._call(self._log_value, args, kwargs)

    def rate(self, *args: Any, **kwargs: Any) -> Any:
        """Escape rate γ = 1/τ."""
        return 1 / self.value(*args, **kwargs)

    def log_rate(self, *args: Any, **kwargs: Any) -> Any:
        """log γ = −log τ."""
        return -self.log_value(*args, **kwargs)


def compile_formula(
    value: sp.Expr,
    log_value: sp.Expr,
    parameters: tuple[sp.Symbol, ...],
    backend: str,
    quantity: str,
) -> CompiledFormula:
    """Compile ``value`` and ``log_value`` over ``parameters`` for ``backend``."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ParameterError("backend", "one of 'mpmath', 'numpy', 'torch'", backend)
    names = tuple(p.name for p in parameters)
    return CompiledFormula(backend, names, value, log_value, quantity)
