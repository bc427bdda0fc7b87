"""probe on models it was not built around (a CNN on digits, BatchNorm, a frozen tensor,
float32) and every malformed setting: a one-line FlatMinimaError naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from flatminima.errors import FlatMinimaError, ParameterError, ShapeError
from flatminima.validation import Dataset, probe

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(model: nn.Module, loss_fn, x, y, wd: float, rounds: int = 5) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=200,
        tolerance_grad=1e-13,
        tolerance_change=0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y) + 0.5 * wd * sum((p * p).sum() for p in params)
        loss.backward()
        return loss

    for _ in range(rounds):
        opt.step(closure)


def _dense_top(model: nn.Module, loss_fn, x, y, wd: float, k: int) -> np.ndarray:
    """Top-k eigenvalues of the dense Hessian over the trainable parameters only (frozen ones
    and buffers held fixed), by ``torch.func.hessian`` — independent of the probe's Lanczos."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in trainable]
    shapes = [p.shape for _, p in trainable]
    sizes = [p.numel() for _, p in trainable]
    fixed = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    fixed.update({n: b for n, b in model.named_buffers()})

    def f(theta):
        parts = [t.reshape(s) for t, s in zip(torch.split(theta, sizes), shapes, strict=True)]
        out = torch.func.functional_call(
            model, {**dict(zip(names, parts, strict=True)), **fixed}, (x,)
        )
        return loss_fn(out, y) + 0.5 * wd * (theta * theta).sum()

    theta = torch.cat([p.detach().reshape(-1) for _, p in trainable])
    return torch.linalg.eigvalsh(torch.func.hessian(f)(theta)).flip(0)[:k].numpy()


@pytest.fixture(scope="module")
def digits_cnn():
    """A small CNN (conv 1→4 3×3, tanh, avg-pool, linear 36→10: 410 parameters) on 240
    scikit-learn digits reshaped to 1×8×8, at a minimum of cross-entropy + ½wd‖θ‖²."""
    from sklearn.datasets import load_digits

    d = load_digits()
    n = 240
    x = torch.tensor(d.data[:n] / 16.0, dtype=F64).reshape(n, 1, 8, 8)
    y = torch.tensor(d.target[:n])
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(36, 10)
    ).to(F64)
    wd = 1e-2
    _train(model, nn.CrossEntropyLoss(), x, y, wd)
    return model, nn.CrossEntropyLoss(), x, y, wd


def test_cnn_on_digits_matches_dense_hessian_for_every_data_form(digits_cnn):
    model, loss_fn, x, y, wd = digits_cnn
    dense = _dense_top(model, loss_fn, x, y, wd, 4)
    ok = {"lr": 0.1, "batch_size": 16, "k": 4, "weight_decay": wd}
    first = probe(model, loss_fn, (x, y), **ok)
    np.testing.assert_allclose(first.hessian_top.values, dense, rtol=1e-8)
    forms = (
        torch.utils.data.TensorDataset(x, y),
        [x, y],
        (x.numpy(), y.numpy()),
        Dataset("digits-images", x, y, 10),  # the public Dataset type
    )
    for data in forms:
        # a torch.device object (what a CUDA run passes) takes the same path as "cpu"
        r = probe(model, loss_fn, data, device=torch.device("cpu"), **ok)
        np.testing.assert_allclose(r.hessian_top.values, dense, rtol=1e-8)
        np.testing.assert_allclose(r.noise.sigma, first.noise.sigma, rtol=1e-8)


def test_float32_model_probed_in_float64_and_float32(digits_cnn):
    model, loss_fn, x, y, wd = digits_cnn
    model32 = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(36, 10)
    )
    model32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    ok = {"lr": 0.1, "batch_size": 16, "k": 3, "weight_decay": wd}
    dense = _dense_top(model, loss_fn, x, y, wd, 3)
    # the float32 parameters are the float64 minimum rounded: probed in float64 (default) its
    # top eigenvalues are the float64 model's to the rounding of θ (~1e-7 relative)
    r64 = probe(model32, loss_fn, (x.float(), y), **ok)
    np.testing.assert_allclose(r64.hessian_top.values, dense, rtol=1e-5)
    r32 = probe(model32, loss_fn, (x.float(), y), dtype=torch.float32, tol=1e-4, **ok)
    np.testing.assert_allclose(r32.hessian_top.values, dense, rtol=1e-3)
    assert all(p.dtype == torch.float32 for p in model32.parameters())


