"""The full experiments (``flatminima validate all``, about 25 minutes on 2 cores): marked slow,
not part of ``make test``; run with ``pytest -m slow``."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_full_validation(tmp_path) -> None:
    from flatminima.validation import make_executor, validate

    runs = validate("all", tmp_path, quick=False, executor=make_executor(workers=2), progress=False)
    analyses = {name: analysis.to_dict() for name, analysis in runs.items()}
    for name in ("sharpness", "batch-size", "learning-rate", "selection"):
        assert analyses[name]["verdict"]["held"], (name, analyses[name]["verdict"])
    covariance = analyses["covariance"]
    minima = [
        c for c in covariance["cases"] if c["noise"] == "minimum" and c["dataset"] == "two-blobs"
    ]
    assert minima and all(c["holds"] for c in minima)
