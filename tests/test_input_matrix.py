"""The input-validation matrix: malformed input to every public function and command gives a
FlatMinimaError (a ValueError) naming the parameter — the command line: one line, exit 2, no
traceback. One row per case; the layers' own tests check the same errors in context."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from flatminima.errors import FlatMinimaError
from flatminima.numerics import (
    escape_time,
    log_escape_time,
    mfpt_1d,
    mfpt_2d,
    simulate_escape,
    splitting_probability,
)
from flatminima.theory import (
    derive_escape_time,
    derive_occupation_ratio,
    derive_selection_ratio,
    scaling_law,
)
from flatminima.validation import (
    landscape,
    load_dataset,
    make_executor,
    make_model,
    measure_rate,
    probe,
    run_experiment,
)
from flatminima.validation._hessian import top_hessian_eigenvalue

x = sp.Symbol("x")
WELL = x**4 / 4 - x**2 / 2
SGD = {
    "hess_min": [[2, 0], [0, 5]],
    "hess_saddle": [[-1, 0], [0, 3]],
    "barrier": 1,
    "lr": "0.1",
    "batch_size": 8,
    "s": "0.5",
}


def sgd(**change):
    return escape_time("sgd", **{**SGD, **change})


def _probe(data=None, loss_fn=None, **change):
    """probe on least squares at its exact minimum (3 parameters), one setting changed."""
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    ys = xs @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + torch.randn(
        40, generator=gen, dtype=torch.float64
    )
    model = torch.nn.Linear(3, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(xs, ys.unsqueeze(1)).solution.T)

    def mse(out, t):
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    settings = {"lr": 0.1, "batch_size": 8, "k": 2, **change}
    return probe(model, loss_fn or mse, (xs, ys) if data is None else data, **settings)


CASES = [
    # theory
    ("unknown noise", lambda: derive_escape_time("levy"), "noise"),
    ("dimension 0", lambda: derive_escape_time("white", dim=0), "dim"),
    ("dimension 2.5", lambda: derive_escape_time("white", dim=2.5), "dim"),
    ("alpha above 1", lambda: derive_escape_time("sgd", interpretation=1.2), "interpretation"),
    ("alpha below 0", lambda: derive_escape_time("sgd", interpretation=-0.5), "interpretation"),
    ("alpha nan", lambda: derive_escape_time("sgd", interpretation=math.nan), "interpretation"),
    (
        "unknown interpretation",
        lambda: derive_escape_time("sgd", interpretation="ito-ish"),
        "interpretation",
    ),
    ("saddles 0", lambda: derive_escape_time("white", saddles=0), "saddles"),
    (
        "scaling wrt unknown",
        lambda: scaling_law(derive_escape_time("white"), wrt="temperature"),
        "wrt",
    ),
    ("scaling of a non-derivation", lambda: scaling_law(42, wrt="sharpness"), "derivation"),  # type: ignore[arg-type]
    ("occupation ratio bad noise", lambda: derive_occupation_ratio("pink"), "noise"),
    ("selection ratio bad dim", lambda: derive_selection_ratio("sgd", dim=-1), "dim"),
    ("compile unknown backend", lambda: derive_escape_time("white").compile("jax"), "backend"),
    (
        "compiled call missing a value",
        lambda: derive_escape_time("white").compile("mpmath").tau(H_a=1, H_b=1, Delta_L=1),
        "D",
    ),
    # escape_time
    ("minimum not positive definite", lambda: sgd(hess_min=[[-2, 0], [0, 5]]), "hess_min"),
    ("minimum singular", lambda: sgd(hess_min=[[0, 0], [0, 5]]), "hess_min"),
    (
        "saddle without a negative eigenvalue",
        lambda: sgd(hess_saddle=[[1, 0], [0, 3]]),
        "hess_saddle",
    ),
    (
        "saddle with two negative eigenvalues",
        lambda: sgd(hess_saddle=[[-1, 0], [0, -3]]),
        "hess_saddle",
    ),
    ("saddle with a zero eigenvalue", lambda: sgd(hess_saddle=[[-1, 0], [0, 0]]), "hess_saddle"),
    ("non-symmetric matrix", lambda: sgd(hess_min=[[2, 1], [0, 5]]), "hess_min"),
    ("non-finite matrix", lambda: sgd(hess_min=[[math.inf, 0], [0, 5]]), "hess_min"),
    ("shape mismatch", lambda: sgd(hess_saddle=[[-1]]), "hess_saddle"),
    ("ragged rows", lambda: sgd(hess_min=[[2, 0], [0]]), "hess_min"),
    ("3-D array", lambda: sgd(hess_min=np.zeros((2, 2, 2))), "hess_min"),
    ("lr zero", lambda: sgd(lr=0), "lr"),
    ("lr negative", lambda: sgd(lr=-0.1), "lr"),
    ("lr nan", lambda: sgd(lr=math.nan), "lr"),
    ("batch size zero", lambda: sgd(batch_size=0), "batch_size"),
    ("barrier negative", lambda: sgd(barrier=-1), "barrier"),
    ("barrier infinite", lambda: sgd(barrier=math.inf), "barrier"),
    ("s equal to 1", lambda: sgd(s=1), "s"),
    ("s missing", lambda: sgd(s=None), "s"),
    ("diffusion given to SGD", lambda: sgd(diffusion=0.1), "diffusion"),
    (
        "white diffusion zero",
        lambda: escape_time("white", hess_min=2, hess_saddle=-1, barrier=1, diffusion=0),
        "diffusion",
    ),
    ("dps too low", lambda: sgd(dps=8), "dps"),
    ("dps not an integer", lambda: sgd(dps=30.0), "dps"),
    ("symbolic alpha in numerics", lambda: sgd(interpretation="alpha"), "interpretation"),
    (
        "loss-dependent saddle below minimum",
        lambda: escape_time(
            "loss-dependent",
            hess_min=2,
            hess_saddle=-1,
            lr=1,
            batch_size=1,
            h_star=1,
            loss_min="0.5",
            loss_saddle="0.2",
        ),
        "loss_saddle",
    ),
    (
        "loss-dependent zero loss",
        lambda: escape_time(
            "loss-dependent",
            hess_min=2,
            hess_saddle=-1,
            lr=1,
            batch_size=1,
            h_star=1,
            loss_min=0,
            loss_saddle=1,
        ),
        "loss_min",
    ),
    (
        "log space: negative lr in an array",
        lambda: log_escape_time(
            "sgd",
            hess_min=2.0,
            hess_saddle=-1.0,
            barrier=1.0,
            lr=np.array([0.1, -1.0]),
            batch_size=8,
            s=0.5,
        ),
        "lr",
    ),
    (
        "log space: s outside (0, 1)",
        lambda: log_escape_time(
            "sgd",
            hess_min=2.0,
            hess_saddle=-1.0,
            barrier=1.0,
            lr=0.1,
            batch_size=8,
            s=np.array([0.5, 1.5]),
        ),
        "s",
    ),
    # mfpt_1d, splitting, mfpt_2d
    ("mfpt: start equals end", lambda: mfpt_1d(WELL, "0.1", start=-1, end=-1), "end"),
    ("mfpt: negative diffusion", lambda: mfpt_1d(WELL, "-0.1", start=-1, end=1), "diffusion"),
    (
        "mfpt: diffusion negative on the domain",
        lambda: mfpt_1d(WELL, x - 3, start=-1, end=1, dps=15),
        "diffusion",
    ),
    (
        "mfpt: a loss without a minimum (not confining)",
        lambda: mfpt_1d(x, "0.1", start=-1, end=1, dps=15),
        "loss",
    ),
    ("mfpt: two symbols", lambda: mfpt_1d(x * sp.Symbol("y"), "0.1", start=-1, end=1), "loss"),
    (
        "mfpt: reflecting wall on the wrong side",
        lambda: mfpt_1d(WELL, "0.1", start=-1, end=1, left=0),
        "left",
    ),
    ("mfpt: non-numeric start", lambda: mfpt_1d(WELL, "0.1", start="minus one", end=1), "start"),
    (
        "splitting: start outside",
        lambda: splitting_probability(WELL, "0.1", start=2, lower=-1, upper=1),
        "start",
    ),
    (
        "mfpt_2d: empty bounds",
        lambda: mfpt_2d(
            lambda a, b: a,
            0.1,
            bounds=((1, 0), (0, 1)),
            shape=(8, 8),
            start=(0.5, 0.5),
            absorbing=lambda a, b: a > 0.9,
        ),
        "bounds",
    ),
    (
        "mfpt_2d: nothing absorbs",
        lambda: mfpt_2d(
            lambda a, b: a * 0,
            0.1,
            bounds=((0, 1), (0, 1)),
            shape=(8, 8),
            start=(0.5, 0.5),
            absorbing=lambda a, b: a > 5,
        ),
        "absorbing",
    ),
    # simulation
    (
        "simulate: step zero",
        lambda: simulate_escape(
            lambda z: z, start=[0.0], diffusion=1.0, step=0, escaped=lambda z: z[:, 0] > 1
        ),
        "step",
    ),
    (
        "simulate: paths zero",
        lambda: simulate_escape(
            lambda z: z,
            start=[0.0],
            diffusion=1.0,
            step=0.1,
            n_paths=0,
            escaped=lambda z: z[:, 0] > 1,
        ),
        "n_paths",
    ),
    (
        "simulate: negative seed",
        lambda: simulate_escape(
            lambda z: z,
            start=[0.0],
            diffusion=1.0,
            step=0.1,
            seed=-1,
            escaped=lambda z: z[:, 0] > 1,
        ),
        "seed",
    ),
    (
        "simulate: no escape surface",
        lambda: simulate_escape(lambda z: z, start=[0.0], diffusion=1.0, step=0.1),
        "escaped",
    ),
    # validation
    (
        "rate: batch size not an integer",
        lambda: measure_rate(
            landscape("double-well"), noise="sgd", lr=0.1, batch_size=2.5, max_steps=1
        ),
        "batch_size",
    ),
    (
        "rate: unknown noise",
        lambda: measure_rate(landscape("double-well"), noise="levy", lr=0.1),
        "noise",
    ),
    (
        "rate: device without CUDA",
        lambda: measure_rate(
            landscape("double-well"), noise="white", lr=0.1, diffusion=0.1, device="cuda"
        ),
        "device",
    ),
    ("unknown landscape", lambda: landscape("himmelblau"), "landscape"),
    ("unknown data set", lambda: load_dataset("mnist"), "dataset"),
    ("unknown model", lambda: make_model("transformer", load_dataset("iris")), "model"),
    (
        "negative weight decay",
        lambda: make_model("mlp", load_dataset("iris"), weight_decay=-1.0),
        "weight_decay",
    ),
    (
        "unknown experiment",
        lambda: run_experiment("everything", "/tmp/never-written"),
        "experiment",
    ),
    (
        "executor: both Dask options",
        lambda: make_executor(scheduler="tcp://x:1", local_cluster=2),
        "scheduler",
    ),
    (
        "probe: loss not a scalar",
        lambda: _probe(loss_fn=lambda out, t: (out.squeeze(-1) - t) ** 2),
        "loss_fn",
    ),
    (
        "probe: sum reduction",
        lambda: _probe(loss_fn=lambda out, t: ((out.squeeze(-1) - t) ** 2).sum()),
        "loss_fn",
    ),
    (
        "probe: data of the wrong shape",
        lambda: _probe(data=(torch.zeros(40, 4, dtype=torch.float64), torch.zeros(40))),
        "data",
    ),
    ("probe: not a minimum", lambda: _probe(weight_decay=1.0), "gradient norm"),
    ("probe: k above the parameter count", lambda: _probe(k=4), "k"),
    ("probe: unknown device", lambda: _probe(device="gpu"), "device"),
    ("probe: dtype as a string", lambda: _probe(dtype="float64"), "dtype"),
    ("probe: check_every 0", lambda: _probe(measure=True, check_every=0), "check_every"),
    (
        "eigenvalue: a matrix instead of a vector",
        lambda: top_hessian_eigenvalue(lambda t: (t**2).sum(), torch.zeros(2, 2)),
        "theta",
    ),
]


@pytest.mark.parametrize(("label", "call", "parameter"), CASES, ids=[c[0] for c in CASES])
def test_python_api_errors_name_the_parameter(label, call, parameter) -> None:
    with pytest.raises(FlatMinimaError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert parameter in str(info.value), (label, str(info.value))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flatminima", *args], capture_output=True, text=True, cwd="/"
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    garbage = folder / "garbage.npy"
    garbage.write_bytes(b"this is not an npy file")
    text_json = folder / "words.json"
    text_json.write_text('[["two", 0], [0, "five"]]')
    broken_json = folder / "broken.json"
    broken_json.write_text("[[1, 2], [3")
    objects = folder / "objects.npy"
    np.save(objects, np.array([[1, 2], [3, 4]], dtype=object), allow_pickle=True)
    factory = folder / "net.py"
    factory.write_text(
        "import torch\n"
        "def make():\n"
        "    x = torch.randn(20, 2, dtype=torch.float64)\n"
        "    return torch.nn.Linear(2, 1, dtype=torch.float64), torch.nn.MSELoss(), (x, x[:, :1])\n"
        "def broken():\n"
        "    raise RuntimeError('bug in the user file')\n"
    )
    return {
        "garbage": garbage,
        "text": text_json,
        "broken": broken_json,
        "objects": objects,
        "factory": factory,
    }


PROBE = ["--lr", "0.1", "--batch-size", "4", "--out", "/tmp/never-probe"]
EVALUATE = ["evaluate", "white", "--hess-saddle", "-1", "--barrier", "1", "--diffusion", "0.1"]
CLI_CASES = [
    ("unknown command", ["wobble"]),
    ("formula: unknown noise", ["formula", "levy"]),
    ("formula: bad dimension", ["formula", "white", "--dim", "-2"]),
    ("formula: bad interpretation", ["formula", "sgd", "--interpretation", "3"]),
    ("evaluate: unreadable .npy", [*EVALUATE, "--hess-min", "{garbage}"]),
    ("evaluate: pickled .npy", [*EVALUATE, "--hess-min", "{objects}"]),
    ("evaluate: JSON with words", [*EVALUATE, "--hess-min", "{text}"]),
    ("evaluate: truncated JSON file", [*EVALUATE, "--hess-min", "{broken}"]),
    ("evaluate: missing file", [*EVALUATE, "--hess-min", "/nonexistent/h.npy"]),
    ("evaluate: not positive definite", [*EVALUATE, "--hess-min", "-2"]),
    ("evaluate: bad dps", [*EVALUATE, "--hess-min", "2", "--dps", "4"]),
    ("validate: unknown experiment", ["validate", "sharp", "--out", "/tmp/never"]),
    (
        "validate: no CUDA",
        ["validate", "sharpness", "--quick", "--out", "/tmp/never", "--device", "cuda"],
    ),
    ("report: bad dps", ["report", "--dps", "3", "--out", "/tmp/never"]),
    ("probe: no factory name", ["probe", "{factory}", *PROBE]),
    ("probe: missing file", ["probe", "/nonexistent/net.py:make", *PROBE]),
    ("probe: factory raises", ["probe", "{factory}:broken", *PROBE]),
    ("probe: k above the parameter count", ["probe", "{factory}:make", *PROBE, "--k", "9"]),
    ("probe: no CUDA", ["probe", "{factory}:make", *PROBE, "--device", "cuda"]),
]


@pytest.mark.parametrize(("label", "args"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_errors_are_one_line_exit_2(label, args, bad_files) -> None:
    result = cli(*(a.format(**bad_files) for a in args))
    assert result.returncode == 2, (label, result.stderr)
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith("flatminima: warning")
        and not re.match(r"\[\s*[\d.]+ s\] ", line)  # probe's progress lines
    ]
    assert len(lines) == 1 and lines[0].startswith("flatminima: error:"), (label, result.stderr)
    assert "Traceback" not in result.stderr


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) + len(CLI_CASES) >= 40


#: (label, change to the valid SGD call, parameter): each must be refused the same way by the
#: scalar (mpmath) and the array (numpy, torch) evaluation (issue 16 item 4, issue 15).
BOTH_PATHS = [
    ("non-symmetric minimum", {"hess_min": [[2, 100], [0, 5]]}, "hess_min"),
    ("non-symmetric saddle", {"hess_saddle": [[-1, 7], [0, 3]]}, "hess_saddle"),
    ("complex minimum", {"hess_min": np.array([[2, 0.5j], [-0.5j, 5]])}, "hess_min"),
    ("complex dtype, zero imaginary part", {"hess_min": np.eye(2, dtype=complex)}, "hess_min"),
    ("NaN entry", {"hess_saddle": [[-1, 0], [0, math.nan]]}, "hess_saddle"),
    ("inf entry", {"hess_min": [[math.inf, 0], [0, 5]]}, "hess_min"),
    ("not square", {"hess_min": [[2, 0, 0], [0, 5, 0]]}, "hess_min"),
    ("sizes differ", {"hess_saddle": [[-1, 0, 0], [0, 3, 0], [0, 0, 3]]}, "hess_saddle"),
    ("minimum not positive definite", {"hess_min": [[2, 0], [0, -5]]}, "hess_min"),
    ("saddle with two negative directions", {"hess_saddle": [[-1, 0], [0, -3]]}, "hess_saddle"),
    ("bool barrier", {"barrier": True}, "barrier"),
    ("word barrier", {"barrier": "abc"}, "barrier"),
    ("underscore batch size", {"batch_size": "1_000"}, "batch_size"),
    ("empty learning rate", {"lr": []}, "lr"),
    ("complex learning rate", {"lr": 0.1 + 1j}, "lr"),
    ("s = 1", {"s": 1}, "s"),
    ("missing s", {"s": None}, "s"),
]


@pytest.mark.parametrize(
    ("label", "change", "parameter"), BOTH_PATHS, ids=[c[0] for c in BOTH_PATHS]
)
@pytest.mark.parametrize("path", ["escape_time", "log_escape_time", "log_escape_time-torch"])
def test_the_same_checks_on_every_path(label, change, parameter, path) -> None:
    arguments = {**SGD, **change}
    if path == "escape_time":
        call = lambda: escape_time("sgd", dps=15, **arguments)  # noqa: E731
    else:
        if path.endswith("torch"):  # one tensor argument selects the torch backend
            arguments["batch_size"] = (
                torch.tensor(8.0) if "batch_size" not in change else arguments["batch_size"]
            )
            if "batch_size" in change:
                arguments["s"] = torch.tensor(0.5) if "s" not in change else arguments["s"]
        call = lambda: log_escape_time("sgd", **arguments)  # noqa: E731
    with pytest.raises(FlatMinimaError) as info:
        call()
    assert str(info.value).startswith(parameter), (label, path, str(info.value))
