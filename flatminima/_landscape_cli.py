"""``flatminima evaluate NOISE --landscape LOSS``: the escape time of a valley of any loss.

One block: ``add_landscape_options(parser)`` adds the options to ``evaluate`` and
``run_landscape(args)`` runs `landscape_escape_time` on them. The loss is either an expression
in named variables, read by the safe parser of ``flatminima._expression`` (never evaluated), or
``FILE.py:NAME``, a SymPy expression or a torch-differentiable function ``NAME`` in a Python
file of the user's (that file is run, as ``probe`` runs its factory file).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from flatminima.errors import FlatMinimaError, ParameterError

__all__ = ["HESSIAN_ONLY", "LANDSCAPE_ONLY", "add_landscape_options", "run_landscape"]

#: ``evaluate`` options that belong to the Hessian mode / to the landscape mode.
HESSIAN_ONLY = ("hess_min", "hess_saddle", "barrier", "s", "loss_min", "loss_saddle", "h_star")
LANDSCAPE_ONLY = ("minimum", "saddle", "other_minimum", "variables", "points")
LANDSCAPE_NOISE = ("white", "anisotropic", "loss-dependent")
#: ``FILE.py:NAME`` (a name that is an identifier after the last colon).
_FILE_TARGET = re.compile(r"^(?P<file>.+\.py):(?P<name>[A-Za-z]\w*)$")
#: An argument that starts like a negative number ("-1,0.5", "-.5, 2") is a value, not a flag.
NEGATIVE_NUMBERS = re.compile(r"^-\.?\d[\d.eE+\-,\s]*$")


def add_landscape_options(parser: argparse.ArgumentParser) -> None:
    """The ``--landscape`` options of ``evaluate``."""
    parser.add_argument(
        "--landscape",
        metavar="LOSS",
        help="a loss of named variables, e.g. '(x**2-1)**2 + y**2 + x*y/2' (numbers, + - * / "
        "**, exp log sqrt sin cos tan tanh cosh sinh abs; never evaluated as code), or "
        "FILE.py:NAME (a SymPy expression or a torch function in that file): the escape time "
        "of the valley of --minimum over --saddle, from the loss itself",
    )
    parser.add_argument(
        "--variables", help="variable names in coordinate order, e.g. x,y (default: sorted)"
    )
    parser.add_argument("--minimum", metavar="X,Y,...", help="a point near the minimum")
    parser.add_argument(
        "--saddle",
        action="append",
        metavar="X,Y,...",
        help="a point near an index-1 saddle; repeat for several saddles (rates add)",
    )
    parser.add_argument(
        "--other-minimum",
        metavar="X,Y,...",
        help="instead of --saddle: a point near a second minimum (the saddle between is found)",
    )
    parser.add_argument(
        "--points", type=int, default=None, help="segments of the minimum-action string (32)"
    )
    parser._negative_number_matcher = NEGATIVE_NUMBERS


def _given(args: argparse.Namespace, dest: str) -> bool:
    return getattr(args, dest, None) is not None


def check_mode(args: argparse.Namespace) -> bool:
    """True for the landscape mode; an option of the other mode is a one-line error."""
    landscape = args.landscape is not None
    wrong = LANDSCAPE_ONLY if not landscape else HESSIAN_ONLY
    for dest in wrong:
        if _given(args, dest):
            flag = "--" + dest.replace("_", "-")
            needs = "--hess-min/--hess-saddle" if landscape else "--landscape"
            raise ParameterError(
                flag, f"an option that goes with {needs}", getattr(args, dest), "remove it"
            )
    if landscape:
        return True
    missing = [
        f for f in ("--hess-min", "--hess-saddle") if not _given(args, f[2:].replace("-", "_"))
    ]
    if missing:
        raise ParameterError(
            missing[0], "a Hessian (or --landscape LOSS with --minimum and --saddle)", None
        )
    if args.noise == "anisotropic":
        raise ParameterError(
            "noise", "white, sgd or loss-dependent with --hess-min", "anisotropic", "a constant "
            "matrix D needs the loss: use --landscape LOSS --diffusion MATRIX"
        )  # fmt: skip
    return False


def _coordinates(option: str, text: str, n: int | None, names: list[str] | None) -> list[float]:
    """``"1,-0.25"`` or ``"[1, -0.25]"``: n finite numbers."""
    from flatminima.numerics._checks import real

    body = text.strip()
    if body[:1] in "[(" and body[-1:] in "])":
        body = body[1:-1]
    parts = [p.strip() for p in body.split(",")]
    shown = f" ({', '.join(names)})" if names else ""
    expected = "comma-separated coordinates such as 1,-0.25" if n is None else (
        f"{n} comma-separated coordinates{shown}"
    )  # fmt: skip
    try:
        values = [float(real(option, p)) for p in parts]
    except FlatMinimaError:
        raise ParameterError(option, expected, text) from None
    if n is not None and len(values) != n:
        raise ParameterError(option, expected, text, f"{len(values)} given")
    return values


def _load_attribute(target: str) -> Any:
    """NAME from FILE.py: the user's file is run (as ``probe`` runs its factory file)."""
    from pathlib import Path

    from flatminima._probe_cli import run_file

    match = _FILE_TARGET.match(target)
    assert match is not None
    file = Path(match["file"])
    module = run_file(file, "--landscape")
    if not hasattr(module, match["name"]):
        raise ParameterError("--landscape", f"a loss named {match['name']!r} in {file}", target)
    return getattr(module, match["name"]), file


