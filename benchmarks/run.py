"""flatminima benchmarks: every target a ratio against a peer measured in the same run.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/run.py [--only NAME ...]``). Writes
``benchmarks/RESULTS.md`` and ``benchmarks/results.json``. Each benchmark first checks that both
sides computed the same thing (within a stated tolerance) and only then reports a ratio; times
are the best of several repeats (``timeit`` style), so background load inflates them less.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mpmath
import numpy as np

HERE = Path(__file__).resolve().parent
#: Largest dense Hessian of the escape_time rows (``--max-dim``; n = 3000 takes minutes).
MAX_DIM = 3000
ROWS: list[dict[str, Any]] = []


def best_time(fn: Callable[[], Any], repeats: int = 5, number: int = 1) -> float:
    """Best wall time of ``number`` calls, over ``repeats`` repeats, per call."""
    times = []
    for _ in range(repeats):
        with _no_gc():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - start) / number)
    return min(times)


def best_times(fns: dict[str, tuple[Callable[[], Any], int]], repeats: int = 5) -> dict[str, float]:
    """Best wall time per call of each ``(function, number)``, the functions interleaved round
    by round: ours and the peer see the same background load (the machine is shared), so their
    ratio stays meaningful when the absolute times move."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, (fn, number) in fns.items():
            with _no_gc():
                start = time.perf_counter()
                for _ in range(number):
                    fn()
                best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while timing, as ``timeit`` does: its passes cost in
    proportion to every live object in the process (torch, SymPy), not to the code timed."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def row(
    what: str,
    ours: str,
    peer: str,
    ratio: float | None,
    target: str,
    met: bool | None,
    same: str,
    note: str = "",
) -> None:
    met = None if met is None else bool(met)
    ratio = None if ratio is None else float(ratio)
    entry = {
        "what": what,
        "ours": ours,
        "peer": peer,
        "ratio": ratio,
        "target": target,
        "met": met,
        "same": same,
        "note": note,
    }
    ROWS.append(entry)
    flag = {True: "MET", False: "MISSED", None: "-"}[met]
    print(
        f"[{flag}] {what}: ours {ours}; peer {peer}; ratio {ratio if ratio is None else f'{ratio:.3g}'} (target {target}); {same} {note}",
        flush=True,
    )


# ---------------------------------------------------------------------------------------------
# 1–2. compiled mpmath evaluation


def bench_compiled_mpmath() -> None:
    import sympy as sp

    from flatminima.theory import derive_escape_time

    d = derive_escape_time("sgd", dim=2, interpretation="stratonovich")
    compiled = d.compile("mpmath")
    names = ("H_a_1", "H_b_1", "Delta_L", "eta", "B", "s")
    with mpmath.workdps(50):
        values = {
            n: mpmath.mpf(v)
            for n, v in zip(names, ("2.5", "1.25", "0.75", "0.05", "32", "0.4"), strict=True)
        }
        subs = {
            d.symbols[n]: sp.Rational(str(v))
            for n, v in zip(names, ("2.5", "1.25", "0.75", "0.05", "32", "0.4"), strict=True)
        }
        ours_value = compiled.tau(**values)
        sympy_value = mpmath.mpf(str(d.tau.evalf(subs=subs, n=50)))
        H_a, H_b, dL, eta, B, s = (values[n] for n in names)

        def hand() -> Any:  # the same formula written by hand in mpmath: the floor
            return (
                2
                * mpmath.pi
                / mpmath.sqrt(H_a * H_b)
                * mpmath.exp(2 * B * dL / eta * (s / H_a + (1 - s) / H_b))
            )

        hand_value = hand()
        symbols = [d.symbols[n] for n in names]
        lambdified = sp.lambdify(symbols, d.tau, modules="mpmath")
        lambdified_args = [values[n] for n in names]
        lambdify_value = lambdified(*lambdified_args)
        same_lambdify = mpmath.almosteq(ours_value, lambdify_value, rel_eps=mpmath.mpf(10) ** -45)
        same = mpmath.almosteq(
            ours_value, sympy_value, rel_eps=mpmath.mpf(10) ** -45
        ) and mpmath.almosteq(ours_value, hand_value, rel_eps=mpmath.mpf(10) ** -45)
        times = best_times(
            {
                "ours": (lambda: compiled.tau(**values), 200),
                "lambdify": (lambda: lambdified(*lambdified_args), 200),
                "sympy": (lambda: d.tau.evalf(subs=subs, n=50), 2),
                "hand": (hand, 200),
                "positional": (lambda: compiled._value(H_a, H_b, dL, eta, B, s), 200),
            },
            repeats=40,
        )
        t_ours, t_lambdify, t_sympy = times["ours"], times["lambdify"], times["sympy"]
        t_hand, t_positional = times["hand"], times["positional"]
    agree = "agree to 45 digits" if same else "DISAGREE"
    row(
        "compiled mpmath τ at 50 digits vs SymPy evalf(subs, n=50)",
        f"{t_ours * 1e6:.1f} µs",
        f"{t_sympy * 1e6:.0f} µs",
        t_sympy / t_ours,
        "≥ 100× faster",
        t_sympy / t_ours >= 100 and same,
        agree,
        f"The hand-written mpmath floor is {t_sympy / t_hand:.0f}× faster than SymPy's evalf for this "
        f"formula ({t_hand * 1e6:.1f} µs against {t_sympy * 1e6:.0f} µs); ours is at "
        f"{t_ours / t_hand:.2f}× the floor: straight-line mpmath.libmp code, no mpf object per "
        "operation. What is left is mpmath's exp (≈ 3.5 µs) and two square roots at 50 digits. "
        "SymPy's evalf time varies between runs by up to 1.7× (1.1–1.8 ms measured on this "
        "machine), so the ratio does too.",
    )
    row(
        "compiled mpmath τ at 50 digits vs sympy.lambdify(τ, modules='mpmath') (the peer at its best: "
        "a compiled mpmath function, positional mpf arguments)",
        f"{t_ours * 1e6:.1f} µs",
        f"{t_lambdify * 1e6:.1f} µs",
        t_lambdify / t_ours,
        "≥ 1× (report)",
        t_lambdify / t_ours >= 1 and same_lambdify,
        "agree to 45 digits" if same_lambdify else "DISAGREE",
        "lambdify builds mpf objects per operation; ours runs mpmath.libmp on raw tuples. This is "
        "the fair compiled-τ peer: against SymPy evalf the ratio is two orders of magnitude, "
        "against lambdify it is ~1.5×.",
    )
    row(
        "compiled mpmath τ at 50 digits vs hand-written mpmath (floor)",
        f"{t_ours * 1e6:.1f} µs",
        f"{t_hand * 1e6:.1f} µs",
        t_ours / t_hand,
        "≤ 1.5× its time",
        t_ours / t_hand <= 1.5 and same,
        agree,
        f"(keyword call with argument checks; the bare generated function: {t_positional / t_hand:.2f}×). "
        "Below 1: the compiled code skips mpf objects and calls mpmath.libmp directly, with the "
        "same rounding per operation.",
    )


# ---------------------------------------------------------------------------------------------
# 3. log-space evaluation on 10⁶ points


def bench_log_space() -> None:
    from flatminima.numerics import escape_time, log_escape_time

    rng = np.random.default_rng(0)
    n = 1_000_000
    lr = rng.uniform(0.01, 0.2, n)
    batch = rng.uniform(8, 256, n)
    kwargs = {
        "hess_min": np.diag([2.5, 4.0]),
        "hess_saddle": np.diag([-1.25, 3.0]),
        "barrier": 0.75,
        "s": 0.4,
    }
    out = log_escape_time("sgd", lr=lr, batch_size=batch, **kwargs)
    checks = []
    for i in (0, 12345, n - 1):
        exact = escape_time("sgd", lr=float(lr[i]), batch_size=float(batch[i]), dps=30, **kwargs)
        checks.append(abs(out[i] - float(exact.log_tau)) / abs(float(exact.log_tau)))
    same = max(checks) < 1e-12
    big = float(out.max())
    t_ours = best_time(lambda: log_escape_time("sgd", lr=lr, batch_size=batch, **kwargs), repeats=5)
    x = rng.uniform(-5, 5, n)
    t_exp = best_time(lambda: np.exp(x), repeats=7)
    row(
        "log-space evaluation over 10⁶ points (numpy) vs one np.exp pass",
        f"{t_ours * 1e3:.1f} ms",
        f"{t_exp * 1e3:.1f} ms",
        t_ours / t_exp,
        "≤ 5× its time",
        t_ours / t_exp <= 5 and same,
        f"max relative difference to mpmath {max(checks):.1e}" + ("" if same else " (DISAGREE)"),
        f"(largest log τ {big:.0f}: τ itself would overflow float64)",
    )


