"""Input checks of ``probe``: every setting is checked before anything is computed, and a bad
one is a one-line ``ParameterError``/``ShapeError`` naming it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypedDict, cast

import numpy as np
import torch
from torch import nn

from flatminima.errors import ParameterError, ShapeError

from ._persample import FunctionalModel


class _Text(str):
    """A string shown without quotes in an error message."""

    def __repr__(self) -> str:
        return str(self)


def _device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(
            "device", "a torch device such as 'cpu', 'cuda' or 'cuda:0'", device
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "an available device (CUDA is not available here)", device)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ParameterError("device", f"a CUDA index below {torch.cuda.device_count()}", device)
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ParameterError("device", "'cpu', 'cuda' (or 'cuda:N') or 'mps'", device)
    return dev


def _data(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(data, "x") and hasattr(data, "y"):
        pair: Any = (data.x, data.y)
    elif hasattr(data, "tensors"):
        pair = data.tensors
    else:
        pair = data
    if not isinstance(pair, Sequence) or len(pair) != 2:
        given = type(data).__name__
        if hasattr(data, "tensors") and isinstance(pair, Sequence):
            given = f"a {given} of {len(pair)} tensors"
        raise ShapeError(
            "data",
            "a pair (inputs x, targets y), a TensorDataset of two tensors or an object with "
            ".x and .y",
            _Text(given),
        )
    try:
        x, y = (
            torch.as_tensor(np.asarray(v), device="cpu") if not torch.is_tensor(v) else v
            for v in pair
        )
    except (TypeError, ValueError) as error:
        raise ShapeError("data", "arrays or tensors", _Text(str(error))) from None
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ShapeError(
            "data",
            "inputs x and targets y with the same number of samples along axis 0",
            _Text(f"x of shape {tuple(x.shape)}, y of shape {tuple(y.shape)}"),
        )
    if x.shape[0] < 2:
        raise ShapeError("data", "at least 2 samples", _Text(f"{x.shape[0]}"))
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ParameterError("data", "finite inputs", _Text("x with NaN or inf"))
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise ParameterError("data", "finite targets", _Text("y with NaN or inf"))
    return x.detach(), y.detach()


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ParameterError(name, "a positive finite number", value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, "a positive finite number", value) from None
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(name, "a positive finite number", value)
    return v


def _integer(name: str, value: Any, low: int, high: int, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(name, f"an integer from {low} to {high}{what}", value)
    if not low <= int(value) <= high:
        raise ParameterError(name, f"an integer from {low} to {high}{what}", value)
    return int(value)


_STOCHASTIC = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def _stochastic_layers(model: nn.Module) -> list[str]:
    return [
        f"{type(m).__name__} at {name or '<root>'!r}"
        for name, m in model.named_modules()
        if isinstance(m, _STOCHASTIC)
    ]


def _check_loss(fm: FunctionalModel) -> None:
    m = min(fm.samples, 8)
    xs, ys = fm.x[:m], fm.y[:m]
    try:
        out = fm.data_loss(fm.theta0, xs, ys)
    except Exception as error:  # the user's model or loss rejected the data
        raise ShapeError(
            "data",
            "inputs and targets that model and loss_fn accept",
            _Text(
                f"x of shape {tuple(fm.x.shape)}, y of shape {tuple(fm.y.shape)} "
                f"({type(error).__name__}: {str(error).splitlines()[0][:120]})"
            ),
        ) from None
    if not torch.is_tensor(out) or out.ndim != 0:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ParameterError(
            "loss_fn",
            "a scalar (0-dim) loss, the mean over the samples (reduction='mean')",
            _Text(f"an output of shape {shape}"),
        )
    singles = torch.stack([fm.data_loss(fm.theta0, xs[i : i + 1], ys[i : i + 1]) for i in range(m)])
    if not torch.allclose(singles.mean(), out, rtol=1e-5, atol=1e-12):
        raise ParameterError(
            "loss_fn",
            "the mean of the per-sample losses (reduction='mean')",
            _Text(
                f"{float(out):.6g} on {m} samples whose per-sample mean is "
                f"{float(singles.mean()):.6g}"
            ),
            _broadcast_hint(fm.output(fm.theta0, xs), ys),
        )


def _broadcast_hint(output: Any, target: torch.Tensor) -> str:
    """A hint when output and target shapes differ (e.g. (n, 1) against (n,): an elementwise
    loss then broadcasts to n×n, the commonest cause of a loss that is not a per-sample mean)."""
    if torch.is_tensor(output) and tuple(output.shape) != tuple(target.shape):
        return (
            f"the model's output has shape {tuple(output.shape)} and the targets "
            f"{tuple(target.shape)}: does loss_fn broadcast them?"
        )
    return ""


@dataclass(frozen=True)
class _Checked:
    """``probe``'s inputs after the checks: data as tensors, every setting in range."""

    x: torch.Tensor
    y: torch.Tensor
    device: torch.device
    lr: float
    batch_size: int
    k: int
    parameters: int
    measure: bool
    barrier: float | None
    weight_decay: float
    mode: str
    grad_tol: float
    zero_tol: float
    tol: float
    max_iter: int | None
    dtype: torch.dtype
    chunk_size: int
    replicas: int
    max_steps: int
    check_every: int
    burn_in: int | None
    target_escapes: int
    seed: int

    @property
    def samples(self) -> int:
        return int(self.x.shape[0])

    def settings(self, barrier: float) -> ProbeSettings:
        """The settings recorded in ``ProbeResult.settings``, with ``barrier`` the ΔL used."""
        names = ProbeSettings.__annotations__  # the same names as here
        values = {name: _plain(getattr(self, name)) for name in names}
        return cast(ProbeSettings, {**values, "barrier": barrier})

    def fingerprint(self) -> _StageKeys:
        """The settings the Hessian and noise stages depend on (with parameters and data)."""
        names = _StageKeys.__annotations__  # the same names as here
        return cast(_StageKeys, {name: _plain(getattr(self, name)) for name in names})


