"""The fuzzer as a test (issue 15): every public numerics and theory function, fed NaN, ±inf,
10⁴⁰⁰, 1e-308, complex numbers, strings, None, bools, numpy scalars and 0-d arrays, torch
tensors, Decimal, mpmath and SymPy numbers, empty and wrongly shaped arrays, huge sizes and
precisions, one parameter at a time on an otherwise valid call.

For each input the outcome must be a valid result (finite numbers; an infinite mean escape time
only with every path censored and said so) or a FlatMinimaError naming a parameter; never
another exception, never a non-finite number without an error, never more than ``LIMIT_S``
seconds. `make test` gives every function every input kind once, each in a parameter drawn
at random (seeded), so a run is bounded (under a minute); ``-m slow`` and ``python
tests/test_fuzz.py --all`` run every (function, parameter, input) triple; ``python
tests/test_fuzz.py [--all]`` prints the counts quoted in docs/reliability.md.
"""

from __future__ import annotations

import inspect
import random
import signal
import sys
import time
import warnings
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp

import flatminima.numerics
import flatminima.theory
from flatminima.errors import ConvergenceError, FlatMinimaError
from flatminima.numerics import (
    escape_time,
    escape_time_batch,
    landscape_case,
    landscape_escape_time,
    log_escape_time,
    mfpt_1d,
    mfpt_2d,
    minimum_action_path,
    simulate_escape,
    splitting_probability,
    work_budget,
)
from flatminima.theory import (
    derive_escape_time,
    derive_occupation_ratio,
    derive_selection_ratio,
    derive_switch_fraction,
    interpretation_alpha,
    langer_unstable_eigenvalue,
    lyapunov_covariance,
    numeric_alpha,
    quadratic_prefactor,
    quasi_potential_hessian,
    register_noise_model,
    scaling_law,
)

SEED = 20261202
LIMIT_S = 30  # per call

x = sp.Symbol("x")
WELL = x**4 / 4 - x**2 / 2


def _torch_tensor(value: Any) -> Any:
    try:
        import torch
    except ImportError:  # torch is an extra
        return np.float64(value)
    return torch.tensor(value, dtype=torch.float64)


def _inputs() -> dict[str, Any]:
    """The kinds of input the issue's fuzzer tried (and a few more), by name."""
    return {
        "nan": float("nan"),
        "inf": float("inf"),
        "-inf": float("-inf"),
        "1e400 (int)": 10**400,
        "1e-308": 1e-308,
        "1e308": 1e308,
        "-1": -1,
        "0": 0,
        "complex": 1 + 2j,
        "complex-zero-imag": complex(0.5, 0),
        "str-number": "0.5",
        "str-word": "abc",
        "str-underscore": "1_000",
        "str-code": "__import__('os').getcwd()",
        "None": None,
        "True": True,
        "False": False,
        "np.float32": np.float32(0.5),
        "np.int64": np.int64(3),
        "np.bool_": np.bool_(True),
        "0-d array": np.array(0.5),
        "array-1": np.array([0.5]),
        "array-2x2": np.array([[0.5, 0.1], [0.1, 0.3]]),
        "array-nan": np.array([0.5, np.nan]),
        "empty list": [],
        "empty array": np.zeros((0,)),
        "list-ragged": [[1, 2], [3]],
        "torch": _torch_tensor(0.5),
        "torch-vector": _torch_tensor([0.5, 0.25]),
        "Decimal": Decimal("0.5"),
        "Fraction": Fraction(1, 2),
        "mpf": mpmath.mpf("0.5"),
        "mpc": mpmath.mpc(0.5, 1),
        "sympy-pi/4": sp.pi / 4,
        "sympy-I": sp.I,
        "sympy-symbol": sp.Symbol("y"),
        "huge-int": 10**9,
        "dict": {"a": 1},
        "object": object(),
        "-0.0": -0.0,
        "1e-400 (str)": "1e-400",
        "bytes": b"0.5",
        "np.complex128": np.complex128(0.5 + 0j),
        "sympy-Float": sp.Float("0.5"),
        "sympy-oo": sp.oo,
        "sympy-nan": sp.nan,
        "array-3x3": np.eye(3),
        "list-of-str": ["a", "b"],
        "lambda": lambda *args: 0.5,
    }