# ---------------------------------------------------------------------------------------------
# 4. mfpt_1d against kramers and nested scipy quadrature


def _scipy_mfpt(D: float) -> float:
    """Nested scipy.integrate.quad in float64 (the textbook double integral)."""
    from scipy.integrate import quad

    def inner(y: float) -> float:
        return quad(lambda z: np.exp(-(z**4 / 4 - z**2 / 2) / D), -np.inf, y, limit=200)[0]

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quad(lambda y: np.exp((y**4 / 4 - y**2 / 2) / D) * inner(y) / D, -1, 1, limit=200)[0]


def _factored_log_mfpt(D: float) -> float:
    """log T by nested scipy quad in float64 with the barrier factored out (the float peer at
    its best): T = e^{ΔL/D}/D ∫_{-1}^{1} ∫_{-3}^{y} e^{(L(y) − L(z) − ΔL)/D} dz dy, ΔL = 1/4; the
    integrand is ≤ 1 where it matters, so nothing overflows (the tail below −3 is e^{-16/D})."""
    from scipy.integrate import quad

    def loss(v: float) -> float:
        return v**4 / 4 - v**2 / 2

    barrier = 0.25

    def inner(y: float) -> float:
        points = [-1.0] if y > -1.0 else None
        return quad(
            lambda z: math.exp((loss(y) - loss(z) - barrier) / D),
            -3.0,
            y,
            points=points,
            limit=400,
            epsabs=0,
            epsrel=1e-13,
        )[0]

    value = quad(inner, -1.0, 1.0, points=[0.0], limit=400, epsabs=0, epsrel=1e-13)[0]
    return math.log(value / D) + barrier / D


def _mpmath_quad_mfpt(D: mpmath.mpf) -> mpmath.mpf:
    """Nested mpmath.quad at the working precision (the arbitrary-precision peer): the same
    factored double integral, tanh-sinh on each piece."""

    def loss(v: mpmath.mpf) -> mpmath.mpf:
        return v**4 / 4 - v**2 / 2

    barrier = mpmath.mpf(1) / 4

    def inner(y: mpmath.mpf) -> mpmath.mpf:
        pieces = [-3, -1, y] if y > -1 else [-3, y]
        return mpmath.quad(lambda z: mpmath.exp((loss(y) - loss(z) - barrier) / D), pieces)

    return mpmath.log(mpmath.quad(inner, [-1, 0, 1]) / D) + barrier / D


def _kramers_mfpt(D: float) -> float:
    """The kramers package's K0002 quadrature (float64). Its SDE is dx = −D U' dt + √(2D) dW with U
    in kT; with U = L/D it is ours. The reflecting end at −∞ is "natural" in its terms."""
    from kramers.handbook.k0002_mfpt_quadrature import mean_first_passage_time

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            mean_first_passage_time(
                lambda y: (y**4 / 4 - y**2 / 2) / D, -1.0, -np.inf, 1.0, D=D, left="natural"
            )
        )


def _timed(fn: Callable[[], float]) -> tuple[float, float]:
    start = time.perf_counter()
    try:
        value = fn()
    except Exception:  # a peer's failure is a result here, not a crash
        value = float("nan")
    return value, time.perf_counter() - start


def bench_mfpt() -> None:
    import sympy as sp

    from flatminima.numerics import landscape_case, mfpt_1d

    x = sp.Symbol("x")
    well = landscape_case("double-well").loss_in(x)  # built before the clock starts
    lines, times, beyond_fail = [], [], True
    for ratio in (10, 100, 1000, 10_000):  # ΔL/D on the double well x⁴/4 − x²/2
        noise = sp.Rational(1, 4) / ratio
        start = time.perf_counter()
        ours = mfpt_1d(well, noise, start=-1, end=1, dps=30)
        t_ours = time.perf_counter() - start
        s_value, t_scipy = _timed(lambda noise=noise: _scipy_mfpt(float(noise)))
        k_value, t_kramers = _timed(lambda noise=noise: _kramers_mfpt(float(noise)))
        f_log, t_factored = _timed(lambda noise=noise: _factored_log_mfpt(float(noise)))
        # digits of T = −log10 |Δ log T|, with ours unrounded (float64 log T itself carries
        # only ~16 significant digits: at log T = 10⁴ that is 12 digits of T)
        factored_digits = (
            -float(mpmath.log10(abs(mpmath.mpf(f_log) - ours.log_value) + mpmath.mpf(10) ** -17))
            if math.isfinite(f_log)
            else float("nan")
        )
        mp_text = ""
        if ratio == 10:  # nested mpmath.quad at 30 digits: tens of seconds, one ratio only
            with mpmath.workdps(30):
                start = time.perf_counter()
                mp_log = _mpmath_quad_mfpt(mpmath.mpf(1) / 4 / ratio)
                t_mp = time.perf_counter() - start
                mp_digits = -float(
                    mpmath.log10(abs(mp_log - ours.log_value) + mpmath.mpf(10) ** -40)
                )
            mp_text = (
                f"; nested mpmath.quad at 30 digits {t_mp:.1f} s ({t_mp / t_ours:.0f}× ours), "
                f"{mp_digits:.1f} digits"
            )

        def digits(value: float, reference: mpmath.mpf = ours.value) -> str:
            if not math.isfinite(value) or value <= 0:
                return "fails (overflow / nan)"
            err = abs(mpmath.mpf(value) - reference) / reference
            return f"{-math.log10(max(float(err), 1e-17)):.1f} digits"

        if ratio >= 1000:
            beyond_fail &= "fails" in digits(s_value) and "fails" in digits(k_value)
        times.append(f"{t_ours:.2f} s")
        lines.append(
            f"ΔL/D = {ratio}: ours {t_ours:.2f} s at 30 digits (log T = {float(ours.log_value):.2f}, "
            f"estimated relative error {float(ours.relative_error):.0e}); scipy {t_scipy:.2f} s, "
            f"{digits(s_value)}; kramers {t_kramers:.2f} s, {digits(k_value)}; "
            f"barrier-factored scipy quad {t_factored:.2f} s, {factored_digits:.1f} digits"
            + mp_text
        )
    row(
        "mfpt_1d at 30 digits vs kramers (PyPI) and nested scipy quad (float64), double well",
        "; ".join(times),
        "see notes",
        None,
        "report time and digits; beyond ΔL/D ≈ 700 the float peers fail and ours does not",
        beyond_fail,
        "ours finite at every barrier; "
        + ("both float peers fail beyond 700" if beyond_fail else "a float peer did not fail"),
        " | ".join(lines),
    )


#: The code of mfpt_1d when issue 14 was filed (before the O(N²) rules): the "before" peer.
MFPT_BEFORE = "9e399e2~1"

_MFPT_CALL = (
    "import sys, time, sympy as sp\n"
    "from flatminima.numerics import mfpt_1d\n"
    "x = sp.Symbol('x')\n"
    "t = time.perf_counter()\n"
    "m = mfpt_1d(x**4 / 4 - x**2 / 2, sp.Rational(1, 40), start=-1, end=1, dps={dps})\n"
    "print(time.perf_counter() - t, m.log_value)\n"
)


