"""``probe``: what the theory needs, measured at a user's trained network, and its predictions.

Given an ``nn.Module`` at (near) a minimum, a loss function and data, ``probe``

1. computes the top-k Hessian eigenpairs of L(θ) = loss_fn(model(x), y) + ½wd‖θ‖² by Lanczos
   with full reorthogonalisation on exact Hessian-vector products (the gradient of
   ``functional_call`` computed once with its graph, each product one backward pass through
   it), each with its residual ‖Hv − λv‖;
2. measures the gradient-noise covariance on that subspace from per-sample gradients
   (``vmap(grad)``, chunked): Σ = (1/N)Σ_n (g_n − ḡ)(g_n − ḡ)ᵀ (centred), and the covariance of
   the mean gradient of a minibatch of B samples drawn *without* replacement,
   C = Σ · (N − B)/((N − 1)B) (the finite-population factor; with replacement it would be Σ/B);
   it fits log Σ_ii against log λ_i in H's eigenbasis (the claim C ≈ H/B is slope 1, scale 1)
   and reports the per-direction ratios B·C_ii/λ_i;
3. predicts escape with the theory layer's formulas (``flatminima.numerics.escape_time``, no
   formula re-typed), twice: with the paper's noise D = κH (κ = η/2B) and with the measured
   noise (D_ii = ηC_ii/2, i.e. the same formula with an effective batch size B_i = λ_i/C_ii),
   plus white noise of the same mean strength for comparison, and how τ changes with B, η and
   sharpness; and with the full measured covariance (off-diagonal terms included) as the
   level passage of the k-dimensional harmonic valley (``_probe_valley``);
4. optionally (``measure=True``) runs real minibatch SGD from the minimum with many replicas at
   once (``vmap`` over stacked parameter vectors) and counts escapes by a stated criterion.

The valley model of the prediction. A probe sees only the minimum, so the escape along each
top eigen-direction v_i is modelled as a symmetric valley: curvature λ_i at the minimum, a saddle
of curvature −λ_i at barrier height ΔL on each side (±v_i), which gives the switch fraction
s = ½ and the SGD exponent ΔΦ_i = 2BΔL/(ηλ_i). Directions with λ_i ≤ ``zero_tol``·λ_1 (zero
modes from symmetries, or negative curvature) are projected out ([H]⁺): they have no
restoring force, so no escape time, and are reported, not refused. The escape rates of the
kept directions add (2 saddles each). For the SGD formula the n-dimensional result along an
eigen-direction equals the 1-D one (only H_ae and |H_be| enter), so each direction is evaluated
in 1-D; the white-noise determinant ratio is 1 in this model.

Because the measured criterion is a loss level, not a saddle, a second reference is given for
it: the exact mean first-passage time (``flatminima.numerics.mfpt_1d``) of the harmonic valley
½λ_i x² to the level ΔL, with the measured noise, reflecting at the minimum (|x| reaching
√(2ΔL/λ_i)). For a level crossing the prefactor differs from the saddle formula's (the
first-passage time of a harmonic well to a level is shorter than Kramers' time over a saddle of
the same height by about 2√(πΔΦ)), while the exponent is the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from flatminima.errors import ParameterError

from ._lanczos import lanczos_top
from ._persample import FunctionalModel
from ._probe_checks import _SETTINGS, _check_loss, _check_settings, _Checked, _StageKeys, _Text
from ._probe_measure import _every_ten_seconds, _measure, _Measured, _measurement, _subsets
from ._probe_predict import LEVEL_MAX, LEVEL_WINDOW, _fit_noise, _predict
from ._probe_results import EscapeMeasurement, HessianTop, NoiseFit, Prediction, ProbeResult

__all__ = ["EscapeMeasurement", "HessianTop", "NoiseFit", "Prediction", "ProbeResult", "probe"]
_REEXPORTED = (LEVEL_MAX, LEVEL_WINDOW, _subsets)  # kept importable from here (tests, benchmarks)


# ---------------------------------------------------------------------------------------------
# stages


_T = TypeVar("_T")


@dataclass(frozen=True)
class _HessianStage:
    """The stored Hessian stage: the top eigenpairs (values and residuals in float64, vectors
    on the CPU), the Lanczos steps, the seconds it took and whether vectors are kept."""

    values: np.ndarray
    residuals: np.ndarray
    vectors: torch.Tensor
    iterations: int
    seconds: float
    keep: bool


@dataclass(frozen=True)
class _NoiseStage:
    """The stored noise stage: Σ on the top subspace (float64) and the seconds it took."""

    sigma: np.ndarray
    seconds: float


def _fingerprint(fm: FunctionalModel, settings: _StageKeys) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    # parameters and data at float32 precision: a last-bit difference (a solver that is not
    # bit-reproducible between calls) must not invalidate the stored stages
    h.update(fm.theta0.detach().float().cpu().numpy().tobytes())
    h.update(np.asarray(fm.x.detach().float().cpu().numpy()).tobytes())
    return h.hexdigest()[:20]


class _Stages:
    """Finished stages on disk (``store`` folder): reused when the fingerprint matches."""

    def __init__(self, folder: str | Path | None, fingerprint: str) -> None:
        self.folder = None if folder is None else Path(folder)
        self.fingerprint = fingerprint
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def load(self, name: str, kind: type[_T]) -> _T | None:
        """The stored value of stage ``name`` if its fingerprint matches and it is a ``kind``
        (a stage stored by an older version in another form is recomputed)."""
        if self.folder is None:
            return None
        path = self.folder / f"stage-{name}.pt"
        if not path.exists():
            return None
        blob = torch.load(path, weights_only=False)
        value = blob.get("value") if blob.get("fingerprint") == self.fingerprint else None
        return value if isinstance(value, kind) else None

    def run(
        self,
        name: str,
        label: str,
        compute: Callable[[], _T],
        say: Callable[[str], None],
        kind: type[_T],
    ) -> _T:
        """The stored value of stage ``name``, or ``compute()`` saved (``label`` is said)."""
        say(label)
        value = self.load(name, kind)
        if value is None:
            value = compute()
            self.save(name, value)
        else:
            say(f"{label.split(':')[0]}: reused from the store")
        return value

    def save(self, name: str, value: object) -> None:
        if self.folder is None:
            return
        path = self.folder / f"stage-{name}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save({"fingerprint": self.fingerprint, "value": value}, tmp)
        tmp.replace(path)


def _reporting(
    matvec: Callable[[torch.Tensor], torch.Tensor], say: Callable[[str], None], limit: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``matvec`` that says every ~10 s how many products it made, at what pace, and the time
    left to the first Lanczos round's limit of ``limit`` products (an upper bound for it)."""

    def message(count: int, seconds: float) -> str:
        each = seconds / count
        return (
            f"hessian: {count} Hessian-vector products, {each:.2g} s each; first round "
            f"ETA ≤ {max(limit - count, 0) * each:.0f} s, deflation rounds after it are shorter"
        )

    return _every_ten_seconds(matvec, say, message)


