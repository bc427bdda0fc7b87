"""A loss typed on the command line, read as data: never evaluated as code.

``parse_loss("(x**2-1)**2 + y**2 + x*y/2", ["x", "y"])`` returns the SymPy expression and its
symbols. The text is parsed by ``ast.parse(text, mode="eval")`` (which only parses) and the
syntax tree is walked with a whitelist; the SymPy expression is built node by node. Allowed:

- numbers (``2``, ``0.5``, ``1e-3``: read from their digits as exact rationals, so ``0.1`` is
  1/10 and not the nearest double), the declared variable names, ``pi`` and ``E``;
- ``+ - * / **`` (``^`` is read as ``**`` with its precedence, as SymPy reads it), unary ``-``
  and ``+``,
  parentheses;
- calls of one argument to ``exp log sqrt sin cos tan tanh cosh sinh abs``.

Everything else (attributes, subscripts, lambdas, strings, names starting with ``_``,
comprehensions, keyword arguments, other functions, comparisons, ...) is a ``ParameterError``
naming the option. ``sympify`` and ``parse_expr`` call ``eval`` and are not used.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Sequence
from typing import Any

from flatminima.errors import ParameterError

__all__ = ["FUNCTIONS", "parse_loss", "parse_variables"]

#: Function names a loss may call (one argument each) and their SymPy names.
FUNCTIONS = {
    **{name: name for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "cosh", "sinh")},
    "abs": "Abs",
}
CONSTANTS = ("pi", "E")
MAX_CHARS = 20_000
MAX_EXPONENT = 1000  # a numeric exponent above this is refused (10**10**10 would never finish)
MAX_DIGITS = 10_000  # nor a power of numbers with more digits than this
_EXPECTED = "a loss in the declared variables using numbers, + - * / ** ( ) and " + " ".join(
    FUNCTIONS
)


def _refuse(option: str, text: str, what: str) -> ParameterError:
    return ParameterError(option, _EXPECTED, text, what)


def parse_variables(text: str, option: str = "--variables") -> list[str]:
    """Comma-separated variable names (``"x,y"``), each an identifier that is not a function,
    a constant, a Python keyword or a name starting with ``_``, each once."""
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if (
            not name.isidentifier()
            or name.startswith("_")
            or keyword.iskeyword(name)
            or name in FUNCTIONS
            or name in CONSTANTS
        ):
            raise ParameterError(
                option,
                "comma-separated variable names such as x,y (letters, digits, no leading _, "
                "not a function or constant name)",
                text,
            )
    if len(set(names)) != len(names):
        raise ParameterError(option, "each variable named once", text)
    return names


def _digits(number: Any) -> float:
    """About how many decimal digits a rational's numerator or denominator has."""
    p, q = abs(int(number.p)), abs(int(number.q))
    return 0.30103 * max(p.bit_length(), q.bit_length())


