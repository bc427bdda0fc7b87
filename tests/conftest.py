"""Shared fixtures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Stop early, saying what to do, when a module added since `make setup` is not linked.

    `make setup` installs flatminima in setuptools' strict editable mode: a link tree in
    build/__editable__.flatminima-*/ where every file of flatminima/, theory/, numerics/ and
    validation/ is linked. A file added later has no link yet (an import of it would fail with a
    bare ModuleNotFoundError); `make setup` notices the new file and links it.
    """
    trees = sorted(ROOT.glob("build/__editable__.flatminima-*/flatminima"))
    if not trees:
        return  # installed another way (a wheel, or the lenient editable mode)
    installed = {
        "flatminima": ".",
        "theory": "theory",
        "numerics": "numerics",
        "validation": "validation",
    }
    missing = [
        f"{folder}/{path.name}"
        for folder, inside in installed.items()
        for path in sorted((ROOT / folder).glob("*.py"))
        if not (trees[-1] / inside / path.name).exists()
    ]
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)} not linked into the editable install {trees[-1].parent}: "
            "run `make setup` (a new module needs a new link)"
        )


@pytest.fixture
def rng() -> random.Random:
    """A seeded Python RNG for random evaluation points."""
    return random.Random(20261124)
