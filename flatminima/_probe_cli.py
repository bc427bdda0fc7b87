"""``flatminima probe FILE.py:factory``: the probe of a user's network from the command line.

One self-contained block: ``add_probe_parser(sub)`` registers the sub-command (no torch import
until it runs). ``factory()`` in FILE.py returns ``(model, loss_fn, dataset)`` with ``dataset``
as ``probe`` accepts it ((x, y), a TensorDataset, or an object with ``.x`` and ``.y``). The run
writes ``probe.json``, ``directions.csv``, ``spectrum.png``, ``noise.png``, ``rates.png`` and
``index.html`` to ``--out``; finished stages are kept in ``--out/stages`` and reused by a rerun.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["add_probe_parser", "run_probe_command"]


def add_probe_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``probe`` on an argparse sub-parsers object."""
    p = sub.add_parser(
        "probe",
        help="probe your own network: Hessian top, gradient noise, escape prediction",
        description="FILE.py:factory names a function returning (model, loss_fn, dataset).",
    )
    p.add_argument("target", metavar="FILE.py:factory", help="file and factory function")
    p.add_argument("--lr", type=float, required=True, help="learning rate η")
    p.add_argument("--batch-size", type=int, required=True, help="batch size B")
    p.add_argument("--k", type=int, default=20, help="top Hessian eigenpairs (default 20)")
    p.add_argument("--barrier", type=float, default=None, help="ΔL (default: exponent 10)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="½wd‖θ‖² added to the loss")
    p.add_argument("--measure", action="store_true", help="measure escapes with SGD replicas")
    p.add_argument("--replicas", type=int, default=64, help="SGD replicas (with --measure)")
    p.add_argument("--max-steps", type=int, default=20000, help="iterations (with --measure)")
    p.add_argument("--check-every", type=int, default=10, help="escape check period")
    p.add_argument(
        "--mode",
        choices=("error", "eval"),
        default="error",
        help="BatchNorm/dropout: refuse (default) or probe as in eval mode",
    )
    p.add_argument("--grad-tol", type=float, default=1e-3, help="largest accepted ‖∇L‖")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    p.add_argument("--out", required=True, help="output folder (reruns resume from it)")
    p.set_defaults(func=run_probe_command)
    return p


def _load_factory(target: str) -> Any:
    from pathlib import Path

    from flatminima.errors import FlatMinimaError, ParameterError

    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise ParameterError("FILE.py:factory", "a file and a function, e.g. net.py:make", target)
    file = Path(path)
    if not file.is_file():
        raise ParameterError("FILE.py:factory", "an existing Python file", path)
    module = run_file(file, "FILE.py:factory")
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ParameterError("FILE.py:factory", f"a function {name!r} in {path}", target)
    try:
        made = factory()
    except FlatMinimaError:
        raise
    except Exception as error:
        raise ParameterError(
            "FILE.py:factory", f"{name}() that runs", _Text(_where(error, file))
        ) from None
    if not isinstance(made, tuple) or len(made) != 3:
        raise ParameterError(
            "FILE.py:factory", "factory() returning (model, loss_fn, dataset)", type(made).__name__
        )
    return made


def run_file(file: Any, option: str) -> Any:
    """Run a user's Python file as a module; an exception is one line naming ``option`` and
    the file's line."""
    import importlib.util

    from flatminima.errors import ParameterError

    spec = importlib.util.spec_from_file_location(f"_flatminima_user_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ParameterError(option, "a Python file", str(file))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file: one line, pointing at its line
        raise ParameterError(
            option, f"a file that imports ({file})", _Text(_where(error, file))
        ) from None
    return module


class _Text(str):
    """A string shown without quotes in an error message."""

    def __repr__(self) -> str:
        return str(self)


def _where(error: BaseException, file: Any) -> str:
    """``FILE:LINE: Type: message``, the last frame in the user's file (one line)."""
    import traceback
    from pathlib import Path

    line = None
    if isinstance(error, SyntaxError):
        line = error.lineno
    else:
        for frame in traceback.extract_tb(error.__traceback__):
            if Path(frame.filename).resolve() == Path(file).resolve():
                line = frame.lineno
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    text = message.splitlines()[0] if message else ""
    head = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return f"{Path(file).name}:{line}: {head}" if line is not None else head


def run_probe_command(args: argparse.Namespace) -> int:
    """Run ``flatminima probe``: load the factory, probe, write the results to ``--out``."""
    from pathlib import Path

    out = Path(args.out)  # created by the stage store once the inputs are accepted
    start = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {line}", file=sys.stderr, flush=True)

    progress(f"loading {args.target}")
    model, loss_fn, dataset = _load_factory(args.target)
    result = _probe_from_args(model, loss_fn, dataset, args, out, progress)
    _write_results(result, out)
    print(_summary(result))
    print(f"wrote {out}/probe.json, directions.csv, index.html and figures")
    return 0


def _probe_from_args(
    model: Any, loss_fn: Any, dataset: Any, args: argparse.Namespace, out: Any, progress: Any
) -> Any:
    from flatminima.validation import probe

    settings = {name: getattr(args, name) for name in _PROBE_SETTINGS}
    return probe(model, loss_fn, dataset, **settings, store=out / "stages", progress=progress)


#: ``probe`` keywords taken as they are from the command line's options.
_PROBE_SETTINGS = (
    *("lr", "batch_size", "k", "device", "measure", "barrier", "weight_decay", "mode"),
    *("grad_tol", "replicas", "max_steps", "check_every", "seed"),
)


_CSV_COLUMNS = (
    "i",
    "eigenvalue",
    "residual",
    "C_ii",
    "B*C_ii/lambda",
    "exponent_kappa",
    "log_iterations_kappa",
    "exponent_measured",
    "log_iterations_measured",
    "log_iterations_level",
    "escape_direction_full",
    "kept",
)


def _write_results(result: Any, out: Any) -> None:
    """probe.json, directions.csv (one row per direction), the figures and index.html."""
    import csv
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(result.to_dict(), indent=1))
    h, n, pr = result.hessian_top, result.noise, result.prediction
    with open(out / "directions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(_CSV_COLUMNS)
        for i in range(len(h.values)):
            w.writerow(
                [
                    i + 1,
                    h.values[i],
                    h.residuals[i],
                    n.covariance[i, i],
                    n.ratios[i],
                    pr.exponent_kappa[i],
                    pr.log_iterations_kappa[i],
                    pr.exponent_measured[i],
                    pr.log_iterations_measured[i],
                    pr.log_iterations_level[i],
                    pr.escape_direction[i],
                    i in pr.kept,
                ]
            )
    figures = result.figures()
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=110)
    (out / "index.html").write_text(_html(result, list(figures)))


def _summary(result: Any) -> str:
    import math

    h, n, pr, m = result.hessian_top, result.noise, result.prediction, result.measured
    summary = (
        f"probe: λ_1 = {h.values[0]:.4g}, {n.verdict}; predicted log rate per iteration "
        f"κH {pr.log_rate_kappa:.3f}, measured C {pr.log_rate_measured:.3f}, full C level "
        f"{pr.log_rate_full:.3f}"
    )
    if m is not None:
        lr_m = math.log(m.rate) if m.rate > 0 else -math.inf
        summary += f"; measured {lr_m:.3f} ({m.escapes} escapes)"
    return summary


def _html(result: Any, figures: list[str]) -> str:
    import html
    import json

    h, n, pr, m = result.hessian_top, result.noise, result.prediction, result.measured
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{h.values[i]:.6g}</td><td>{h.residuals[i]:.2g}</td>"
        f"<td>{n.covariance[i, i]:.4g}</td><td>{n.ratios[i]:.3g}</td>"
        f"<td>{pr.exponent_kappa[i]:.4g}</td><td>{pr.exponent_measured[i]:.4g}</td></tr>"
        for i in range(len(h.values))
    )
    meas = (
        "<p>not measured (use --measure)</p>"
        if m is None
        else (
            f"<p>{html.escape(m.criterion)}: {m.escapes} escapes in {m.exposure:.3g} "
            f"replica-iterations, rate {m.rate:.3g} [{m.rate_low:.3g}, {m.rate_high:.3g}] per "
            f"iteration; measured/predicted: κH {m.ratio_kappa:.3g}, measured C "
            f"{m.ratio_measured:.3g}, level passage {m.ratio_level:.3g}, full C level "
            f"{m.ratio_full:.3g}</p>"
        )
    )
    imgs = "".join(f'<p><img src="{f}.png" alt="{f}"></p>' for f in figures)
    notes = "".join(f"<li>{html.escape(t)}</li>" for t in pr.notes)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>flatminima probe</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{padding:2px 8px;text-align:right}</style></head><body>"
        f"<h1>flatminima probe</h1><p>{h.parameters} parameters, {h.samples} samples, "
        f"loss {h.loss:.6g}, ‖∇L‖ {h.gradient_norm:.3g}</p>"
        f"<h2>Noise</h2><p>{html.escape(n.verdict)}</p>"
        f"<h2>Prediction (ΔL = {pr.barrier:.4g})</h2><p>log rate per iteration: κH "
        f"{pr.log_rate_kappa:.4g}, measured C {pr.log_rate_measured:.4g}, level passage "
        f"{pr.log_rate_level:.4g}, white {pr.log_rate_white:.4g}; full measured C (k-D level "
        f"passage, off-diagonal terms included) {pr.log_rate_full:.4g}, its diagonal only "
        f"{pr.log_rate_full_diagonal:.4g} (exponent {pr.exponent_full:.4g})</p><ul>{notes}</ul>"
        f"<h2>Measured</h2>{meas}<h2>Directions</h2><table><tr><th>i</th><th>λ</th>"
        "<th>residual</th><th>C_ii</th><th>B·C/λ</th><th>ΔΦ κH</th><th>ΔΦ measured</th></tr>"
        f"{rows}</table>{imgs}<h2>Settings</h2><pre>"
        f"{html.escape(json.dumps(result.settings, indent=1))}</pre></body></html>"
    )
