"""Network escape measurement: the batched gradient and the fused loss against autograd and
the model's own loss, the float32 screen within its band, the cheap loss check gives the same
escapes as the exact check on every step, and the three former Monte Carlo loops run through
the one escape engine."""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace

import pytest
import torch

from flatminima.validation import _network_escape as net


@pytest.fixture(scope="module")
def trained():
    return net._setup(net.NETWORK)


def _replicas(theta_star: torch.Tensor, scale: float, n: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    noise = torch.randn(n, theta_star.numel(), generator=generator, dtype=torch.float64)
    return theta_star.repeat(n, 1) + scale * noise


def test_fused_loss_and_gradient_match_the_model_and_autograd(trained) -> None:
    model, data, theta_star, _, _ = trained
    theta = _replicas(theta_star, 0.3)
    full = net._FullBatch(model, data.x, data.y, len(theta))
    loss = torch.stack([model.loss(t, data.x, data.y) for t in theta])
    torch.testing.assert_close(full.loss(theta), loss, rtol=1e-13, atol=1e-14)
    per_replica = torch.func.grad(lambda p: model.loss(p, data.x, data.y))
    expected = torch.stack([per_replica(t) for t in theta])
    torch.testing.assert_close(full.gradient(theta), expected, rtol=1e-11, atol=1e-13)
    # an in-place change (a restart) is seen: the shared pass is recomputed
    theta[0] = theta_star
    torch.testing.assert_close(
        full.loss(theta)[0], model.loss(theta_star, data.x, data.y), rtol=1e-13, atol=1e-14
    )


@pytest.mark.parametrize("scale", [0.0, 0.05, 1.0])
def test_float32_screen_is_within_its_band(trained, scale: float) -> None:
    model, data, theta_star, _, _ = trained
    theta = _replicas(theta_star, scale, 64)
    screen = net._float32_loss(model, data.x, data.y)(theta)
    error = (screen - model.loss(theta, data.x, data.y)).abs().max()
    assert float(error) < net.SCREEN_BAND / 100


@pytest.mark.parametrize("index", [3, 6])  # SGD at k = 3, white noise at k = 4 (short burn-in)
def test_cheap_loss_check_gives_the_same_escapes_as_the_exact_check(index: int) -> None:
    """Same seed, the loss check screened (SGD) or fused (white noise) against the full-data
    float64 loss every step: the same escapes, steps and rate, to the bit."""
    point = net.network_sharpness_points(True, "cpu")[index]
    # half the level δ: escapes come often enough for a short run
    point = replace(point, delta=point.delta / 2, replicas=32, target_escapes=10, max_steps=400)
    cheap = net.measure_network_rate(point)
    exact = net.measure_network_rate(point, screened=False)
    assert cheap.escapes > 0
    assert cheap == exact


def test_simulate_escape_and_the_validation_measurements_run_through_the_engine(
    monkeypatch,
) -> None:
    """simulate_escape, measure_rate, the network escape measurement and the network probe's
    measurement each call the engine's run_escape (spied on; measure_rate and the network
    measurement through the shared renewal_rate), and none of their modules has a loop or an
    interval of its own."""
    from flatminima.numerics import _engine, _simulate, simulate_escape
    from flatminima.validation import _dynamics, _probe_measure, _renewal, landscape

    calls: list[str] = []
    callers = (_simulate, _renewal, _probe_measure)
    for module in callers:

        def spy(*args, _name=module.__name__, **kwargs):
            calls.append(_name)
            return _engine.run_escape(*args, **kwargs)

        monkeypatch.setattr(module, "run_escape", spy)
    simulate_escape(
        lambda z: z,
        start=[0.0],
        diffusion=1.0,
        step=0.1,
        max_steps=5,
        n_paths=4,
        escaped=lambda z: z[:, 0] > 9.0,
    )
    _dynamics.measure_rate(
        landscape("double-well"),
        noise="white",
        lr=0.1,
        diffusion=0.05,
        replicas=4,
        target_escapes=1,
        max_steps=5,
    )
    point = net.network_sharpness_points(True, "cpu")[0]
    net.measure_network_rate(replace(point, replicas=4, max_steps=3, target_escapes=1))
    measured = _probe_measure._measure(_tiny_model(), **{**PROBE_RUN, "max_steps": 60})
    assert measured.steps == 60
    assert calls == [m.__name__ for m in (_simulate, _renewal, _renewal, _probe_measure)]
    for module in (_simulate, _dynamics, net, _renewal, _probe_measure):
        tree = ast.parse(inspect.getsource(module))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not any(isinstance(n, ast.While) for n in ast.walk(tree)), module.__name__
        assert "poisson_rate_interval" not in defined, module.__name__
    source = inspect.getsource(_probe_measure)  # no step loop, no interval: the engine's
    assert not any(isinstance(n, ast.For | ast.While) for n in ast.walk(ast.parse(source)))
    assert "poisson_rate_interval" not in source


PROBE_RUN = {
    "lr": 0.5,
    "batch": 4,
    "barrier": 0.02,
    "replicas": 16,
    "max_steps": 400,
    "check_every": 10,
    "burn_in": 37,
    "target_escapes": 10**6,
    "seed": 3,
    "progress": None,
}


def _tiny_model():  # type: ignore[no-untyped-def]
    """Least squares of a 2-parameter linear model at its exact minimum (the CLI tests' model)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
    from probe_factory import make

    from flatminima.validation._persample import FunctionalModel

    model, loss_fn, (x, y) = make()
    return FunctionalModel(model, loss_fn, x, y, dtype=torch.float64, device=torch.device("cpu"))


def test_probe_measurement_counts_whole_check_windows_against_an_independent_loop() -> None:
    """The probe's engine-run measurement against a plain loop written here (Floyd subsets
    from the same generator, full-data loss checked every 10 iterations, restart at the
    minimum, escapes and exposure counted per check window after the burn-in)."""
    from flatminima.validation import _probe_measure

    fm = _tiny_model()
    run = PROBE_RUN
    measured = _probe_measure._measure(fm, **run)
    gen = torch.Generator().manual_seed(run["seed"])
    theta_a = fm.theta0.detach()
    level = float(fm.loss(theta_a)) + run["barrier"]
    thetas = theta_a.expand(run["replicas"], -1).clone()
    grad_b = torch.func.vmap(torch.func.grad(fm.batch_loss))
    escapes, exposure = 0, 0
    for step in range(1, run["max_steps"] + 1):
        idx = _probe_measure._subsets(run["replicas"], fm.samples, run["batch"], gen, fm.device)
        thetas = thetas - run["lr"] * grad_b(thetas, fm.x[idx], fm.y[idx])
        if step % run["check_every"]:
            continue
        out = torch.func.vmap(fm.loss)(thetas) > level
        if step > run["burn_in"]:
            escapes += int(out.sum())
            exposure += run["replicas"] * run["check_every"]
        thetas[out] = theta_a
    assert escapes > 50
    assert (measured.escapes, measured.exposure) == (escapes, exposure)
    assert measured.rate_low < escapes / exposure < measured.rate_high


def test_probe_measurement_refuses_diverging_replicas_naming_lr() -> None:
    from flatminima.errors import DivergenceError
    from flatminima.validation import _probe_measure

    # ηλ ≈ 50: the parameters overflow to inf (then NaN) long before the one check at 400
    run = {**PROBE_RUN, "lr": 50.0, "check_every": 400, "burn_in": 0}
    with pytest.raises(DivergenceError, match="lr"):
        _probe_measure._measure(_tiny_model(), **run)
