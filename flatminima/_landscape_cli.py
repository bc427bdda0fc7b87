"""``flatminima evaluate NOISE --landscape LOSS``: the escape time of a valley of any loss.

One block: ``add_landscape_options(parser)`` adds the options to ``evaluate`` and
``run_landscape(args)`` runs `landscape_escape_time` on them. The loss is either an expression
in named variables, read by the safe parser of ``flatminima._expression`` (never evaluated), or
``FILE.py:NAME``, a SymPy expression or a torch-differentiable function ``NAME`` in a Python
file of the user's (that file is run, as ``probe`` runs its factory file). The noise name is
passed on to `landscape_escape_time` as given (its refusals, such as the literal SGD noise's, are
the one-line error); ``measured`` and ``callable`` take a function of a numpy array θ from a
file: the per-sample gradient-noise covariance Σ(θ) (``--noise-covariance``) or D(θ)
(``--diffusion``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from flatminima.errors import FlatMinimaError, ParameterError

__all__ = [
    "HESSIAN_ONLY",
    "LANDSCAPE_EXTRA_NOISE",
    "LANDSCAPE_ONLY",
    "add_landscape_options",
    "run_landscape",
]

#: ``evaluate`` options that belong to the Hessian mode / to the landscape mode.
HESSIAN_ONLY = ("hess_min", "hess_saddle", "barrier", "s", "loss_min", "loss_saddle", "h_star")
LANDSCAPE_ONLY = (
    "minimum", "saddle", "other_minimum", "keep_saddles", "variables", "points", "noise_covariance",
    "switch",
)  # fmt: skip
#: Noise names that only ``--landscape`` takes (added to the theory layer's on the command line).
LANDSCAPE_EXTRA_NOISE = ("anisotropic", "measured", "callable")
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
        "--keep-saddles",
        choices=("all", "lowest"),
        help="with --other-minimum: every distinct saddle found (all, the default; rates add) "
        "or only the lowest",
    )
    parser.add_argument(
        "--noise-covariance",
        metavar="FILE.py:NAME",
        help="measured noise: a function NAME(theta) in FILE.py, theta a numpy array of shape "
        "(m, n) (or (n,)), returning the per-sample gradient-noise covariance Sigma(theta), "
        "shape (m, n, n) (or (n, n)); D = lr*Sigma/(2*batch-size)",
    )
    parser.add_argument(
        "--switch",
        metavar="harmonic|literal|FILE.py:NAME",
        help="sgd noise: the switch surface between D = kappa*H_a and kappa*|H_b| (harmonic, the "
        "default: where H's smallest eigenvalue vanishes), a function NAME(theta) in FILE.py "
        "(theta of shape (m, n), returning m values; the surface is NAME = 0), or literal (the "
        "model kappa*[H]+, refused with the reason)",
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
    if args.noise in LANDSCAPE_EXTRA_NOISE:
        raise ParameterError(
            "noise", "white, sgd or loss-dependent with --hess-min", args.noise, "this noise "
            "model needs the loss: use --landscape LOSS (see 'flatminima evaluate --help')"
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


def _load_attribute(target: str, option: str = "--landscape", what: str = "a loss") -> Any:
    """NAME from FILE.py: the user's file is run (as ``probe`` runs its factory file)."""
    from pathlib import Path

    from flatminima._probe_cli import run_file

    match = _FILE_TARGET.match(target)
    assert match is not None
    file = Path(match["file"])
    module = run_file(file, option)
    if not hasattr(module, match["name"]):
        raise ParameterError(option, f"{what} named {match['name']!r} in {file}", target)
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


class _UserField:
    """The user's D(θ) or Σ(θ) (``option`` names its flag). Each value is checked: finite,
    symmetric and positive definite at every point asked (a matrix that is not would make the
    action and the prefactor meaningless); the last exception of the user's function is kept
    with its ``FILE:LINE`` (the noise model retries a failed batched call point by point, so
    only the exception that comes out is reported)."""

    def __init__(self, fn: Any, file: Any, option: str, what: str) -> None:
        self.fn, self.file, self.option, self.what = fn, file, option, what
        self.error: BaseException | None = None
        self.failure = ""

    def __call__(self, theta: Any) -> Any:
        from flatminima._probe_cli import _where

        try:
            out = self.fn(theta)
        except Exception as error:
            self.error, self.failure = error, _where(error, self.file)
            raise
        self._check(theta, out)
        return out

    def _check(self, theta: Any, out: Any) -> None:
        import numpy as np

        from flatminima._probe_cli import _Text

        try:
            values = np.asarray(out, dtype=float)
        except (TypeError, ValueError):
            return  # not numbers: the noise model reports the shape
        if values.ndim < 2 or values.shape[-1] != values.shape[-2]:
            smallest = values.reshape(-1)  # a scalar D(θ) (isotropic), or a wrong shape
        elif not np.all(np.isfinite(values)):
            smallest = np.array([np.nan])
        else:
            sym = 0.5 * (values + np.swapaxes(values, -1, -2))
            if np.max(np.abs(values - sym)) > 1e-10 * max(1.0, float(np.max(np.abs(values)))):
                raise ParameterError(
                    self.option, f"a function θ -> symmetric {self.what}", _Text("an asymmetric "
                    f"matrix at θ = {np.round(np.asarray(theta, dtype=float), 6).tolist()}"),
                )  # fmt: skip
            smallest = np.linalg.eigvalsh(sym)[..., 0].reshape(-1)
        bad = ~(smallest > 0)
        if np.any(bad):
            points = np.asarray(theta, dtype=float).reshape(-1, np.shape(theta)[-1])
            where = points[int(np.argmax(bad))] if points.shape[0] == bad.size else points[0]
            raise ParameterError(
                self.option, f"a function θ -> positive definite {self.what} at every point "
                "the escape visits", _Text(f"smallest eigenvalue {float(smallest[bad][0]):.3g} "
                f"at θ = {np.round(where, 6).tolist()}"),
            )  # fmt: skip


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