def test_frozen_parameter_held_fixed(digits_cnn):
    """A frozen (requires_grad=False) conv layer: the probe's θ is the trainable part only."""
    model, loss_fn, x, y, wd = digits_cnn
    frozen = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(36, 10)
    ).to(F64)
    frozen.load_state_dict(model.state_dict())
    for p in frozen[0].parameters():
        p.requires_grad_(False)
    _train(frozen, loss_fn, x, y, wd, rounds=2)
    r = probe(frozen, loss_fn, (x, y), lr=0.1, batch_size=16, k=3, weight_decay=wd)
    assert r.hessian_top.parameters == 370
    np.testing.assert_allclose(
        r.hessian_top.values, _dense_top(frozen, loss_fn, x, y, wd, 3), rtol=1e-8
    )
    with pytest.raises(ParameterError, match=r"^k: .*from 1 to 370 .*got 371$"):
        probe(frozen, loss_fn, (x, y), lr=0.1, batch_size=16, k=371, weight_decay=wd)


def test_batchnorm_model_comes_back_unchanged():
    """BatchNorm2d in a CNN: refused by default, probed in eval mode with mode='eval'; either
    way the user's parameters, buffers (running statistics, counter) and flags are unchanged."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(64, 1, 6, 6, generator=gen, dtype=F64)
    y = torch.randint(0, 3, (64,), generator=gen)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3)
    ).to(F64)
    model.train()
    model(x)  # move the running statistics off their initial values
    model.eval()
    _train(model, nn.CrossEntropyLoss(), x, y, 1e-2, rounds=3)
    model.train()
    model[3].eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]

    def unchanged() -> None:
        assert [m.training for m in model.modules()] == flags
        after = model.state_dict()
        assert after.keys() == state.keys()
        for key, value in state.items():
            assert after[key].dtype == value.dtype and torch.equal(after[key], value), key

    ok = {"lr": 0.1, "batch_size": 8, "k": 2, "weight_decay": 1e-2}
    with pytest.raises(ParameterError, match=r"^model: .*BatchNorm2d at '1'.*mode='eval'"):
        probe(model, nn.CrossEntropyLoss(), (x, y), **ok)
    unchanged()
    r = probe(model, nn.CrossEntropyLoss(), (x, y), mode="eval", **ok)
    unchanged()
    dense = _dense_top(model.eval(), nn.CrossEntropyLoss(), x, y, 1e-2, 2)
    np.testing.assert_allclose(r.hessian_top.values, dense, rtol=1e-8)


def _quadratic():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, generator=gen, dtype=F64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=F64) + 0.3 * torch.randn(
        60, generator=gen, dtype=F64
    )
    model = nn.Linear(3, 1, bias=False, dtype=F64)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y.unsqueeze(1)).solution.T)

    def mse(out, t):
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    return model, mse, x, y


def test_loss_with_sum_reduction_refused_and_k_at_parameter_count():
    model, mse, x, y = _quadratic()

    def mse_sum(out, t):
        return 0.5 * ((out.squeeze(-1) - t) ** 2).sum()

    with pytest.raises(ParameterError, match=r"^loss_fn: expected the mean"):
        probe(model, mse_sum, (x, y), lr=0.1, batch_size=8, k=2)
    with pytest.raises(ParameterError, match=r"^loss_fn: expected the mean"):
        probe(
            model,
            lambda o, t: nn.functional.mse_loss(o.squeeze(-1), t, reduction="sum"),
            (x, y),
            lr=0.1,
            batch_size=8,
            k=2,
        )
    # k = P is allowed and gives the whole spectrum of H = XᵀX/N
    r = probe(model, mse, (x, y), lr=0.1, batch_size=8, k=3)
    exact = torch.linalg.eigvalsh(x.T @ x / 60).flip(0).numpy()
    np.testing.assert_allclose(r.hessian_top.values, exact, rtol=1e-10)
    with pytest.raises(ParameterError, match=r"^k: expected an integer from 1 to 3 .*got 4$"):
        probe(model, mse, (x, y), lr=0.1, batch_size=8, k=4)


BAD = [
    ({"device": "cuda"}, "device")
    if not torch.cuda.is_available()
    else ({"device": "tpu"}, "device"),
    ({"dtype": "float64"}, "dtype"),
    ({"dtype": torch.int64}, "dtype"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"chunk_size": 2.5}, "chunk_size"),
    ({"tol": -1.0}, "tol"),
    ({"tol": float("nan")}, "tol"),
    ({"max_iter": 0}, "max_iter"),
    ({"zero_tol": float("nan")}, "zero_tol"),
    ({"zero_tol": -0.1}, "zero_tol"),
    ({"zero_tol": 1.0}, "zero_tol"),
    ({"lr": True}, "lr"),
    ({"weight_decay": "a"}, "weight_decay"),
    ({"measure": True, "replicas": 0}, "replicas"),
    ({"measure": True, "max_steps": 0}, "max_steps"),
    ({"measure": True, "check_every": 0}, "check_every"),
    ({"measure": True, "burn_in": -5}, "burn_in"),
    ({"measure": True, "burn_in": 50}, "burn_in"),  # = max_steps: no step at risk
    ({"measure": True, "target_escapes": 0}, "target_escapes"),
    ({"seed": "x"}, "seed"),
]


@pytest.mark.parametrize(
    ("change", "name"),
    BAD,
    ids=[f"{next(iter(c))}={c[next(iter(c))]!r}" if len(c) == 1 else name for c, name in BAD],
)
def test_bad_settings_name_the_parameter(change, name):
    model, mse, x, y = _quadratic()
    settings = {"lr": 0.1, "batch_size": 8, "k": 2, "max_steps": 50, **change}
    with pytest.raises(FlatMinimaError) as info:
        probe(model, mse, (x, y), **settings)
    message = str(info.value)
    assert message.startswith(f"{name}: expected "), message
    assert "\n" not in message


def test_bad_data_names_data():
    model, mse, x, y = _quadratic()
    ok = {"lr": 0.1, "batch_size": 8, "k": 2}
    bad_y = y.clone()
    bad_y[5] = float("nan")
    with pytest.raises(ParameterError, match=r"^data: expected finite targets"):
        probe(model, mse, (x, bad_y), **ok)
    # nn.MSELoss on output (n, 1) and targets (n,) broadcasts to n×n: named, with the shapes
    with pytest.raises(ParameterError, match=r"^loss_fn: .*shape \(8, 1\) and the targets \(8,\)"):
        probe(model, nn.MSELoss(), (x, y), **ok)
    with pytest.raises(ShapeError, match=r"^data: .*TensorDataset of 3 tensors"):
        probe(model, mse, torch.utils.data.TensorDataset(x, y, y), **ok)


def test_cli_factory_that_fails_is_one_line_naming_the_file(tmp_path):
    """A factory file with a syntax error, or a factory() that raises: one line naming
    FILE.py:factory with the exception and the line of the user's file, exit 2."""
    import subprocess
    import sys

    (tmp_path / "syntax.py").write_text("def make(:\n    pass\n")
    (tmp_path / "raises.py").write_text(
        "def make():\n    x = 1\n    raise RuntimeError('user bug')\n"
    )
    for file, where, what in (
        ("syntax.py", "syntax.py:1", "SyntaxError"),
        ("raises.py", "raises.py:3", "RuntimeError: user bug"),
    ):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "flatminima",
                "probe",
                f"{tmp_path / file}:make",
                "--lr",
                "0.1",
                "--batch-size",
                "8",
                "--out",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("flatminima:")]
        assert len(errors) == 1 and errors[0].startswith("flatminima: error: FILE.py:factory: ")
        assert what in errors[0] and where in errors[0], errors[0]
        assert not (tmp_path / "out").exists()  # nothing written for a run that never started


