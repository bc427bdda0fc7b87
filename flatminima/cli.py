"""The ``flatminima`` command line.

Commands
--------
formula   print a derived escape-time formula (LaTeX, text or Python), optionally with its steps
scaling   classify log τ against sharpness, batch size, learning rate, noise or loss ratio
evaluate  evaluate an escape time from Hessian matrices at any precision
validate  run an experiment (covariance, sharpness, batch-size, learning-rate, selection, all)
          and write results, figures and a verdict
report    the main job: derive, evaluate and write a report (``--quick`` for the demo)

Every error a user can cause (a bad name, a dimension < 1, α outside [0, 1], …) prints one line
``flatminima: error: …`` on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
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


def _read_matrix(option: str, text: str) -> Any:
    """A matrix from JSON text ("[[2, 0], [0, 5]]", "3.5") or a .json / .npy file."""
    import json
    from pathlib import Path

    from flatminima.errors import ParameterError

    path = Path(text)
    if text.endswith((".npy", ".json")) or path.is_file():
        if not path.is_file():
            raise ParameterError(option, "a JSON matrix or an existing .json/.npy file", text)
        if text.endswith(".npy"):
            import numpy as np

            try:
                return np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise ParameterError(
                    option, "a readable .npy file of numbers", text, str(exc)
                ) from None
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            raise ParameterError(
                option, "a JSON text file or a .npy file", text, type(exc).__name__
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(
            option, "a JSON matrix such as [[2, 0], [0, 5]] or a .json/.npy file", text, exc.msg
        ) from None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json
    import warnings

    import mpmath

    from flatminima.errors import ValidityWarning
    from flatminima.numerics import escape_time

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ValidityWarning)
        result = escape_time(
            args.noise,
            hess_min=_read_matrix("--hess-min", args.hess_min),
            hess_saddle=_read_matrix("--hess-saddle", args.hess_saddle),
            barrier=args.barrier,
            lr=args.lr,
            batch_size=args.batch_size,
            diffusion=args.diffusion,
            s=args.s,
            loss_min=args.loss_min,
            loss_saddle=args.loss_saddle,
            h_star=args.h_star,
            interpretation=args.interpretation,
            dps=args.dps,
        )
    for warning in caught:
        print(f"flatminima: warning: {warning.message}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    digits = result.dps

    def show(value: Any) -> str:
        return "-" if value is None else mpmath.nstr(value, digits)

    eig = result.eigen
    lines = [
        f"tau            = {show(result.tau)}",
        f"log tau        = {show(result.log_tau)}",
        f"rate           = {show(result.rate)}",
        f"iterations     = {show(result.iterations)}",
        f"log iterations = {show(result.log_iterations)}",
        f"quasi-potential barrier = {mpmath.nstr(result.quasi_potential, 10)}",
        f"H_ae = {mpmath.nstr(eig.curvature_min_along_e, 10)}, "
        f"|H_be| = {mpmath.nstr(eig.curvature_saddle_e, 10)}, "
        f"misalignment = {mpmath.nstr(eig.misalignment, 3)}",
        f"formula: {result.formula}",
        f"method: {result.method}",
    ]
    print("\n".join(lines))
    return 0


def _executor(args: argparse.Namespace) -> Any:
    from flatminima.validation import make_executor

    return make_executor(
        workers=args.workers, scheduler=args.scheduler, local_cluster=args.local_cluster
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from flatminima.validation import validate

    analyses = validate(
        args.experiment, args.out, quick=args.quick, device=args.device, executor=_executor(args)
    )
    held = all(a["verdict"]["held"] for a in analyses.values())
    print(
        f"validate {args.experiment}: {'every prediction held' if held else 'some predictions did not hold'} (see {args.out})"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from flatminima.validation.report import run_report

    run_report(
        out=args.out, quick=args.quick, dps=args.dps, device=args.device, executor=_executor(args)
    )
    return 0


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument(
        "--workers", type=int, default=None, help="local worker processes (0 or 1: in this process)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="run the sweep on a Dask scheduler, e.g. tcp://host:8786"
    )
    parser.add_argument(
        "--local-cluster",
        type=int,
        default=None,
        metavar="N",
        help="run the sweep on a local Dask cluster of N workers",
    )


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

    evaluate = sub.add_parser(
        "evaluate", help="evaluate an escape time from Hessians at any precision"
    )
    evaluate.add_argument("noise", choices=NOISES, help="noise model")
    evaluate.add_argument(
        "--hess-min",
        required=True,
        help="Hessian at the minimum: JSON ([[2,0],[0,5]] or 2) or a .json/.npy file",
    )
    evaluate.add_argument(
        "--hess-saddle", required=True, help="Hessian at the saddle: JSON or a .json/.npy file"
    )
    evaluate.add_argument("--barrier", help="ΔL = L(saddle) − L(minimum)")
    evaluate.add_argument("--lr", help="learning rate η (also turns τ into iterations)")
    evaluate.add_argument("--batch-size", help="batch size B")
    evaluate.add_argument("--s", help="SGD switch fraction in (0, 1)")
    evaluate.add_argument("--diffusion", help="white-noise diffusion D")
    evaluate.add_argument("--loss-min", help="loss at the minimum (loss-dependent noise)")
    evaluate.add_argument("--loss-saddle", help="loss at the saddle (loss-dependent noise)")
    evaluate.add_argument("--h-star", help="noise curvature h* (loss-dependent noise)")
    evaluate.add_argument(
        "--interpretation", default="ito", help="ito, stratonovich, anti-ito or α in [0, 1]"
    )
    evaluate.add_argument("--dps", type=int, default=30, help="decimal digits (15 to 10000)")
    evaluate.add_argument("--format", choices=("text", "json"), default="text")
    evaluate.set_defaults(func=_cmd_evaluate)

    validate = sub.add_parser("validate", help="run an experiment that tests the theory")
    validate.add_argument(
        "experiment",
        choices=(
            "covariance",
            "sharpness",
            "batch-size",
            "learning-rate",
            "selection",
            "all",
        ),
    )
    validate.add_argument("--quick", action="store_true", help="the reduced version (minutes)")
    validate.add_argument("--out", required=True, help="output folder (reruns resume from it)")
    _add_executor_options(validate)
    validate.set_defaults(func=_cmd_validate)

    report = sub.add_parser("report", help="the main job: derive, evaluate, write a report")
    report.add_argument(
        "--quick", action="store_true", help="the quick version (what `make demo` runs)"
    )
    report.add_argument("--out", default="flatminima-report", help="output folder")
    report.add_argument("--dps", type=int, default=30, help="decimal digits for mpmath values")
    _add_executor_options(report)
    report.set_defaults(func=_cmd_report)
    return parser


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Warnings print as one line ``flatminima: warning: …`` (a source line of the code that
    warned would tell a command-line user nothing)."""

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        print(f"flatminima: warning: {message}", file=file or sys.stderr, flush=True)

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flatminima`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Any], int] = args.func
    try:
        with _one_line_warnings():
            return func(args)
    except FlatMinimaError as exc:
        print(f"flatminima: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flatminima: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
