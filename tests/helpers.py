"""Test helpers shared across layers (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import random

import mpmath


def random_positive(rng: random.Random, low: float = 0.2, high: float = 5.0) -> mpmath.mpf:
    """A random positive mpf from a double (so it is the same number at any dps)."""
    return mpmath.mpf(round(rng.uniform(low, high), 6))
