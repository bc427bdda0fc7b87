"""Pieces of the local (Taylor) models the prefactor tests build at a saddle or a minimum."""

from __future__ import annotations

import math

import numpy as np


def rotated(diagonal: tuple[float, float], angle: float) -> np.ndarray:
    """R diag(diagonal) Rᵀ with R the rotation by ``angle``."""
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return rot @ np.diag(diagonal) @ rot.T


def cubic_tensor(cubic: tuple[float, ...]) -> np.ndarray:
    """Third derivatives t[i, j, k] of a₁x³ + a₂x²y + a₃xy² + a₄y³."""
    a1, a2, a3, a4 = cubic
    t = np.zeros((2, 2, 2))
    t[0, 0, 0], t[1, 1, 1] = 6 * a1, 6 * a4
    for i in [(0, 0, 1), (0, 1, 0), (1, 0, 0)]:
        t[i] = 2 * a2
    for i in [(0, 1, 1), (1, 0, 1), (1, 1, 0)]:
        t[i] = 2 * a3
    return t
