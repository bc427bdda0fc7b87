"""Cold start: what ``import flatminima.numerics`` loads (the escape-time core; the other public
names are imported on first use), and the quantiles that replaced scipy.stats (checked against
scipy.stats itself, an independent implementation)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from scipy import stats

from flatminima.numerics._simulate import poisson_rate_interval


def _loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


#: What `import flatminima.numerics` may load of the package: escape_time and what it needs
#: (the theory layer's derivation). Everything else is imported on first use.
NUMERICS_CORE = {
    "flatminima",
    "flatminima._lazy",
    "flatminima.errors",
    "flatminima.numerics",
    "flatminima.numerics._budget",
    "flatminima.numerics._checks",
    "flatminima.numerics._eigen",
    "flatminima.numerics._escape_time",
    "flatminima.theory",
    "flatminima.theory._budget",
    "flatminima.theory._compile",
    "flatminima.theory._conventions",
    "flatminima.theory._derivation",
    "flatminima.theory._derive",
    "flatminima.theory._engine",
    "flatminima.theory._libmp",
    "flatminima.theory._logsumexp",
    "flatminima.theory._noise",
    "flatminima.theory._progress",
}

#: Heavy or rarely used: loaded only when one of their names is asked for.
LAZY = {
    "flatminima.numerics._action",
    "flatminima.numerics._cases",
    "flatminima.numerics._engine",
    "flatminima.numerics._landscape",
    "flatminima.numerics._mfpt",
    "flatminima.numerics._mfpt2d",
    "flatminima.numerics._prefactor",
    "flatminima.numerics._simulate",
    "flatminima.numerics._verify",
    "flatminima.theory._combine",
    "flatminima.theory._formulas",
    "flatminima.theory._quadratic",
    "flatminima.theory._scaling",
}


def test_import_loads_only_the_core_and_no_scipy_or_torch() -> None:
    loaded = _loaded_after("import flatminima.numerics")
    ours = {m for m in loaded if m == "flatminima" or m.startswith("flatminima.")}
    assert ours - NUMERICS_CORE == set(), "a module the import should not load"
    assert ours >= NUMERICS_CORE - {"flatminima._lazy"} and not ours & LAZY
    assert not {m for m in loaded if m.split(".")[0] in ("scipy", "torch")}
    theory_only = _loaded_after("import flatminima.theory")
    assert not {m for m in theory_only if m.startswith("flatminima.numerics") or m in LAZY}
    assert "numpy" not in theory_only


def test_lazy_names_resolve_to_their_modules_and_load_only_theirs() -> None:
    from flatminima import numerics, theory

    for layer in (numerics, theory):
        assert set(layer.__all__) <= set(dir(layer))
        for name in layer.__all__:
            value = getattr(layer, name)
            module = next((m for m, names in layer._LAZY.items() if name in names), None)
            if module is not None:
                assert value is getattr(sys.modules[f"{layer.__name__}.{module}"], name)
        with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
            layer.no_such_name  # noqa: B018
    # asking for one lazy name loads its module and what it imports, not the others
    loaded = _loaded_after("from flatminima.numerics import mfpt_1d")
    assert "flatminima.numerics._mfpt" in loaded
    assert not loaded & {"flatminima.numerics._action", "flatminima.numerics._mfpt2d"}
    assert not {m for m in loaded if m.startswith(("scipy.stats", "scipy.sparse", "torch"))}


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
