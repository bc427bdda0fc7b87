"""The ``flatminima`` command line.

Commands
--------
formula   print a derived escape-time formula (LaTeX, text or Python), optionally with its steps
scaling   classify log τ against sharpness, batch size, learning rate, noise or loss ratio
evaluate  evaluate an escape time from Hessian matrices at any precision
validate  run a registered experiment (``flatminima experiments`` lists them) or all, and
          write results, figures and a verdict
experiments  list the registered experiments
report    the main job: derive, evaluate and write a report (``--quick`` for the demo)
probe     probe your own network (FILE.py:factory): Hessian top, gradient noise, escape

Exit status: 0 success (for ``validate``: every prediction held), 1 (``validate`` only) some
prediction did not hold, 2 a usage error, 130 interrupted.

Every error a user can cause (a bad name, a dimension < 1, α outside [0, 1], an output path that
is a file, a folder that cannot be written, an optional package that is not installed) prints
one line ``flatminima: error: …`` on stderr, saying what to do, and exits with status 2; no
traceback. Choices are case-insensitive (``SGD``, ``ITO``); names use one vocabulary: ``lr``
and ``batch-size`` (``batch_size`` is accepted too).
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

WRT = ("sharpness", "batch-size", "lr", "loss-ratio", "diffusion", "barrier")
#: Optional packages and the extra that installs them.
OPTIONAL = {
    "torch": "validation",
    "matplotlib": "validation",
    "sklearn": "validation",
    "distributed": "validation",
    "dask": "validation",
    "tqdm": "validation",
}

EXIT_OK, EXIT_NOT_HELD, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _choice(*names: str, aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    """An argparse type: case-insensitive choice (``-``/``_`` alike), with aliases."""

    def parse(text: str) -> str:
        key = text.strip().lower()
        for name in names:
            if key.replace("_", "-") == name.replace("_", "-"):
                return name
        if aliases and key in aliases:
            return aliases[key]
        shown = ", ".join(names)
        raise argparse.ArgumentTypeError(f"expected one of {shown}, got {text!r}")

    parse.__name__ = "choice"
    return parse


class _NoiseNames:
    """The noise-model names for a help text, read from the theory layer when shown."""

    def __str__(self) -> str:
        from flatminima.theory import NOISE_MODELS

        return ", ".join(NOISE_MODELS)


def _add_noise_argument(parser: argparse.ArgumentParser, *extra: str) -> None:
    def parse(text: str) -> str:
        from flatminima.theory import NOISE_MODELS

        return _choice(*NOISE_MODELS, *extra)(text)

    parse.__name__ = "choice"
    shown = "".join(f", {name} (with --landscape)" for name in extra)
    action = parser.add_argument(
        "noise", type=parse, metavar="noise", help=f"noise model: %(noise_models)s{shown}"
    )
    action.noise_models = _NoiseNames()  # type: ignore[attr-defined]


def _experiment_name(text: str) -> str:
    """An argparse type: a registered experiment (case-insensitive, ``-``/``_`` alike, aliases
    such as ``lr``) or ``all``; the registry is read only when the command is parsed."""
    try:
        from flatminima.validation._registry import _EXPERIMENTS, experiment_names
    except ImportError:  # the command itself reports the missing package
        return text
    names = (*experiment_names(), "all")
    aliases = {a: e.name for e in _EXPERIMENTS.values() for a in e.aliases}
    return _choice(*names, aliases=aliases)(text)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"flatminima: error: {message} (see '{self.prog} --help')\n")


#: What each symbol of a derivation means (for the legend of ``formula --format latex --steps``).
SYMBOL_MEANINGS = {
    "H_a": "curvature at the minimum a along the escape direction e",
    "H_b": "curvature magnitude at the saddle b along e",
    "Delta_L": "barrier L(b) - L(a)",
    "eta": "learning rate",
    "B": "batch size",
    "s": "switch fraction: share of the barrier climbed on the minimum's side",
    "D": "white-noise diffusion",
    "D_a": "diffusion along e at the minimum",
    "D_b": "diffusion along e at the saddle",
    "alpha": "interpretation (0 Ito, 1/2 Stratonovich, 1 anti-Ito)",
    "theta": "coordinate along the escape direction e",
    "ell": "loss level, the coordinate of the barrier integral",
    "L_a": "loss at the minimum",
    "L_b": "loss at the saddle",
    "h_star": "noise curvature h* (loss-dependent noise)",
    "Phi_a": "quasi-potential at the minimum",
    "Phi_b": "quasi-potential at the saddle",
    "p_s": "quasi-stationary density",
    "N": "population of the valley",
    "I_b": "probability current through the saddle b",
    "tau": "escape time, in units of eta times iterations",
    "sigma": "variance of the stationary density along one eigen-direction at the minimum",
    "d": "one diagonal entry of $D_{a}$ in the eigenbasis",
    "h": "the matching diagonal entry (eigenvalue) of $H_{a}$",
    "n": "dimension",
    "i": "index of an eigen-direction",
}


def _latex_symbols(derivation: Any) -> str:
    """A paragraph that defines every symbol the steps use (functions P, L, D, Phi of θ too)."""
    import sympy as sp

    from flatminima.theory._derivation import to_latex

    found: dict[str, Any] = {}
    for _, expr in derivation.steps:
        for symbol in sorted(expr.free_symbols, key=str):
            name = str(getattr(symbol, "label", symbol))
            found.setdefault(name, symbol)
    parts = []
    for name, symbol in found.items():
        meaning = SYMBOL_MEANINGS.get(name)
        if meaning is None:
            head = name.rsplit("_", 1)[0] if name[-1].isdigit() else name
            meaning = SYMBOL_MEANINGS.get(head, "a symbol of the derivation")
        shown = to_latex(symbol if isinstance(symbol, sp.Basic) else sp.Symbol(name))
        parts.append(f"${shown}$: {meaning}")
    functions = (
        "$P(\\theta)$: probability density; $L(\\theta)$: loss; $D(\\theta)$: diffusion "
        "along e; $J(\\theta)$: probability current; $\\Phi(\\theta)$: quasi-potential"
    )
    return "\\noindent Symbols: " + "; ".join(parts) + ". Functions: " + functions + "."


def _cmd_formula(args: argparse.Namespace) -> int:
    from flatminima.theory import derive_escape_time

    derivation = derive_escape_time(
        args.noise, dim=args.dim, interpretation=args.interpretation, saddles=args.saddles
    )
    out: list[str] = []
    if args.format == "latex":
        if args.steps:
            out.append(derivation.format_steps("latex"))
            out.append(_latex_symbols(derivation))
        out.append(f"\\[ {derivation.latex(equation=True)} \\]")
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
        law = scaling_law(derivation, wrt=wrt.replace("-", "_"))
        print(f"{wrt}: {law.statement}")
        print(f"    {law.explanation}")
    print(
        "C is a constant that does not depend on the variable; k multiplies every Hessian "
        "eigenvalue (L_k(θ) = L(√k θ)); log_tau is log τ, τ in units of η·iterations."
    )
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

    from flatminima._landscape_cli import check_mode, run_landscape

    if check_mode(args):  # --landscape LOSS: the escape time from the loss itself
        return run_landscape(args)

    from flatminima.errors import ValidityWarning
    from flatminima.numerics import escape_time

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ValidityWarning)
        result = escape_time(
            args.noise,
            hess_min=_read_matrix("--hess-min", args.hess_min),
            hess_saddle=_read_matrix("--hess-saddle", args.hess_saddle),
            **{name: getattr(args, name) for name in _EVALUATE_PASSED},
        )
    for warning in caught:
        print(f"flatminima: warning: {warning.message}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if args.format == "latex":
        from flatminima._landscape_cli import latex_display

        print(latex_display(result))
        return 0
    eig = result.eigen
    lines = [
        *time_lines(result),
        f"quasi-potential barrier = {mpmath.nstr(result.quasi_potential, 10)}",
        f"H_ae = {mpmath.nstr(eig.curvature_min_along_e, 10)}, "
        f"|H_be| = {mpmath.nstr(eig.curvature_saddle_e, 10)}, "
        f"misalignment = {_tidy(eig.misalignment)}",
        f"formula: {result.formula}",
        f"method: {result.method}",
    ]
    print("\n".join(lines))
    return 0


def time_lines(result: Any) -> list[str]:
    """τ, log τ, rate and iterations of an escape-time result at its ``dps`` digits."""
    import mpmath

    def show(value: Any) -> str:
        return "-" if value is None else mpmath.nstr(value, result.dps)

    return [
        f"tau            = {show(result.tau)}",
        f"log tau        = {show(result.log_tau)}",
        f"rate           = {show(result.rate)}",
        f"iterations     = {show(result.iterations)}",
        f"log iterations = {show(result.log_iterations)}",
    ]


def _tidy(value: Any, digits: int = 3, floor: float = 1e-12) -> str:
    """A relative quantity to ``digits`` digits, and 0 where it is rounding noise (``1.46e-17``
    from float input means aligned)."""
    import mpmath

    return "0" if abs(value) < floor else mpmath.nstr(value, digits)


def _executor(args: argparse.Namespace) -> Any:
    from flatminima.validation import make_executor

    return make_executor(
        workers=args.workers, scheduler=args.scheduler, local_cluster=args.local_cluster
    )


def _output_folder(option: str, text: str) -> Any:
    """``--out``: a folder that exists or can be made (never an existing file)."""
    from pathlib import Path

    from flatminima.errors import ParameterError

    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ParameterError(
            option,
            "a folder (it is created if missing)",
            text,
            "that is a file: choose another path",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(
            option, "a folder that can be created", text, f"{exc.strerror}: choose another path"
        ) from None
    return path


def _cmd_validate(args: argparse.Namespace) -> int:
    out = _output_folder("--out", args.out)
    from flatminima.validation import validate

    analyses = validate(
        args.experiment,
        out,
        quick=args.quick,
        device=args.device,
        executor=_executor(args),
        seed=args.seed,
    )
    not_held = [name for name, a in analyses.items() if not a.held]
    if not_held:
        print(
            f"validate {args.experiment}: did not hold: {', '.join(not_held)} "
            f"(exit status 1; see {out})"
        )
        return EXIT_NOT_HELD
    print(f"validate {args.experiment}: every prediction held (see {out})")
    return EXIT_OK


def _cmd_experiments(args: argparse.Namespace) -> int:
    from flatminima.validation._registry import experiment_names, get_experiment

    for name in experiment_names():
        experiment = get_experiment(name)
        aliases = f" (also {', '.join(experiment.aliases)})" if experiment.aliases else ""
        print(f"{name}{aliases}: {experiment.prediction}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    out = _output_folder("--out", args.out)
    from flatminima.validation.report import run_report

    run_report(
        out=out,
        quick=args.quick,
        dps=args.dps,
        device=args.device,
        executor=_executor(args),
        seed=args.seed,
    )
    return EXIT_OK


class _FORMATTER(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each argument's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.required:
            return action.help
        if isinstance(action.default, list):  # as typed on the command line
            return f"{action.help} (default: {' '.join(map(str, action.default))})"
        return super()._get_help_string(action)


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes (0 or 1: in this process; default: up to 2)",
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
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="0 reproduces the recorded results; another integer re-draws every random choice "
        "(data, initialisations, noise) for an independent repetition",
    )


def _add_derivation_options(parser: argparse.ArgumentParser) -> None:
    _add_noise_argument(parser)
    parser.add_argument("--dim", default="1", help="dimension: 1, 2, … or n (symbolic)")
    parser.add_argument(
        "--interpretation",
        default="ito",
        help="ito (α=0), stratonovich (α=1/2), anti-ito (α=1, the paper's prefactor), "
        "a number α in [0, 1], or alpha (symbolic)",
    )


#: Each sub-command's one-line help and, where it has them, its description and epilog.
_TEXTS: dict[str, dict[str, str]] = {
    "formula": {"help": "print a derived escape-time formula"},
    "scaling": {
        "help": "classify log τ against a variable",
        "description": "How log τ depends on one variable, everything else fixed: exponential "
        "(log τ linear in x or 1/x) or a power law, with the coefficient.",
    },
    "evaluate": {
        "help": "evaluate an escape time from Hessians at any precision, or from a loss",
        "description": "Either --hess-min and --hess-saddle (the aligned formulas at any "
        "precision) or --landscape LOSS with --minimum and --saddle (any landscape: "
        "quasi-potential, minimum-action path, general prefactor).",
    },
    "validate": {
        "help": "run an experiment that tests the theory",
        "epilog": "Exit status: 0 every prediction held, 1 a prediction did not hold, 2 usage "
        "error (bad option, --out is a file, torch not installed).",
    },
    "report": {"help": "the main job: derive, evaluate, write a report"},
    "experiments": {"help": "list the registered experiments and their predictions"},
}


def _command(sub: Any, name: str, func: Callable[[argparse.Namespace], int]) -> Any:
    """The sub-command ``name`` (texts from ``_TEXTS``) that runs ``func``: its help shows each
    option's default, and its errors name its flags (``subparser``)."""
    parser = sub.add_parser(name, formatter_class=_FORMATTER, **_TEXTS[name])
    parser.set_defaults(func=func, subparser=parser)
    return parser


