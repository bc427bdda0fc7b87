"""`flatminima evaluate` on Hessians past the old code-generation limit (dimension 98 raised
Python's "too many nested parentheses" from the generated code and printed a traceback)."""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest

from flatminima.cli import main


@pytest.mark.parametrize("noise", ["white", "sgd"])
def test_evaluate_98_dimensional_npy_files(tmp_path, capsys, noise: str) -> None:
    n = 98
    rng = np.random.default_rng(98)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))  # a random rotation: nothing is diagonal
    lam_a = rng.uniform(0.5, 4.0, n)
    lam_b = rng.uniform(0.5, 4.0, n)
    lam_b[0] = -1.5  # the escape direction q[:, 0] is shared (the aligned formulas apply)
    hess_a, hess_b = q @ np.diag(lam_a) @ q.T, q @ np.diag(lam_b) @ q.T
    np.save(tmp_path / "ha.npy", (hess_a + hess_a.T) / 2)
    np.save(tmp_path / "hb.npy", (hess_b + hess_b.T) / 2)
    args = ["evaluate", noise, "--hess-min", str(tmp_path / "ha.npy")]
    args += ["--hess-saddle", str(tmp_path / "hb.npy"), "--barrier", "0.5", "--dps", "20"]
    if noise == "white":
        args += ["--diffusion", "0.025"]
        # Eyring–Kramers written out from the eigenvalues (independent of the derivation)
        expected = (
            np.log(2 * np.pi / 1.5)
            + 0.5 * (np.sum(np.log(np.abs(lam_b))) - np.sum(np.log(lam_a)))
            + 0.5 / 0.025
        )
    else:
        args += ["--lr", "0.1", "--batch-size", "16", "--s", "0.4", "--interpretation", "anti-ito"]
        # the paper's SGD form: (2π/|H_be|) exp[(2BΔL/η)(s/H_ae + (1 − s)/|H_be|)]
        expected = np.log(2 * np.pi / 1.5) + 2 * 16 * 0.5 / 0.1 * (0.4 / lam_a[0] + 0.6 / 1.5)
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert float(mpmath.mpf(data["log_tau"])) == pytest.approx(expected, rel=1e-10)
