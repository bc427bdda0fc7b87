"""The computations a sweep point can ask for (``point["task"]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._dynamics import measure_occupation, measure_rate
from ._landscapes import landscape

__all__ = ["TASKS"]


def _rate(point: dict[str, Any]) -> dict[str, Any]:
    land = landscape(point["landscape"], **point.get("landscape_options", {}))
    result = measure_rate(
        land,
        noise=point["noise"],
        lr=point["lr"],
        loss_scale=point["loss_scale"],
        batch_size=point.get("batch_size"),
        diffusion=point.get("diffusion"),
        replicas=point["replicas"],
        target_escapes=point["target_escapes"],
        max_steps=point["max_steps"],
        seed=point["seed"],
        device=point.get("device", "cpu"),
        start=point.get("start"),
    )
    return result.to_dict()


def _occupation(point: dict[str, Any]) -> dict[str, Any]:
    land = landscape(point["landscape"], **point.get("landscape_options", {}))
    return measure_occupation(
        land,
        noise=point["noise"],
        lr=point["lr"],
        loss_scale=point["loss_scale"],
        batch_size=point.get("batch_size"),
        diffusion=point.get("diffusion"),
        replicas=point["replicas"],
        steps=point["steps"],
        seed=point["seed"],
        device=point.get("device", "cpu"),
    )


def _network_rate(point: dict[str, Any]) -> dict[str, Any]:
    from ._network_escape import measure_network_rate

    return measure_network_rate(point)


def _covariance(point: dict[str, Any]) -> dict[str, Any]:
    from ._covariance import covariance_point

    return covariance_point(point)


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "rate": _rate,
    "occupation": _occupation,
    "network-rate": _network_rate,
    "covariance": _covariance,
}
