"""Cost of ``flatminima.validation.probe``: peers, growth with parameters, per-sample noise.

Three measurements, written as markdown tables to ``benchmarks/probe_cost.md``:

``peers``
    Top-20 Hessian eigenvalues of a tanh MLP trained on scikit-learn digits (1797 samples):
    ours (``lanczos_top`` on Hessian-vector products, the probe's Hessian stage) against
    hessian-eigenthings' ``lanczos`` and curvlinops' ``HessianLinearOperator`` +
    ``scipy.sparse.linalg.eigsh``, each at its best ordinary configuration, and (≤ 2000
    parameters) the dense ``torch.func.hessian`` + ``eigvalsh``. Same values to 1e-4 relative
    is checked against dense (small model) or across the three (large model).
``growth``
    Time and peak memory (resident set above the level before the stage) of the Hessian stage,
    the noise stage and the whole ``probe`` call for MLPs 32 → w → w → 10 of ~10³ … 10⁶
    parameters on synthetic data, each size in its own process.
``noise``
    C on the top-20 subspace: the projection of per-sample gradients before (``vmap(grad)``
    then a product with V) and after (double backward through the per-sample loss vector),
    against one batched gradient pass over the same chunks.

Run: ``.venv/bin/python benchmarks/probe_cost.py [--only peers growth noise] [--large]``
(one torch thread; ``--large`` adds the ≥ 10⁵-parameter peer comparison and the 10⁶ row).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "probe_cost.md"
K = 20


def _best(fn: Callable[[], Any], repeats: int = 2) -> tuple[float, Any]:
    """Least CPU time of the process over ``repeats`` calls (wall-clock time on a machine
    shared by many jobs measures the others), and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


