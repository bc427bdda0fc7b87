"""probe: eigenvalues against dense Hessians, noise against a per-sample loop, [H]⁺ on exact zero
modes, bad input, and a measured escape against the exact level-passage time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from flatminima.errors import FlatMinimaError, ParameterError, ShapeError
from flatminima.validation import probe

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models: one torch thread is faster than two fighting over 2 busy cores (a
    Hessian-vector product of the 207-parameter MLP took 0.3 ms with one, up to 0.5 s with two
    on the loaded machine); the previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(model: nn.Module, loss_fn, x, y, wd: float = 0.0, iters: int = 200) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=iters,
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

    for _ in range(5):
        opt.step(closure)


def _flat_loss(model: nn.Module, loss_fn, x, y, wd: float = 0.0):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def f(theta):
        parts = dict(
            zip(
                names,
                [t.reshape(s) for t, s in zip(torch.split(theta, sizes), shapes, strict=True)],
                strict=True,
            )
        )
        out = torch.func.functional_call(model, parts, (x,))
        return loss_fn(out, y) + 0.5 * wd * (theta * theta).sum()

    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return f, theta


@pytest.fixture(scope="module")
def wine_mlp():
    """A tanh MLP on scikit-learn's wine data (13 → 12 → 3: 207 parameters), at a minimum."""
    from sklearn.datasets import load_wine

    d = load_wine()
    x = torch.tensor(d.data, dtype=F64)
    x = (x - x.mean(0)) / x.std(0)
    y = torch.tensor(d.target)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(13, 12), nn.Tanh(), nn.Linear(12, 3)).to(F64)
    loss_fn = nn.CrossEntropyLoss()
    wd = 1e-2
    _train(model, loss_fn, x, y, wd=wd)
    return model, loss_fn, x, y, wd


def test_eigenvalues_match_dense_hessian(wine_mlp):
    model, loss_fn, x, y, wd = wine_mlp
    r = probe(
        model,
        loss_fn,
        (x, y),
        lr=0.1,
        batch_size=16,
        k=12,
        weight_decay=wd,
        keep_vectors=True,
        chunk_size=64,  # the loss and its Hessian-vector products in 3 chunks
    )
    f, theta = _flat_loss(model, loss_fn, x, y, wd)
    dense = torch.linalg.eigvalsh(torch.func.hessian(f)(theta)).flip(0)[:12].numpy()
    assert r.hessian_top.parameters == 207
    np.testing.assert_allclose(r.hessian_top.values, dense, rtol=1e-8, atol=1e-10 * dense[0])
    # residuals are true ‖Hv − λv‖ and small
    assert r.hessian_top.residuals.max() < 1e-5 * dense[0]
    v = r.hessian_top.vectors
    np.testing.assert_allclose((v.T @ v).numpy(), np.eye(12), atol=1e-10)