class _UserLoss:
    """The user's loss function; the first exception it raises is kept (``FILE:LINE: Type:
    message``) so that an error names the line of the user's file, not ours."""

    def __init__(self, fn: Any, file: Any) -> None:
        self.fn, self.file, self.failure = fn, file, ""

    def __call__(self, theta: Any) -> Any:
        from flatminima._probe_cli import _where

        try:
            return self.fn(theta)
        except Exception as error:
            self.failure = self.failure or _where(error, self.file)
            raise


def _loss(args: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """The loss to pass on, and the variable names (None for a function of a file)."""
    from pathlib import Path

    import sympy as sp

    from flatminima._expression import parse_loss, parse_variables

    text = args.landscape
    match = _FILE_TARGET.match(text.strip())
    if match and Path(match["file"]).is_file():
        loss, file = _load_attribute(text.strip())
        if args.variables is not None:
            raise ParameterError(
                "--variables", "no --variables with FILE.py:NAME (a SymPy loss's variables are "
                "sorted by name; a function's coordinates are θ[..., i])", args.variables,
            )  # fmt: skip
        if isinstance(loss, sp.Expr):
            return loss, sorted(str(s) for s in loss.free_symbols)
        if not callable(loss):
            raise ParameterError(
                "--landscape", "a SymPy expression or a function θ -> L(θ)", type(loss).__name__
            )
        return _UserLoss(loss, file), None
    if match:
        raise ParameterError("--landscape", "an existing Python file", match["file"])
    declared = None if args.variables is None else parse_variables(args.variables)
    expr, symbols = parse_loss(text, declared)
    names = [s.name for s in symbols]
    if names != sorted(names):  # landscape_escape_time orders symbols by name: rename them
        width = len(str(len(symbols)))
        renamed = {
            s: sp.Symbol(f"v{k:0{width}d}_{s.name}", real=True) for k, s in enumerate(symbols)
        }
        expr = expr.xreplace(renamed)
    return expr, names


def _diffusion(args: argparse.Namespace, n: int) -> Any:
    from flatminima.cli import _read_matrix
    from flatminima.numerics._checks import positive, real_array

    text = args.diffusion
    if text is not None and args.noise == "loss-dependent":
        raise ParameterError("--diffusion", "no --diffusion for loss-dependent noise", text)
    if text is None or args.noise != "anisotropic":
        if text is not None:
            positive("--diffusion", text)  # a number (kept as text: exact decimal digits)
        return text
    return real_array("--diffusion", _read_matrix("--diffusion", text))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of `landscape_escape_time` from the command line."""
    from flatminima.numerics._checks import positive

    if args.noise not in LANDSCAPE_NOISE:
        raise ParameterError(
            "noise", f"{', '.join(LANDSCAPE_NOISE)} with --landscape", args.noise,
            "the literal SGD noise κ[H(θ)]⁺ is singular where H changes sign on the path, so "
            "its barrier is infinite; use evaluate sgd --hess-min --hess-saddle --s (the "
            "harmonic switch model) or loss-dependent",
        )  # fmt: skip
    loss, names = _loss(args)
    if args.minimum is None:
        raise ParameterError("--minimum", "a point near the minimum, e.g. 1,-0.25", None)
    if args.saddle is not None and args.other_minimum is not None:
        raise ParameterError("--other-minimum", "--saddle or --other-minimum, not both", "both")
    if args.saddle is None and args.other_minimum is None:
        raise ParameterError("--saddle", "a point near the saddle (or --other-minimum)", None)
    n = None if names is None else len(names)
    minimum = _coordinates("--minimum", args.minimum, n, names)
    n = len(minimum)
    kwargs: dict[str, Any] = {"minimum": minimum}
    if args.saddle is not None:
        saddles = [_coordinates("--saddle", t, n, names) for t in args.saddle]
        kwargs["saddle"] = saddles[0] if len(saddles) == 1 else saddles
    else:
        kwargs["other_minimum"] = _coordinates("--other-minimum", args.other_minimum, n, names)
    for dest in ("lr", "batch_size"):
        value = getattr(args, dest)
        if value is not None:
            positive("--" + dest.replace("_", "-"), value)
            kwargs[dest] = value
    if args.points is not None:
        if args.points < 4:
            raise ParameterError("--points", "an integer of at least 4", args.points)
        kwargs["points"] = args.points
    kwargs.update(diffusion=_diffusion(args, n), interpretation=args.interpretation, dps=args.dps)
    return {"loss": loss, "names": names, **kwargs}


def _relabel(error: Exception, loss: Any) -> Exception:
    """An error of the Python API naming ``loss`` names ``--landscape`` instead; an exception
    of the user's function is one line pointing at its file and line."""
    from flatminima._probe_cli import _Text

    failure = getattr(loss, "failure", "")
    if failure:
        expected = (
            "a function of a torch tensor θ of shape (m, n) (coordinates θ[..., i]) that runs"
        )
        return ParameterError("--landscape", expected, _Text(failure))
    message = str(error)
    if getattr(error, "parameter", None) == "loss" and message.startswith("loss:"):
        relabelled = ParameterError("--landscape", "a loss", None)
        relabelled.args = ("--landscape" + message[len("loss") :],)
        return relabelled
    return error


def run_landscape(args: argparse.Namespace) -> int:
    """Run ``flatminima evaluate NOISE --landscape LOSS ...``; print text or JSON."""
    import json
    import warnings

    from flatminima.errors import ValidityWarning
    from flatminima.numerics import landscape_escape_time

    options = _options(args)
    loss, names = options.pop("loss"), options.pop("names")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ValidityWarning)
        try:
            result = landscape_escape_time(loss, args.noise, **options)
        except Exception as error:
            relabelled = _relabel(error, loss)
            if relabelled is error:
                raise
            raise relabelled from None
    for warning in caught:
        print(f"flatminima: warning: {warning.message}", file=sys.stderr)
    if args.format == "json":
        out = {"variables": names, **result.to_dict()}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print("\n".join(_text_lines(result, names)))
    return 0


def _point(values: Any) -> str:
    return "(" + ", ".join(f"{float(v):.10g}" for v in values) + ")"


def _text_lines(result: Any, names: list[str] | None) -> list[str]:
    import mpmath

    from flatminima.cli import time_lines

    lines = [
        *time_lines(result),
        f"quasi-potential barrier = {mpmath.nstr(result.barrier, 10)}",
        f"prefactor      = {mpmath.nstr(result.prefactor, 10)}",
        f"non-Gibbs integral I = {result.non_gibbs:.6g}, accuracy = {result.accuracy:.2g}",
        f"s              = {'-' if result.s is None else f'{result.s:.6g}'}",
        f"variables: {', '.join(names) if names else 'theta[..., i]'}",
        f"minimum {_point(result.minimum)}, saddle {_point(result.saddle)}",
    ]
    for k, channel in enumerate(result.channels, 1):
        lines.append(
            f"saddle {k} {_point(channel.saddle)}: barrier {mpmath.nstr(channel.barrier, 10)}, "
            f"tau {mpmath.nstr(channel.tau, 10)}"
        )
    lines.append(f"method: {result.method}")
    return lines