def _grad(z: Any) -> Any:
    return z * (z * z - 1)


def _loss2(px: Any, py: Any) -> Any:
    return (px**2 - 1) ** 2 + py**2


def _absorb(px: Any, py: Any) -> Any:
    return px > 0.5


def _work_budget(seconds: Any) -> None:
    with work_budget(seconds=seconds):
        pass


X2, Y2 = sp.symbols("x y")
#: A separable 2-D double well: the minimum-action path is found in well under a second.
WELL2 = (X2**2 - 1) ** 2 + Y2**2
PATH = {
    "loss": WELL2,
    "noise": "white",
    "minimum": [-1, 0],
    "saddle": [0, 0],
    "diffusion": 0.25,
    "points": 8,
    "tol": 1e-6,
}


#: function name → (callable, valid keyword arguments)
FUNCTIONS: dict[str, tuple[Any, dict[str, Any]]] = {
    "escape_time": (
        escape_time,
        {
            "noise": "sgd",
            "hess_min": [[2, 0], [0, 5]],
            "hess_saddle": [[-1, 0], [0, 3]],
            "barrier": 1,
            "lr": 0.1,
            "batch_size": 4,
            "s": 0.5,
            "interpretation": "ito",
            "dps": 15,
        },
    ),
    "log_escape_time": (
        log_escape_time,
        {
            "noise": "white",
            "hess_min": [[2, 0], [0, 5]],
            "hess_saddle": [[-1, 0], [0, 3]],
            "barrier": 1,
            "diffusion": 0.1,
            "interpretation": "ito",
        },
    ),
    "mfpt_1d": (
        mfpt_1d,
        {
            "loss": WELL,
            "diffusion": sp.Rational(1, 4),
            "start": -1,
            "end": "0.5",
            "interpretation": "ito",
            "dps": 15,
            "degree": 16,
            "breakpoints": (),
        },
    ),
    "splitting_probability": (
        splitting_probability,
        {
            "loss": WELL,
            "diffusion": sp.Rational(1, 4),
            "start": "0.1",
            "lower": -1,
            "upper": 1,
            "dps": 15,
        },
    ),
    "mfpt_2d": (
        mfpt_2d,
        {
            "loss": _loss2,
            "diffusion": 0.5,
            "bounds": ((-2, 2), (-1, 1)),
            "shape": (8, 8),
            "start": (-1, 0),
            "absorbing": _absorb,
            "interpretation": "ito",
            "levels": 2,
        },
    ),
    "simulate_escape": (
        simulate_escape,
        {
            "grad": _grad,
            "start": [-1.0],
            "diffusion": 0.25,
            "step": 0.01,
            "n_paths": 20,
            "max_steps": 2000,
            "saddle": [0.0],
            "direction": [1.0],
            "seed": 0,
            "confidence": 0.95,
        },
    ),
    "derive_escape_time": (
        derive_escape_time,
        {"noise": "sgd", "dim": 1, "interpretation": "ito", "saddles": 1},
    ),
    "derive_occupation_ratio": (
        derive_occupation_ratio,
        {"noise": "sgd", "dim": 1, "interpretation": "ito"},
    ),
    "derive_selection_ratio": (
        derive_selection_ratio,
        {"noise": "sgd", "dim": 1, "interpretation": "anti-ito"},
    ),
    "escape_time_batch": (
        escape_time_batch,
        {
            "noise": "white",
            "hess_min": [[[2.0]], [[3.0]]],
            "hess_saddle": [[[-1.0]], [[-1.0]]],
            "barrier": "2",
            "diffusion": "0.25",
            "dps": 15,
        },
    ),
    "landscape_escape_time": (landscape_escape_time, {**PATH, "dps": 15}),
    "minimum_action_path": (minimum_action_path, PATH),
    "work_budget": (_work_budget, {"seconds": 60}),
    "derive_switch_fraction": (derive_switch_fraction, {}),
    "langer_unstable_eigenvalue": (
        langer_unstable_eigenvalue,
        {"hessian_saddle": [[-1, 0], [0, 3]], "mobility": [[1, 0], [0, 2]]},
    ),
    "lyapunov_covariance": (
        lyapunov_covariance,
        {"hessian": [[2, 0], [0, 5]], "diffusion": [[1, 0], [0, 2]]},
    ),
    "quasi_potential_hessian": (
        quasi_potential_hessian,
        {"hessian": [[2, 0], [0, 5]], "diffusion": [[1, 0], [0, 2]]},
    ),
    "quadratic_prefactor": (
        quadratic_prefactor,
        {
            "hessian_min": [[2, 0], [0, 5]],
            "hessian_saddle": [[-1, 0], [0, 3]],
            "diffusion_min": [[1, 0], [0, 2]],
            "diffusion_saddle": [[1, 0], [0, 2]],
        },
    ),
    "scaling_law": (
        scaling_law,
        {"derivation": derive_escape_time("white"), "wrt": "sharpness"},
    ),
    "interpretation_alpha": (interpretation_alpha, {"interpretation": "ito"}),
    "numeric_alpha": (numeric_alpha, {"interpretation": "ito"}),
    "landscape_case": (landscape_case, {"name": "double-well"}),
    # every fuzzed call replaces the model by a wrong input; a valid one would register it
    "register_noise_model": (register_noise_model, {"model": None}),
}


