"""Every tensor follows the ``device`` argument: checked without a GPU.

A run on ``device="cuda"`` fails (or silently moves data back and forth) wherever the code
creates a tensor without naming its device: such a tensor lands on torch's *default* device,
the CPU, while the run's tensors are on the GPU. This machine has no GPU, so the same mistake
is made visible another way: the runs below pass ``device="cpu"`` while torch's default device
is ``"meta"`` (tensors without data). A tensor created without a device then lands on ``meta``
and the run fails at its first use with real data ("Cannot copy out of meta tensor", ".item()
cannot be called on meta tensors"), exactly where a CUDA run would mix devices. Tensors the
code creates on the CPU on purpose (seeded draws, so that a seed gives the same numbers on
every device; user data read from numpy) name ``device="cpu"`` explicitly, which the static
check below asks of every factory call in the package.

Both checks fail on today's code if one ``device=`` is removed: the static one by its line,
the run by the meta-tensor error (tried on ``validation/_lanczos.py``'s start vector and
``validation/_landscapes.py``'s noise table).
"""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from flatminima.numerics import simulate_escape
from flatminima.validation import EXPERIMENT_NAMES, get_experiment, probe

ROOT = Path(__file__).resolve().parents[2]
FACTORIES = {
    "tensor", "as_tensor", "zeros", "ones", "empty", "full", "eye", "arange", "linspace",
    "logspace", "rand", "randn", "randint", "randperm", "normal", "Generator",
}  # fmt: skip


def _factory_calls_without_device(path: Path, root: Path = ROOT) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        named = any(k.arg == "device" for k in node.keywords)
        torch_call = isinstance(owner, ast.Name) and owner.id == "torch"
        if node.func.attr in FACTORIES and torch_call and not named:
            yield f"{path.relative_to(root)}:{node.lineno}: torch.{node.func.attr}(...)"


def test_every_torch_factory_call_in_the_package_names_its_device() -> None:
    files = [p for layer in ("theory", "numerics", "validation", "flatminima") for p in
             sorted((ROOT / layer).rglob("*.py"))]  # fmt: skip
    assert len(files) > 40
    missing = [line for path in files for line in _factory_calls_without_device(path)]
    assert not missing, "tensors created on the default device:\n" + "\n".join(missing)


def test_the_static_check_finds_a_factory_call_without_device(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nx = torch.zeros(3)\ny = torch.ones(2, device='cpu')\n")
    assert list(_factory_calls_without_device(bad, tmp_path)) == ["bad.py:2: torch.zeros(...)"]


@pytest.fixture
def meta_default() -> Iterator[None]:
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


def test_meta_default_device_catches_a_tensor_without_device(meta_default: None) -> None:
    # the premise of the runs below: an undeclared tensor meets real data and fails
    real = torch.ones(3, device="cpu")
    with pytest.raises((RuntimeError, NotImplementedError)):
        float((real + torch.zeros(3)).sum())


# Each experiment point type of the registry, made small (same code path, fewer steps).
SMALL = {
    "OccupationPoint": {"steps": 400, "replicas": 32},
    "NetworkRatePoint": {"replicas": 16, "max_steps": 400, "target_escapes": 5},
    "RatePoint": {"replicas": 32},
}


def _one_point_of_each_type() -> list[Any]:
    points: dict[str, Any] = {}
    for name in EXPERIMENT_NAMES:
        for point in get_experiment(name).points(True, "cpu"):
            kind = type(point).__name__
            if kind in points:
                continue
            small = {
                k: v for k, v in SMALL.get(kind, {}).items() if hasattr(point, k)
            }  # fields this type has
            points[kind] = dataclasses.replace(point, **small)
    return list(points.values())


POINTS = _one_point_of_each_type()


def test_every_point_type_is_covered() -> None:
    kinds = {type(p).__name__ for p in POINTS}
    assert {"CovariancePoint", "RatePoint", "OccupationPoint", "NetworkRatePoint",
            "ProbePoint"} <= kinds, kinds  # fmt: skip


@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"{p.experiment}-{type(p).__name__}")
def test_experiment_points_keep_every_tensor_on_their_device(
    point: Any, meta_default: None
) -> None:
    result = point.run()
    assert result is not None


def _trained_mlp() -> tuple[nn.Module, Any, tuple[torch.Tensor, torch.Tensor], float]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(120, 5, generator=gen, dtype=torch.float64, device="cpu")
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    loss_fn = nn.CrossEntropyLoss()
    wd = 1e-2
    opt = torch.optim.LBFGS(model.parameters(), max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=0, history_size=50, line_search_fn="strong_wolfe")  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss_fn(model(x), y) + 0.5 * wd * sum((p * p).sum() for p in model.parameters())
        value.backward()
        return value

    opt.step(closure)
    return model, loss_fn, (x, y), wd


def test_probe_with_a_measured_escape_keeps_every_tensor_on_its_device(tmp_path: Path) -> None:
    model, loss_fn, data, wd = _trained_mlp()
    settings = dict(lr=0.5, batch_size=8, k=4, weight_decay=wd, measure=True, seed=3,
                    barrier=0.02, max_steps=400, replicas=16, keep_vectors=True)  # fmt: skip
    reference = probe(model, loss_fn, data, **settings)  # type: ignore[arg-type]
    torch.set_default_device("meta")
    try:
        r = probe(model, loss_fn, data, store=tmp_path / "probe", **settings)  # type: ignore[arg-type]
    finally:
        torch.set_default_device(None)
    assert r.measured is not None and reference.measured is not None
    assert r.measured.escapes == reference.measured.escapes > 0
    assert (r.hessian_top.values == reference.hessian_top.values).all()


def test_simulate_escape_torch_backend_keeps_every_tensor_on_its_device(meta_default: None) -> None:
    def grad(x: torch.Tensor) -> torch.Tensor:
        return x**3 - x

    r = simulate_escape(grad, start=[-1.0], diffusion=0.15, step=0.01, n_paths=64,
                        max_steps=20_000, saddle=[0.0], backend="torch", device="cpu", seed=1)  # fmt: skip
    assert math.isfinite(float(r.mean_time))