class _PeakRSS:
    """Samples the process's resident set every 5 ms in a thread; ``peak_since(t)``."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.samples: list[tuple[float, int]] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            self.samples.append((time.perf_counter(), self.proc.memory_info().rss))
            time.sleep(0.005)

    def peak(self, start: float, end: float) -> int:
        inside = [r for t, r in self.samples if start <= t <= end]
        return max(inside) if inside else self.proc.memory_info().rss

    def at(self, when: float) -> int:
        before = [r for t, r in self.samples if t <= when]
        return before[-1] if before else self.proc.memory_info().rss


# ---------------------------------------------------------------------------------------------
# peers


def _digits_mlp(hidden: int) -> tuple[Any, Any, Any, Any]:
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    y = torch.tensor(d.target)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10)
    ).double()
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.LBFGS(
        model.parameters(), max_iter=100, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), y) + 5e-4 * sum((p * p).sum() for p in model.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return model, loss_fn, x, y


def _ours(model: Any, loss_fn: Any, x: Any, y: Any) -> Callable[[], Any]:
    import torch

    from flatminima.validation._lanczos import lanczos_top
    from flatminima.validation._persample import FunctionalModel

    def run() -> Any:
        fm = FunctionalModel(
            model, loss_fn, x, y, dtype=torch.float64, device=torch.device("cpu"), chunk_size=2048
        )
        r = lanczos_top(fm.hvp_operator(), fm.size, K, tol=1e-6)
        return r.values.numpy(), f"{r.iterations} products"

    return run


def _eigenthings(model: Any, loss_fn: Any, x: Any, y: Any) -> tuple[Callable[[], Any], str]:
    import hessian_eigenthings as he

    def loss(module: Any, batch: Any) -> Any:
        return loss_fn(module(batch[0]), batch[1])

    op = he.HessianOperator(model, [(x, y)], loss)
    # its best ordinary configuration: full reorthogonalisation, largest algebraic, the Krylov
    # dimension doubled from its default 2k until its own residual test passes at tol 1e-6
    steps = 2 * K
    while True:
        r = he.lanczos(op, k=K, max_iter=steps, tol=1e-6, reorthogonalize=True, which="LA", seed=0)
        if bool(r.converged.all()) or steps >= 320:
            break
        steps *= 2

    def run() -> Any:
        op2 = he.HessianOperator(model, [(x, y)], loss)
        res = he.lanczos(
            op2, k=K, max_iter=steps, tol=1e-6, reorthogonalize=True, which="LA", seed=0
        )
        return res.eigenvalues.detach().numpy(), f"{steps} products"

    return run, f"lanczos(max_iter={steps}, reorthogonalize=True, which='LA')"


def _curvlinops(model: Any, loss_fn: Any, x: Any, y: Any) -> Callable[[], Any]:
    import numpy as np
    from curvlinops import HessianLinearOperator
    from scipy.sparse.linalg import eigsh

    params = [p for p in model.parameters() if p.requires_grad]

    def run() -> Any:
        op = HessianLinearOperator(
            model, loss_fn, params, [(x, y)], check_deterministic=False
        ).to_scipy()
        counter = {"n": 0}
        from scipy.sparse.linalg import LinearOperator

        def mv(v: Any) -> Any:
            counter["n"] += 1
            return op @ v

        wrapped = LinearOperator(op.shape, matvec=mv, dtype=np.float64)
        values = eigsh(wrapped, k=K, which="LA", tol=1e-6, return_eigenvectors=False)
        return np.sort(values)[::-1], f"{counter['n']} products"

    return run


def _dense(model: Any, loss_fn: Any, x: Any, y: Any) -> Callable[[], Any]:
    import torch

    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(t: Any) -> Any:
        pieces = (s.reshape(h) for s, h in zip(torch.split(t, sizes), shapes, strict=True))
        parts = dict(zip(names, pieces, strict=True))
        return loss_fn(torch.func.functional_call(model, parts, (x,)), y)

    def dense() -> Any:
        h = torch.func.hessian(loss)(theta)
        return torch.linalg.eigvalsh(0.5 * (h + h.T)).flip(0)[:K].numpy(), "dense"

    return dense


def bench_peers(large: bool) -> list[str]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    lines = [
        "## Top-20 Hessian eigenvalues against the peers (digits, 1797 samples)",
        "",
        "| model | method | CPU time | work | largest relative difference | same to 1e-4 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for hidden in (16, 1500) if large else (16,):
        model, loss_fn, x, y = _digits_mlp(hidden)
        size = sum(p.numel() for p in model.parameters())
        runs: dict[str, tuple[float, Any, str]] = {}
        repeats = 2 if size <= 10_000 else 1
        t, (values, work) = _best(_ours(model, loss_fn, x, y), repeats)
        runs["ours: lanczos_top, tol 1e-6 (deflation rounds)"] = (t, values, work)
        try:
            fn, config = _eigenthings(model, loss_fn, x, y)
            t, (values, work) = _best(fn, repeats)
            runs[f"hessian-eigenthings {config}"] = (t, values, work)
        except ImportError:
            lines.append(f"| {size} | hessian-eigenthings | not installed | | | |")
        try:
            t, (values, work) = _best(_curvlinops(model, loss_fn, x, y), repeats)
            runs["curvlinops HessianLinearOperator + scipy eigsh(which='LA', tol=1e-6)"] = (
                t,
                values,
                work,
            )
        except ImportError:
            lines.append(f"| {size} | curvlinops | not installed | | | |")
        if size <= 2000:
            dense = _dense(model, loss_fn, x, y)
            t, (reference, _) = _best(dense)
            runs["dense torch.func.hessian + eigvalsh (reference)"] = (t, reference, "P² entries")
        else:
            reference = next(iter(runs.values()))[1]
        for name, (t, values, work) in runs.items():
            rel = float(np.max(np.abs(values - reference) / np.abs(reference)))
            lines.append(
                f"| {size} | {name} | {t:.2f} s | {work} | {rel:.1e} | "
                f"{'yes' if rel < 1e-4 else '**no**'} |"
            )
        print("\n".join(lines[-len(runs) :]), flush=True)
    reference_note = (
        "Reference: dense eigenvalues where P ≤ 2000, else ours (the three must agree)."
    )
    return [*lines, "", reference_note, ""]


# ---------------------------------------------------------------------------------------------
# growth with parameters (each size in its own process)


def _growth_model(width: int, samples: int) -> tuple[Any, Any, Any]:
    """An MLP 32 → width → width → 10 at its initialisation, and synthetic data labelled by a
    small random teacher network."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(samples, 32, dtype=torch.float64)
    teacher = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
    y = teacher.double()(x).argmax(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 10),
    ).double()
    return model, x, y


