"""Exact 2-D reference: the mean first-passage time on a grid, from the backward Kolmogorov
equation, solved with scipy.sparse.

Equation (docs/conventions.md §1): for ``dθ = −∇L dt + √(2D) dW`` with interpretation α, the Fokker–Planck
current is ``J = −P∇L − D∇P − (1−α)(∇·D)P`` and the generator is

    𝓛u = (−∇L + α ∇·D)·∇u + D : ∇∇u,

and the mean first-passage time T to an absorbing set solves ``𝓛T = −1``, ``T = 0`` on the
absorbing set, no flux through the rest of the boundary.

Discretization (cell-centred grid): the diagonal part of D uses the square-root approximation
(SQRA; Lie, Fackeldey, Weber 2013; Heida 2018): the rate from cell i to its neighbour j along
axis k is ``D_e/h_k² · √(p_j/p_i)`` with ``log(p_j/p_i) = −ΔΦ_ij + (α − 1) log(D_kk(j)/D_kk(i))``,
``ΔΦ_ij`` the quasi-potential step with the loss at the shared cell face (so a jump of D on a cell
face, as in the SGD switch model, is exact) and ``D_e`` the harmonic mean. Expanded, this is the
generator above to second order; it keeps the exponentially different rates of a large barrier
positive (an M-matrix) and has no flux through the outer boundary. The off-diagonal part of D
(a tensor not aligned with the grid) adds central differences ``2D_xy ∂_x∂_y u`` and
``α(∂_y D_xy ∂_x u + ∂_x D_xy ∂_y u)``: second order, not monotone, so resolve the noise width.

Error: the grid is refined (each level halves h); ``error`` is the Richardson estimate
``|T_h − T_2h|/(2^p − 1)`` with the order p measured from three levels when there are three
(2 assumed with two levels), and ``extrapolated`` the Richardson value.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.errors import BudgetError, ParameterError, ShapeError
from flatminima.theory._conventions import TauNames, interpretation_name, numeric_alpha
from flatminima.theory._progress import progress as show_progress

from ._checks import real, real_array

__all__ = ["MFPT2DResult", "mfpt_2d"]


@dataclass(frozen=True)
class MFPT2DResult(TauNames):
    """Mean first-passage time on a grid, with its grid-refinement error.

    ``value``/``log_value`` (the finest grid's T and log T) are also ``tau``/``log_tau``, the
    name every escape-time result uses for the mean escape time.
    """

    value: float  # on the finest grid
    log_value: float
    error: float  # Richardson estimate of the finest grid's error
    extrapolated: float
    order: float | None  # measured convergence order (three or more levels)
    values: tuple[float, ...]  # one per level, coarse to fine
    shapes: tuple[tuple[int, int], ...]
    interpretation: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["values"] = list(self.values)
        out["shapes"] = [list(s) for s in self.shapes]
        return out


Field = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Peak memory per grid cell of the finest level (bytes), measured: the grid arrays, the sparse
#: matrix and SuperLU's fill-in (``benchmarks``-style measurement in tests/numerics).
BYTES_PER_CELL = 2_000


def _available_memory() -> int:
    """Physical memory available now (bytes), from /proc/meminfo; 8 GiB where unknown."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def _real_grid(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Values of a user's field on the grid: real, of the grid's shape (+ trailing axes)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise ParameterError(name, "real values on the grid", "complex values")
    if arr.dtype.kind not in "iuf":
        raise ParameterError(name, "real numbers on the grid", f"values of dtype {arr.dtype}")
    if arr.shape[: len(shape)] != shape:
        raise ShapeError(
            name,
            f"a function of numpy arrays returning the grid's shape {shape}",
            f"shape {arr.shape}",
        )
    return arr.astype(float)


def _loss_function(loss: Any) -> Field:
    if callable(loss) and not hasattr(loss, "free_symbols"):
        return loss
    import sympy as sp

    if isinstance(loss, sp.Basic):
        symbols = sorted(loss.free_symbols, key=lambda s: s.name)
        if len(symbols) != 2:
            raise ParameterError(
                "loss", "a SymPy expression of two symbols (x, y) or a callable f(x, y)", loss
            )
        return sp.lambdify(symbols, loss, "numpy")
    raise ParameterError(
        "loss", "a callable f(x, y) on arrays or a SymPy expression of two symbols", loss
    )


def _diffusion_field(diffusion: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """D(x, y) as an array of shape (..., 2, 2)."""
    if callable(diffusion):

        def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            raw = np.asarray(diffusion(x, y))
            if raw.shape == () and x.shape != ():
                raw = np.broadcast_to(raw, x.shape)
            value = _real_grid("diffusion", raw, x.shape)
            if value.shape == x.shape:  # isotropic scalar field
                out = np.zeros((*x.shape, 2, 2))
                out[..., 0, 0] = out[..., 1, 1] = value
                return out
            if value.shape == (*x.shape, 2, 2):
                return value
            if value.shape == (*x.shape, 2):  # diagonal
                out = np.zeros((*x.shape, 2, 2))
                out[..., 0, 0], out[..., 1, 1] = value[..., 0], value[..., 1]
                return out
            raise ShapeError(
                "diffusion",
                "an array of shape (...,), (..., 2) or (..., 2, 2)",
                f"shape {value.shape}",
            )

        return field
    constant = real_array("diffusion", diffusion)
    if constant.ndim == 0:
        constant = constant * np.eye(2)
    if constant.shape != (2, 2):
        raise ShapeError(
            "diffusion", "a number, a 2x2 matrix or a callable", f"shape {constant.shape}"
        )
    return lambda x, y: np.broadcast_to(constant, (*x.shape, 2, 2)).copy()


@dataclass
class _Grid:
    """A cell-centred grid: centres X, Y, spacings, and the index of each free cell (−1:
    absorbing) in the linear system."""

    bounds: tuple[tuple[float, float], tuple[float, float]]
    shape: tuple[int, int]
    hx: float
    hy: float
    X: np.ndarray
    Y: np.ndarray
    index: np.ndarray


def _grid(
    bounds: tuple[tuple[float, float], tuple[float, float]],
    shape: tuple[int, int],
    absorbing: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> _Grid:
    (x0, x1), (y0, y1) = bounds
    nx, ny = shape
    hx, hy = (x1 - x0) / nx, (y1 - y0) / ny
    xc = x0 + hx * (np.arange(nx) + 0.5)
    yc = y0 + hy * (np.arange(ny) + 0.5)
    X, Y = np.meshgrid(xc, yc, indexing="ij")
    absorb = np.asarray(absorbing(X, Y), dtype=bool)
    if absorb.shape != X.shape:
        raise ShapeError(
            "absorbing", "a boolean array of the grid's shape", f"shape {absorb.shape}"
        )
    if absorb.all() or not absorb.any():
        raise ParameterError(
            "absorbing", "a mask that absorbs some but not all of the domain", "all or nothing"
        )
    index = -np.ones(X.shape, dtype=np.int64)
    free = ~absorb
    index[free] = np.arange(int(free.sum()))
    return _Grid(bounds, shape, hx, hy, X, Y, index)


def _fields(
    loss: Field, diffusion: Callable[[np.ndarray, np.ndarray], np.ndarray], grid: _Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """L, D_xx, D_yy and the symmetrised D_xy at the cell centres, checked."""
    L = _real_grid("loss", loss(grid.X, grid.Y), grid.X.shape)
    Dm = diffusion(grid.X, grid.Y)
    for name, field in (("loss", L), ("diffusion", Dm)):
        if not np.all(np.isfinite(field)):
            raise ParameterError(name, "finite values on the grid", "NaN or ±inf values")
    dxx, dyy, dxy = Dm[..., 0, 0], Dm[..., 1, 1], 0.5 * (Dm[..., 0, 1] + Dm[..., 1, 0])
    if np.any(dxx <= 0) or np.any(dyy <= 0) or np.any(dxx * dyy - dxy**2 <= 0):
        raise ParameterError(
            "diffusion", "a positive definite tensor at every grid point", "a non-positive one"
        )
    return L, dxx, dyy, dxy


class _System:
    """The sparse generator as COO triplets plus its diagonal (rates out of each free cell)."""

    def __init__(self, size: int) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.diagonal = np.zeros(size)

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        self.rows.append(rows)
        self.cols.append(cols)
        self.vals.append(vals)

    def solve(self, shape: tuple[int, int]) -> np.ndarray:
        """T on the free cells from 𝓛T = −1 (scipy.sparse, imported here, not at import)."""
        import scipy.sparse as sparse
        import scipy.sparse.linalg as sparse_linalg

        n = self.diagonal.size
        matrix = sparse.coo_matrix(
            (
                np.concatenate([*self.vals, self.diagonal]),
                (
                    np.concatenate([*self.rows, np.arange(n)]),
                    np.concatenate([*self.cols, np.arange(n)]),
                ),
            ),
            shape=(n, n),
        ).tocsc()
        # The default COLAMD ordering. MMD on Aᵀ+A was 1.46× faster on a sheared double well but
        # returned garbage (T = −3.7e19) on a rotated double well whose far corners are hundreds
        # of noise units up (docs/performance.md): not worth a silently wrong answer.
        solution = sparse_linalg.spsolve(matrix, -np.ones(n))
        if not np.all(np.isfinite(solution)):
            raise ParameterError("shape", "a grid on which the linear system is solvable", shape)
        return np.asarray(solution)


def _add_axis(
    system: _System,
    grid: _Grid,
    loss: Field,
    L: np.ndarray,
    dkk: np.ndarray,
    axis: int,
    alpha: float,
) -> None:
    """SQRA rates between neighbours along ``axis`` (and into absorbing neighbours)."""
    h = grid.hx if axis == 0 else grid.hy
    sl_i: list[slice] = [slice(None), slice(None)]
    sl_j: list[slice] = [slice(None), slice(None)]
    sl_i[axis] = slice(0, -1)
    sl_j[axis] = slice(1, None)
    i_sl, j_sl = tuple(sl_i), tuple(sl_j)
    # loss at the shared face
    xf = grid.X[i_sl] + (grid.hx / 2 if axis == 0 else 0.0)
    yf = grid.Y[i_sl] + (grid.hy / 2 if axis == 1 else 0.0)
    Lf = np.asarray(loss(xf, yf), dtype=float)
    d_i, d_j = dkk[i_sl], dkk[j_sl]
    dphi = (Lf - L[i_sl]) / d_i + (L[j_sl] - Lf) / d_j  # Φ_j − Φ_i
    log_ratio = -dphi + (alpha - 1.0) * np.log(d_j / d_i)  # log p_j/p_i
    d_edge = 2 * d_i * d_j / (d_i + d_j)
    rate_ij = d_edge / h**2 * np.exp(0.5 * log_ratio)
    rate_ji = d_edge / h**2 * np.exp(-0.5 * log_ratio)
    # into an absorbing cell: T = 0 on the shared face, half a cell away (ghost-cell Dirichlet)
    face_ij = 2 * d_i / h**2 * np.exp(-0.5 * (Lf - L[i_sl]) / d_i)
    face_ji = 2 * d_j / h**2 * np.exp(-0.5 * (Lf - L[j_sl]) / d_j)
    index = grid.index
    for src, dst, rate, to_face in (
        (i_sl, j_sl, rate_ij, face_ij),
        (j_sl, i_sl, rate_ji, face_ji),
    ):
        s_idx, d_idx = index[src], index[dst]
        ok = s_idx >= 0
        into_absorbing = ok & (d_idx < 0)
        np.add.at(system.diagonal, s_idx[ok & ~into_absorbing], -rate[ok & ~into_absorbing])
        np.add.at(system.diagonal, s_idx[into_absorbing], -to_face[into_absorbing])
        keep = ok & (d_idx >= 0)
        system.add(s_idx[keep], d_idx[keep], rate[keep])


def _add_cross_terms(system: _System, grid: _Grid, dxy: np.ndarray, alpha: float) -> None:
    """2 D_xy ∂x∂y u on interior cells, central; α (∂y D_xy ∂x u + ∂x D_xy ∂y u)."""
    index, hx, hy = grid.index, grid.hx, grid.hy
    inner = (slice(1, -1), slice(1, -1))
    coef = 2 * dxy[inner] / (4 * hx * hy)
    center = index[inner]
    ok = center >= 0

    def neighbours(di: int, dj: int) -> np.ndarray:
        return index[1 + di : index.shape[0] - 1 + di, 1 + dj : index.shape[1] - 1 + dj]

    for di, dj, sign in ((1, 1, 1), (-1, -1, 1), (1, -1, -1), (-1, 1, -1)):
        nb = neighbours(di, dj)
        keep = ok & (nb >= 0)
        system.add(center[keep], nb[keep], sign * coef[keep])
    if alpha != 0:
        d_dy = (dxy[1:-1, 2:] - dxy[1:-1, :-2]) / (2 * hy)
        d_dx = (dxy[2:, 1:-1] - dxy[:-2, 1:-1]) / (2 * hx)
        for coef_field, (di, dj), h in ((alpha * d_dy, (1, 0), hx), (alpha * d_dx, (0, 1), hy)):
            for sgn in (1, -1):
                nb = neighbours(sgn * di, sgn * dj)
                keep = ok & (nb >= 0)
                system.add(center[keep], nb[keep], sgn * coef_field[keep] / (2 * h))


def _value_at_start(T: np.ndarray, grid: _Grid, start: tuple[float, float]) -> float:
    """Bilinear interpolation of T between the cell centres around ``start``."""
    (x0, _), (y0, _) = grid.bounds
    nx, ny = grid.shape
    fx = (start[0] - x0) / grid.hx - 0.5
    fy = (start[1] - y0) / grid.hy - 0.5
    i0 = int(np.clip(np.floor(fx), 0, nx - 2))
    j0 = int(np.clip(np.floor(fy), 0, ny - 2))
    tx, ty = fx - i0, fy - j0
    corners = T[i0 : i0 + 2, j0 : j0 + 2]
    # A mean first-passage time is positive. Far from start, where the quasi-potential is
    # hundreds of noise units above it, the solve may return garbage (rates e^±700 between
    # neighbours); those cells are cut off from start by factors e^-700 and do not change T
    # there, so only the cells that T(start) is read from are checked.
    if not np.all(corners > 0):
        raise ParameterError(
            "shape", "a grid on which the linear system gives T > 0 around start", grid.shape
        )
    return float(
        (1 - tx) * (1 - ty) * T[i0, j0]
        + tx * (1 - ty) * T[i0 + 1, j0]
        + (1 - tx) * ty * T[i0, j0 + 1]
        + tx * ty * T[i0 + 1, j0 + 1]
    )


def _solve(
    loss: Field,
    diffusion: Callable[[np.ndarray, np.ndarray], np.ndarray],
    bounds: tuple[tuple[float, float], tuple[float, float]],
    shape: tuple[int, int],
    start: tuple[float, float],
    absorbing: Callable[[np.ndarray, np.ndarray], np.ndarray],
    alpha: float,
) -> float:
    """T(start) on one grid: fields, mask, SQRA rates, cross terms, sparse solve."""
    grid = _grid(bounds, shape, absorbing)
    L, dxx, dyy, dxy = _fields(loss, diffusion, grid)
    system = _System(int(np.count_nonzero(grid.index >= 0)))
    _add_axis(system, grid, loss, L, dxx, 0, alpha)
    _add_axis(system, grid, loss, L, dyy, 1, alpha)
    if np.any(dxy != 0):
        _add_cross_terms(system, grid, dxy, alpha)
    T = np.zeros(grid.X.shape)
    T[grid.index >= 0] = system.solve(shape)
    return _value_at_start(T, grid, start)


Bounds = tuple[tuple[float, float], tuple[float, float]]


def _check_bounds(bounds: Any) -> Bounds:
    try:
        (x0, x1), (y0, y1) = bounds
        bounds_f = (
            (float(real("bounds", x0)), float(real("bounds", x1))),
            (float(real("bounds", y0)), float(real("bounds", y1))),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ShapeError("bounds", "((x0, x1), (y0, y1))", bounds) from None
    if (
        not all(math.isfinite(v) for pair in bounds_f for v in pair)
        or bounds_f[0][0] >= bounds_f[0][1]
        or bounds_f[1][0] >= bounds_f[1][1]
    ):
        raise ParameterError("bounds", "finite intervals with x0 < x1 and y0 < y1", bounds)
    return bounds_f


def _check_grid(
    bounds: Any, shape: Any, start: Any, levels: Any
) -> tuple[Bounds, tuple[int, int], tuple[float, float], int]:
    """bounds, shape, start (inside bounds) and levels, checked and converted."""
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or int(levels) < 2:
        raise ParameterError(
            "levels", "an integer ≥ 2 (grid refinement measures the error)", levels
        )
    bounds_f = _check_bounds(bounds)
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 2
        or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 4
            for v in shape
        )
    ):
        raise ShapeError("shape", "(nx, ny), integers ≥ 4", shape)
    point = real_array("start", start)
    if point.shape != (2,):
        raise ShapeError("start", "a point (x, y)", start)
    sx, sy = (float(v) for v in point)
    if not (bounds_f[0][0] < sx < bounds_f[0][1] and bounds_f[1][0] < sy < bounds_f[1][1]):
        raise ParameterError("start", "a point inside bounds", start)
    return bounds_f, (int(shape[0]), int(shape[1])), (sx, sy), int(levels)


def _check_memory(shape: tuple[int, int], levels: int, max_memory: Any) -> None:
    """The finest grid's memory estimate against the budget, before anything is allocated."""
    refinement = 4.0 ** min(levels - 1, 200)
    cells = float(shape[0]) * float(shape[1]) * refinement
    if max_memory is None:
        budget = _available_memory() / 2
    else:
        budget = float(real("max_memory", max_memory))
        if budget <= 0:
            raise ParameterError("max_memory", "a positive number of bytes", max_memory)
    estimate = cells * BYTES_PER_CELL
    if estimate > budget:
        blamed = "levels" if refinement > shape[0] * shape[1] else "shape"
        raise BudgetError(
            blamed,
            f"a grid whose finest level fits the memory budget of {budget / 2**30:.3g} GiB",
            shape if blamed == "shape" else levels,
            f"{levels} levels of {shape} end at {cells:.3g} cells, about "
            f"{estimate / 2**30:.3g} GiB; use a coarser shape, fewer levels, or max_memory= "
            "(bytes) to raise the budget",
        )


def _check_absorbing(absorbing: Any, start: tuple[float, float]) -> None:
    if not callable(absorbing):
        raise ParameterError("absorbing", "a mask function (x, y) -> bool array", absorbing)
    inside = np.asarray(absorbing(np.array([start[0]]), np.array([start[1]])))
    if inside.shape == (1,) and inside.dtype.kind == "b" and bool(inside[0]):
        raise ParameterError("absorbing", "a set that does not contain start (T would be 0)", start)


def _richardson(values: list[float]) -> tuple[float | None, float, float]:
    """(measured order or None, error of the finest value, extrapolated value)."""
    order: float | None = None
    p = 2.0
    if len(values) >= 3:
        d1, d2 = values[-3] - values[-2], values[-2] - values[-1]
        if d1 != 0 and d2 != 0 and d1 / d2 > 0:
            order = math.log2(abs(d1 / d2))
            if 0.5 < order < 6:
                p = order
    error = abs(values[-1] - values[-2]) / (2**p - 1)
    extrapolated = values[-1] + (values[-1] - values[-2]) / (2**p - 1)
    return order, error, extrapolated


def estimated_seconds(shape: tuple[int, int], levels: int) -> float:
    """Floor of mfpt_2d's time: ``SECONDS_PER_CELL`` · cells^1.25 summed over the levels
    (sparse LU on a 2-D grid grows a little faster than the number of cells)."""
    cells = float(shape[0]) * float(shape[1])
    return sum(SECONDS_PER_CELL * (cells * 4.0**k) ** 1.25 for k in range(min(levels, 60)))


#: Measured (2-core machine): a 512×512 double-well grid solves in about 3 s.
SECONDS_PER_CELL = 3.0 / (512 * 512) ** 1.25


def mfpt_2d(
    loss: Any,
    diffusion: Any,
    *,
    bounds: tuple[tuple[float, float], tuple[float, float]],
    shape: tuple[int, int],
    start: tuple[float, float],
    absorbing: Callable[[np.ndarray, np.ndarray], np.ndarray],
    interpretation: Any = "ito",
    levels: int = 2,
    max_memory: float | None = None,
    progress: bool | None = None,
) -> MFPT2DResult:
    """Mean first-passage time of a 2-D SDE from ``start`` to the ``absorbing`` set, on grids.

    Parameters
    ----------
    loss
        L(x, y): a callable on numpy arrays, or a SymPy expression of two symbols.
    diffusion
        A number (isotropic D), a 2×2 matrix, or a callable (x, y) → array of shape (...),
        (..., 2) (diagonal) or (..., 2, 2). A jump of D (the SGD switch model) is exact when it
        lies on a cell face: choose ``bounds`` and ``shape`` so that it does.
    bounds, shape
        ``((x0, x1), (y0, y1))`` and the coarsest grid ``(nx, ny)``; level k has
        ``(2^k nx, 2^k ny)`` cells. The domain's edges reflect.
    start
        The point the time is measured from (bilinear interpolation between cell centres).
    absorbing
        Mask function (x, y) → bool array, evaluated at cell centres: the cells where the path
        is absorbed. T = 0 is imposed on the faces between free and absorbed cells, so put the
        absorbing surface on cell faces for second-order convergence (elsewhere it is placed to
        within half a cell, an O(h) error that matters little when T is flat there, as it is
        beyond a saddle when the barrier is large).
    interpretation
        α of the state-dependent noise: ``"ito"`` (default), ``"stratonovich"``,
        ``"anti-ito"`` or a number.
    levels
        Number of grids (≥ 2): the error estimate needs two, the measured order three.
    max_memory
        Memory budget in bytes (default: half the physical memory available now). The finest
        grid needs about ``BYTES_PER_CELL`` (2 kB) per cell; a request beyond the budget is a
        [`BudgetError`][flatminima.errors.BudgetError] naming ``shape`` before anything is
        allocated.
    progress
        Show the levels solved and an ETA on stderr: None (default) when stderr is a terminal
        and the work is estimated at more than 2 s, True always, False never.
    """
    alpha_expr = numeric_alpha(interpretation)
    alpha = float(alpha_expr)
    bounds_f, shape, (sx, sy), levels = _check_grid(bounds, shape, start, levels)
    _check_memory(shape, levels, max_memory)
    _check_absorbing(absorbing, (sx, sy))
    loss_fn = _loss_function(loss)
    diffusion_fn = _diffusion_field(diffusion)
    shapes, values = [], []
    with show_progress("mfpt_2d", estimated_seconds(shape, levels), progress) as line:
        work = [estimated_seconds((shape[0] * 2**k, shape[1] * 2**k), 1) for k in range(levels)]
        for level in range(levels):
            grid = (shape[0] * 2**level, shape[1] * 2**level)
            line.update(
                f"grid {grid[0]}×{grid[1]} (level {level + 1}/{levels})",
                sum(work[:level]),
                sum(work),
            )
            shapes.append(grid)
            values.append(_solve(loss_fn, diffusion_fn, bounds_f, grid, (sx, sy), absorbing, alpha))
        line.update(f"{levels} levels solved", sum(work), sum(work))
    order, error, extrapolated = _richardson(values)
    return MFPT2DResult(
        value=values[-1],
        log_value=math.log(values[-1]),
        error=error,
        extrapolated=extrapolated,
        order=order,
        values=tuple(values),
        shapes=tuple(shapes),
        interpretation=interpretation_name(alpha_expr),
        method=(
            "backward Kolmogorov equation on a cell-centred grid, SQRA rates for the diagonal "
            "of D, central differences for its off-diagonal, scipy.sparse.linalg.spsolve; "
            f"{levels} grids, Richardson error estimate"
        ),
    )