class _Builder:
    """Walks the syntax tree of ``text`` and builds the SymPy expression."""

    def __init__(self, text: str, option: str, variables: Sequence[str] | None) -> None:
        import sympy as sp

        self.sp = sp
        self.text = text
        self.source = text.replace("^", "**")  # what is parsed (see parse_loss)
        self.option = option
        self.declared = None if variables is None else list(variables)
        self.symbols: dict[str, Any] = {}
        if self.declared is not None:
            self.symbols = {name: sp.Symbol(name, real=True) for name in self.declared}
        self.used: set[str] = set()

    def refuse(self, what: str) -> ParameterError:
        return _refuse(self.option, self.text, what)

    def build(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return self.build(node.body)
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        return self.refuse_node(node)

    def refuse_node(self, node: ast.AST) -> Any:
        kind = type(node).__name__
        shown = {
            "Attribute": "an attribute (.name)",
            "Subscript": "a subscript ([...])",
            "Lambda": "a lambda",
            "Compare": "a comparison",
            "BoolOp": "and/or",
            "IfExp": "if/else",
            "ListComp": "a comprehension",
            "GeneratorExp": "a comprehension",
            "DictComp": "a comprehension",
            "SetComp": "a comprehension",
            "NamedExpr": "an assignment (:=)",
            "JoinedStr": "a string",
            "Starred": "*arguments",
        }.get(kind, f"{kind} syntax")
        raise self.refuse(f"{shown} is not allowed")

    def number(self, node: ast.Constant) -> Any:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.refuse(f"the literal {value!r} is not a real number")
        if isinstance(value, int):
            if abs(value) > 10**100:
                raise self.refuse("an integer literal above 10**100")
            return self.sp.Integer(value)
        digits = ast.get_source_segment(self.source, node) or repr(value)
        try:
            return self.sp.Rational(digits.replace("_", ""))
        except (TypeError, ValueError):  # pragma: no cover - Python accepted the digits
            raise self.refuse(f"the number {digits!r}") from None

    def name(self, name: str) -> Any:
        if name.startswith("_"):
            raise self.refuse(f"the name {name!r} (names starting with _ are not allowed)")
        if name in CONSTANTS:
            return getattr(self.sp, name)
        if name in FUNCTIONS:
            raise self.refuse(f"the function {name!r} without an argument")
        if name not in self.symbols:
            if self.declared is not None:
                declared = ", ".join(self.declared)
                raise self.refuse(f"unknown variable {name!r}; the variables are {declared}")
            self.symbols[name] = self.sp.Symbol(name, real=True)
        self.used.add(name)
        return self.symbols[name]

    def binary(self, node: ast.BinOp) -> Any:
        op = node.op
        if not isinstance(op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow):
            raise self.refuse(f"the operator {type(op).__name__} (use + - * / **)")
        left, right = self.build(node.left), self.build(node.right)
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            if right == 0:
                raise self.refuse("a division by zero")
            return left / right
        if right.is_Number and abs(right) > MAX_EXPONENT:
            raise self.refuse(f"an exponent above {MAX_EXPONENT} in absolute value")
        if left.is_Rational and right.is_Number and _digits(left) * abs(right) > MAX_DIGITS:
            raise self.refuse(f"a number with more than {MAX_DIGITS} digits")
        if left == 0 and right.is_Number and right.is_negative:
            raise self.refuse("a division by zero")
        return left**right

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            called = repr(func.id) if isinstance(func, ast.Name) else "an expression"
            allowed = ", ".join(FUNCTIONS)
            raise self.refuse(f"a call of {called}; the functions are {allowed}")
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.refuse(f"{func.id}() takes exactly one argument, no keywords")
        return getattr(self.sp, FUNCTIONS[func.id])(self.build(node.args[0]))


def parse_loss(
    text: str, variables: Sequence[str] | None = None, option: str = "--landscape"
) -> tuple[Any, list[Any]]:
    """The SymPy expression of a loss typed as text, and its symbols in order.

    Parameters
    ----------
    text
        The loss, e.g. ``"(x**2-1)**2 + y**2 + x*y/2"`` (see the module docstring for what is
        allowed). Never evaluated: parsed and rebuilt node by node.
    variables
        The variable names in coordinate order; a name outside them is an error. ``None``: the
        names that occur, sorted (SymPy's order).
    option
        The option named in an error.

    Returns
    -------
    (expression, symbols)
        Symbols are real; each declared variable must occur in the expression.
    """
    if not isinstance(text, str) or not text.strip():
        raise _refuse(option, text, "the loss is empty")
    if len(text) > MAX_CHARS:
        raise _refuse(option, text[:40], f"longer than {MAX_CHARS} characters")
    builder = _Builder(text.strip(), option, variables)
    try:
        # ^ is a power, as SymPy reads it: replaced before parsing, so that it binds like **
        # (Python's ^ binds more loosely than +); ^ means nothing else in an allowed loss
        tree = ast.parse(builder.source, mode="eval")
    except SyntaxError as exc:
        raise _refuse(option, text, f"not an expression: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise _refuse(option, text[:40], "nested too deeply or not text") from None
    try:
        expr = builder.build(tree)
    except RecursionError:
        raise _refuse(option, text[:40], "nested too deeply") from None
    if variables is None:
        names = sorted(builder.used)
    else:
        names = list(variables)
        unused = [name for name in names if name not in builder.used]
        if unused:
            raise ParameterError(
                "--variables", f"variables that occur in {option}", ", ".join(unused)
            )
    if not names:
        raise _refuse(option, text, "it has no variable")
    if not expr.free_symbols:
        raise _refuse(option, text, "the loss does not depend on its variables")
    sp = builder.sp
    if expr.has(sp.zoo, sp.oo, sp.nan):
        raise _refuse(option, text, "it contains an infinite or undefined term such as log(0)")
    return expr, [builder.symbols[name] for name in names]