def _growth_one(width: int, samples: int) -> dict[str, Any]:
    """One probe of ``_growth_model``, with its stage times and peak resident memory (run in a
    fresh process)."""
    import torch

    from flatminima.validation import probe

    model, x, y = _growth_model(width, samples)
    mem = _PeakRSS()
    marks: list[tuple[float, str]] = []

    def progress(line: str) -> None:  # the first line of each stage marks its start
        name = line.split(":")[0]
        if name not in cpu:
            marks.append((time.perf_counter(), name))
            cpu[name] = time.process_time()

    cpu: dict[str, float] = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    r = probe(
        model,
        torch.nn.CrossEntropyLoss(),
        (x, y),
        lr=0.05,
        batch_size=32,
        k=K,
        grad_tol=1e12,  # cost does not need a minimum; the model is at its initialisation
        chunk_size=samples,
        progress=progress,
    )
    end, cpu_end = time.perf_counter(), time.process_time()
    time.sleep(0.02)
    mem.stop = True
    bounds = {name: t for t, name in marks}
    base = mem.at(start)
    hess_peak = mem.peak(bounds["hessian"], bounds["noise"]) - mem.at(bounds["hessian"])
    noise_peak = max(mem.peak(bounds["noise"], bounds["prediction"]) - mem.at(bounds["noise"]), 0)
    return {
        "parameters": r.hessian_top.parameters,
        "samples": samples,
        "products": r.hessian_top.iterations,
        "hessian_s": r.hessian_top.seconds,
        "noise_s": r.noise.seconds,
        "probe_s": end - start,
        "hessian_cpu": cpu["noise"] - cpu["hessian"],
        "noise_cpu": cpu["prediction"] - cpu["noise"],
        "probe_cpu": cpu_end - cpu_start,
        "hessian_mb": hess_peak / 2**20,
        "noise_mb": noise_peak / 2**20,
        "probe_mb": (mem.peak(start, end) - base) / 2**20,
    }


def _growth_parts(width: int, samples: int) -> dict[str, Any]:
    """For a model too large to probe here in minutes: the cost of one Hessian-vector product,
    of the reorthogonalisation at half the Krylov limit, and the whole noise stage (k = 20
    random orthonormal directions), measured; the Hessian stage is extrapolated from them."""
    import torch

    from flatminima.validation._persample import FunctionalModel

    model, x, y = _growth_model(width, samples)
    fm = FunctionalModel(
        model,
        torch.nn.CrossEntropyLoss(),
        x,
        y,
        dtype=torch.float64,
        device=torch.device("cpu"),
        chunk_size=samples,
    )
    mem = _PeakRSS()
    t0, c0 = time.perf_counter(), time.process_time()
    hvp = fm.hvp_operator()
    v = torch.randn(fm.size, dtype=torch.float64)
    for _ in range(5):
        v = hvp(v)
        v = v / v.norm()
    t1, c1 = time.perf_counter(), time.process_time()
    graph_peak = mem.peak(t0, t1) - mem.at(t0)
    basis = torch.randn(60, fm.size, dtype=torch.float64)
    c2 = time.process_time()
    for _ in range(2):
        v = v - basis.T @ (basis @ v)
    reorth = time.process_time() - c2
    del basis
    generator = torch.Generator().manual_seed(0)
    directions = torch.linalg.qr(torch.randn(fm.size, K, dtype=torch.float64, generator=generator))[
        0
    ]
    t3, c3 = time.perf_counter(), time.process_time()
    fm.projected_sample_gradients(directions)
    t4, c4 = time.perf_counter(), time.process_time()
    time.sleep(0.02)
    mem.stop = True
    return {
        "parameters": fm.size,
        "product_cpu": (c1 - c0) / 5,
        "product_wall": (t1 - t0) / 5,
        "reorth_cpu": reorth,
        "graph_mb": graph_peak / 2**20,
        "noise_cpu": c4 - c3,
        "noise_s": t4 - t3,
        "noise_mb": max(mem.peak(t3, t4) - mem.at(t3), 0) / 2**20,  # < 0: freed at start
    }