def _mfpt_in_process(dps: int, tree: Path | None, cache: str) -> tuple[float, mpmath.mpf]:
    """(seconds, log T) of mfpt_1d on the double well at ``dps`` digits in a fresh process;
    ``tree``: an extracted older checkout put first on the path (the "before" peer)."""
    import os
    import subprocess

    env = dict(os.environ, FLATMINIMA_CACHE_DIR=cache)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run(
        [sys.executable, "-c", _MFPT_CALL.format(dps=dps)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tree or HERE,
    ).stdout.split()
    with mpmath.workdps(dps + 10):
        return float(out[0]), mpmath.mpf(out[1])


def _before_tree() -> Path | None:
    """``git archive`` of MFPT_BEFORE into a temporary folder (None outside a git checkout)."""
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="flatminima-before-"))
    try:
        archive = subprocess.run(
            ["git", "archive", MFPT_BEFORE], check=True, capture_output=True, cwd=HERE.parent
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return folder


def bench_mfpt_precision() -> None:
    """mfpt_1d at 100 digits against the same call in the code of MFPT_BEFORE, fresh processes
    interleaved (before, ours cold, ours with the rule cached on disk), same digits."""

    tree = _before_tree()
    if tree is None:
        row(
            "mfpt_1d at 100 digits vs the code before",
            "-",
            "no git checkout",
            None,
            "≥ 5×",
            None,
            "-",
        )
        return
    try:
        _mfpt_precision_rows(tree)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _mfpt_precision_rows(tree: Path) -> None:
    import tempfile

    best = {"before": math.inf, "cold": math.inf, "warm": math.inf}
    values = {}
    with tempfile.TemporaryDirectory() as cache:
        _mfpt_in_process(100, None, cache)  # fills the disk cache with the degree-100 rule
        for _ in range(2):
            for name, where, folder in (
                ("before", tree, "off"),
                ("cold", None, "off"),
                ("warm", None, cache),
            ):
                seconds, values[name] = _mfpt_in_process(100, where, folder)
                best[name] = min(best[name], seconds)
    with mpmath.workdps(110):
        digits = -float(
            mpmath.log10(
                max(abs(values[k] - values["before"]) for k in ("cold", "warm")) / values["before"]
                + mpmath.mpf(10) ** -105
            )
        )
    ratio = best["before"] / best["cold"]
    row(
        "mfpt_1d at 100 digits (double well, D = 1/40) vs the same call in the code when issue 14 "
        f"was filed ({MFPT_BEFORE}), fresh processes interleaved",
        f"{best['cold']:.2f} s without the disk cache, {best['warm']:.2f} s with the rule on disk",
        f"{best['before']:.2f} s",
        ratio,
        "≥ 5× faster, same digits",
        ratio >= 5 and digits >= 99,
        f"log T agrees to {digits:.0f} digits",
        f"with the rule cached on disk: {best['before'] / best['warm']:.1f}×",
    )


# ---------------------------------------------------------------------------------------------
# 5–6. simulate_escape against torchsde and the RNG floor


def _ornstein_uhlenbeck(D: float) -> Any:
    """dx = −x dt + √(2D) dW as a torchsde module (diagonal noise, Itô)."""
    import torch

    class OU(torch.nn.Module):
        noise_type = "diagonal"
        sde_type = "ito"

        def f(self, t: Any, y: torch.Tensor) -> torch.Tensor:
            return -y

        def g(self, t: Any, y: torch.Tensor) -> torch.Tensor:
            return torch.full_like(y, math.sqrt(2 * D))

    return OU()


def bench_simulate() -> None:
    # Both sides use the machine as they come: ours generates its normals from two streams in
    # two threads, ahead of the steps; torchsde runs with torch's default thread count (it was
    # no faster with 2 threads than with 1 here: 0.72 vs 0.71 M path-steps/s in 10-D).
    for dim in (1, 10):
        _bench_simulate_dim(dim)


def _sfc64_rate() -> float:
    """Float64 standard normals per second from SFC64 into a reused buffer (10⁶ at a time)."""
    rng = np.random.Generator(np.random.SFC64(0))
    buffer = np.empty(1_000_000)
    return buffer.size / best_time(lambda: rng.standard_normal(out=buffer), repeats=5, number=5)


def _bench_simulate_dim(dim: int) -> None:
    import torch

    from flatminima.numerics import simulate_escape

    n_paths, steps, dt, D = 10_000, 400 if dim == 10 else 2000, 0.01, 0.5
    start = np.ones(dim)

    def ours() -> Any:
        return simulate_escape(
            lambda z: z,
            start=start,
            diffusion=D,
            step=dt,
            n_paths=n_paths,
            max_steps=steps,
            escaped=lambda z: z[:, 0] > 1e9,
            seed=3,
        )

    result = ours()
    t_ours = best_time(ours, repeats=3)
    path_steps = n_paths * steps
    # OU: E x(T) = e^{−T}, Var = D(1 − e^{−2T})
    T = steps * dt
    mean_ok = np.allclose(
        result.final_positions.mean(0), math.exp(-T), atol=5 * math.sqrt(D / n_paths)
    )
    var_ok = np.allclose(result.final_positions.var(0), D * (1 - math.exp(-2 * T)), rtol=0.1)
    try:
        import torchsde

        sde = _ornstein_uhlenbeck(D)
        y0 = torch.ones(n_paths, dim, dtype=torch.float64)
        ts = torch.tensor([0.0, T], dtype=torch.float64)

        def peer() -> Any:
            return torchsde.sdeint(sde, y0, ts, method="euler", dt=dt)

        peer_out = peer()[-1].numpy()
        t_peer = best_time(peer, repeats=2)
        peer_same = np.allclose(
            peer_out.mean(0), math.exp(-T), atol=5 * math.sqrt(D / n_paths)
        ) and np.allclose(peer_out.var(0), D * (1 - math.exp(-2 * T)), rtol=0.1)
        ratio = t_peer / t_ours
        same = (
            "both match the OU mean and variance at T"
            if (mean_ok and var_ok and peer_same)
            else "MISMATCH"
        )
        row(
            f"simulate_escape, {dim}-D, 10⁴ paths vs torchsde sdeint (euler, same dt and horizon)",
            f"{path_steps / t_ours / 1e6:.1f} M path-steps/s",
            f"{path_steps / t_peer / 1e6:.2f} M path-steps/s",
            ratio,
            "≥ 20× more path-steps per second",
            ratio >= 20 and mean_ok and var_ok and peer_same,
            same,
            ""
            if ratio >= 20
            else (
                f"Bound by the random numbers: in {dim}-D each path-step draws {dim} normals; ours uses "
                f"{path_steps * dim / t_ours / 1e6:.0f} M normals/s. 20× torchsde would need "
                f"{20 * path_steps * dim / t_peer / 1e6:.0f} M normals/s; numpy's fastest bit generator "
                f"(SFC64) alone gives {_sfc64_rate() / 1e6:.0f} M float64 normals/s in this run, with "
                "nothing else done per step."
            ),
        )
    except ImportError:
        row(
            f"simulate_escape, {dim}-D vs torchsde",
            f"{path_steps / t_ours / 1e6:.1f} M path-steps/s",
            "torchsde not installed",
            None,
            "≥ 20×",
            None,
            "",
        )
    _simulate_best_peers(dim, n_paths, steps, dt, D, start, ours, mean_ok and var_ok)
    rng = np.random.default_rng(0)
    t_rng = best_time(lambda: rng.standard_normal(path_steps * dim), repeats=3)
    ratio = (path_steps * dim / t_ours) / (path_steps * dim / t_rng)
    row(
        f"simulate_escape, {dim}-D, 10⁴ paths vs numpy standard normals of the same count (RNG floor)",
        f"{path_steps * dim / t_ours / 1e6:.1f} M normals/s used",
        f"{path_steps * dim / t_rng / 1e6:.1f} M normals/s",
        ratio,
        "≥ 0.5 of the floor's rate",
        ratio >= 0.5,
        "OU moments match" if mean_ok and var_ok else "MISMATCH",
        "The floor is one numpy generator (default PCG64) in one thread; ours draws from two "
        "SFC64 streams generated in worker threads while the paths are updated (one worker "
        "per stream beyond the stepping thread's core; on 2 cores one, the stepping thread "
        "filling what it has not started), so it can pass the floor.",
    )


def _simulate_best_peers(
    dim: int,
    n_paths: int,
    steps: int,
    dt: float,
    D: float,
    start: np.ndarray,
    ours: Callable[[], Any],
    ours_ok: bool,
) -> None:
    """The peers at their best: a hand-written numpy Euler–Maruyama loop with the same SFC64
    generator and in-place updates, and torchsde with a fixed-step Brownian hint and as many
    threads as ours uses (2)."""
    import torch

    path_steps = n_paths * steps
    T = steps * dt
    scale = math.sqrt(2 * D * dt)

    def numpy_loop() -> np.ndarray:
        generator = np.random.Generator(np.random.SFC64(3))
        x = np.tile(start, (n_paths, 1))
        noise = np.empty_like(x)
        for _ in range(steps):
            generator.standard_normal(out=noise)
            noise *= scale
            x *= 1 - dt  # drift −∇L = −x for L = x²/2
            x += noise
        return x

    out = numpy_loop()
    loop_ok = np.allclose(out.mean(0), math.exp(-T), atol=5 * math.sqrt(D / n_paths))
    times = best_times({"ours": (ours, 1), "loop": (numpy_loop, 1)}, repeats=3)
    t_ours, t_loop = times["ours"], times["loop"]
    row(
        f"simulate_escape, {dim}-D, 10⁴ paths vs a hand-written numpy loop (same SFC64 generator, "
        "in-place updates, one thread)",
        f"{path_steps / t_ours / 1e6:.1f} M path-steps/s",
        f"{path_steps / t_loop / 1e6:.1f} M path-steps/s",
        t_loop / t_ours,
        "≥ 0.9 of its rate",
        t_loop / t_ours >= 0.9 and loop_ok and ours_ok,
        "both match the OU mean" if loop_ok and ours_ok else "MISMATCH",
        "ours also tests the escape criterion every step, keeps per-path step counts and times, "
        "and restarts or censors paths.",
    )
    try:
        import torchsde
    except ImportError:
        return

    sde = _ornstein_uhlenbeck(D)
    y0 = torch.ones(n_paths, dim, dtype=torch.float64)
    ts = torch.tensor([0.0, T], dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:

        def peer() -> Any:
            bm = torchsde.BrownianInterval(
                t0=0.0, t1=T, size=(n_paths, dim), dtype=torch.float64, dt=dt
            )
            return torchsde.sdeint(sde, y0, ts, method="euler", dt=dt, bm=bm)

        peer_out = peer()[-1].numpy()
        times = best_times({"ours": (ours, 1), "peer": (peer, 1)}, repeats=2)
        t_ours, t_peer = times["ours"], times["peer"]
    finally:
        torch.set_num_threads(threads)
    peer_ok = np.allclose(peer_out.mean(0), math.exp(-T), atol=5 * math.sqrt(D / n_paths))
    row(
        f"simulate_escape, {dim}-D, 10⁴ paths vs torchsde sdeint (euler) with "
        "BrownianInterval(dt=dt) and 2 threads (the peer at its best)",
        f"{path_steps / t_ours / 1e6:.1f} M path-steps/s",
        f"{path_steps / t_peer / 1e6:.2f} M path-steps/s",
        t_peer / t_ours,
        "report (the ≥ 20× target was set against default torchsde)",
        None,
        "both match the OU mean" if peer_ok and ours_ok else "MISMATCH",
    )


# ---------------------------------------------------------------------------------------------
# 7. batched replicas against a Python loop


def bench_replicas() -> None:
    import torch

    from flatminima.validation._models import load_dataset, make_model, train_to_minimum
    from flatminima.validation._network_escape import _batched_gradient

    torch.set_num_threads(1)
    data = load_dataset("two-blobs", seed=3, size=128)
    model = make_model("mlp", data, hidden=4, weight_decay=0.1)
    theta_star, _ = train_to_minimum(model, data, seed=3)
    replicas, batch = 256, 4
    generator = torch.Generator().manual_seed(0)
    theta = theta_star.repeat(replicas, 1) + 0.01 * torch.randn(
        replicas, theta_star.numel(), generator=generator, dtype=torch.float64
    )
    idx = torch.randint(data.size, (replicas, batch), generator=generator)
    onehot = torch.nn.functional.one_hot(data.y, 2).to(torch.float64)

    def ours() -> torch.Tensor:
        return _batched_gradient(model, theta, data.x[idx], onehot[idx])

    def loop() -> torch.Tensor:
        grads = []
        for r in range(replicas):
            t = theta[r].clone().requires_grad_(True)
            loss = model.loss(t, data.x[idx[r]], data.y[idx[r]])
            (g,) = torch.autograd.grad(loss, t)
            grads.append(g)
        return torch.stack(grads)

    same = torch.allclose(ours(), loop(), atol=1e-12)
    t_ours = best_time(ours, repeats=7, number=20)
    t_loop = best_time(loop, repeats=3)
    row(
        "batched replicas (256 MLP replicas, one SGD gradient) vs a Python loop over them",
        f"{t_ours / replicas * 1e6:.2f} µs per replica-step",
        f"{t_loop / replicas * 1e6:.1f} µs per replica-step",
        t_loop / t_ours,
        "≥ 10× per replica-step",
        t_loop / t_ours >= 10 and same,
        "same gradients to 1e-12" if same else "MISMATCH",
    )
    # the peer at its best: torch.func.vmap over the replicas of torch.func.grad of the loss
    per_replica = torch.func.vmap(
        torch.func.grad(lambda t, x, y: model.loss(t, x, y)), in_dims=(0, 0, 0)
    )

    def vmapped() -> torch.Tensor:
        return per_replica(theta, data.x[idx], data.y[idx])

    same_vmap = torch.allclose(ours(), vmapped(), atol=1e-12)
    times = best_times({"ours": (ours, 20), "vmap": (vmapped, 5)}, repeats=7)
    t_ours, t_vmap = times["ours"], times["vmap"]
    row(
        "batched replicas (256 MLP replicas, one SGD gradient) vs torch.func.vmap(grad) (the peer "
        "at its best)",
        f"{t_ours / replicas * 1e6:.2f} µs per replica-step",
        f"{t_vmap / replicas * 1e6:.2f} µs per replica-step",
        t_vmap / t_ours,
        "report (the ≥ 10× target was set against a Python loop)",
        None,
        "same gradients to 1e-12" if same_vmap else "MISMATCH",
        "ours is hand-written batched backpropagation for the one-hidden-layer MLP (einsum).",
    )


# ---------------------------------------------------------------------------------------------
# 8. top Hessian eigenvalue


def _eigenthings_peer(model: Any, data: Any, theta: Any) -> tuple[Any, str]:
    """hessian-eigenthings' power iteration on the same loss, or (None, "") if not installed."""
    import torch

    try:
        import hessian_eigenthings as he
    except ImportError:
        return None, ""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.theta = torch.nn.Parameter(theta.clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return model.logits(self.theta, x)

    def loss_fn(module: torch.nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return model.loss(module.theta, x, y)

    operator = he.HessianOperator(Net(), [(data.x, data.y)], loss_fn)

    def peer() -> Any:
        return he.power_iteration_one(operator, tol=1e-6, max_iter=500, seed=0)

    return peer, "hessian-eigenthings power_iteration_one (autograd double backward)"


def _graph_reuse_power_iteration(model: Any, data: Any, theta: Any) -> Callable[[], Any]:
    """The peer at its best: plain autograd power iteration that builds the gradient graph once
    and reuses it for every Hessian-vector product (double backward, retain_graph); it stops
    when the Rayleigh quotient changes by less than 1e-6 relative."""
    import torch

    def reuse() -> tuple[float, torch.Tensor]:
        t = theta.clone().requires_grad_(True)
        g = torch.autograd.grad(model.loss(t, data.x, data.y), t, create_graph=True)[0]
        v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(0), dtype=theta.dtype)
        value = 0.0
        for _ in range(500):
            v = v / v.norm()
            hv = torch.autograd.grad(g @ v, t, retain_graph=True)[0]
            new = float(v @ hv)
            if abs(new - value) < 1e-6 * abs(new):
                return new, v
            value, v = new, hv
        return value, v

    return reuse


def bench_top_eigenvalue() -> None:
    import torch

    from flatminima.validation._hessian import top_hessian_eigenvalue
    from flatminima.validation._models import load_dataset, make_model, train_to_minimum

    torch.set_num_threads(1)
    data = load_dataset("breast-cancer")
    model = make_model("mlp", data, hidden=32, weight_decay=1e-2)
    theta, _ = train_to_minimum(model, data, seed=1)
    exact = float(
        torch.linalg.eigvalsh(torch.func.hessian(lambda t: model.loss(t, data.x, data.y))(theta))[
            -1
        ]
    )

    def ours() -> Any:
        # residual ≤ 3e-4·|λ|: the Ritz value is then accurate to ~r²/gap (2e-8 here), at or
        # below the error of the peers' 1e-6 change-of-Rayleigh-quotient test (2.4e-7): equal
        # accuracy or better, both errors against eigvalsh printed in the rows
        return top_hessian_eigenvalue(
            lambda t: model.loss(t, data.x, data.y), theta, tol=3e-4, seed=0
        )

    ours_result = ours()
    reuse = _graph_reuse_power_iteration(model, data, theta)
    reuse_value = reuse()[0]
    peer, name = _eigenthings_peer(model, data, theta)
    if peer is None:  # not installed: the row compares with the plain power iteration
        peer, name = reuse, "autograd power iteration (hessian-eigenthings not installed)"
    peer_value = peer()[0]
    reuse_same = (
        abs(reuse_value - exact) / exact < 1e-4 and abs(ours_result.value - exact) / exact < 1e-4
    )
    same = (
        abs(ours_result.value - peer_value) / abs(peer_value) < 1e-4
        and abs(ours_result.value - exact) / exact < 1e-4
    )
    times = best_times({"ours": (ours, 1), "peer": (peer, 1), "reuse": (reuse, 1)}, repeats=20)
    t_ours, t_peer, t_reuse = times["ours"], times["peer"], times["reuse"]
    row(
        f"top Hessian eigenvalue, MLP ({model.size} parameters, breast cancer) vs {name}",
        f"{t_ours * 1e3:.1f} ms ({ours_result.iterations} iterations)",
        f"{t_peer * 1e3:.1f} ms",
        t_peer / t_ours,
        "≥ 1× speed, same value to 1e-4 relative",
        t_peer / t_ours >= 1 and same,
        f"λ_max ours {ours_result.value:.6f}, peer {peer_value:.6f}, exact (eigvalsh) {exact:.6f}",
    )
    row(
        f"top Hessian eigenvalue, MLP ({model.size} parameters) vs autograd power iteration with "
        "graph reuse (the peer at its best)",
        f"{t_ours * 1e3:.1f} ms",
        f"{t_reuse * 1e3:.1f} ms",
        t_reuse / t_ours,
        "≥ 1× speed, same value to 1e-4 relative",
        t_reuse / t_ours >= 1 and reuse_same,
        f"relative error against eigvalsh: ours {abs(ours_result.value - exact) / exact:.1e}, "
        f"peer {abs(reuse_value - exact) / exact:.1e}" + ("" if reuse_same else " (MISMATCH)"),
        f"ours: Lanczos, {ours_result.iterations} Hessian-vector products to a residual "
        f"{ours_result.residual / ours_result.value:.0e}·λ; the peer stops when its Rayleigh "
        "quotient changes by < 1e-6. Both build the gradient graph once; interleaved timing, "
        "one thread.",
    )


# ---------------------------------------------------------------------------------------------
# probe: top-k eigenpairs, noise on the subspace, replica SGD (flatminima.validation.probe)


def _probe_model() -> Any:
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    y = torch.tensor(d.target)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 24), torch.nn.Tanh(), torch.nn.Linear(24, 10)
    ).double()
    loss_fn = torch.nn.CrossEntropyLoss()
    wd = 1e-3
    opt = torch.optim.LBFGS(
        model.parameters(),
        max_iter=300,
        tolerance_grad=1e-10,
        tolerance_change=0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), y) + 0.5 * wd * sum((p * p).sum() for p in model.parameters())
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    return model, loss_fn, x, y, wd


