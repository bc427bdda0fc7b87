"""A tiny (model, loss_fn, data) factory for command-line tests of ``flatminima probe``:
least squares of a 2-parameter linear model, fitted exactly (a minimum)."""

import torch
from torch import nn


def make():  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.5], [0.0, 0.35]], dtype=torch.float64)
    x = torch.randn(300, 2, generator=gen, dtype=torch.float64) @ mix
    w = torch.tensor([0.7, -1.2], dtype=torch.float64)
    y = x @ w + torch.randn(300, generator=gen, dtype=torch.float64)
    model = nn.Linear(2, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y.unsqueeze(1)).solution.T)
    return model, lambda out, t: 0.5 * ((out.squeeze(-1) - t) ** 2).mean(), (x, y)