def _run_self(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_growth(large: bool) -> list[str]:
    widths = [20, 85, 300]
    lines = [
        "## How the cost grows with parameters (MLP 32 → w → w → 10, 512 synthetic samples, "
        "k = 20, one thread)",
        "",
        "| parameters | Hessian-vector products | Hessian stage: CPU (wall) | its peak memory "
        "| noise stage: CPU (wall) | its peak memory | whole probe: CPU (wall) | its peak memory |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in widths:
        g = _run_self("--growth-one", str(w), "512")
        lines.append(
            f"| {g['parameters']} | {g['products']} | {g['hessian_cpu']:.2f} s "
            f"({g['hessian_s']:.2f} s) | {g['hessian_mb']:.0f} MB | {g['noise_cpu']:.2f} s "
            f"({g['noise_s']:.2f} s) | {g['noise_mb']:.0f} MB | {g['probe_cpu']:.2f} s "
            f"({g['probe_s']:.2f} s) | {g['probe_mb']:.0f} MB |"
        )
        print(lines[-1], flush=True)
    if large:
        lines += _extrapolated_row(g["products"])
    return [*lines, ""]


def _extrapolated_row(products: int) -> list[str]:
    """The 10⁶-parameter row: measured parts, the Hessian stage extrapolated."""
    p = _run_self("--growth-parts", "1000", "512")
    hessian = products * (p["product_cpu"] + p["reorth_cpu"])
    basis_mb = 120 * p["parameters"] * 8 / 2**20
    row = (
        f"| {p['parameters']} | ({products}, as above) | **≈ {hessian:.0f} s extrapolated** "
        f"({p['product_cpu']:.2f} s CPU per product + {p['reorth_cpu']:.2f} s "
        f"reorthogonalisation, measured) | ≈ {p['graph_mb'] + basis_mb:.0f} MB (graph "
        f"{p['graph_mb']:.0f} MB measured + Krylov basis 120 × P × 8 bytes) | "
        f"{p['noise_cpu']:.2f} s ({p['noise_s']:.2f} s), measured | {p['noise_mb']:.0f} MB "
        "| ≈ Hessian + noise | ≈ Hessian stage |"
    )
    print(row, flush=True)
    return [row]


# ---------------------------------------------------------------------------------------------
# per-sample noise: before and after


def _vmap_projection(fm: Any, basis: Any) -> Any:
    """The previous method: vmap(grad) per chunk (chunk × P gradients), then G V."""
    import torch

    per_sample = torch.func.vmap(torch.func.grad(fm.per_sample_loss), in_dims=(None, 0, 0))
    rows = []
    for start in range(0, fm.samples, fm.chunk_size):
        g = per_sample(
            fm.theta0, fm.x[start : start + fm.chunk_size], fm.y[start : start + fm.chunk_size]
        )
        rows.append(g @ basis)
    return torch.cat(rows)


def _vmap_gradients(fm: Any) -> Any:
    """Per-sample gradients alone, batched: vmap(grad) per chunk, nothing projected or kept."""
    import torch

    per_sample = torch.func.vmap(torch.func.grad(fm.per_sample_loss), in_dims=(None, 0, 0))
    for start in range(0, fm.samples, fm.chunk_size):
        end = start + fm.chunk_size
        per_sample(fm.theta0, fm.x[start:end], fm.y[start:end])


def bench_noise(large: bool) -> list[str]:
    import torch

    from flatminima.validation._persample import FunctionalModel

    torch.set_num_threads(1)
    lines = [
        "## C on the top-20 subspace: per-sample gradient projection (digits, 1797 samples)",
        "",
        "| parameters | chunk | one batched gradient pass (CPU) | per-sample gradients alone: "
        "vmap(grad) | before: vmap(grad) then G·V | after: double backward "
        "| after / gradient pass | after / per-sample gradients | largest difference |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for hidden in (28, 1500) if large else (28,):
        model, loss_fn, x, y = _digits_mlp(hidden)
        for chunk in (512, 2048):
            fm = FunctionalModel(
                model,
                loss_fn,
                x,
                y,
                dtype=torch.float64,
                device=torch.device("cpu"),
                chunk_size=chunk,
            )
            basis = torch.linalg.qr(
                torch.randn(
                    fm.size, K, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
                )
            )[0]

            def gradient_pass(fm: Any = fm) -> Any:
                return [
                    torch.func.grad(fm.data_loss)(
                        fm.theta0, fm.x[s : s + fm.chunk_size], fm.y[s : s + fm.chunk_size]
                    )
                    for s in range(0, fm.samples, fm.chunk_size)
                ]

            t_grad, _ = _best(gradient_pass, 3)
            t_vmap, _ = _best(lambda fm=fm: _vmap_gradients(fm), 3)
            t_before, before = _best(lambda fm=fm, basis=basis: _vmap_projection(fm, basis), 3)
            t_after, after = _best(
                lambda fm=fm, basis=basis: fm.projected_sample_gradients(basis), 3
            )
            diff = float((before - after).abs().max())
            lines.append(
                f"| {fm.size} | {chunk} | {t_grad * 1e3:.0f} ms | {t_vmap * 1e3:.0f} ms "
                f"({t_vmap / t_grad:.1f}×) | {t_before * 1e3:.0f} ms "
                f"({t_before / t_grad:.1f}×) | {t_after * 1e3:.0f} ms | {t_after / t_grad:.1f}× "
                f"| {t_after / t_vmap:.2f}× | {diff:.1e} |"
            )
            print(lines[-1], flush=True)
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=["peers", "growth", "noise"])
    parser.add_argument("--large", action="store_true", help="≥ 10⁵-parameter rows, 10⁶ row")
    parser.add_argument("--growth-one", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--growth-parts", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.growth_one:
        print(json.dumps(_growth_one(*args.growth_one)))
        return 0
    if args.growth_parts:
        print(json.dumps(_growth_parts(*args.growth_parts)))
        return 0
    benches = {"peers": bench_peers, "growth": bench_growth, "noise": bench_noise}
    sections_file = HERE / "probe_cost.json"
    sections = json.loads(sections_file.read_text()) if sections_file.exists() else {}
    for name, bench in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        lines = bench(args.large)
        command = f"benchmarks/probe_cost.py --only {name}{' --large' if args.large else ''}"
        lines.append(
            f"Measured by `{command}` in {time.perf_counter() - start:.0f} s on "
            f"{time.strftime('%Y-%m-%d')}.\n"
        )
        sections[name] = lines
        sections_file.write_text(json.dumps(sections, indent=1, ensure_ascii=False))
    out = [
        "# Probe cost",
        "",
        "One torch thread on a loaded 2-core machine. Times are CPU seconds of the process "
        "(wall-clock time, in brackets where shown, counts the other jobs on the machine).",
        "",
    ]
    for name in benches:
        out += sections.get(name, [])
    OUT.write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
