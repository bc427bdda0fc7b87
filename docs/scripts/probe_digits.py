"""The validation record's ≥10⁵-parameter probe: a tanh MLP (64 → 1536 → 10, 115 210
parameters) on scikit-learn's digits (1797 samples), trained to a minimum of the cross-entropy
+ ½·10⁻⁴‖θ‖², then probed (top 20 eigenpairs, C vs H/B, predictions) and, with --measure, SGD
escapes measured with replicas.

Run: ``OMP_NUM_THREADS=1 python docs/scripts/probe_digits.py [--measure] [--out DIR]``
(writes probe_digits.json and the three figures; the trained weights are cached in DIR).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from flatminima.validation import probe

WD = 1e-4


def data() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return x, torch.tensor(d.target)


def trained(folder: Path) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 1536), nn.Tanh(), nn.Linear(1536, 10)).double()
    cache = folder / "digits_mlp.pt"
    if cache.exists():
        model.load_state_dict(torch.load(cache))
        return model
    x, y = data()
    loss_fn = nn.CrossEntropyLoss()

    def total() -> torch.Tensor:
        return loss_fn(model(x), y) + 0.5 * WD * sum((p * p).sum() for p in model.parameters())

    start = time.perf_counter()
    adam = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):  # full-batch Adam to the basin
        adam.zero_grad()
        loss = total()
        loss.backward()
        adam.step()
    print(f"adam: loss {float(loss):.6f}, {time.perf_counter() - start:.0f} s", flush=True)
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=50,
        tolerance_grad=1e-9,
        tolerance_change=0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = total()
        loss.backward()
        return loss

    for rnd in range(40):  # then L-BFGS to a small gradient
        loss = opt.step(closure).detach()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm()
        print(
            f"lbfgs round {rnd}: loss {float(loss):.8f}, |grad| {float(g):.2e}, "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        if g < 2e-5:
            break
    torch.save(model.state_dict(), cache)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="docs/figures/validation")
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--barrier", type=float, default=None)
    parser.add_argument("--max-steps", type=int, default=2000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = trained(out)
    x, y = data()
    start = time.perf_counter()
    r = probe(
        model,
        nn.CrossEntropyLoss(),
        (x, y),
        lr=0.1,
        batch_size=32,
        k=20,
        weight_decay=WD,
        chunk_size=128,
        measure=args.measure,
        barrier=args.barrier,
        replicas=32,
        max_steps=args.max_steps,
        check_every=20,
        burn_in=200,
        store=out / "probe_digits_stages",
        progress=lambda line: print(f"[{time.perf_counter() - start:6.0f} s] {line}", flush=True),
    )
    print(r)
    (out / "probe_digits.json").write_text(json.dumps(r.to_dict(), indent=1))
    for name, fig in r.figures().items():
        fig.savefig(out / f"probe_digits_{name}.png", dpi=100)


if __name__ == "__main__":
    main()