def _hessian_stage(
    fm: FunctionalModel,
    k: int,
    tol: float,
    max_iter: int | None,
    seed: int,
    keep: bool,
    say: Callable[[str], None],
) -> _HessianStage:
    start = time.perf_counter()
    limit = min(fm.size, max(4 * k + 40, 120) if max_iter is None else max_iter)
    result = lanczos_top(
        _reporting(fm.hvp_operator(), say, limit),
        fm.size,
        k,
        dtype=fm.dtype,
        device=fm.device,
        tol=tol,
        max_iter=max_iter,
        seed=seed,
    )
    return _HessianStage(
        values=result.values.detach().cpu().double().numpy(),
        residuals=result.residuals.detach().cpu().double().numpy(),
        vectors=result.vectors.detach().cpu(),
        iterations=result.iterations,
        seconds=time.perf_counter() - start,
        keep=keep,
    )


def _noise_stage(fm: FunctionalModel, vectors: torch.Tensor) -> _NoiseStage:
    start = time.perf_counter()
    projected = fm.projected_sample_gradients(vectors.to(device=fm.device, dtype=fm.dtype))
    centred = projected - projected.mean(0, keepdim=True)
    sigma = (centred.T @ centred / fm.samples).detach().cpu().double().numpy()
    return _NoiseStage(sigma=sigma, seconds=time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# the public function


def probe(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    *,
    lr: float,
    batch_size: int,
    k: int = 20,
    device: str | torch.device = "cpu",
    measure: bool = False,
    barrier: float | None = None,
    weight_decay: float = 0.0,
    mode: str = "error",
    grad_tol: float = 1e-3,
    zero_tol: float = 1e-6,
    tol: float = 1e-6,
    max_iter: int | None = None,
    keep_vectors: bool = False,
    dtype: torch.dtype = torch.float64,
    chunk_size: int = 512,
    replicas: int = 64,
    max_steps: int = 20_000,
    check_every: int = 10,
    burn_in: int | None = None,
    target_escapes: int = 200,
    seed: int = 0,
    store: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProbeResult:
    r"""Probe a trained network: top Hessian eigenpairs, gradient noise, escape predictions and,
    with ``measure=True``, the escape rate of real minibatch SGD.

    Parameters
    ----------
    model
        An ``nn.Module`` at (near) a minimum of the loss. It is not modified: parameters and
        buffers are copied to ``device``/``dtype`` and used through ``functional_call``. Every
        module runs with ``training=False`` during the probe and gets its own flag back
        afterwards. A model with BatchNorm or dropout layers is refused (its loss is not a
        function of θ alone in training mode) unless ``mode="eval"``: then it is probed as in
        eval mode (dropout off, running statistics frozen).
    loss_fn
        ``loss_fn(model(x), y)`` → a scalar, the *mean* over the samples (e.g.
        ``nn.CrossEntropyLoss()``); a sum reduction is refused.
    data
        ``(x, y)`` tensors or arrays with the samples along axis 0, a ``TensorDataset`` of two
        tensors, or an object with ``.x`` and ``.y`` (the validation layer's ``Dataset``).
    lr, batch_size
        η and B of the SGD whose escape is predicted (and measured).
    k
        Number of top eigenpairs (1 ≤ k ≤ number of trainable parameters); default 20.
    device
        ``"cpu"`` (the default), ``"cuda"``, ``"cuda:N"``: every tensor of the probe lives
        there.
    measure
        Also run ``replicas`` SGD copies from the minimum and count escapes (criterion: the
        full-data loss exceeds L(a) + ΔL, checked every ``check_every`` iterations; escaped
        replicas restart at the minimum; counted after ``burn_in`` iterations, rounded down to
        a check, default min(5/(ηλ_k⁺), max_steps/5)). The run is the escape engine's
        (minibatches without replacement, level-set event, renewal counting); a replica that
        reaches NaN or inf is a ``DivergenceError`` naming ``lr``.
    barrier
        ΔL of the prediction and of the escape criterion. Default: the barrier at which the
        sharpest direction's SGD exponent 2BΔL/(ηλ_1) is 10.
    weight_decay
        Adds ½wd‖θ‖² to the loss (curvature wd in every direction, no noise); default 0.0.
    mode
        What a model with BatchNorm or dropout layers gets: ``"error"`` (the default) refuses
        it, ``"eval"`` probes it in eval mode (see ``model``).
    grad_tol
        Largest accepted ‖∇L(θ)‖: the theory is about a minimum. Default 1e-3.
    zero_tol
        Directions with λ_i ≤ zero_tol·λ_1 are projected out of the prediction ([H]⁺);
        0 ≤ zero_tol < 1, default 1e-6.
    tol, max_iter
        Lanczos stopping tolerance (relative residual bound, > 0; default 1e-6) and largest
        Krylov dimension (≥ k; None: min(P, max(4k + 40, 120)), P the parameter count).
    keep_vectors
        Keep the k eigenvectors (on the CPU) in ``hessian_top.vectors``.
    dtype
        Working precision, ``torch.float64`` (default, whatever the model's dtype) or
        ``torch.float32``.
    chunk_size, replicas, max_steps, check_every, target_escapes, burn_in, seed
        Samples per vmap chunk; the measurement's settings (positive integers,
        check_every ≤ max_steps, 0 ≤ burn_in < max_steps); the random seed (integer ≥ 0). Every setting is checked
        before anything is computed: a bad one is a one-line ``ParameterError`` naming it.
        Defaults: ``chunk_size=512``, ``replicas=64``, ``max_steps=20000``,
        ``check_every=10``, ``target_escapes=200``, ``burn_in`` as under ``measure``,
        ``seed=0``.
    store
        Folder for finished stages (Hessian, noise, measurement): a second call with the same
        model, data and settings reuses them.
    progress
        Called with one line of text at each stage (and every ~10 s while measuring).

    Returns
    -------
    ProbeResult
        ``hessian_top``, ``noise``, ``prediction``, ``measured``, ``to_dict()``, ``figures()``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.randn(200, 3, dtype=torch.float64)
    >>> y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * torch.randn(200, dtype=torch.float64)
    >>> model = nn.Linear(3, 1, dtype=torch.float64)
    >>> w = torch.linalg.lstsq(torch.cat([x, torch.ones(200, 1, dtype=torch.float64)], 1), y).solution
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(w[:3].reshape(1, 3)); _ = model.bias.copy_(w[3:])
    >>> r = probe(model, lambda out, t: ((out.squeeze(-1) - t) ** 2).mean(), (x, y),
    ...           lr=0.05, batch_size=16, k=4)
    >>> len(r.hessian_top.values), r.prediction.barrier > 0
    (4, True)
    """
    arguments = locals()  # probe's arguments alone: nothing else is bound yet
    c = _check_settings(model, loss_fn, data, **{name: arguments[name] for name in _SETTINGS})
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        return _probe_checked(model, loss_fn, c, keep_vectors, store, progress)
    finally:
        for m, flag in flags.items():
            m.training = flag


def _probe_checked(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    c: _Checked,
    keep_vectors: bool,
    store: str | Path | None,
    progress: Callable[[str], None] | None,
) -> ProbeResult:
    """``probe`` after its settings were checked (the model already in eval mode)."""
    say = progress or (lambda line: None)
    fm = FunctionalModel(
        model,
        loss_fn,
        c.x,
        c.y,
        dtype=c.dtype,
        device=c.device,
        weight_decay=c.weight_decay,
        chunk_size=c.chunk_size,
    )
    loss0, gnorm = _at_minimum(fm, c.grad_tol)
    stages = _Stages(store, _fingerprint(fm, c.fingerprint()))
    hs = stages.run(
        "hessian",
        f"hessian: top {c.k} eigenpairs of {c.parameters} parameters by Lanczos",
        lambda: _hessian_stage(fm, c.k, c.tol, c.max_iter, c.seed, keep_vectors, say),
        say,
        _HessianStage,
    )
    hess = _hessian_top(hs, c, loss0, gnorm, keep_vectors)
    ns = stages.run(
        "noise",
        f"noise: per-sample gradients of {c.samples} samples on the top-{c.k} subspace",
        lambda: _noise_stage(fm, hs.vectors),
        say,
        _NoiseStage,
    )
    fit = _fit_noise(hs.values, ns.sigma, c.batch_size, c.samples, c.weight_decay)
    fit = dataclasses.replace(fit, seconds=ns.seconds)
    say("prediction: escape_time on the top subspace (κH and measured noise)")
    pred = _predict(hs.values, fit, c.lr, c.batch_size, c.barrier, c.zero_tol, c.weight_decay)
    measured = _measure_stage(fm, c, pred, hs.values, stages, say, progress)
    return ProbeResult(hess, fit, pred, measured, c.settings(barrier=pred.barrier))


def _at_minimum(fm: FunctionalModel, grad_tol: float) -> tuple[float, float]:
    """L(θ) and ‖∇L(θ)‖ at the probed point, after checking the loss and that θ is a minimum."""
    _check_loss(fm)
    loss0 = float(fm.loss(fm.theta0))
    if not math.isfinite(loss0):
        raise ParameterError("model", "a finite loss at its parameters", loss0)
    gnorm = float(fm.gradient().norm())
    if gnorm > grad_tol:
        raise ParameterError(
            "model",
            f"parameters at a minimum of the loss (gradient norm ≤ grad_tol = {grad_tol:g})",
            _Text(f"gradient norm ‖∇L‖ = {gnorm:.3g}"),
            "train to convergence first, or raise grad_tol",
        )
    return loss0, gnorm


def _hessian_top(
    hs: _HessianStage, c: _Checked, loss0: float, gnorm: float, keep_vectors: bool
) -> HessianTop:
    return HessianTop(
        values=hs.values,
        residuals=hs.residuals,
        vectors=hs.vectors if keep_vectors else None,
        iterations=hs.iterations,
        parameters=c.parameters,
        samples=c.samples,
        loss=loss0,
        gradient_norm=gnorm,
        seconds=hs.seconds,
        method=(
            "Lanczos with full reorthogonalisation on exact Hessian-vector products "
            f"(autograd, gradient graph kept), {c.dtype}, tol {c.tol:g}"
        ),
    )


def _measure_stage(
    fm: FunctionalModel,
    c: _Checked,
    pred: Prediction,
    values: np.ndarray,
    stages: _Stages,
    say: Callable[[str], None],
    progress: Callable[[str], None] | None,
) -> EscapeMeasurement | None:
    """The replica measurement (``measure=True``), stored under a key of its settings."""
    if not c.measure:
        return None
    lam_low = float(values[pred.kept[-1]])
    burn = c.burn_in
    if burn is None:
        burn = int(min(math.ceil(5 / (c.lr * lam_low)), c.max_steps // 5))
    key = {
        "replicas": c.replicas,
        "max_steps": c.max_steps,
        "check_every": c.check_every,
        "burn_in": burn,
        "target": c.target_escapes,
        "lr": c.lr,
        "B": c.batch_size,
        "barrier": pred.barrier,
        "seed": c.seed,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    ms = stages.run(
        f"measure-{digest}",
        f"measure: {c.replicas} SGD replicas, up to {c.max_steps} iterations",
        lambda: _measure(
            fm,
            lr=c.lr,
            batch=c.batch_size,
            barrier=pred.barrier,
            replicas=c.replicas,
            max_steps=c.max_steps,
            check_every=c.check_every,
            burn_in=burn,
            target_escapes=c.target_escapes,
            seed=c.seed,
            progress=progress,
        ),
        say,
        _Measured,
    )
    return _measurement(ms, pred, c.replicas, burn, c.check_every)