@pytest.mark.parametrize("limit", [10**9, 0], ids=["batched-columns", "column-loop"])
def test_noise_matches_per_sample_loop(wine_mlp, monkeypatch, limit):
    """C from the double-backward projection (both ways of taking the k columns) against
    per-sample gradients of a plain autograd loop, projected afterwards."""
    from flatminima.validation import _persample

    monkeypatch.setattr(_persample, "BATCHED_LIMIT", limit)
    model, loss_fn, x, y, wd = wine_mlp
    b = 16
    r = probe(
        model,
        loss_fn,
        (x, y),
        lr=0.1,
        batch_size=b,
        k=6,
        weight_decay=wd,
        keep_vectors=True,
        chunk_size=50,  # per-sample gradients in 4 chunks, the last one short
    )
    v = r.hessian_top.vectors
    rows = []
    for i in range(x.shape[0]):
        model.zero_grad()
        loss_fn(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    model.zero_grad()
    g = torch.stack(rows) @ v
    g = (g - g.mean(0)).numpy()
    n = x.shape[0]
    sigma = g.T @ g / n
    expected = sigma * (n - b) / ((n - 1) * b)
    np.testing.assert_allclose(r.noise.covariance, expected, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(r.noise.sigma, np.diag(sigma), rtol=1e-9)
    lam = r.hessian_top.values - wd
    np.testing.assert_allclose(r.noise.ratios, b * np.diag(expected) / lam, rtol=1e-9)


class _ScaleSymmetric(nn.Module):
    """f(x) = a · (w·x): (a, w) → (ca, w/c) leaves f unchanged, an exact zero mode."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.3], dtype=F64))
        self.w = nn.Parameter(torch.zeros(d, dtype=F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * (x @ self.w)


def _mse(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - t) ** 2).mean()


def test_zero_modes_are_projected_out_not_refused():
    gen = torch.Generator().manual_seed(3)
    d, n = 4, 300
    x = torch.randn(n, d, generator=gen, dtype=F64) @ torch.tensor(
        [[1.0, 0.4, 0, 0], [0, 1.0, 0.3, 0], [0, 0, 0.7, 0.2], [0, 0, 0, 0.5]], dtype=F64
    )
    y = x @ torch.tensor([1.0, -0.5, 0.8, 0.3], dtype=F64) + 0.5 * torch.randn(
        n, generator=gen, dtype=F64
    )
    model = _ScaleSymmetric(d)
    with torch.no_grad():  # the least-squares minimum on the a = 1.3 slice
        model.w.copy_(torch.linalg.lstsq(x, y.unsqueeze(1)).solution.squeeze(1) / 1.3)
    lr, b, barrier = 0.05, 8, 0.02
    r = probe(model, _mse, (x, y), lr=lr, batch_size=b, k=d + 1, barrier=barrier)
    f, theta = _flat_loss(model, _mse, x, y)
    dense = torch.linalg.eigvalsh(torch.func.hessian(f)(theta)).flip(0).numpy()
    assert abs(dense[-1]) < 1e-12 * dense[0]  # the reference has the exact zero mode
    np.testing.assert_allclose(r.hessian_top.values[:d], dense[:d], rtol=1e-8)
    assert r.prediction.zero_modes == [d] and r.prediction.kept == list(range(d))
    # exponents of the kept directions: 2BΔL/(ηλ_i) from the textbook form, λ from the dense H
    np.testing.assert_allclose(
        r.prediction.exponent_kappa[:d], 2 * b * barrier / (lr * dense[:d]), rtol=1e-8
    )
    assert math.isnan(r.prediction.exponent_kappa[d])
    assert math.isfinite(r.prediction.log_rate_kappa)
    assert any("projected out" in note for note in r.prediction.notes)
    d_json = r.to_dict()
    assert d_json["prediction"]["exponent_kappa"][d] is None


def _linear_problem():
    gen = torch.Generator().manual_seed(0)
    n = 400
    x = torch.randn(n, 2, generator=gen, dtype=F64) @ torch.tensor(
        [[1.0, 0.5], [0.0, 0.35]], dtype=F64
    )
    y = x @ torch.tensor([0.7, -1.2], dtype=F64) + torch.randn(n, generator=gen, dtype=F64)
    model = nn.Linear(2, 1, bias=False, dtype=F64)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y.unsqueeze(1)).solution.T)

    def loss_fn(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    return model, loss_fn, x, y


def test_measured_escape_against_level_passage():
    """Real minibatch SGD on a 2-parameter regression (correlated inputs, noise C measured at
    the minimum, which changes away from it): the escape rate to the loss level L(a) + ΔL
    against the exact first-passage time of the harmonic valley with the measured noise
    (mfpt_1d, a continuous-time SDE). At η = 0.1 and 0.05 (ΔL/η fixed, so the same exponent
    ≈ 4.8) discrete SGD escapes less often than the SDE, and the deficit shrinks as η halves."""
    model, loss_fn, x, y = _linear_problem()
    ratios = []
    for lr, barrier in ((0.1, 0.06), (0.05, 0.03)):
        r = probe(
            model,
            loss_fn,
            (x, y),
            lr=lr,
            batch_size=4,
            k=2,
            barrier=barrier,
            measure=True,
            replicas=1024,
            max_steps=6000,
            check_every=1,
            burn_in=200,
            target_escapes=400,
            seed=1,
        )
        m = r.measured
        assert m is not None and m.escapes >= 400
        assert 4 < r.prediction.exponent_measured[0] < 6
        # within a factor 1.6 of the exact level passage with the measured noise
        assert 1 / 1.6 < m.ratio_level < 1.6, r.to_dict()["measured"]
        # the saddle formula with the measured noise is for a saddle, not a level: its
        # prefactor is larger (2√(πΔΦ) ≈ 7.8 here), so measured escapes are far faster
        assert m.ratio_measured > 2.5
        # the full-C k-D level passage (C nearly diagonal here): faster than the 1-D exact
        # one (both directions reach the level; leading-order flux), within a factor 2
        assert 0.5 < m.ratio_full < m.ratio_level
        ratios.append(m.ratio_level)
    assert abs(1 - ratios[1]) < abs(1 - ratios[0])


def test_subsets_are_uniform_without_replacement():
    from scipy import stats

    from flatminima.validation._probe import _subsets

    s = _subsets(70000, 7, 3, torch.Generator().manual_seed(0), torch.device("cpu"))
    rows = s.tolist()
    assert all(len(set(r)) == 3 and min(r) >= 0 and max(r) < 7 for r in rows)
    counts: dict[tuple[int, ...], int] = {}
    for r in rows:
        key = tuple(sorted(r))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 35
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_result_is_json_safe_and_has_figures(wine_mlp):
    import json

    model, loss_fn, x, y, wd = wine_mlp
    r = probe(model, loss_fn, (x, y), lr=0.1, batch_size=16, k=3, weight_decay=wd)
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert "hessian_top" in text
    figs = r.figures()
    assert set(figs) == {"spectrum", "noise", "rates"}
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_input_errors(wine_mlp):
    model, loss_fn, x, y, wd = wine_mlp
    ok = {"lr": 0.1, "batch_size": 16, "weight_decay": wd}
    with pytest.raises(ParameterError, match=r"^loss_fn: expected a scalar"):
        probe(model, nn.CrossEntropyLoss(reduction="none"), (x, y), **ok)
    with pytest.raises(ParameterError, match=r"^loss_fn: expected the mean"):
        probe(model, nn.CrossEntropyLoss(reduction="sum"), (x, y), **ok)
    with pytest.raises(ShapeError, match=r"^data: .*x of shape \(178, 12\)"):
        probe(model, loss_fn, (x[:, :12], y), **ok)
    with pytest.raises(ShapeError, match=r"^data: .*same number of samples"):
        probe(model, loss_fn, (x, y[:100]), **ok)
    with pytest.raises(ParameterError, match=r"^k: expected an integer from 1 to 207"):
        probe(model, loss_fn, (x, y), k=208, **ok)
    with pytest.raises(ParameterError, match=r"^device: "):
        probe(model, loss_fn, (x, y), device="gpu", **ok)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match=r"^device: .*CUDA is not available"):
            probe(model, loss_fn, (x, y), device="cuda", **ok)
    with pytest.raises(ParameterError, match=r"^lr: "):
        probe(model, loss_fn, (x, y), lr=-1, batch_size=16)
    with pytest.raises(ParameterError, match=r"^batch_size: "):
        probe(model, loss_fn, (x, y), lr=0.1, batch_size=500)
    # without the weight decay it was trained with, θ is not a minimum: the gradient norm is named
    with pytest.raises(ParameterError, match=r"^model: expected .*minimum.*gradient norm ‖∇L‖ = "):
        probe(model, loss_fn, (x, y), lr=0.1, batch_size=16)
    for error in (ParameterError, ShapeError):
        assert issubclass(error, FlatMinimaError)


def test_batchnorm_and_dropout_refused_or_eval_and_mode_restored():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (64,), generator=gen)
    for layer in (nn.BatchNorm1d(5), nn.Dropout(0.2)):
        model = nn.Sequential(nn.Linear(3, 5), layer, nn.Tanh(), nn.Linear(5, 2)).to(F64)
        model.train()
        with pytest.raises(ParameterError, match=r"^model: .*BatchNorm or dropout.*mode='eval'"):
            probe(model, nn.CrossEntropyLoss(), (x, y), lr=0.1, batch_size=8)
        assert model.training and all(m.training for m in model.modules())
    # mode="eval": probed as in eval mode; a user's mix of flags is restored exactly
    model = nn.Sequential(nn.Linear(3, 5), nn.Dropout(0.2), nn.Tanh(), nn.Linear(5, 2)).to(F64)
    model.train()
    model[1].eval()
    flags = [m.training for m in model.modules()]
    model.eval()
    _train(model, nn.CrossEntropyLoss(), x, y, wd=1e-2)
    model.train()
    model[1].eval()
    r = probe(
        model,
        nn.CrossEntropyLoss(),
        (x, y),
        lr=0.1,
        batch_size=8,
        k=3,
        weight_decay=1e-2,
        mode="eval",
    )
    assert [m.training for m in model.modules()] == flags
    assert r.hessian_top.values[0] > 0
    # BatchNorm in mode="eval": its running statistics are frozen buffers; they stay untouched
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).to(F64)
    model.train()
    model(x)  # one training-mode pass moves the running statistics
    model.eval()
    _train(model, nn.CrossEntropyLoss(), x, y, wd=1e-2)
    model.train()
    stats = [b.clone() for b in model.buffers()]
    r = probe(
        model,
        nn.CrossEntropyLoss(),
        (x, y),
        lr=0.1,
        batch_size=8,
        k=3,
        weight_decay=1e-2,
        mode="eval",
    )
    assert model.training and all(
        torch.equal(a, b) for a, b in zip(stats, model.buffers(), strict=True)
    )
    f, theta = _flat_loss(model.eval(), nn.CrossEntropyLoss(), x, y, 1e-2)
    dense = torch.linalg.eigvalsh(torch.func.hessian(f)(theta)).flip(0)[:3].numpy()
    np.testing.assert_allclose(r.hessian_top.values, dense, rtol=1e-8)


def test_user_model_untouched(wine_mlp):
    model, loss_fn, x, y, wd = wine_mlp
    before = [p.detach().clone() for p in model.parameters()]
    dtype = next(model.parameters()).dtype
    probe(
        model,
        loss_fn,
        (x, y),
        lr=0.1,
        batch_size=16,
        k=2,
        weight_decay=wd,
        dtype=torch.float32,
        grad_tol=1e-2,
    )
    assert next(model.parameters()).dtype == dtype
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)


FACTORY = """
import torch
from torch import nn


def make():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=gen, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.5], [0.0, 0.35]], dtype=torch.float64)
    y = x @ torch.tensor([0.7, -1.2], dtype=torch.float64) + torch.randn(
        300, generator=gen, dtype=torch.float64)
    model = nn.Linear(2, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y.unsqueeze(1)).solution.T)
    return model, lambda out, t: 0.5 * ((out.squeeze(-1) - t) ** 2).mean(), (x, y)