def _add_formula_parser(sub: Any) -> None:
    formula = _command(sub, "formula", _cmd_formula)
    _add_derivation_options(formula)
    formula.add_argument(
        "--format",
        type=_choice("latex", "text", "python"),
        default="text",
        help="text, latex (a LaTeX fragment that pdflatex compiles inside a document with "
        "amsmath) or python (a function)",
    )
    formula.add_argument("--steps", action="store_true", help="print the derivation steps too")
    formula.add_argument(
        "--saddles", type=int, default=1, help="number of escape saddles (rates add)"
    )


def _add_scaling_parser(sub: Any) -> None:
    scaling = _command(sub, "scaling", _cmd_scaling)
    _add_derivation_options(scaling)
    scaling.add_argument(
        "--wrt",
        nargs="+",
        type=_choice(*WRT),
        default=["sharpness", "batch-size", "lr"],
        metavar="VARIABLE",
        help=f"variables: {', '.join(WRT)} (sharpness k multiplies every Hessian eigenvalue)",
    )


#: ``flatminima evaluate`` options that take a number as text: (flag, help). Each is also an
#: `escape_time` keyword of the same name (``--batch-size``: ``batch_size``), passed as it is.
_EVALUATE_NUMBERS = (
    ("--barrier", "ΔL = L(saddle) − L(minimum) (white, sgd)"),
    ("--lr", "learning rate η (also turns τ into iterations)"),
    ("--batch-size", "batch size B (sgd, loss-dependent)"),
    ("--s", "SGD switch fraction in (0, 1)"),
    (
        "--diffusion",
        "white-noise diffusion D; with --landscape and anisotropic noise a "
        "constant SPD matrix: JSON ([[0.2, 0.05], [0.05, 0.1]]) or a .json/.npy file; with "
        "callable noise FILE.py:NAME, a function NAME(theta) -> D(theta) (theta a numpy array "
        "of shape (m, n) or (n,))",
    ),
    ("--loss-min", "loss at the minimum (loss-dependent noise)"),
    ("--loss-saddle", "loss at the saddle (loss-dependent noise)"),
    ("--h-star", "noise curvature h* (loss-dependent noise)"),
)


