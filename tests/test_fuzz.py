"""The fuzzer as a test (issue 15): every public numerics and theory function, fed NaN, ±inf,
10⁴⁰⁰, 1e-308, complex numbers, strings, None, bools, numpy scalars and 0-d arrays, torch
tensors, Decimal, mpmath and SymPy numbers, empty and wrongly shaped arrays, huge sizes and
precisions, one parameter at a time on an otherwise valid call.

For each input the outcome must be a valid result (finite numbers; an infinite mean escape time
only with every path censored and said so) or a FlatMinimaError naming a parameter; never
another exception, never a non-finite number without an error, never more than ``LIMIT_S``
seconds. The cases are a seeded random sample of all (function, parameter, input) triples,
``SAMPLE`` per function, so a run is bounded (about a minute); ``python tests/test_fuzz.py
[--all]`` runs the sample (or every triple) and prints the counts quoted in
docs/reliability.md.
"""

from __future__ import annotations

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

from flatminima.errors import FlatMinimaError
from flatminima.numerics import (
    escape_time,
    log_escape_time,
    mfpt_1d,
    mfpt_2d,
    simulate_escape,
    splitting_probability,
)
from flatminima.theory import (
    derive_escape_time,
    derive_occupation_ratio,
    derive_selection_ratio,
    interpretation_alpha,
    scaling_law,
)

SEED = 20261202
SAMPLE = 45  # cases per function in `make test`
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
    }


def _grad(z: Any) -> Any:
    return z * (z * z - 1)


def _loss2(px: Any, py: Any) -> Any:
    return (px**2 - 1) ** 2 + py**2


def _absorb(px: Any, py: Any) -> Any:
    return px > 0.5


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
    "scaling_law": (
        scaling_law,
        {"derivation": derive_escape_time("white"), "wrt": "sharpness"},
    ),
    "interpretation_alpha": (interpretation_alpha, {"interpretation": "ito"}),
}


def _all_cases() -> list[tuple[str, str, str]]:
    kinds = list(_inputs())
    return [
        (function, parameter, kind)
        for function, (_, valid) in FUNCTIONS.items()
        for parameter in valid
        for kind in kinds
    ]


def _sample(per_function: int) -> list[tuple[str, str, str]]:
    rng = random.Random(SEED)
    out = []
    for function in FUNCTIONS:
        cases = [c for c in _all_cases() if c[0] == function]
        out += rng.sample(cases, min(per_function, len(cases)))
    return out


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
    except FlatMinimaError as error:
        name = getattr(error, "parameter", None)
        if not name and not str(error).split(":")[0].strip():
            return "FAIL unnamed", str(error)
        return "clear", str(error)
    except Exception as error:
        return f"FAIL {type(error).__name__}", str(error)[:200]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if not _finite(result):
        return "FAIL non-finite", repr(result)[:200]
    return "valid", f"{time.monotonic() - started:.2f} s"


CASES = _sample(SAMPLE)


@pytest.mark.parametrize(("function", "parameter", "kind"), CASES)
def test_fuzz(function: str, parameter: str, kind: str) -> None:
    outcome, detail = run_case(function, parameter, kind)
    assert outcome in ("valid", "clear"), f"{function}({parameter}={kind}): {outcome}: {detail}"


def test_the_sample_covers_every_function_and_many_kinds() -> None:
    assert {c[0] for c in CASES} == set(FUNCTIONS)
    assert len({c[2] for c in CASES}) >= 30


def main(argv: list[str]) -> int:
    cases = _all_cases() if "--all" in argv else CASES
    counts: Counter[str] = Counter()
    failures = []
    for case in cases:
        outcome, detail = run_case(*case)
        counts[outcome] += 1
        if outcome.startswith("FAIL"):
            failures.append((case, outcome, detail))
    print(f"tried {len(cases)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for case, outcome, detail in failures:
        print(f"  {case}: {outcome}: {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