"""


def test_cli_probe_writes_results_and_resumes(tmp_path, capsys):
    import json

    from flatminima.cli import main

    (tmp_path / "net.py").write_text(FACTORY)
    out = tmp_path / "out"
    argv = [
        "probe",
        f"{tmp_path / 'net.py'}:make",
        "--lr",
        "0.1",
        "--batch-size",
        "4",
        "--k",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "hessian: top 2 eigenpairs" in first.err and "probe: λ_1 = " in first.out
    for name in (
        "probe.json",
        "directions.csv",
        "index.html",
        "spectrum.png",
        "noise.png",
        "rates.png",
    ):
        assert (out / name).exists(), name
    data = json.loads((out / "probe.json").read_text())
    assert len(data["hessian_top"]["values"]) == 2
    assert len((out / "directions.csv").read_text().splitlines()) == 3
    assert main(argv) == 0  # the second run reuses the stored stages
    second = capsys.readouterr()
    assert "hessian: reused from the store" in second.err
    assert "noise: reused from the store" in second.err
    again = json.loads((out / "probe.json").read_text())["hessian_top"]
    assert again["values"] == data["hessian_top"]["values"]  # the stored stage, bit for bit
    # bad input: one line, exit status 2
    assert (
        main(
            [
                "probe",
                f"{tmp_path / 'missing.py'}:make",
                "--lr",
                "0.1",
                "--batch-size",
                "4",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("flatminima: error: FILE.py:factory: expected an existing Python file")
    assert (
        main(
            [
                "probe",
                f"{tmp_path / 'net.py'}:make",
                "--lr",
                "0.1",
                "--batch-size",
                "4",
                "--k",
                "9",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "k: expected an integer from 1 to 2" in capsys.readouterr().err


def test_docs_probe_page_runs_and_prints_what_it_says(tmp_path, monkeypatch):
    """docs/probe.md: both examples run and print what the page says (and save the figure)."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("_docs_checks", root / "tests" / "test_docs.py")
    assert spec is not None and spec.loader is not None
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    monkeypatch.chdir(tmp_path)
    assert docs.run_blocks(root / "docs" / "probe.md") >= 9
    assert (tmp_path / "probe_wine_noise.png").exists()


