"""The quadratic model of a valley for any constant diffusion tensor: the pieces of the general
n-D escape-time prefactor, derived with SymPy matrix algebra.

Near a critical point c of L, ``dθ = −H(θ − c)dt + √(2D) dW`` with H = ∇²L(c) and D the
(locally constant) diffusion tensor. Its quasi-potential is quadratic, Φ ≈ ½ δᵀQδ, and the
stationary Hamilton–Jacobi equation −(Hδ)·Qδ + δᵀQDQδ = 0 for all δ gives, with Σ = Q⁻¹,
the Lyapunov equation

    H Σ + Σ Hᵀ = 2D,

at a minimum (Σ is then the stationary covariance) and at a saddle alike (Σ indefinite there).
The escape time of the gradient drift −∇L with this noise is, to leading order
(Bouchet–Reygner 2016, non-reversible Eyring–Kramers formula, without the transport factor
e^I along the instanton, which is 1 for reversible dynamics and in the quadratic model)

    τ = (2π / |λ₋(H_b)|) · √(|det Q_b| / det Q_a) · e^ΔΦ,

λ₋(H_b) the negative eigenvalue of H_b itself: the growth rate at the saddle of the drift −∇L,
whatever D (Langer's μ, the unstable eigenvalue of −M H_b, belongs to the drift −M∇L; here the
mobility M is the identity). With shared eigenvectors this reduces to the white-noise
Eyring–Kramers formula (D = dI) and to the paper's SGD prefactor 2π/|H_be| (D = κH_a at a,
κ|H_b| at b, anti-Itô), as `tests/theory/test_quadratic.py` proves with SymPy.
"""

from __future__ import annotations

import sympy as sp

from flatminima.errors import ParameterError, ShapeError

__all__ = [
    "langer_unstable_eigenvalue",
    "lyapunov_covariance",
    "quadratic_prefactor",
    "quasi_potential_hessian",
]


def _square(matrix: object, name: str) -> sp.Matrix:
    try:
        m = sp.Matrix(matrix)
    except (TypeError, ValueError, NotImplementedError, sp.SympifyError):
        raise ShapeError(name, "a square matrix (SymPy Matrix or nested lists)", matrix) from None
    if m.rows != m.cols or m.rows == 0:
        raise ShapeError(name, "a square matrix", f"shape {m.shape}")
    return m


def lyapunov_covariance(hessian: object, diffusion: object) -> sp.Matrix:
    """Σ solving H Σ + Σ Hᵀ = 2D, as a linear system in the n(n+1)/2 entries of a symmetric Σ.

    Parameters
    ----------
    hessian
        H (n × n, symbols allowed): the Hessian at a minimum or a saddle.
    diffusion
        D (n × n, symmetric): the diffusion tensor there.

    Returns
    -------
    sympy.Matrix
        The unique symmetric solution (it exists when no two eigenvalues of H sum to zero).
    """
    h = _square(hessian, "hessian")
    d = _square(diffusion, "diffusion")
    if d.shape != h.shape:
        raise ShapeError("diffusion", f"a matrix of the Hessian's shape {h.shape}", d.shape)
    n = h.rows
    unknowns = {(i, j): sp.Dummy(f"s{i}{j}") for i in range(n) for j in range(i, n)}
    sigma = sp.Matrix(n, n, lambda i, j: unknowns[(min(i, j), max(i, j))])
    residual = h * sigma + sigma * h.T - 2 * d
    equations = [residual[i, j] for i in range(n) for j in range(i, n)]
    solution = sp.solve(equations, list(unknowns.values()), dict=True)
    if len(solution) != 1 or set(solution[0]) != set(unknowns.values()):
        raise ParameterError(
            "hessian", "a Hessian with no two eigenvalues summing to zero", hessian
        )
    return sigma.subs(solution[0]).applyfunc(sp.simplify)


def quasi_potential_hessian(hessian: object, diffusion: object) -> sp.Matrix:
    """Q = Σ⁻¹, the Hessian of the quasi-potential Φ of the quadratic model (Φ ≈ ½δᵀQδ).

    White noise D = dI gives Q = H/d; D = κH (SGD at a minimum) gives Q = I/κ.
    """
    return lyapunov_covariance(hessian, diffusion).inv().applyfunc(sp.simplify)


def langer_unstable_eigenvalue(hessian_saddle: object, mobility: object = None) -> sp.Expr:
    """The unstable growth rate at the saddle: the positive eigenvalue of −M·H_b.

    For the SDE of this toolkit (drift −∇L, mobility M = I, the default) it is |λ₋(H_b)|,
    whatever the noise D; Langer's formula for the drift −M∇L uses the M given.
    """
    h = _square(hessian_saddle, "hessian_saddle")
    m = sp.eye(h.rows) if mobility is None else _square(mobility, "mobility")
    if m.shape != h.shape:
        raise ShapeError("mobility", f"a matrix of the Hessian's shape {h.shape}", m.shape)
    eigen = (-m * h).eigenvals()
    positive = [
        value for value, mult in eigen.items() for _ in range(mult) if sp.ask(sp.Q.positive(value))
    ]
    if len(positive) != 1:
        raise ParameterError(
            "hessian_saddle",
            "a saddle of index 1 (exactly one eigenvalue of −M·H_b provably positive)",
            hessian_saddle,
        )
    return positive[0]


def quadratic_prefactor(
    hessian_min: object,
    hessian_saddle: object,
    diffusion_min: object,
    diffusion_saddle: object,
) -> sp.Expr:
    """(2π/|λ₋(H_b)|)·√(|det Q_b| / det Q_a), the prefactor of τ in the quadratic model.

    Q_a, Q_b from `quasi_potential_hessian` with the diffusion tensor at each point; τ is this
    times e^ΔΦ (times e^I along the instanton where the dynamics is not reversible).
    Determinants by the Berkowitz method.
    """
    h_a, h_b = _square(hessian_min, "hessian_min"), _square(hessian_saddle, "hessian_saddle")
    d_a, d_b = (
        _square(diffusion_min, "diffusion_min"),
        _square(diffusion_saddle, "diffusion_saddle"),
    )
    for name, matrix in (
        ("hessian_saddle", h_b),
        ("diffusion_min", d_a),
        ("diffusion_saddle", d_b),
    ):
        if matrix.shape != h_a.shape:
            raise ShapeError(name, f"a matrix of hessian_min's shape {h_a.shape}", matrix.shape)
    q_a = quasi_potential_hessian(h_a, d_a)
    q_b = quasi_potential_hessian(h_b, d_b)
    rate = langer_unstable_eigenvalue(h_b)
    det_a = sp.simplify(q_a.det(method="berkowitz"))
    det_b = sp.simplify(q_b.det(method="berkowitz"))
    return 2 * sp.pi / rate * sp.sqrt(sp.simplify(-det_b) / det_a)