def _all_cases() -> list[tuple[str, str, str]]:
    """Every (function, parameter, input kind); a function without parameters is called once."""
    kinds = list(_inputs())
    cases = []
    for function, (_, valid) in FUNCTIONS.items():
        if not valid:
            cases.append((function, "", "no arguments"))
        cases += [(function, parameter, kind) for parameter in valid for kind in kinds]
    return cases


def _sample() -> list[tuple[str, str, str]]:
    """Every input kind for every function, each in one parameter drawn at random (seeded)."""
    rng = random.Random(SEED)
    out = []
    for function, (_, valid) in FUNCTIONS.items():
        if not valid:
            out.append((function, "", "no arguments"))
            continue
        parameters = list(valid)
        out += [(function, rng.choice(parameters), kind) for kind in _inputs()]
    return out


def _parameter_names(function: str) -> set[str]:
    """The parameters an error may name: the signature's, and the keyword arguments a function
    taking ``**kwargs`` passes on (escape_time's aliases, escape_time_batch's parameters)."""
    call, valid = FUNCTIONS[function]
    signature = inspect.signature(call).parameters
    names = set(signature) | set(valid)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        names |= set(inspect.signature(escape_time).parameters) | {"eta", "B", "Delta_L", "D"}
    return names


class _Timeout(Exception):
    pass


def _finite(value: Any) -> bool:
    """Every number in a result is finite (an escape simulation may report an infinite mean
    only when nothing escaped, which it states as censoring)."""
    if value is None or isinstance(value, str | bool | sp.Basic):
        return True
    if isinstance(value, mpmath.mpf | float | int | np.floating | np.integer):
        return bool(mpmath.isfinite(value))
    if isinstance(value, mpmath.mpc | complex):
        return False
    if isinstance(value, np.ndarray):
        return bool(np.all(np.isfinite(value))) if value.dtype.kind in "fc" else True
    if type(value).__module__.startswith("torch"):
        return bool(value.isfinite().all())
    if type(value).__name__ == "EscapeSimulation":
        return (value.n_escaped > 0 and _finite(value.mean_time)) or (
            value.n_escaped == 0 and value.rate == 0 and (value.n_censored > 0 or value.steps > 0)
        )
    fields = getattr(value, "__dataclass_fields__", None)
    if fields:
        skip = {"eigen", "reflecting", "start", "end"}  # a reflecting boundary may be ±inf
        return all(_finite(getattr(value, name)) for name in fields if name not in skip)
    if isinstance(value, tuple | list):
        return all(_finite(v) for v in value)
    return True


