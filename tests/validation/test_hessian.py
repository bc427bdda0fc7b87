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