#: The flag of the user's function for each noise that takes one, and what it returns.
_FIELD_FLAG = {
    "measured": ("--noise-covariance", "per-sample gradient-noise covariance Σ(θ)"),
    "callable": ("--diffusion", "diffusion matrix D(θ)"),
}


def _field(args: argparse.Namespace) -> _UserField:
    """The user's Σ(θ) or D(θ) from ``FILE.py:NAME``."""
    from pathlib import Path

    from flatminima._probe_cli import _Text

    option, what = _FIELD_FLAG[args.noise]
    target = (args.noise_covariance if args.noise == "measured" else args.diffusion) or ""
    match = _FILE_TARGET.match(target.strip())
    expected = f"FILE.py:NAME, a function θ -> {what} in a Python file (θ a numpy array)"
    if not match or not Path(match["file"]).is_file():
        raise ParameterError(option, expected, target or None)
    fn, file = _load_attribute(target.strip(), option, "a function")
    if not callable(fn):
        raise ParameterError(option, expected, _Text(f"{match['name']} = {type(fn).__name__}"))
    return _UserField(fn, file, option, what)


def _noise(args: argparse.Namespace) -> dict[str, Any]:
    """``noise`` and ``diffusion`` for `landscape_escape_time`: the noise name as given (the
    API decides what it accepts), the user's function for measured and callable noise."""
    from flatminima.cli import _read_matrix
    from flatminima.numerics._checks import positive, real_array

    noise, text = args.noise, args.diffusion
    if args.noise_covariance is not None and noise != "measured":
        raise ParameterError(
            "--noise-covariance",
            "no --noise-covariance except with measured noise",
            args.noise_covariance,
        )
    if noise == "measured":
        if text is not None:
            raise ParameterError(
                "--diffusion", "no --diffusion with measured noise (D = ηΣ/(2B) from "
                "--noise-covariance, --lr and --batch-size)", text,
            )  # fmt: skip
        return {"noise": noise, "diffusion": _field(args)}
    if noise == "callable":
        return {"noise": _field(args), "diffusion": None}
    if text is not None and _FILE_TARGET.match(text.strip()):
        raise ParameterError(
            "--diffusion", f"a number or a matrix for {noise} noise", text, "a function D(θ) "
            "in a file goes with the noise 'callable': evaluate callable --diffusion FILE.py:NAME",
        )  # fmt: skip
    if text is not None and noise == "loss-dependent":
        raise ParameterError("--diffusion", "no --diffusion for loss-dependent noise", text)
    if text is None or noise != "anisotropic":
        if text is not None:
            positive("--diffusion", text)  # a number (kept as text: exact decimal digits)
        return {"noise": noise, "diffusion": text}
    matrix = real_array("--diffusion", _read_matrix("--diffusion", text))
    return {"noise": noise, "diffusion": matrix}


def _points(args: argparse.Namespace, names: list[str] | None) -> dict[str, Any]:
    """``minimum`` and ``saddle`` (one or several) or ``other_minimum`` and ``keep_saddles``."""
    if args.minimum is None:
        raise ParameterError("--minimum", "a point near the minimum, e.g. 1,-0.25", None)
    if args.saddle is not None and args.other_minimum is not None:
        raise ParameterError("--other-minimum", "--saddle or --other-minimum, not both", "both")
    if args.saddle is None and args.other_minimum is None:
        raise ParameterError("--saddle", "a point near the saddle (or --other-minimum)", None)
    if args.keep_saddles is not None and args.other_minimum is None:
        raise ParameterError(
            "--keep-saddles", "no --keep-saddles without --other-minimum (given saddles are "
            "all used)", args.keep_saddles,
        )  # fmt: skip
    n = None if names is None else len(names)
    minimum = _coordinates("--minimum", args.minimum, n, names)
    n = len(minimum)
    out: dict[str, Any] = {"minimum": minimum}
    if args.saddle is not None:
        saddles = [_coordinates("--saddle", t, n, names) for t in args.saddle]
        out["saddle"] = saddles[0] if len(saddles) == 1 else saddles
    else:
        out["other_minimum"] = _coordinates("--other-minimum", args.other_minimum, n, names)
        out["keep_saddles"] = args.keep_saddles or "all"
    return out


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of `landscape_escape_time` from the command line."""
    from flatminima.numerics._checks import positive

    loss, names = _loss(args)
    kwargs = _points(args, names)
    for dest in ("lr", "batch_size"):
        value = getattr(args, dest)
        if value is not None:
            positive("--" + dest.replace("_", "-"), value)
            kwargs[dest] = value
    if args.points is not None:
        if args.points < 4:
            raise ParameterError("--points", "an integer of at least 4", args.points)
        kwargs["points"] = args.points
    kwargs.update(_noise(args))
    if args.switch is not None:
        kwargs["switch"] = _switch(args.switch)
    kwargs.update(interpretation=args.interpretation, dps=args.dps)
    return {"loss": loss, "names": names, **kwargs}


def _switch(text: str) -> Any:
    """``--switch``: a name the API knows, or the user's surface function from FILE.py:NAME."""
    from pathlib import Path

    from flatminima._probe_cli import _Text

    match = _FILE_TARGET.match(text.strip())
    if match is None:
        return text.strip()
    expected = "harmonic, literal or FILE.py:NAME (a function θ -> g(θ), surface g = 0)"
    if not Path(match["file"]).is_file():
        raise ParameterError("--switch", expected, text)
    fn, _ = _load_attribute(text.strip(), "--switch", "a function")
    if not callable(fn):
        raise ParameterError("--switch", expected, _Text(f"{match['name']} = {type(fn).__name__}"))
    return fn


