"""Noise models D(θ) for ``dθ = −∇L dt + √(2 D(θ)) dW`` on a landscape of n variables.

- ``"white"``: D = d·I, d > 0 a number (``diffusion=d``);
- ``"anisotropic"``: a constant symmetric positive definite matrix (``diffusion=D``);
- ``"loss-dependent"`` (Mori, Ziyin, Liu, Ueda 2022): D(θ) = (η L(θ)/B) H(a), needs L(a) > 0;
- ``"measured"``: ``diffusion=Σ``, a callable θ → per-sample gradient-noise covariance Σ(θ)
  (for instance measured from data), D = η Σ / (2B);
- ``"sgd"``: D = κ[H(θ)]⁺ with κ = η/(2B) in the paper's harmonic switch model: D = κH_a on the
  minimum's side of a switch surface, κ|H_b| on the saddle's side (``switch="harmonic"``: the
  surface where the smallest eigenvalue of H vanishes; or a callable g(θ), the surface
  g = 0); the jump is handled explicitly (numerics/_switch.py). The literal model
  (``switch="literal"``) is singular wherever an eigenvalue of H changes sign between the
  minimum and the saddle (always the case on the path: H is positive definite at a and has a
  negative eigenvalue at b), so its quasi-potential barrier is infinite and it never escapes
  in continuous time; it is refused with an error that says so;
- a callable θ → D(θ): batched ``(m, n) → (m, n, n)`` (or one point ``(n,) → (n, n)``).

Derivatives of a state-dependent D (needed by the action's gradient and the prefactor) are
exact for ``"loss-dependent"`` and central differences of the user's D otherwise (a user's noise
model has no automatic derivative): the first derivatives from 2n shifted points, the second
derivatives of pᵀD(θ)p the prefactor needs from n² + n + 1 points, each set in one batched
call of D (a D written for batches of points is called once, not 2n² + 1 times).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatminima.errors import NoiseModelError, ParameterError, ShapeError
from flatminima.theory._formulas import compiled_formula

from ._loss_model import LossModel

__all__ = ["NoiseModel", "check_continuous", "noise_model"]

Array = np.ndarray


@dataclass
class NoiseModel:
    """D(θ) on batches of points, its derivative, and what it is."""

    name: str
    dim: int
    field: Callable[[Array], Array]  # (m, n) -> (m, n, n)
    constant: Array | None  # the matrix when D does not depend on θ
    scalar: float | None  # d when D = d·I
    derivative: Callable[[Array], Array]  # (m, n) -> (m, n, n, n): [.., i, j, k] = ∂_k D_ij
    description: str
    switch: Any = None  # a _switch.Switch: D piecewise constant, jumping on a surface

    second_form: Callable[[Array, Array], Array] | None = None  # exact, when known
    checked: bool = False  # whether the difference steps h and 2h were compared

    def second_derivative_form(self, x: Array, p: Array) -> Array:
        """∂_i ∂_j (pᵀ D(x) p) with p held fixed, (m, n, n): exact where D's form is known
        (constant D, loss-dependent noise), otherwise by central differences
        (`second_differences`) in one batched evaluation of D, with the steps h and 2h compared
        on the first call (a warning if they disagree: D not twice differentiable there)."""
        m, n = x.shape
        if self.constant is not None:
            return np.zeros((m, n, n))
        if self.second_form is not None:
            return self.second_form(x, p)
        if self.checked:
            return second_differences(self.field, x, p)
        self.checked = True
        fine = second_differences(self.field, x, p)
        coarse = second_differences(self.field, x, p, factor=2.0)
        _check_steps(fine, coarse, self.field, x, p)
        return fine


#: Relative step of the second differences: ε^(1/4) balances the truncation (∝ h²) and the
#: rounding (∝ ε/h²) errors, both ~10⁻⁸ relative for a smooth D.
SECOND_STEP = 1e-4
#: Largest number of matrix entries (points · n²) in one call of D by the difference stencils.
_CHUNK = 4_000_000


def _contracted(field: Callable[[Array], Array], points: Array, p: Array) -> Array:
    """pᵀ D(y) p at ``points`` (m, s, n) with p (m, n): one call of D per chunk of points."""
    m, s, n = points.shape
    flat = points.reshape(m * s, n)
    weights = np.repeat(p, s, axis=0)
    size = max(1, _CHUNK // max(n * n, 1))
    out = np.empty(m * s)
    for lo in range(0, m * s, size):
        d = field(flat[lo : lo + size])
        out[lo : lo + size] = np.einsum(
            "ki,kij,kj->k", weights[lo : lo + size], d, weights[lo : lo + size]
        )
    return out.reshape(m, s)


_STENCILS: dict[int, tuple[Array, Array, Array]] = {}


def _stencil(n: int) -> tuple[Array, Array, Array]:
    """(i, j) of the upper triangle and the step pattern (e_i rows, then e_i + e_j rows) of
    the second differences in n dimensions, built once per n."""
    if n not in _STENCILS:
        iu, ju = np.triu_indices(n, 1)
        eye = np.eye(n)
        _STENCILS[n] = (iu, ju, np.concatenate([eye, eye[iu] + eye[ju]]))
    return _STENCILS[n]


def second_differences(
    field: Callable[[Array], Array], x: Array, p: Array, factor: float = 1.0
) -> Array:
    """∂_i ∂_j g with g(y) = pᵀ D(y) p by second-order central differences, (m, n, n).

    With S(v) = g(x + v) + g(x − v) − 2 g(x): H_ii = S(h_i e_i)/h_i² and
    H_ij = [S(h_i e_i + h_j e_j) − S(h_i e_i) − S(h_j e_j)]/(2 h_i h_j), h_i =
    ``factor``·`SECOND_STEP`·max(1, |x_i|): n² + n + 1 values of D per point, all in one call
    of D (in chunks of `_CHUNK` entries), instead of 2n² + 1 separate calls."""
    m, n = x.shape
    h = factor * SECOND_STEP * np.maximum(1.0, np.abs(x))  # (m, n)
    iu, ju, pattern = _stencil(n)
    steps = pattern * h[:, None, :]  # (m, n + n(n-1)/2, n): h_i e_i, then h_i e_i + h_j e_j
    points = np.concatenate([x[:, None], x[:, None] + steps, x[:, None] - steps], axis=1)
    g = _contracted(field, points, p)
    k = steps.shape[1]
    sym = g[:, 1 : 1 + k] + g[:, 1 + k :] - 2 * g[:, :1]  # S(v) for every step
    s_single, s_pair = sym[:, :n], sym[:, n:]
    out = np.empty((m, n, n))
    out[:, np.arange(n), np.arange(n)] = s_single / h**2
    mixed = (s_pair - s_single[:, iu] - s_single[:, ju]) / (2 * h[:, iu] * h[:, ju])
    out[:, iu, ju] = mixed
    out[:, ju, iu] = mixed
    return out


def _check_steps(
    fine: Array, coarse: Array, field: Callable[[Array], Array], x: Array, p: Array
) -> None:
    """Warn if the second differences at steps h and 2h disagree by more than a smooth D
    allows: 3·(truncation ~h²) + rounding (~ε|g|/h²), generously bounded by 10⁻³ of the
    largest entry plus 10³·ε|g|/h²."""
    g = np.abs(np.einsum("mi,mij,mj->m", p, field(x), p))
    h = SECOND_STEP * np.maximum(1.0, np.abs(x))
    rounding = 1e3 * np.finfo(float).eps * g / np.min(h, axis=1) ** 2
    gap = np.max(np.abs(fine - coarse), axis=(1, 2))
    allowed = 1e-3 * np.max(np.abs(fine), axis=(1, 2)) + rounding
    bad = np.flatnonzero(gap > allowed)
    if bad.size:
        i = int(bad[0])
        warnings.warn(
            f"noise: the second derivatives of pᵀD(θ)p by central differences at steps h and "
            f"2h differ by {gap[i]:.3g} (largest entry {np.max(np.abs(fine[i])):.3g}) near "
            f"θ = {np.round(x[i], 6).tolist()}: D(θ) does not look twice differentiable "
            "there, and the prefactor's non-Gibbs term is not reliable (give a smooth D)",
            stacklevel=3,
        )


def _check_spd(name: str, d: Array, where: str = "") -> None:
    if not np.all(np.isfinite(d)):
        raise ParameterError(name, "a finite diffusion matrix", f"non-finite entries{where}")
    if np.max(np.abs(d - np.swapaxes(d, -1, -2))) > 1e-10 * max(1.0, float(np.max(np.abs(d)))):
        raise ParameterError(name, "a symmetric diffusion matrix", f"an asymmetric one{where}")
    smallest = np.linalg.eigvalsh(d)[..., 0]
    if np.any(smallest <= 0):
        raise ParameterError(
            name,
            "a positive definite diffusion matrix D (the escape needs noise in every direction)",
            f"smallest eigenvalue {float(np.min(smallest)):.3g}{where}",
        )


def find_jump(nm: NoiseModel, points: Array, bisections: int = 40) -> tuple[Array, float] | None:
    """A discontinuity of D along the polyline ``points`` (k, n), or None.

    On each segment the relative change of D between its ends is compared with what a
    differentiable D allows; the segment with the largest change is bisected ``bisections``
    times, always keeping the half where D changes more. A jump keeps a finite change on a
    segment shrunk by 2⁻⁴⁰; a smooth D's change shrinks with it. Returns the point and the
    relative size of the jump."""
    if nm.constant is not None:
        return None
    values = nm.field(points)
    size = max(float(np.max(np.abs(values))), 1e-300)
    change = np.max(np.abs(np.diff(values, axis=0)), axis=(1, 2)) / size
    if change.size == 0:
        return None
    i = int(np.argmax(change))
    left, right = points[i].copy(), points[i + 1].copy()
    d_left, d_right = values[i], values[i + 1]
    for _ in range(bisections):
        mid = 0.5 * (left + right)
        d_mid = nm.field(mid[None])[0]
        if np.max(np.abs(d_mid - d_left)) >= np.max(np.abs(d_right - d_mid)):
            right, d_right = mid, d_mid
        else:
            left, d_left = mid, d_mid
    jump = float(np.max(np.abs(d_right - d_left))) / size
    # a C¹ field changes by ~|∇D|·2⁻⁴⁰·|segment| over the last interval: far below 1e-6
    return (0.5 * (left + right), jump) if jump > 1e-6 else None


def check_positive_on_path(nm: NoiseModel, points: Array) -> None:
    """Refuse a state-dependent D(θ) that is not finite, symmetric and positive definite at a
    point of the path (checked at the minimum only when the model is built): the geometric
    action needs D⁻¹ everywhere on the path, and without this check the string fails later as
    'did not converge' (or numpy's LinAlgError) instead of naming the noise."""
    if nm.constant is not None or nm.switch is not None:
        return
    d = nm.field(points)
    name = "diffusion" if nm.name == "measured" else "noise"
    finite = np.all(np.isfinite(d), axis=(1, 2))
    smallest = np.full(len(points), -np.inf)
    smallest[finite] = np.linalg.eigvalsh(d[finite])[:, 0]
    bad = np.flatnonzero(~(smallest > 0))
    if bad.size == 0:
        return
    where = f" at θ = {np.round(points[bad[0]], 6).tolist()} on the path"
    _check_spd(name, d[bad[0]], where)
    raise ParameterError(name, "a finite, positive definite D(θ) on the path", where)


def check_continuous(nm: NoiseModel, points: Array) -> None:
    """Refuse a D(θ) with a jump along the path (the harmonic-switch SGD noise, for instance):
    the geometric action's gradient and the Riccati equation of the prefactor need ∂D, which
    does not exist there, and the minimum-action string does not converge. A D that is not
    positive definite somewhere on the path is refused first (`check_positive_on_path`)."""
    check_positive_on_path(nm, points)
    if nm.switch is not None:  # the jump is known and handled (numerics/_switch.py)
        return
    found = find_jump(nm, points)
    if found is None:
        return
    where, size = found
    raise NoiseModelError(
        "noise",
        "a D(θ) that is continuous between the minimum and the saddle",
        f"a D that jumps by {size:.3g} (relative) near θ = {np.round(where, 6).tolist()}",
        "the minimum-action method and the Bouchet–Reygner prefactor need D's derivative; a "
        "switch model (D = κH_a on one side of a surface, κ|H_b| on the other) is "
        "discontinuous: use noise='sgd' with switch= (the harmonic switch, whose jump is "
        "handled explicitly), or smooth the switch over a width",
    )


def _central_derivative(field: Callable[[Array], Array], x: Array) -> Array:
    """∂_k D_ij (m, n, n, n) by central differences, h_k = 10⁻⁵·max(1, |x_k|): the 2n shifted
    copies of the m points in as few calls of D as `_CHUNK` allows (one for small m·n³)."""
    m, n = x.shape
    h = 1e-5 * np.maximum(1.0, np.abs(x))  # (m, n)
    out = np.empty((m, n, n, n))
    per_call = max(1, _CHUNK // max(2 * m * n * n, 1))  # directions k per call
    for lo in range(0, n, per_call):
        ks = np.arange(lo, min(n, lo + per_call))
        steps = h[:, ks, None] * np.eye(n)[ks]  # (m, k, n)
        points = np.concatenate([x[:, None] + steps, x[:, None] - steps], axis=1)
        values = field(points.reshape(-1, n)).reshape(m, 2, ks.size, n, n)
        diff = (values[:, 0] - values[:, 1]) / (2 * h[:, ks, None, None])  # [m, k, i, j]
        out[..., ks] = np.moveaxis(diff, 1, 3)
    return out


def _constant(name: str, matrix: Array, description: str, scalar: float | None) -> NoiseModel:
    n = matrix.shape[0]
    return NoiseModel(
        name=name,
        dim=n,
        field=lambda x: np.broadcast_to(matrix, (x.shape[0], n, n)).copy(),
        constant=matrix,
        scalar=scalar,
        derivative=lambda x: np.zeros((x.shape[0], n, n, n)),
        description=description,
    )


def _user_field(fn: Callable[..., Any], n: int, name: str) -> Callable[[Array], Array]:
    def field(x: Array) -> Array:
        try:
            out = np.asarray(fn(x), dtype=float)
        except Exception:
            out = None
        if out is not None and out.shape == (x.shape[0],):  # scalar D(θ): isotropic
            return out[:, None, None] * np.eye(n)
        if out is None or out.shape != (x.shape[0], n, n):
            out = np.stack([np.asarray(fn(row), dtype=float) for row in x])
            if out.shape == (x.shape[0],):  # scalar D(θ): isotropic
                out = out[:, None, None] * np.eye(n)
            if out.shape != (x.shape[0], n, n):
                raise ShapeError(
                    name, f"a callable θ -> {n}x{n} matrix", f"values of shape {out.shape[1:]}"
                )
        return out

    return field


_KNOWN = "'white', 'anisotropic', 'sgd', 'loss-dependent', 'measured' or a callable θ -> D(θ)"


def _state_dependent(
    name: str,
    n: int,
    field: Callable[[Array], Array],
    description: str,
    derivative: Callable[[Array], Array] | None = None,
) -> NoiseModel:
    """A D(θ) model; its derivative by central differences unless given."""

    def central(x: Array) -> Array:
        return _central_derivative(field, x)

    return NoiseModel(name, n, field, None, None, derivative or central, description)


def _from_callable(fn: Callable[..., Any], n: int, minimum: Array) -> NoiseModel:
    field = _user_field(fn, n, "noise")
    _check_spd("noise", field(minimum[None]), " at the minimum")
    return _state_dependent("callable", n, field, "D(θ) given as a callable")


def _white(diffusion: Any, n: int) -> NoiseModel:
    try:
        d = float(diffusion)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(
            "diffusion", "a positive number D for white noise", diffusion
        ) from None
    if not np.isfinite(d) or d <= 0:
        raise ParameterError("diffusion", "a positive finite number D", diffusion)
    return _constant("white", d * np.eye(n), f"white noise, D = {d:g}·I", d)


def _anisotropic(diffusion: Any, n: int) -> NoiseModel:
    if diffusion is None:
        raise ParameterError("diffusion", f"a constant {n}x{n} SPD matrix", None)
    matrix = np.asarray(diffusion, dtype=float)
    if matrix.ndim == 0:
        matrix = float(matrix) * np.eye(n)
    if matrix.shape != (n, n):
        raise ShapeError("diffusion", f"a {n}x{n} matrix", f"shape {matrix.shape}")
    matrix = (matrix + matrix.T) / 2
    _check_spd("diffusion", matrix)
    return _constant("anisotropic", matrix, "constant anisotropic D", None)


def _kappa(key: str, lr: float | None, batch_size: float | None) -> float:
    """κ = η/(2B) for the SGD-shaped models."""
    for name, value in (("lr", lr), ("batch_size", batch_size)):
        if value is None or not np.isfinite(float(value)) or float(value) <= 0:
            raise ParameterError(name, f"a positive number for {key} noise", value)
    assert lr is not None and batch_size is not None
    return float(compiled_formula("kappa").value(eta=float(lr), B=float(batch_size)))


def _loss_dependent(loss: LossModel, minimum: Array, kappa: float) -> NoiseModel:
    h_a = loss.hessian(minimum[None])[0]
    l_a = float(loss.value(minimum[None])[0])
    if l_a <= 0:
        raise ParameterError("loss", "L(minimum) > 0 for loss-dependent noise (D ∝ L(θ))", l_a)
    scale = 2 * kappa  # η/B

    def field(x: Array) -> Array:
        return scale * loss.value(x)[:, None, None] * h_a

    def derivative(x: Array) -> Array:
        return scale * np.einsum("ij,mk->mijk", h_a, loss.gradient(x))

    def second_form(x: Array, p: Array) -> Array:  # ∂_i∂_j (pᵀDp) = (η/B) pᵀH_a p ∂_i∂_j L
        return scale * np.einsum("mi,ij,mj->m", p, h_a, p)[:, None, None] * loss.hessian(x)

    description = "loss-dependent noise D = (η L(θ)/B) H(a) (Mori et al. 2022)"
    model = _state_dependent("loss-dependent", loss.dim, field, description, derivative)
    model.second_form = second_form
    return model


def _measured(diffusion: Any, n: int, minimum: Array, kappa: float) -> NoiseModel:
    if not callable(diffusion):
        raise ParameterError(
            "diffusion",
            "a callable θ -> per-sample gradient-noise covariance Σ(θ) for measured noise",
            diffusion,
        )
    sigma = _user_field(diffusion, n, "diffusion")

    def measured(x: Array) -> Array:
        return kappa * sigma(x)

    _check_spd("diffusion", measured(minimum[None]), " at the minimum")
    description = "measured gradient-noise covariance, D = η Σ(θ)/(2B)"
    return _state_dependent("measured", n, measured, description)


def _sgd(
    loss: LossModel, minimum: Array, saddle: Array | None, kappa: float, switch: Any
) -> NoiseModel:
    """The harmonic switch D = κH_a | κ|H_b| (numerics/_switch.py); ``switch="literal"`` is
    refused with the reason."""
    if saddle is None:
        raise ParameterError("saddle", "the saddle's point for SGD noise (D = κ|H_b| there)", None)
    from ._switch import switch_model

    sw = switch_model(loss, minimum, saddle, kappa, "harmonic" if switch is None else switch)
    n = loss.dim
    return NoiseModel(
        name="sgd",
        dim=n,
        field=sw.field,
        constant=None,
        scalar=None,
        derivative=lambda x: np.zeros((x.shape[0], n, n, n)),
        description=sw.description,
        switch=sw,
    )


def noise_model(
    noise: Any,
    loss: LossModel,
    minimum: Array,
    *,
    diffusion: Any = None,
    lr: float | None = None,
    batch_size: float | None = None,
    saddle: Array | None = None,
    switch: Any = None,
) -> NoiseModel:
    """Build the noise model named by ``noise`` (see the module docstring); ``saddle`` and
    ``switch`` are for ``"sgd"``."""
    n = loss.dim
    key = noise.lower().replace("_", "-") if isinstance(noise, str) else None
    if switch is not None and key != "sgd":
        raise ParameterError(
            "switch", "None unless noise='sgd' (the switch surface of SGD noise)", switch
        )
    if callable(noise) and not isinstance(noise, str):
        return _from_callable(noise, n, minimum)
    if key == "white":
        return _white(diffusion, n)
    if key == "anisotropic":
        return _anisotropic(diffusion, n)
    if key in ("sgd", "loss-dependent", "measured"):
        kappa = _kappa(key, lr, batch_size)
        if key == "loss-dependent":
            return _loss_dependent(loss, minimum, kappa)
        if key == "measured":
            return _measured(diffusion, n, minimum, kappa)
        return _sgd(loss, minimum, saddle, kappa, switch)
    raise NoiseModelError("noise", _KNOWN, noise)
