"""``LogSumExp(x1, x2, …) = log(Σ exp(x_k))`` as a SymPy function that compiles without overflow.

Needed for the log of a sum of escape rates (several saddles), where each term is e^(−ΔΦ_p)
with ΔΦ_p in the thousands: numpy and torch print it as nested ``logaddexp``; mpmath (no
overflow) as ``log(exp(x1) + …)``.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

__all__ = ["LogSumExp"]


class LogSumExp(sp.Function):
    """log(exp(x1) + exp(x2) + …), kept unevaluated for overflow-free code generation."""

    @classmethod
    def eval(cls, *args: sp.Expr) -> sp.Expr | None:
        if len(args) == 1:
            return args[0]
        return None

    def _eval_rewrite_as_log(self, *args: sp.Expr, **kwargs: Any) -> sp.Expr:
        return sp.log(sp.Add(*(sp.exp(a) for a in args)))

    def _eval_is_real(self) -> bool | None:
        return all(a.is_real for a in self.args) or None

    def _nested(self, printer: Any, fn: str) -> str:
        code = printer.doprint(self.args[0])
        for arg in self.args[1:]:
            code = f"{fn}({code}, {printer.doprint(arg)})"
        return code

    def _numpycode(self, printer: Any) -> str:
        return self._nested(printer, "numpy.logaddexp")

    def _torchcode(self, printer: Any) -> str:
        return self._nested(printer, "torch.logaddexp")

    def _mpmathcode(self, printer: Any) -> str:
        terms = " + ".join(f"mpmath.exp({printer.doprint(a)})" for a in self.args)
        return f"mpmath.log({terms})"

    def _latex(self, printer: Any) -> str:
        inner = " + ".join(rf"e^{{{printer.doprint(a)}}}" for a in self.args)
        return rf"\log\left({inner}\right)"