def bench_probe() -> None:
    import torch

    from flatminima.validation._lanczos import lanczos_top
    from flatminima.validation._persample import FunctionalModel
    from flatminima.validation._probe import _subsets

    torch.set_num_threads(1)
    model, loss_fn, x, y, wd = _probe_model()
    fm = FunctionalModel(
        model, loss_fn, x, y, dtype=torch.float64, device=torch.device("cpu"), weight_decay=wd
    )
    k = 20

    def ours() -> Any:
        return lanczos_top(fm.hvp_operator(), fm.size, k, tol=1e-6)

    def dense() -> Any:
        h = torch.func.hessian(fm.loss)(fm.theta0)
        return torch.linalg.eigvalsh(0.5 * (h + h.T)).flip(0)[:k]

    got, exact = ours(), dense()
    rel = float(((got.values - exact).abs() / exact.abs()).max())
    t_ours, t_dense = best_time(ours, repeats=2), best_time(dense, repeats=2)
    row(
        f"top-{k} Hessian eigenpairs, MLP ({fm.size} parameters, digits 1797) vs dense "
        "torch.func.hessian + eigvalsh",
        f"{t_ours:.2f} s ({got.iterations} products)",
        f"{t_dense:.2f} s",
        t_dense / t_ours,
        "≥ 1× speed, same eigenvalues to 1e-4 relative",
        t_dense / t_ours >= 1 and rel < 1e-4,
        f"largest relative difference {rel:.1e}",
        "the Lanczos peers (hessian-eigenthings' lanczos, curvlinops + scipy eigsh) and the "
        "≥ 10⁵-parameter model are measured by benchmarks/probe_cost.py (probe_cost.md)",
    )
    basis = got.vectors

    def noise() -> Any:
        return fm.projected_sample_gradients(basis)

    def loop() -> Any:
        rows = []
        for i in range(fm.samples):
            g = torch.func.grad(fm.per_sample_loss)(fm.theta0, fm.x[i], fm.y[i])
            rows.append(g @ basis)
        return torch.stack(rows)

    def batched_gradient() -> Any:  # one batched gradient pass per chunk, for scale
        out = []
        for start in range(0, fm.samples, fm.chunk_size):
            xs, ys = fm.x[start : start + fm.chunk_size], fm.y[start : start + fm.chunk_size]
            out.append(torch.func.grad(fm.data_loss)(fm.theta0, xs, ys))
        return out

    per_sample = torch.func.vmap(torch.func.grad(fm.per_sample_loss), in_dims=(None, 0, 0))

    def batched_per_sample() -> Any:  # the per-sample gradients alone, vmap(grad) per chunk
        for start in range(0, fm.samples, fm.chunk_size):
            end = start + fm.chunk_size
            per_sample(fm.theta0, fm.x[start:end], fm.y[start:end])

    same = float((noise() - loop()).abs().max())
    t_noise, t_loop = best_time(noise, repeats=2), best_time(loop, repeats=1)
    t_grad = best_time(batched_gradient, repeats=3)
    t_vmap = best_time(batched_per_sample, repeats=3)
    row(
        f"per-sample gradients on the top-{k} subspace ({fm.samples} samples, {fm.size} "
        "parameters) vs a Python loop over samples",
        f"{t_noise * 1e3:.0f} ms ({t_noise / t_grad:.1f}× one batched gradient pass per chunk, "
        f"{t_noise / t_vmap:.2f}× the per-sample gradients alone by vmap(grad) per chunk)",
        f"{t_loop * 1e3:.0f} ms",
        t_loop / t_noise,
        "≥ 10×, within 2× of a batched gradient pass",
        t_loop / t_noise >= 10 and t_noise / t_grad <= 2,
        f"largest difference {same:.1e}",
    )
    replicas, steps, batch = 64, 20, 32
    gen = torch.Generator().manual_seed(0)
    grad_b = torch.func.vmap(torch.func.grad(fm.batch_loss))
    grad_one = torch.func.grad(fm.batch_loss)

    def batched() -> Any:
        thetas = fm.theta0.expand(replicas, -1).clone()
        for _ in range(steps):
            idx = _subsets(replicas, fm.samples, batch, gen, fm.device)
            thetas = thetas - 0.1 * grad_b(thetas, fm.x[idx], fm.y[idx])
        return thetas

    def per_replica() -> Any:
        thetas = [fm.theta0.clone() for _ in range(replicas)]
        for _ in range(steps):
            idx = _subsets(replicas, fm.samples, batch, gen, fm.device)
            thetas = [
                t - 0.1 * grad_one(t, fm.x[i], fm.y[i]) for t, i in zip(thetas, idx, strict=True)
            ]
        return thetas

    t_b, t_l = best_time(batched, repeats=2), best_time(per_replica, repeats=2)
    row(
        f"replica SGD steps ({replicas} replicas × B = {batch}, {fm.size} parameters) vs a "
        "Python loop over replicas",
        f"{replicas * steps / t_b:.0f} replica-steps/s",
        f"{replicas * steps / t_l:.0f} replica-steps/s",
        t_l / t_b,
        "> 1×",
        t_l / t_b > 1,
        "same update (vmap of the same grad)",
    )


