"""Session fixtures: the quick experiments run once (two worker processes) and are shared by
the experiment tests and the report test (which resumes from the same folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    from flatminima.validation import make_executor, validate

    base = tmp_path_factory.mktemp("quick-report")
    analyses = validate(
        "all", base / "experiments", quick=True, executor=make_executor(workers=2), progress=False
    )
    # the tests read what results.json holds: each typed analysis in its JSON form
    return base, {name: analysis.to_dict() for name, analysis in analyses.items()}
