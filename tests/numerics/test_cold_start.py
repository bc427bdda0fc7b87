"""Cold start: what ``import flatminima.numerics`` loads, and the quantiles that replaced
scipy.stats (checked against scipy.stats itself, an independent implementation)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from scipy import stats

from flatminima.numerics._simulate import poisson_rate_interval


def test_import_does_not_load_scipy_stats_sparse_or_special() -> None:
    code = (
        "import sys, flatminima.numerics; "
        "print(sorted(m for m in sys.modules if m.startswith(('scipy.stats', 'scipy.sparse', "
        "'scipy.special', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("count", [0, 1, 7, 250])
@pytest.mark.parametrize("confidence", [0.68, 0.95, 0.999])
def test_poisson_interval_is_garwoods_chi2_interval(count: int, confidence: float) -> None:
    exposure = 12.5
    tail = (1 - confidence) / 2
    lower, upper = poisson_rate_interval(count, exposure, confidence)
    want_lower = 0.0 if count == 0 else stats.chi2.ppf(tail, 2 * count) / (2 * exposure)
    want_upper = stats.chi2.ppf(1 - tail, 2 * count + 2) / (2 * exposure)
    assert lower == pytest.approx(want_lower, rel=1e-12, abs=0)
    assert upper == pytest.approx(want_upper, rel=1e-12)