def test_noise_free_fit_does_not_hang_in_the_level_passage():
    """Targets exactly linear in the inputs: the per-sample gradients vanish up to rounding
    (Σ_ii ~ 1e-31), the measured-noise exponent is ~1e30, and the exact level passage
    (mfpt_1d quadrature) used to run for minutes; it is now skipped above LEVEL_MAX, with a
    note, and the κH prediction (which needs no measured noise) is unaffected."""
    import time

    from flatminima.validation._probe import LEVEL_MAX

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, generator=gen, dtype=F64)
    y = (x @ torch.tensor([1.0, -2.0, 0.5], dtype=F64)).unsqueeze(1)
    model = nn.Linear(3, 1, bias=False, dtype=F64)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T)
    start = time.perf_counter()
    r = probe(model, nn.MSELoss(), (x, y), lr=0.1, batch_size=8, k=2)
    assert time.perf_counter() - start < 60  # minutes before the fix; ~1 s after
    p = r.prediction
    assert np.all(p.exponent_measured > LEVEL_MAX)
    assert np.all(np.isnan(p.log_iterations_level)) and p.log_rate_level == -np.inf
    assert any("level passage not computed" in note for note in p.notes)
    # κH: exponent 2BΔL/(ηλ_1) = 10 at the default barrier (H = 2XᵀX/N for MSELoss)
    lam = torch.linalg.eigvalsh(2 * x.T @ x / 60).flip(0)[:2].numpy()
    np.testing.assert_allclose(r.hessian_top.values, lam, rtol=1e-10)
    np.testing.assert_allclose(p.exponent_kappa, 10 * lam[0] / lam, rtol=1e-10)
