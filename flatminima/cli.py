"""The ``flatminima`` command line.

Commands
--------
formula   print a derived escape-time formula (LaTeX, text or Python), optionally with its steps
scaling   classify log τ against sharpness, batch size, learning rate, noise or loss ratio
report    the main job: derive, evaluate and write a report (``--quick`` for the demo)

Every error a user can cause (a bad name, a dimension < 1, α outside [0, 1], …) prints one line
``flatminima: error: …`` on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from flatminima import __version__
from flatminima.errors import FlatMinimaError

__all__ = ["main"]

NOISES = ("white", "sgd", "loss-dependent")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"flatminima: error: {message} (see '{self.prog} --help')\n")


def _cmd_formula(args: argparse.Namespace) -> int:
    from flatminima.theory import derive_escape_time

    derivation = derive_escape_time(
        args.noise, dim=args.dim, interpretation=args.interpretation, saddles=args.saddles
    )
    out: list[str] = []
    if args.format == "latex":
        if args.steps:
            out.append(derivation.format_steps("latex"))
        out.append(derivation.latex(equation=True))
    elif args.format == "python":
        out.append(derivation.python())
    else:
        if args.steps:
            out.append(f"Model: {derivation.model}")
            out.append("Assumptions:")
            out.extend(f"  - {a}" for a in derivation.assumptions)
            out.append("Steps:")
            out.append(derivation.format_steps("text"))
            out.append("Result:")
        out.append(derivation.text())
    print("\n".join(out))
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    from flatminima.theory import derive_escape_time, scaling_law

    derivation = derive_escape_time(args.noise, dim=args.dim, interpretation=args.interpretation)
    for wrt in args.wrt:
        law = scaling_law(derivation, wrt=wrt)
        print(f"{law.wrt}: {law.statement}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from flatminima.validation.report import run_report

    run_report(out=args.out, quick=args.quick, dps=args.dps)
    return 0


def _add_derivation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("noise", choices=NOISES, help="noise model")
    parser.add_argument("--dim", default="1", help="dimension: 1, 2, … or n (symbolic); default 1")
    parser.add_argument(
        "--interpretation",
        default="ito",
        help="ito (α=0, default), stratonovich (α=1/2), anti-ito (α=1, the paper's prefactor), "
        "a number α in [0, 1], or alpha (symbolic)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flatminima",
        description="Density diffusion theory of SGD: derived escape-time formulas, exact "
        "references and escape experiments.",
    )
    parser.add_argument("--version", action="version", version=f"flatminima {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    formula = sub.add_parser("formula", help="print a derived escape-time formula")
    _add_derivation_options(formula)
    formula.add_argument("--format", choices=("latex", "text", "python"), default="text")
    formula.add_argument("--steps", action="store_true", help="print the derivation steps")
    formula.add_argument(
        "--saddles", type=int, default=1, help="number of escape saddles (rates add)"
    )
    formula.set_defaults(func=_cmd_formula)

    scaling = sub.add_parser("scaling", help="classify log τ against a variable")
    _add_derivation_options(scaling)
    scaling.add_argument(
        "--wrt",
        nargs="+",
        default=["sharpness", "batch_size", "lr"],
        help="sharpness, batch_size, lr, loss_ratio, diffusion, barrier",
    )
    scaling.set_defaults(func=_cmd_scaling)

    report = sub.add_parser("report", help="the main job: derive, evaluate, write a report")
    report.add_argument(
        "--quick", action="store_true", help="the quick version (what `make demo` runs)"
    )
    report.add_argument("--out", default="flatminima-report", help="output folder")
    report.add_argument("--dps", type=int, default=30, help="decimal digits for mpmath values")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flatminima`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Any], int] = args.func
    try:
        return func(args)
    except FlatMinimaError as exc:
        print(f"flatminima: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flatminima: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