# ---------------------------------------------------------------------------------------------
# scaling: how the cost grows (docs/performance.md)

SCALING: list[dict[str, Any]] = []


def bench_scaling() -> None:
    import sympy as sp

    from flatminima.numerics import landscape_case, mfpt_1d, simulate_escape

    for n_paths, dim in (
        (1_000, 1),
        (10_000, 1),
        (100_000, 1),
        (10_000, 2),
        (10_000, 10),
        (10_000, 50),
    ):
        steps = max(50, 2_000_000 // (n_paths * dim))

        def run(n_paths: int = n_paths, dim: int = dim, steps: int = steps) -> Any:
            return simulate_escape(
                lambda z: z,
                start=np.zeros(dim),
                diffusion=0.5,
                step=0.01,
                n_paths=n_paths,
                max_steps=steps,
                escaped=lambda z: z[:, 0] > 1e9,
                seed=1,
            )

        t = best_time(run, repeats=3)
        SCALING.append(
            {
                "kind": "simulate_escape: paths and dimension",
                "setting": f"{n_paths} paths, {dim}-D",
                "value": f"{n_paths * steps / t / 1e6:.1f} M path-steps/s",
            }
        )
    for barrier, steps in (
        (2.0, 1000),
        (3.0, 3000),
        (4.0, 8000),
        (5.0, 20000),
    ):  # about 600 escapes each
        D = 0.25 / barrier
        start = time.perf_counter()
        result = simulate_escape(
            lambda z: z * (z * z - 1),  # not z**3: numpy's power() costs ~100 ns per element
            start=[-1.0],
            diffusion=D,
            step=0.01,
            n_paths=2000,
            max_steps=steps,
            saddle=[0.0],
            direction=[1.0],
            margin=0.3,
            restart=True,
            seed=2,
        )
        elapsed = time.perf_counter() - start
        steps_per_escape = result.n_paths * result.steps / max(result.n_escaped, 1)
        SCALING.append(
            {
                "kind": "simulate_escape: barrier (double well, 2000 paths, renewal)",
                "setting": f"ΔL/D = {barrier:g}",
                "value": f"{steps_per_escape:.3g} path-steps per escape, {elapsed / max(result.n_escaped, 1) * 1e3:.2f} ms per escape",
            }
        )
    x = sp.Symbol("x")
    well = landscape_case("double-well").loss_in(x)
    for dps in (15, 30, 60, 120):
        start = time.perf_counter()
        m = mfpt_1d(well, sp.Rational(1, 40), start=-1, end=1, dps=dps)
        elapsed = time.perf_counter() - start
        SCALING.append(
            {
                "kind": "mfpt_1d: precision (double well, ΔL/D = 10)",
                "setting": f"{dps} digits",
                "value": f"{elapsed:.2f} s, {m.panels} panels, estimated relative error {float(m.relative_error):.0e}",
            }
        )
    for entry in SCALING:
        print(f"  {entry['kind']}: {entry['setting']}: {entry['value']}", flush=True)


# ---------------------------------------------------------------------------------------------
# escape_time end to end (the public call), and cold start in a fresh process


def _hessian_pair(n: int, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    qa, _ = np.linalg.qr(rng.normal(size=(n, n)))
    qb, _ = np.linalg.qr(rng.normal(size=(n, n)))
    la = rng.uniform(0.5, 3.0, n)
    lb = rng.uniform(0.2, 4.0, n)
    lb[0] = -1.3
    a = qa @ np.diag(la) @ qa.T
    b = qb @ np.diag(lb) @ qb.T
    return (a + a.T) / 2, (b + b.T) / 2


def _hand_escape_time(n: int, a_l: list[list[float]], b_l: list[list[float]]) -> Callable[[], Any]:
    """The 1-D or 2-D SGD (Itô) escape time written by hand in mpmath: mpf input, the closed-form
    eigenvalue and Rayleigh quotient in 2-D, the formula; at 60 digits (dps + 10, as ours)."""

    def hand() -> Any:
        with mpmath.workdps(60):
            if n == 1:
                h_a, h_b = mpmath.mpf(a_l[0][0]), -mpmath.mpf(b_l[0][0])
            else:
                p, q, r = (
                    mpmath.mpf(b_l[0][0]),
                    mpmath.mpf(b_l[0][1]),
                    mpmath.mpf(b_l[1][1]),
                )
                low = (p + r) / 2 - mpmath.sqrt(((p - r) / 2) ** 2 + q * q)
                x, y = q, low - p
                norm = x * x + y * y
                ap, aq, ar = (
                    mpmath.mpf(a_l[0][0]),
                    mpmath.mpf(a_l[0][1]),
                    mpmath.mpf(a_l[1][1]),
                )
                h_a = (ap * x * x + 2 * aq * x * y + ar * y * y) / norm
                h_b = -low
            dl, eta, bb, s_ = mpmath.mpf("0.75"), mpmath.mpf("0.05"), 32, mpmath.mpf("0.4")
            return 2 * mpmath.pi / h_a * mpmath.exp(2 * bb * dl / eta * (s_ / h_a + (1 - s_) / h_b))

    return hand


def _escape_time_small(n: int) -> None:
    import sympy as sp

    from flatminima.numerics import escape_time
    from flatminima.theory import derive_escape_time

    kw = {"barrier": "0.75", "lr": "0.05", "batch_size": 32, "s": "0.4"}
    a, b = _hessian_pair(n, seed=n)
    a_l, b_l = a.tolist(), b.tolist()
    call = lambda: escape_time("sgd", hess_min=a_l, hess_saddle=b_l, dps=50, **kw)  # noqa: E731
    ours = call()
    d = derive_escape_time("sgd", dim=n, interpretation="ito")
    hand = _hand_escape_time(n, a_l, b_l)
    with mpmath.workdps(50):
        want = hand()
        subs = {
            d.symbols["H_a" if n == 1 else "H_a_1"]: sp.Float(
                str(ours.eigen.curvature_min_along_e), 60
            ),
            d.symbols["H_b" if n == 1 else "H_b_1"]: sp.Float(
                str(ours.eigen.curvature_saddle_e), 60
            ),
            d.symbols["Delta_L"]: sp.Rational(3, 4),
            d.symbols["eta"]: sp.Rational(1, 20),
            d.symbols["B"]: 32,
            d.symbols["s"]: sp.Rational(2, 5),
        }
        same = mpmath.almosteq(ours.tau, want, rel_eps=mpmath.mpf(10) ** -45)
        # short blocks, many rounds: on a shared machine a block that ran without being
        # preempted is what the minimum finds
        times = best_times(
            {
                "ours": (call, 20),
                "hand": (hand, 20),
                "sympy": (lambda: d.tau.evalf(subs=subs, n=50), 2),
            },
            repeats=40,
        )
        t_ours, t_hand, t_sympy = times["ours"], times["hand"], times["sympy"]
    agree = "agree to 45 digits" if same else "DISAGREE"
    row(
        f"escape_time end to end, {n}-D dense Hessians, 50 digits vs SymPy evalf(subs, n=50)",
        f"{t_ours * 1e6:.0f} µs",
        f"{t_sympy * 1e6:.0f} µs (evalf of the formula only, eigenvalues given)",
        t_sympy / t_ours,
        "≥ 10× faster",
        t_sympy / t_ours >= 10 and same,
        agree,
    )
    row(
        f"escape_time end to end, {n}-D, 50 digits vs hand-written mpmath (mpf input, closed-form eigen-data, formula)",
        f"{t_ours * 1e6:.0f} µs",
        f"{t_hand * 1e6:.0f} µs",
        t_ours / t_hand,
        "≤ 3× its time",
        t_ours / t_hand <= 3 and same,
        agree,
        "ours also checks every input, builds the EscapeTime record (eigen-data, ΔΦ, "
        "iterations) and runs the validity checks.",
    )


def bench_escape_time() -> None:
    from flatminima.numerics import escape_time

    warnings.simplefilter("ignore")
    for n in (1, 2):
        _escape_time_small(n)
    white = {"barrier": "2", "diffusion": "0.1"}
    warm_a, warm_b = _hessian_pair(3)
    escape_time("white", hess_min=warm_a, hess_saddle=warm_b, dps=30, **white)  # derivation
    for n in (d for d in (10, 100, 1000, 3000) if d <= MAX_DIM):
        a, b = _hessian_pair(n, seed=n)
        # ours and eigh interleaved, best of 3 rounds (1 at n = 3000): both see the same
        # background load on the shared machine
        t_ours = t_eigh = math.inf
        for _ in range(3 if n < 3000 else 1):
            r, t_1, t_2 = _dense_round(a, b, white)
            t_ours, t_eigh = min(t_ours, t_1), min(t_eigh, t_2)
        check = ""
        if n == 10:
            with mpmath.workdps(70):
                ref = escape_time(
                    "white",
                    hess_min=[[mpmath.mpf(x) for x in row] for row in a.tolist()],
                    hess_saddle=[[mpmath.mpf(x) for x in row] for row in b.tolist()],
                    dps=60,
                    **white,
                )
                check = (
                    "agrees with the mpmath.eigsy path at 60 digits to "
                    f"{-float(mpmath.log10(abs(r.log_tau - ref.log_tau) + mpmath.mpf(10) ** -80)):.0f} digits of log τ"
                )
        row(
            f"escape_time end to end, dense n = {n} (white), 30 digits vs numpy.linalg.eigh of one Hessian",
            f"{t_ours * 1e3:.1f} ms",
            f"{t_eigh * 1e3:.1f} ms",
            t_ours / t_eigh,
            {1000: "≤ 10×", 3000: "runs"}.get(n, "-"),
            (t_ours / t_eigh <= 10) if n == 1000 else (True if n == 3000 else None),
            check or r.eigen.method,
            "two float64 eigh (H_a and H_b); per Hessian 6 exact limb GEMMs for HQ − QΛ "
            "(9 where one more bit per limb does not fit; H's sparse fourth limb by CSR), "
            "QᵀQ − I from 6 syrk, K = QᵀW, log det by the gap-free series (its "
            "accurate off-diagonal, 3 GEMMs more, only when κ needs it); Newton steps with exact "
            "residuals for the escape pair; from n = 500 the two Hessians side by side (two "
            "threads, one BLAS thread each); ours and eigh interleaved, best of 3 rounds "
            "(1 at n = 3000)",
        )
    if MAX_DIM >= 1000:
        _escape_time_ill_conditioned(1000, white)


def _ill_conditioned_pair(n: int, seed: int = 1) -> tuple[Any, Any]:
    """κ = 10⁶ for both Hessians, shuffled spectra, random rotations (as in the tests)."""
    rng = np.random.default_rng(seed)
    qa, _ = np.linalg.qr(rng.normal(size=(n, n)))
    qb, _ = np.linalg.qr(rng.normal(size=(n, n)))
    la, lb = np.geomspace(1.0, 1e6, n), np.geomspace(1.0, 1e6, n)
    rng.shuffle(la)
    rng.shuffle(lb)
    lb[0] = -50.0
    a, b = qa @ np.diag(la) @ qa.T, qb @ np.diag(lb) @ qb.T
    return (a + a.T) / 2, (b + b.T) / 2


def _dense_round(a: Any, b: Any, white: dict[str, str]) -> tuple[Any, float, float]:
    """One round: escape_time on the pair, then eigh of a (same background load)."""
    from flatminima.numerics import escape_time

    with _no_gc():
        t0 = time.perf_counter()
        r = escape_time("white", hess_min=a, hess_saddle=b, dps=30, **white)
        t1 = time.perf_counter()
        np.linalg.eigh(a)
        t2 = time.perf_counter()
    return r, t1 - t0, t2 - t1


def _escape_time_ill_conditioned(n: int, white: dict[str, str]) -> None:
    r, t_ours, t_eigh = _dense_round(*_ill_conditioned_pair(n), white)
    row(
        f"escape_time end to end, dense n = {n}, κ = 1e6 (white), 30 digits vs numpy.linalg.eigh",
        f"{t_ours * 1e3:.1f} ms",
        f"{t_eigh * 1e3:.1f} ms",
        t_ours / t_eigh,
        "-",
        None,
        "series (no mpmath LU)" if "series" in r.eigen.method else "mpmath LU fallback",
        "the series' accurate off-diagonal (3 GEMMs more per Hessian); one round",
    )


def _cpu_of(code: str, cache: str | None = None) -> float:
    import os
    import resource
    import subprocess

    env = dict(os.environ)
    if cache is not None:
        env["FLATMINIMA_CACHE_DIR"] = cache
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_cold_start() -> None:
    import tempfile

    # the derivations the common calls need ship precomputed (theory/_derivations.txt); HIDE
    # points the package at no such file, as a stale one is treated: the derivation runs
    hide = "from pathlib import Path\nfrom flatminima.theory import _shipped\n_shipped.DATA = Path('/nonexistent')\n"
    formula = (
        "import flatminima.numerics\nfrom flatminima.theory import derive_escape_time\n"
        "derive_escape_time('sgd', dim=2).tau"
    )
    number = (
        "import warnings\nwarnings.simplefilter('ignore')\n"
        "from flatminima.numerics import escape_time\n"
        "escape_time('sgd', hess_min=[[2, 0.3], [0.3, 5]], hess_saddle=[[-1, 0.2], [0.2, 3]],"
        " barrier='0.5', lr='0.1', batch_size=64, s='0.5', dps=30)"
    )
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        _cpu_of(hide + formula, cache=folder)  # fills the disk cache
        runs = {
            "sympy": ("import sympy", "off"),
            "numerics": ("import flatminima.numerics", "off"),
            "formula": (formula, "off"),
            "number": (number, "off"),
            "formula derived": (hide + formula, "off"),
            "number derived": (hide + number, "off"),
            "formula disk": (hide + formula, folder),
        }
        for _ in range(3):  # round by round: every case once per round
            for name, (code, cache) in runs.items():
                times.setdefault(name, []).append(_cpu_of(code, cache=cache))
    t = {name: min(values) for name, values in times.items()}
    beyond = {name: t[name] - t["numerics"] for name in t}
    row(
        "fresh process: import flatminima.numerics vs import sympy (CPU)",
        f"{t['numerics']:.2f} s",
        f"{t['sympy']:.2f} s",
        t["numerics"] / t["sympy"],
        "≤ 1.5×",
        t["numerics"] / t["sympy"] <= 1.5,
        "-",
    )
    row(
        "fresh process: first formula (derive_escape_time sgd 2-D) beyond the import (CPU)",
        f"{beyond['formula']:.2f} s shipped precomputed, no disk cache; deriving: "
        f"{beyond['formula derived']:.2f} s, {beyond['formula disk']:.2f} s from a warm disk cache",
        "-",
        None,
        "< 1 s",
        beyond["formula"] < 1,
        "-",
        "the common derivations ship in the package (theory/_derivations.txt); 'deriving' hides "
        "that file (as a stale one is treated) with the disk cache off (FLATMINIMA_CACHE_DIR=off) "
        "or warm; best of 3 fresh processes, the cases interleaved round by round",
    )
    row(
        "fresh process: first number (escape_time sgd 2-D, 30 digits) beyond the import (CPU)",
        f"{beyond['number']:.2f} s shipped precomputed, no disk cache; "
        f"{beyond['number derived']:.2f} s deriving",
        "-",
        None,
        "< 1 s",
        beyond["number"] < 1,
        "-",
    )


BENCHES = {
    "compiled": bench_compiled_mpmath,
    "log-space": bench_log_space,
    "mfpt": bench_mfpt,
    "mfpt-precision": bench_mfpt_precision,
    "simulate": bench_simulate,
    "replicas": bench_replicas,
    "eigenvalue": bench_top_eigenvalue,
    "probe": bench_probe,
    "scaling": bench_scaling,
    "escape_time": bench_escape_time,
    "cold": bench_cold_start,
}


def write_results(
    elapsed: float, pending: list[str] | None = None, header: str | None = None
) -> None:
    """Write RESULTS.md and results.json; ``pending`` names the benchmarks not run yet (the
    files are rewritten after each benchmark, so a stopped run leaves what it measured);
    ``header`` replaces the opening paragraph (for a table assembled from several runs)."""
    status = f" **Partial: not run yet: {', '.join(pending)}.**" if pending else ""
    lines = [
        "# Benchmark results",
        "",
        header
        or (
            f"Measured by `make bench` ({elapsed:.0f} s) on {platform.machine()}, Python "
            f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; best of several repeats, "
            "ours and each peer timed round by round (interleaved). Every ratio compares two "
            f"things computed in the same run, after checking that they agree.{status}"
        ),
        "",
    ]
    # rows assembled from several runs carry a "source" (which run measured them): a column
    sources = any(r.get("source") for r in ROWS)
    lines += [
        "| what | ours | peer | ratio | target | met | same answer |"
        + (" run |" if sources else ""),
        "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if sources else ""),
    ]
    for r in ROWS:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3g}"
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        lines.append(
            f"| {r['what']} | {r['ours']} | {r['peer']} | {ratio} | {r['target']} | {met} | {r['same']} |"
            + (f" {r.get('source', '')} |" if sources else "")
        )
    notes = [r for r in ROWS if r["note"]]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- **{r['what']}**: {r['note']}" for r in notes]
    if SCALING:
        lines += [
            "",
            "## How the cost grows",
            "",
            "| what | setting | measured |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {e['kind']} | {e['setting']} | {e['value']} |" for e in SCALING]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / "results.json").write_text(
        json.dumps({"rows": ROWS, "scaling": SCALING}, indent=2, ensure_ascii=False),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    parser.add_argument(
        "--max-dim", type=int, default=3000, help="largest dense escape_time case (default 3000)"
    )
    args = parser.parse_args(argv)
    global MAX_DIM
    MAX_DIM = args.max_dim
    start = time.perf_counter()
    names = [name for name in BENCHES if not args.only or name in args.only]
    for k, name in enumerate(names):
        print(f"== {name}", flush=True)
        BENCHES[name]()
        if not args.only:
            write_results(time.perf_counter() - start, pending=names[k + 1 :])
    elapsed = time.perf_counter() - start
    print(f"done in {elapsed:.0f} s", flush=True)
    return 0


# =============================================================================================
# BEGIN minimum-action path and landscape_escape_time (issue 10, n-D; owned by the "nd" rows)
# =============================================================================================


def _rotated_valley(n: int) -> tuple[Any, Any, Any, Any, Any]:
    """(loss, gradient, hessian, minimum, saddle) of (u₀² − 1)² + ½Σ c_k (u_k − β_k u₀²/2)²,
    u = Qx with Q a random rotation (seed 0), c_k from 9 to 20: ΔL = 1, non-separable."""
    rng = np.random.default_rng(0)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    w = rng.standard_normal(n - 1)
    beta, c = 0.5 * w / np.linalg.norm(w), np.linspace(9.0, 20.0, n - 1)
    stiff = q[1:].T @ (c[:, None] * q[1:])

    def split(x: Any) -> tuple[Any, Any]:
        u = np.asarray(x) @ q.T
        return u[:, 0], u[:, 1:] - beta * u[:, :1] ** 2 / 2

    def loss(x: Any) -> Any:
        u0, res = split(x)
        return (u0**2 - 1) ** 2 + 0.5 * (c * res**2).sum(axis=1)

    def gradient(x: Any) -> Any:
        u0, res = split(x)
        g0 = 4 * u0 * (u0**2 - 1) - u0 * (beta * c * res).sum(axis=1)
        return g0[:, None] * q[0] + (c * res) @ q[1:]

    def hessian(x: Any) -> Any:
        u0, res = split(x)
        h00 = 12 * u0**2 - 4 - (beta * c * res).sum(axis=1) + u0**2 * (beta**2 * c).sum()
        side = (-u0[:, None] * beta * c) @ q[1:]
        ones = np.einsum("m,i,j->mij", h00, q[0], q[0])
        return (
            stiff + ones + np.einsum("i,mj->mij", q[0], side) + np.einsum("mi,j->mij", side, q[0])
        )

    return loss, gradient, hessian, q.T @ np.r_[-1.0, beta / 2], np.zeros(n)


def bench_action() -> None:
    """minimum_action_path for n = 2, 10, 100: the preconditioned relaxation against plain
    L-BFGS-B (scipy.optimize.minimize, analytic gradient, the same discretized action, spacing
    term, points 8/16/32 and tolerance; the method before 2026-12-02); landscape_escape_time end
    to end."""
    from flatminima.numerics import landscape_escape_time
    from flatminima.numerics._action import _prepare, action_path

    warnings.simplefilter("ignore")
    times: dict[int, float] = {}
    for n in (2, 10, 100):
        loss, grad, hess, a, b = _rotated_valley(n)
        problem = _prepare(loss, "white", a, b, 0.1, None, None, grad, hess)
        if n == 2:
            action_path(problem, 8, 1e-11, None)  # warm: LAPACK and L-BFGS-B loaded
        results: dict[str, Any] = {}

        def run(name: str, problem: Any = problem, results: dict[str, Any] = results) -> None:
            results[name] = action_path(problem, 8, 1e-11, None, precondition=name == "ours")

        budget = {"ours": (lambda: run("ours"), 1), "peer": (lambda: run("peer"), 1)}
        best = best_times(budget, repeats=1 if n == 100 else 2)
        ours = results["ours"]
        times[n] = best["ours"]
        error = abs(ours.barrier / 10 - 1)
        peer = results["peer"]
        SCALING.append(
            {
                "kind": "minimum_action_path iterations (ours / plain L-BFGS-B)",
                "setting": f"n = {n}, strings 8/16/32",
                "value": f"{ours.iterations} / {peer.iterations}",
            }
        )
        row(
            f"minimum_action_path n = {n} (rotated curved valley, white), strings 8/16/32 vs "
            "plain L-BFGS-B with analytic gradient",
            f"{best['ours']:.2f} s, {ours.iterations} its",
            f"{best['peer']:.2f} s, {peer.iterations} its",
            best["ours"] / best["peer"],
            "≤ 1×",
            best["ours"] <= best["peer"],
            f"ΔΦ = ΔL/d to {error:.1e} (peer {abs(peer.barrier / 10 - 1):.1e}); order "
            f"{ours.order:.2f} (peer {peer.order:.2f})",
        )
    SCALING.append(
        {
            "kind": "minimum_action_path time (preconditioned)",
            "setting": "n = 2, 10, 100 (strings 8/16/32)",
            "value": ", ".join(f"{times[n]:.2f} s" for n in (2, 10, 100))
            + f"; growth n^{math.log(times[100] / times[10]) / math.log(10):.2f} from 10 to 100",
        }
    )
    loss, grad, hess, a, b = _rotated_valley(10)
    d = np.diag(np.linspace(0.1, 0.3, 10))
    t0 = time.perf_counter()
    r = landscape_escape_time(
        loss, "anisotropic", minimum=a, saddle=b, diffusion=d, points=8, gradient=grad, hessian=hess
    )
    total = time.perf_counter() - t0
    row(
        "landscape_escape_time end to end, n = 10, anisotropic D (gMAM + Bouchet–Reygner)",
        f"{total:.2f} s",
        "-",
        None,
        "runs",
        math.isfinite(float(r.log_tau)),
        f"log τ = {float(r.log_tau):.6f} ± {r.accuracy:.1g}, ΔΦ = {float(r.barrier):.6f}",
    )


BENCHES["action"] = bench_action

# =============================================================================================
# END minimum-action path rows
# =============================================================================================

if __name__ == "__main__":
    sys.exit(main())
