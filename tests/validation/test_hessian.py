"""top_hessian_eigenvalue against the dense Hessian's eigvalsh."""

from __future__ import annotations

import pytest
import torch

from flatminima.errors import FlatMinimaError
from flatminima.validation._hessian import top_hessian_eigenvalue
from flatminima.validation._models import load_dataset, make_model, train_to_minimum


def test_matches_the_dense_hessian() -> None:
    data = load_dataset("wine")
    model = make_model("mlp", data, hidden=8, weight_decay=1e-2)
    theta, _ = train_to_minimum(model, data, seed=2)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return model.loss(t, data.x, data.y)

    dense = torch.linalg.eigvalsh(torch.func.hessian(loss)(theta))
    result = top_hessian_eigenvalue(loss, theta, tol=1e-8)
    assert result.value == pytest.approx(float(dense[-1]), rel=1e-6)
    hv = torch.func.hessian(loss)(theta) @ result.vector
    assert torch.allclose(hv, result.value * result.vector, atol=1e-5 * abs(result.value))


def test_bad_input() -> None:
    with pytest.raises(FlatMinimaError, match="theta"):
        top_hessian_eigenvalue(lambda t: (t**2).sum(), torch.zeros(2, 2))
    with pytest.raises(FlatMinimaError, match="tol"):
        top_hessian_eigenvalue(lambda t: (t**2).sum(), torch.zeros(3), tol=2.0)


def _quadratic(seed: int, spectrum: torch.Tensor) -> tuple[torch.Tensor, object]:
    """A dense, non-diagonal quadratic loss ½θᵀHθ with the given spectrum (random rotation)."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(
        torch.randn(len(spectrum), len(spectrum), generator=generator, dtype=torch.float64)
    )
    h = q @ torch.diag(spectrum) @ q.T
    return h, lambda t: 0.5 * t @ h @ t


def test_largest_magnitude_at_a_saddle_like_spectrum() -> None:
    """Like power iteration, the eigenvalue of largest magnitude, here negative: −5 of
    (−5, −4.2, 1, 2, …, 4); against eigvalsh of the dense matrix, and the vector's residual."""
    spectrum = torch.tensor([-5.0, -4.2, 1.0, 2.0, 3.0, 3.5, 4.0], dtype=torch.float64)
    h, loss = _quadratic(3, spectrum)
    result = top_hessian_eigenvalue(loss, torch.full((7,), 0.3, dtype=torch.float64), tol=1e-9)
    assert result.value == pytest.approx(float(torch.linalg.eigvalsh(h)[0]), rel=1e-9)
    assert float((h @ result.vector - result.value * result.vector).norm()) < 1e-7 * 5


def test_restarts_reach_a_clustered_top_eigenvalue(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the Krylov basis restarted every 3 products, a top eigenvalue 1% above the next one
    (40 dimensions) still converges to the dense answer; iterations count the products."""
    import flatminima.validation._hessian as module

    monkeypatch.setattr(module, "_RESTART", 3)
    spectrum = torch.linspace(0.1, 1.0, 40, dtype=torch.float64)
    spectrum[-1] = 1.01
    _, loss = _quadratic(5, spectrum)
    result = top_hessian_eigenvalue(
        loss, torch.zeros(40, dtype=torch.float64), tol=1e-8, max_iter=3000
    )
    assert result.value == pytest.approx(1.01, rel=1e-8)
    assert result.iterations > 3
    with pytest.raises(FlatMinimaError, match="max_iter"):
        top_hessian_eigenvalue(loss, torch.zeros(40, dtype=torch.float64), tol=1e-12, max_iter=6)