def _renamed(error: Exception, parameter: str, flag: str) -> Exception | None:
    """The API's error about ``parameter`` as one about the flag ``flag`` (None if it is not)."""
    message = str(error)
    if getattr(error, "parameter", None) != parameter or not message.startswith(parameter + ":"):
        return None
    relabelled = ParameterError(flag, "a value", None)
    relabelled.args = (flag + message[len(parameter) :],)
    return relabelled


#: Appended to the API's refusal of a noise name: what the command line offers instead.
_NOISE_HINT = (
    "; on the command line: evaluate sgd --landscape … (the harmonic switch; --switch chooses "
    "the surface), evaluate measured --noise-covariance FILE.py:NAME, or evaluate callable "
    "--diffusion FILE.py:NAME"
)


def _relabel(error: Exception, args: argparse.Namespace, options: dict[str, Any]) -> Exception:
    """An error of the Python API as one line naming the flag: ``loss`` is ``--landscape``, a
    measured noise's ``diffusion`` is ``--noise-covariance``, a callable noise is
    ``--diffusion``; an exception of the user's function points at its file and line."""
    import numpy as np

    from flatminima._probe_cli import _Text

    loss = options["loss"]
    user = options["diffusion"] if args.noise == "measured" else options["noise"]
    if isinstance(user, _UserField):
        if user.error is not None and error is user.error:
            expected = "a function of a numpy array θ, shape (m, n) or (n,), that runs"
            return ParameterError(user.option, expected, _Text(user.failure))
        if isinstance(error, np.linalg.LinAlgError):
            return ParameterError(user.option, f"a positive definite {user.what}", _Text(error))
        renamed = _renamed(error, "diffusion" if args.noise == "measured" else "noise", user.option)
        if renamed is not None:
            return renamed
    failure = getattr(loss, "failure", "")
    if failure:
        expected = (
            "a function of a torch tensor θ of shape (m, n) (coordinates θ[..., i]) that runs"
        )
        return ParameterError("--landscape", expected, _Text(failure))
    for parameter, flag in (
        ("loss", "--landscape"),
        ("keep_saddles", "--keep-saddles"),
        ("switch", "--switch"),
    ):
        renamed = _renamed(error, parameter, flag)
        if renamed is not None:
            return renamed
    if getattr(error, "parameter", None) == "noise" and isinstance(options["noise"], str):
        error.args = (str(error) + _NOISE_HINT,)
    return error


def run_landscape(args: argparse.Namespace) -> int:
    """Run ``flatminima evaluate NOISE --landscape LOSS ...``; print text, JSON or LaTeX."""
    import json
    import warnings

    from flatminima.errors import ValidityWarning
    from flatminima.numerics import landscape_escape_time

    options = _options(args)
    loss, names = options.pop("loss"), options.pop("names")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ValidityWarning)
        try:
            result = landscape_escape_time(loss, **options)
        except Exception as error:
            relabelled = _relabel(error, args, {"loss": loss, **options})
            if relabelled is error and not isinstance(error, FlatMinimaError):
                raise
            raise relabelled from None
    for warning in caught:
        print(f"flatminima: warning: {warning.message}", file=sys.stderr)
    if args.format == "json":
        out = {"variables": names, **result.to_dict()}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif args.format == "latex":
        print(latex_display(result))
    else:
        print("\n".join(_text_lines(result, names)))
    return 0


def latex_display(result: Any) -> str:
    r"""A result's ``_repr_latex_`` (``$$…$$``) as a LaTeX display ``\[ … \]``, the fragment
    that ``formula --format latex`` prints too."""
    body = result._repr_latex_().strip()
    if body.startswith("$$") and body.endswith("$$"):
        body = body[2:-2]
    return rf"\[ {body} \]"


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