def test_lanczos_finds_repeated_eigenvalues_and_whole_spectrum():
    """One Lanczos run sees one vector per eigenspace; the deflation rounds must find every
    copy (a triple and a double eigenvalue here), and k = n must work on a rank-deficient H."""
    from flatminima.validation._lanczos import lanczos_top

    gen = torch.Generator().manual_seed(5)
    n = 60
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    spectrum = torch.cat(
        [
            torch.tensor([5.0, 5.0, 5.0, 4.0, 3.0, 3.0], dtype=F64),
            torch.rand(n - 6, generator=gen, dtype=F64) * 2.5 - 1.0,
        ]
    )
    h = q @ torch.diag(spectrum) @ q.T
    r = lanczos_top(lambda v: h @ v, n, 7, tol=1e-10)
    expected = torch.sort(spectrum, descending=True).values[:7]
    np.testing.assert_allclose(r.values.numpy(), expected.numpy(), atol=1e-9)
    assert float(r.residuals.max()) < 1e-8
    # rank 3 (exact zeros) and k = n: the whole spectrum
    low = q[:, :3] @ torch.diag(torch.tensor([2.0, 1.0, 0.5], dtype=F64)) @ q[:, :3].T
    r = lanczos_top(lambda v: low @ v, n, n, tol=1e-10)
    np.testing.assert_allclose(r.values[:3].numpy(), [2.0, 1.0, 0.5], atol=1e-10)
    assert float(r.values[3:].abs().max()) < 1e-10
    np.testing.assert_allclose((r.vectors.T @ r.vectors).numpy(), np.eye(n), atol=1e-8)