_SETTINGS = tuple(f.name for f in fields(_Checked) if f.name not in ("x", "y", "parameters"))
"""``probe``'s keyword arguments that ``_check_settings`` checks (the same names as here)."""


def _plain(value: object) -> object:
    """A JSON-able setting: dtypes and devices as their names."""
    return str(value) if isinstance(value, (torch.dtype, torch.device)) else value


class ProbeSettings(TypedDict):
    """``ProbeResult.settings``: the probe's settings as written to JSON (dtype and device by
    name; ``barrier`` the ΔL used, given or the default)."""

    lr: float
    batch_size: int
    k: int
    barrier: float
    weight_decay: float
    dtype: str
    device: str
    tol: float
    max_iter: int | None
    seed: int
    zero_tol: float
    mode: str
    parameters: int
    samples: int


class _StageKeys(TypedDict):
    """The settings the stored Hessian and noise stages depend on (hashed as JSON with the
    parameters and the data: ``_probe._fingerprint``)."""

    k: int
    tol: float
    max_iter: int | None
    seed: int
    weight_decay: float
    dtype: str


def _check_settings(model: Any, loss_fn: Any, data: Any, device: Any, **s: Any) -> _Checked:
    """Every input of ``probe`` checked, in the order of its signature (``s``: all but
    ``device``, each replaced by its checked value)."""
    if not isinstance(model, nn.Module):
        raise ParameterError("model", "a torch.nn.Module", _Text(type(model).__name__))
    if not callable(loss_fn):
        raise ParameterError("loss_fn", "a callable loss_fn(output, target)", loss_fn)
    dev = _device(device)
    x, y = _data(data)
    n = int(x.shape[0])
    s["lr"] = _positive("lr", s["lr"])
    s["batch_size"] = _integer(
        "batch_size", s["batch_size"], 1, n - 1, " (below the number of samples)"
    )
    if s["mode"] not in ("error", "eval"):
        raise ParameterError("mode", "'error' or 'eval'", s["mode"])
    s["weight_decay"] = _non_negative("weight_decay", s["weight_decay"])
    s["grad_tol"] = _positive("grad_tol", s["grad_tol"])
    s["tol"] = _positive("tol", s["tol"])
    s["zero_tol"] = _fraction("zero_tol", s["zero_tol"])
    if s["dtype"] not in (torch.float32, torch.float64):
        raise ParameterError("dtype", "torch.float64 or torch.float32", s["dtype"])
    s["chunk_size"] = _integer("chunk_size", s["chunk_size"], 1, 2**31)
    s["seed"] = _integer("seed", s["seed"], 0, 2**63 - 1)
    if s["measure"]:
        _check_measurement(s)
    if s["barrier"] is not None:
        s["barrier"] = _positive("barrier", s["barrier"])
    total = _check_model(model, s["mode"])
    s["k"] = _integer("k", s["k"], 1, total, f" (the number of trainable parameters is {total})")
    if s["max_iter"] is not None:
        s["max_iter"] = _integer("max_iter", s["max_iter"], s["k"], 2**31, " (at least k)")
    return _Checked(x=x, y=y, device=dev, parameters=total, **s)


def _check_measurement(s: dict[str, object]) -> None:
    """The measurement's settings in ``s`` (probe's inputs, unchecked) replaced by their
    checked values."""
    s["replicas"] = _integer("replicas", s["replicas"], 1, 2**31)
    max_steps = s["max_steps"] = _integer("max_steps", s["max_steps"], 1, 2**62)
    s["check_every"] = _integer("check_every", s["check_every"], 1, max_steps, " (≤ max_steps)")
    s["target_escapes"] = _integer("target_escapes", s["target_escapes"], 1, 2**62)
    if s["burn_in"] is not None:
        s["burn_in"] = _integer(
            "burn_in", s["burn_in"], 0, max_steps - 1, " (< max_steps: steps at risk remain)"
        )


def _check_model(model: nn.Module, mode: str) -> int:
    """The number of trainable parameters, after refusing BatchNorm/dropout (unless eval)."""
    layers = _stochastic_layers(model)
    if layers and mode != "eval":
        raise ParameterError(
            "model",
            "a model without BatchNorm or dropout layers (in training mode its loss is not a "
            "function of θ alone)",
            _Text(f"a model with {', '.join(layers[:3])}"),
            "pass mode='eval' to probe it as in eval mode",
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ParameterError("model", "a model with trainable parameters", _Text("none"))
    return sum(p.numel() for p in params)


def _non_negative(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, "a finite number ≥ 0", value) from None
    if isinstance(value, bool) or not (math.isfinite(v) and v >= 0):
        raise ParameterError(name, "a finite number ≥ 0", value)
    return v


def _fraction(name: str, value: Any) -> float:
    """A number in [0, 1)."""
    try:
        v = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not 0 <= v < 1:
        raise ParameterError(name, "a number in [0, 1)", value)
    return v