#: ``flatminima evaluate`` options passed to `escape_time` as they are (same names).
_EVALUATE_PASSED = (
    *(flag[2:].replace("-", "_") for flag, _ in _EVALUATE_NUMBERS),
    "interpretation",
    "dps",
)


def _add_evaluate_parser(sub: Any) -> None:
    evaluate = _command(sub, "evaluate", _cmd_evaluate)
    from flatminima._landscape_cli import LANDSCAPE_EXTRA_NOISE, add_landscape_options

    _add_noise_argument(evaluate, *LANDSCAPE_EXTRA_NOISE)
    evaluate.add_argument(
        "--hess-min",
        help="Hessian at the minimum: JSON ([[2,0],[0,5]] or 2) or a .json/.npy file",
    )
    evaluate.add_argument("--hess-saddle", help="Hessian at the saddle: JSON or a .json/.npy file")
    for flag, text in _EVALUATE_NUMBERS:
        evaluate.add_argument(flag, help=text)
    evaluate.add_argument(
        "--interpretation", default="ito", help="ito, stratonovich, anti-ito or α in [0, 1]"
    )
    evaluate.add_argument("--dps", type=int, default=30, help="decimal digits (15 to 10000)")
    evaluate.add_argument(
        "--format",
        type=_choice("text", "json", "latex"),
        default="text",
        help="text, json or latex (τ as a LaTeX display)",
    )
    add_landscape_options(evaluate)