def test_measurement_without_escapes_is_an_upper_bound_and_json_safe():
    """No escape in a positive exposure: rate 0 with the exact upper bound 3.689/exposure
    (Garwood, 95 %), the ratios undefined (NaN → null in JSON). A horizon without steps at
    risk (burn_in ≥ max_steps) is refused before anything runs (test_probe_inputs)."""
    import json

    model, loss_fn, x, y = _linear_problem()
    r = probe(
        model,
        loss_fn,
        (x, y),
        lr=0.1,
        batch_size=4,
        k=2,
        barrier=0.06,
        measure=True,
        replicas=8,
        max_steps=10,
        check_every=5,
        burn_in=0,
    )
    m = r.measured
    assert m is not None and m.escapes == 0 and m.exposure == 80 and m.rate == 0
    assert m.rate_high == pytest.approx(-math.log(0.025) / 80, rel=1e-12)
    out = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert out["measured"]["ratio_kappa"] is None


class _Branching(nn.Module):
    """The same map as ``inner``, with a Python branch on a tensor's value (``.item()``): a
    forward ``torch.func.vmap`` cannot batch, common in research code."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if out.abs().max().item() > 1e12:  # never taken; vmap refuses .item() all the same
            out = out / out.abs().max()
        return out


def test_a_model_vmap_cannot_batch_is_probed_one_sample_at_a_time():
    """The noise stage and the replica measurement fall back to loops with one warning each,
    and give the numbers of the same model without the branch (which vmap batches)."""
    import copy

    model, loss_fn, x, y = _linear_problem()
    settings = dict(lr=0.1, batch_size=4, k=2, barrier=0.06, measure=True, replicas=16,
                    max_steps=300, check_every=1, burn_in=20, seed=3)  # fmt: skip
    plain = probe(model, loss_fn, (x, y), **settings)
    with pytest.warns(RuntimeWarning, match=r"^model: torch\.func\.vmap cannot batch") as seen:
        r = probe(_Branching(copy.deepcopy(model)), loss_fn, (x, y), **settings)
    said = {str(w.message).split(" (")[0] for w in seen if issubclass(w.category, RuntimeWarning)}
    assert said == {
        "model: torch.func.vmap cannot batch the per-sample losses",
        "model: torch.func.vmap cannot batch the replicas' gradients",
        "model: torch.func.vmap cannot batch the replicas' losses",
    }
    assert np.allclose(r.hessian_top.values, plain.hessian_top.values, rtol=1e-12)
    assert np.allclose(r.noise.covariance, plain.noise.covariance, rtol=1e-10, atol=0)
    assert r.measured is not None and plain.measured is not None
    assert r.measured.escapes == plain.measured.escapes > 0
    assert r.measured.exposure == plain.measured.exposure
