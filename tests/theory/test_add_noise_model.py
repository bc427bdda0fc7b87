"""docs/architecture.md, "How to add a noise model", followed literally: its code blocks run in a
fresh process (the registry is per process), every ``print(...)  # -> ...`` is checked, and
then every layer is asked whether it sees the new model, against independent references:

- the 1-D escape time for every α is the textbook τ = 2π/√(H_a H_b) · (T_a/T_b)^(α−½) · e^ΔΦ;
- the compiled τ approaches the exact MFPT (``mfpt_1d``) as the barrier grows;
- the command line prints its formula; ``escape_time`` refuses it with a NoiseModelError that
  names ``noise``; a second registration of the name is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from test_docs import checked

ROOT = Path(__file__).resolve().parents[2]

CHECKS = """
import contextlib, io
import sympy as sp
from flatminima.errors import NoiseModelError
from flatminima.numerics import escape_time

# theory: the textbook 1-D form for every α, and a 2-D derivation
H_a, H_b, T_a, T_b, s, dl, alpha = sp.symbols("H_a H_b T_a T_b s Delta_L alpha", positive=True)
for interpretation, a in (("ito", 0), ("stratonovich", sp.Rational(1, 2)), ("anti-ito", 1),
                          (sp.Rational(1, 4), sp.Rational(1, 4))):
    got = derive_escape_time("two-level", interpretation=interpretation).tau
    want = 2 * sp.pi / sp.sqrt(H_a * H_b) * (T_a / T_b) ** (a - sp.Rational(1, 2)) * sp.exp(
        dl * (s / T_a + (1 - s) / T_b))
    assert sp.simplify(got / want) == 1, (interpretation, got)
assert derive_escape_time("two-level", dim=2).tau.has(sp.Symbol("H_b_2", positive=True))

# numerics: the compiled formula converges to the exact MFPT as the barrier grows
errors = []
for scale in (1, 2):
    ta, tb = t_a / scale, t_b / scale
    exact = mfpt_1d(case.loss, sp.Piecewise((ta, x < c), (tb, True)), start=-1, end=1)
    value = tau.tau(H_a=2, H_b=1, Delta_L=case.exact["Delta_L"], T_a=ta, T_b=tb,
                    s=case.exact["s"])
    errors.append(abs(float(value / exact.value) - 1))
assert errors[1] < 0.6 * errors[0] and errors[1] < 0.02, errors

# numerics: escape_time evaluates the built-in models from Hessians and says so
try:
    escape_time("two-level", hess_min=2.0, hess_saddle=-1.0, barrier=0.25)
except NoiseModelError as error:
    assert error.parameter == "noise" and "compile" in str(error), error
else:
    raise AssertionError("escape_time accepted a registered model")

# the command line
from flatminima.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(["formula", "two-level", "--format", "text"])
assert status == 0 and "T_a" in out.getvalue(), out.getvalue()

# a name is registered once
try:
    register_noise_model(TwoLevelNoise())
except NoiseModelError as error:
    assert "two-level" in str(error)
else:
    raise AssertionError("registered twice")
print("every layer sees two-level")
"""

HARNESS = """
import io
class _Capture:
    def __enter__(self):
        import contextlib
        self._out = io.StringIO()
        self._redirect = contextlib.redirect_stdout(self._out)
        self._redirect.__enter__()
        return self._out
    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)
def _expect(got, expected):
    assert got == expected, f"the docs say {expected!r}, the code prints {got!r}"
__capture, __expect = _Capture, _expect
"""


def _section_blocks() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("## How to add a noise model")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", section, re.S)]


def test_the_documented_steps_add_a_noise_model_every_layer_sees(tmp_path: Path) -> None:
    blocks = _section_blocks()
    assert len(blocks) >= 4
    script = HARNESS + "\n".join(checked(block) for block in blocks) + CHECKS
    assert script.count("__expect(") >= 4  # the doc's printed results are checked
    env = {**os.environ, "FLATMINIMA_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "every layer sees two-level" in result.stdout