def _add_experiment_parsers(sub: Any) -> None:
    """``validate``, ``report`` and ``experiments``: they read the experiment registry."""
    validate = _command(sub, "validate", _cmd_validate)
    validate.add_argument(
        "experiment",
        type=_experiment_name,
        metavar="experiment",
        help="a registered experiment (`flatminima experiments` lists them: covariance, "
        "sharpness, batch-size, learning-rate, selection, probe, ...) or all; lr is learning-rate",
    )
    validate.add_argument("--quick", action="store_true", help="the reduced version (minutes)")
    validate.add_argument("--out", required=True, help="output folder (reruns resume from it)")
    _add_executor_options(validate)

    report = _command(sub, "report", _cmd_report)
    report.add_argument(
        "--quick", action="store_true", help="the quick version (what `make demo` runs)"
    )
    report.add_argument("--out", default="flatminima-report", help="output folder")
    report.add_argument("--dps", type=int, default=30, help="decimal digits for mpmath values")
    _add_executor_options(report)
    _command(sub, "experiments", _cmd_experiments)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flatminima",
        description="Density diffusion theory of SGD: derived escape-time formulas, exact "
        "references and escape experiments.",
        epilog="Exit status: 0 success (validate: every prediction held), 1 validate: a "
        "prediction did not hold, 2 usage error (one line on stderr), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"flatminima {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_formula_parser(sub)
    _add_scaling_parser(sub)
    _add_evaluate_parser(sub)
    _add_experiment_parsers(sub)

    from flatminima._probe_cli import add_probe_parser  # `flatminima probe` (one block)

    probe = add_probe_parser(sub)
    probe.formatter_class = _FORMATTER
    probe.set_defaults(subparser=probe)  # errors name the flag (--batch-size), as elsewhere
    return parser


def _flag_message(exc: FlatMinimaError, subparser: Any) -> str:
    """The error's message with a Python parameter name (``hess_min``) as its flag
    (``--hess-min``) when the command has that flag."""
    message = str(exc)
    parameter = getattr(exc, "parameter", None)
    if not isinstance(parameter, str) or subparser is None:
        return message
    flag = "--" + parameter.replace("_", "-")
    if flag in getattr(subparser, "_option_string_actions", {}) and message.startswith(
        f"{parameter}:"
    ):
        return flag + message[len(parameter) :]
    return message


def _missing_module(exc: ModuleNotFoundError) -> str:
    name = (exc.name or "").split(".")[0]
    extra = OPTIONAL.get(name)
    if extra:
        return (
            f"this command needs the optional package '{name}', which is not installed: "
            f"pip install 'flatminima[{extra}]'"
        )
    return f"the package '{name}' is missing: reinstall flatminima (pip install flatminima)"


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
    """Entry point of the ``flatminima`` command; returns the exit status (see the module)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Any], int] = args.func
    try:
        with _one_line_warnings():
            return func(args)
    except FlatMinimaError as exc:
        message = _flag_message(exc, getattr(args, "subparser", None))
        print(f"flatminima: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        print(f"flatminima: error: {_missing_module(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"flatminima: error: cannot use{where}: {exc.strerror or exc} "
            "(check the path and its permissions, or choose another)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flatminima: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
