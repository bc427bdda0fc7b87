"""Shared fixtures."""

from __future__ import annotations

import random

import pytest


@pytest.fixture
def rng() -> random.Random:
    """A seeded Python RNG for random evaluation points."""
    return random.Random(20261124)