def run_case(function: str, parameter: str, kind: str) -> tuple[str, str]:
    """('valid' | 'clear' | 'FAIL …', detail) for one call."""
    call, valid = FUNCTIONS[function]
    arguments = dict(valid)
    if parameter:
        arguments[parameter] = _inputs()[kind]

    def alarm(*_: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(LIMIT_S)
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call(**arguments)
    except _Timeout:
        return "FAIL hang", f"no answer in {LIMIT_S} s"
    except ConvergenceError as error:  # the input is valid but the method cannot resolve it
        return "convergence", str(error)
    except FlatMinimaError as error:
        name = str(getattr(error, "parameter", None) or "").split("[")[0]  # hess_min[0][1]
        if name not in _parameter_names(function):
            return "FAIL unnamed", f"names {name!r}, not a parameter: {error}"
        return "clear", str(error)
    except Exception as error:
        return f"FAIL {type(error).__name__}", str(error)[:200]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if not _finite(result):
        return "FAIL non-finite", repr(result)[:200]
    return "valid", f"{time.monotonic() - started:.2f} s"


CASES = _sample()


@pytest.mark.parametrize(("function", "parameter", "kind"), CASES)
def test_fuzz(function: str, parameter: str, kind: str) -> None:
    outcome, detail = run_case(function, parameter, kind)
    assert outcome in ("valid", "clear", "convergence"), (
        f"{function}({parameter}={kind}): {outcome}: {detail}"
    )


@pytest.mark.slow
def test_fuzz_every_triple() -> None:
    """Every (function, parameter, input kind): about 4,500 calls, a few minutes."""
    failures = []
    for case in _all_cases():
        outcome, detail = run_case(*case)
        if outcome not in ("valid", "clear", "convergence"):
            failures.append(f"{case}: {outcome}: {detail}")
    assert not failures, "\n".join(failures)


def test_the_sample_covers_every_public_function_and_every_kind() -> None:
    """Every public function of both layers is in the table, and the `make test` sample gives
    each of them every kind of input (at least the issue's list: NaN, ±inf, 10⁴⁰⁰, 1e-308,
    complex, strings, None, bools, numpy scalars and 0-d arrays, torch tensors, wrong shapes,
    huge sizes and precisions, Decimal, Fraction, SymPy numbers)."""
    public = {
        name
        for module in (flatminima.numerics, flatminima.theory)
        for name in module.__all__
        if inspect.isfunction(getattr(module, name))
    }
    assert public <= set(FUNCTIONS), public - set(FUNCTIONS)
    kinds = set(_inputs())
    for function, (_, valid) in FUNCTIONS.items():
        tried = {c[2] for c in CASES if c[0] == function}
        assert tried == (kinds if valid else {"no arguments"}), function
    assert len(kinds) >= 45


def main(argv: list[str]) -> int:
    """``python tests/test_fuzz.py [--all]``: the sample (or every triple), with the counts per
    outcome and per function."""
    cases = _all_cases() if "--all" in argv else CASES
    counts: Counter[str] = Counter()
    per_function: dict[str, Counter[str]] = {}
    failures = []
    started = time.monotonic()
    for number, case in enumerate(cases, 1):
        outcome, detail = run_case(*case)
        counts[outcome] += 1
        per_function.setdefault(case[0], Counter())[outcome] += 1
        if outcome.startswith("FAIL"):
            failures.append((case, outcome, detail))
            print(f"  {case}: {outcome}: {detail}", file=sys.stderr, flush=True)
        if number % 200 == 0:
            print(f"[{number}/{len(cases)}] {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(f"tried {len(cases)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"in {time.monotonic() - started:.0f} s; per function:")
    for function, tally in per_function.items():
        print(f"  {function}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    for case, outcome, detail in failures:
        print(f"  {case}: {outcome}: {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
