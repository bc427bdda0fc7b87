"""``flatminima evaluate NOISE --landscape LOSS``: the same τ as `landscape_escape_time`, the
white-noise value against the Eyring–Kramers formula worked out by hand from the exact
critical points and Hessians, and one-line errors (exit status 2) naming the option."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from flatminima.cli import main
from flatminima.numerics import landscape_escape_time

#: A 2-D double well, not separable (the x·y term tilts both wells and the saddle's Hessian).
WELL = "(x**2-1)**2 + y**2 + x*y/2"
X, Y = sp.symbols("x y")
WELL_SP = (X**2 - 1) ** 2 + Y**2 + X * Y / 2
#: A curved valley, rotated anisotropic D (the non-reversible prefactor).
VALLEY = "(x**2 - 1)**2 + 3*(y - x**2/2)**2"
VALLEY_SP = (X**2 - 1) ** 2 + 3 * (Y - X**2 / 2) ** 2


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    status, out, err = _run([*argv, "--format", "json"], capsys)
    assert status == 0, err
    return json.loads(out)


def _one_line_error(
    argv: list[str], option: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 2 and one line on stderr that starts with the option and says ``words``."""
    status, out, err = _run(argv, capsys)
    assert status == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"flatminima: error: {option}"), err
    assert words in lines[0]


def _eyring_kramers_by_hand(d: str, dps: int) -> mpmath.mpf:
    """τ = 2π/|λ_b| √(|det H_b| / det H_a) e^{ΔL/d}; the minimum x² = 33/32, y = −x/4 and the
    saddle (0, 0) solved by hand from ∇L = 0."""
    with mpmath.workdps(dps + 20):
        xa = mpmath.sqrt(mpmath.mpf(33) / 32)
        ya = -xa / 4

        def loss(x: mpmath.mpf, y: mpmath.mpf) -> mpmath.mpf:
            return (x**2 - 1) ** 2 + y**2 + x * y / 2

        h_a = mpmath.matrix([[12 * xa**2 - 4, mpmath.mpf(1) / 2], [mpmath.mpf(1) / 2, 2]])
        h_b = mpmath.matrix([[-4, mpmath.mpf(1) / 2], [mpmath.mpf(1) / 2, 2]])
        lam_b = min(mpmath.eigsy(h_b)[0])
        barrier = loss(mpmath.mpf(0), mpmath.mpf(0)) - loss(xa, ya)
        return (
            2
            * mpmath.pi
            / abs(lam_b)
            * mpmath.sqrt(abs(mpmath.det(h_b)) / mpmath.det(h_a))
            * mpmath.exp(barrier / mpmath.mpf(d))
        )


def test_white_noise_double_well_equals_api_and_hand_eyring_kramers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["evaluate", "white", "--landscape", WELL, "--minimum", "1,-0.25", "--saddle",
            "0,0", "--diffusion", "0.1", "--dps", "30", "--points", "8", "--lr", "0.01"]  # fmt: skip
    out = _json(argv, capsys)
    api = landscape_escape_time(
        WELL_SP, "white", minimum=[1, -0.25], saddle=[0, 0], diffusion="0.1", dps=30,
        points=8, lr="0.01",
    )  # fmt: skip
    assert out["tau"] == mpmath.nstr(api.tau, 30)
    assert out["variables"] == ["x", "y"]
    with mpmath.workdps(30):
        tau = mpmath.mpf(out["tau"])
        hand = _eyring_kramers_by_hand("0.1", 30)
        assert abs(tau / hand - 1) < mpmath.mpf(10) ** -27
        assert abs(mpmath.mpf(out["iterations"]) / (hand / mpmath.mpf("0.01")) - 1) < 1e-27
        # ΔL = L(0, 0) − L(a) = 1 + 65/1024 by hand, ΔΦ = ΔL/d exactly
        assert mpmath.mpf(out["barrier"]) == mpmath.mpf(1089) / 1024 / mpmath.mpf("0.1")
    assert out["minimum"] == pytest.approx([math.sqrt(33 / 32), -math.sqrt(33 / 32) / 4])
    assert out["saddle"] == pytest.approx([0, 0], abs=1e-12)
    assert "Eyring" in out["method"]


def test_text_output_and_declared_variable_order(capsys: pytest.CaptureFixture[str]) -> None:
    """--variables y,x takes the coordinates as (y, x): the same valley, the same τ."""
    base = ["evaluate", "white", "--landscape", WELL, "--diffusion", "0.1", "--dps", "20",
            "--points", "8"]  # fmt: skip
    status, out, err = _run([*base, "--minimum", "1,-0.25", "--saddle", "0,0"], capsys)
    assert status == 0, err
    swapped = [*base, "--variables", "y,x", "--minimum", "-0.25,1", "--saddle", "0,0"]
    status2, out2, err2 = _run(swapped, capsys)
    assert status2 == 0, err2
    tau = [line for line in out.splitlines() if line.startswith("tau ")]
    assert tau and tau == [line for line in out2.splitlines() if line.startswith("tau ")]
    hand = _eyring_kramers_by_hand("0.1", 20)
    assert abs(float(tau[0].split("=")[1]) / float(hand) - 1) < 1e-15
    assert "variables: x, y" in out and "variables: y, x" in out2
    assert "minimum (-0.2538762001, 1.015504801)" in out2  # refined, in the declared order


def test_negative_first_coordinate_is_a_value_not_a_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["evaluate", "white", "--landscape", WELL, "--minimum", "-1,0.25", "--saddle",
            "-0.0,0", "--diffusion", "0.1", "--points", "8"]  # fmt: skip
    out = _json(argv, capsys)
    assert out["minimum"][0] == pytest.approx(-math.sqrt(33 / 32))


def test_anisotropic_equals_api(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Rotated anisotropic D on a curved valley (Bouchet–Reygner): the CLI passes the matrix
    (JSON text and a .npy file alike) and gets the API's τ and ΔΦ; ΔΦ exceeds the aligned
    workaround's ΔL/(eᵀDe) (4.03), so the matrix was not reduced to a number."""
    c, s = math.cos(0.5), math.sin(0.5)
    rot = np.array([[c, -s], [s, c]])
    d = 0.3 * rot @ np.diag([1.0, 0.25]) @ rot.T
    np.save(tmp_path / "d.npy", d)
    api = landscape_escape_time(
        VALLEY_SP, "anisotropic", minimum=[-1, 0.5], saddle=[0, 0], diffusion=d, points=8
    )
    for given in (json.dumps(d.tolist()), str(tmp_path / "d.npy")):
        argv = ["evaluate", "anisotropic", "--landscape", VALLEY, "--minimum", "-1,0.5",
                "--saddle", "0,0", "--diffusion", given, "--points", "8"]  # fmt: skip
        out = _json(argv, capsys)
        assert out["tau"] == mpmath.nstr(api.tau, 30)
        assert out["barrier"] == mpmath.nstr(api.barrier, 30)
        assert 6.0 < float(out["barrier"]) < 6.4
        assert "Bouchet" in out["method"]
        assert out["warnings"]  # this saddle's γ < 1 is reported, not hidden


def test_other_minimum_and_two_saddles(capsys: pytest.CaptureFixture[str]) -> None:
    """The saddle found from a second minimum is the given one's; two saddles add rates."""
    base = ["evaluate", "white", "--landscape", WELL, "--diffusion", "0.1", "--points", "8",
            "--minimum", "1,-0.25"]  # fmt: skip
    found = _json([*base, "--other-minimum", "-1,0.25"], capsys)
    given = _json([*base, "--saddle", "0,0"], capsys)
    assert found["saddle"] == pytest.approx([0, 0], abs=1e-9)
    assert float(found["tau"]) == pytest.approx(float(given["tau"]), rel=1e-12)
    # four wells; the valley near (1, 1) has two exits, near (0, 1) and (1, 0)
    ring = "(x**2 - 1)**2 + (y**2 - 1)**2 + x*y/4"
    two = ["evaluate", "white", "--landscape", ring, "--diffusion", "0.2", "--points", "8",
           "--minimum", "1,1", "--saddle", "0,1", "--saddle", "1,0"]  # fmt: skip
    both = _json(two, capsys)
    assert len(both["channels"]) == 2
    rates = [float(ch["rate"]) for ch in both["channels"]]
    assert float(both["rate"]) == pytest.approx(sum(rates), rel=1e-12)


def test_loss_from_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """FILE.py:NAME: a SymPy expression (exact) and a torch function (autograd, float64) give
    the hand Eyring–Kramers τ; a float literal, a non-loss and a function that fails are one
    line naming --landscape (the failing one with its file and line)."""
    file = tmp_path / "well.py"
    file.write_text(
        "import sympy as sp\nx, y = sp.symbols('x y')\n"
        "L = (x**2 - 1)**2 + y**2 + x*y/2\nF = (x**2 - 1)**2 + 0.5*y**2\nbroken = 3\n"
        "def T(t):\n    return (t[..., 0]**2 - 1)**2 + t[..., 1]**2 + t[..., 0]*t[..., 1]/2\n"
        "def bad(t):\n    return t.nonexistent\n",
        encoding="utf-8",
    )
    argv = ["evaluate", "white", "--landscape", f"{file}:L", "--minimum", "1,-0.25",
            "--saddle", "0,0", "--diffusion", "0.1", "--points", "8"]  # fmt: skip
    hand = float(_eyring_kramers_by_hand("0.1", 20))
    out = _json(argv, capsys)
    assert abs(float(out["tau"]) / hand - 1) < 1e-12
    for name, words in (
        ("broken", "int"),
        ("F", "float literals"),
        ("bad", "well.py:9: AttributeError"),
    ):
        status, _, err = _run([*argv[:3], f"{file}:{name}", *argv[4:]], capsys)
        assert status == 2 and err.count("\n") == 1, err
        assert err.startswith("flatminima: error: --landscape") and words in err, err
    pytest.importorskip("torch")
    out = _json([*argv[:3], f"{file}:T", *argv[4:]], capsys)
    assert out["variables"] is None
    assert abs(float(out["tau"]) / hand - 1) < 1e-8


def test_loss_dependent_equals_api(capsys: pytest.CaptureFixture[str]) -> None:
    """State-dependent D = (ηL(θ)/B)H(a) on the curved valley lifted by 1, Stratonovich."""
    argv = ["evaluate", "loss-dependent", "--landscape", VALLEY + " + 1", "--minimum",
            "-1,0.5", "--saddle", "0,0", "--lr", "0.05", "--batch-size", "4", "--points", "8",
            "--interpretation", "stratonovich"]  # fmt: skip
    out = _json(argv, capsys)
    api = landscape_escape_time(
        VALLEY_SP + 1, "loss-dependent", minimum=[-1, 0.5], saddle=[0, 0], lr="0.05",
        batch_size="4", points=8, interpretation="stratonovich",
    )  # fmt: skip
    assert out["tau"] == mpmath.nstr(api.tau, 30)
    assert out["iterations"] == mpmath.nstr(api.iterations, 30)
    assert out["interpretation"] == api.interpretation


#: A curved valley rotated by the exact rotation (u, v) = (0.8x + 0.6y, −0.6x + 0.8y), tilted
#: by u/5: not separable, its axes aligned with neither x, y nor the noise.
ROTATED = "((0.8*x + 0.6*y)**2 - 1)**2 + 5*((-0.6*x + 0.8*y) - (0.8*x + 0.6*y)**2/2)**2 + (0.8*x + 0.6*y)/5"
#: A ring with two exits of different heights between (−1.18, 0.04) and (1.18, −0.10).
RING = "(x**2 + y**2 - 1)**2 - 4*x**2/5 + y/20 + x*y/10"


def _numpy_loss(text: str):  # type: ignore[no-untyped-def]
    return sp.lambdify((X, Y), sp.sympify(text), "numpy")


def _critical(text: str, start: tuple[float, float]) -> np.ndarray:
    """A critical point of the loss by scipy's root finder on its gradient (independent of the
    package's Newton refinement)."""
    from scipy.optimize import root

    expr = sp.sympify(text)
    grad = sp.lambdify((X, Y), [sp.diff(expr, v) for v in (X, Y)], "numpy")
    found = root(lambda p: grad(*p), start, tol=1e-13)
    assert found.success
    return np.asarray(found.x)


def test_anisotropic_rotated_valley_against_mfpt_2d(capsys: pytest.CaptureFixture[str]) -> None:
    """Constant D = 0.17·R(0.5) diag(1, ¼) R(0.5)ᵀ on the rotated tilted valley: the CLI's τ
    within 6% of the backward-Kolmogorov MFPT to the half-plane through the other minimum
    (measured 0.976 at ΔΦ = 7.9; the grid's own error 1.5%), where the aligned workaround
    D → eᵀDe (e the minimum's soft direction) is off by far more."""
    from flatminima.numerics import mfpt_2d

    c, s = math.cos(0.5), math.sin(0.5)
    rot = np.array([[c, -s], [s, c]])
    d = 0.17 * rot @ np.diag([1.0, 0.25]) @ rot.T
    a, b = _critical(ROTATED, (-1.1, -0.2)), _critical(ROTATED, (0.04, 0.03))
    argv = ["evaluate", "anisotropic", "--landscape", ROTATED, "--minimum", ",".join(map(str, a)),
            "--saddle", ",".join(map(str, b)), "--diffusion", json.dumps(d.tolist()),
            "--points", "8", "--dps", "15"]  # fmt: skip
    out = _json(argv, capsys)
    loss = _numpy_loss(ROTATED)
    other = _critical(ROTATED, (0.9, 0.6))
    u = np.array([0.8, 0.6])
    exact = mfpt_2d(
        loss, d, bounds=((-2.2, 2.2), (-2.2, 2.2)), shape=(96, 96), start=tuple(a),
        absorbing=lambda x, y: 0.8 * x + 0.6 * y > float(u @ other), levels=2,
    )  # fmt: skip
    assert exact.error < 0.03 * exact.extrapolated
    assert 7 < float(out["barrier"]) < 9
    ratio = float(out["tau"]) / exact.extrapolated
    assert abs(ratio - 1) < 0.06, ratio
    # the aligned workaround: ΔL/(eᵀDe) in the exponent, e the soft eigenvector at a
    hess = sp.lambdify((X, Y), sp.hessian(sp.sympify(ROTATED), (X, Y)), "numpy")
    e = np.linalg.eigh(np.asarray(hess(*a), dtype=float))[1][:, 0]
    workaround = (loss(*b) - loss(*a)) / float(e @ d @ e)
    assert abs(workaround - float(out["barrier"])) > 1.0


def _user_file(tmp_path: Path) -> Path:
    file = tmp_path / "noise.py"
    file.write_text(
        "import numpy as np\n"
        "SIGMA = np.array([[0.6, 0.2], [0.2, 0.3]])\n"
        "def S(theta):\n"
        "    theta = np.asarray(theta)\n"
        "    return np.broadcast_to(SIGMA, theta.shape[:-1] + (2, 2)).copy()\n"
        "def V(theta):\n"
        "    x = np.asarray(theta)[..., 0]\n"
        "    return (0.1 * (1 + 0.2 * np.tanh(x)))[..., None, None] * np.eye(2)\n"
        "def bad(theta):\n"
        "    return theta.nothing\n"
        "def neg(theta):\n"
        "    return (0.1 * np.asarray(theta)[..., 0])[..., None, None] * np.eye(2)\n",
        encoding="utf-8",
    )
    return file


def test_measured_constant_covariance_equals_anisotropic(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--noise-covariance FILE.py:S with Σ constant is the anisotropic D = ηΣ/(2B) computed
    here: the same ΔΦ and τ (the state-dependent code path, central differences of Σ and
    all, against the constant one: equal to 10⁻⁶; measured 6·10⁻¹⁰)."""
    file = _user_file(tmp_path)
    base = ["--landscape", VALLEY, "--minimum=-1,0.5", "--saddle", "0,0", "--points", "4",
            "--dps", "15"]  # fmt: skip
    measured = _json(["evaluate", "measured", *base, "--noise-covariance", f"{file}:S",
                      "--lr", "0.1", "--batch-size", "0.5"], capsys)  # fmt: skip
    d = 0.1 * np.array([[0.6, 0.2], [0.2, 0.3]]) / (2 * 0.5)
    constant = _json(["evaluate", "anisotropic", *base, "--diffusion", json.dumps(d.tolist())],
                     capsys)  # fmt: skip
    assert measured["noise"] == "measured" and constant["noise"] == "anisotropic"
    assert float(measured["barrier"]) == pytest.approx(float(constant["barrier"]), rel=1e-6)
    assert float(measured["tau"]) == pytest.approx(float(constant["tau"]), rel=1e-6)
    assert float(measured["iterations"]) == pytest.approx(float(measured["tau"]) / 0.1)


@pytest.mark.slow
def test_callable_diffusion_and_interpretation_equal_api(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--diffusion FILE.py:V with the noise 'callable': a D(θ) that changes along the path
    (by 20% between the wells), Stratonovich: the CLI gives the API's τ for the same function
    and interpretation (the Itô value differs by several percent, so α was passed on)."""
    file = _user_file(tmp_path)
    namespace: dict[str, object] = {}
    exec(file.read_text(encoding="utf-8"), namespace)  # the same function, for the API
    argv = ["evaluate", "callable", "--landscape", VALLEY, "--minimum=-1,0.5", "--saddle", "0,0",
            "--points", "4", "--dps", "15", "--diffusion", f"{file}:V",
            "--interpretation", "stratonovich"]  # fmt: skip
    out = _json(argv, capsys)
    api = landscape_escape_time(
        VALLEY_SP, namespace["V"], minimum=[-1, 0.5], saddle=[0, 0], points=4, dps=15,
        interpretation="stratonovich",
    )  # fmt: skip
    assert out["tau"] == mpmath.nstr(api.tau, 15)
    assert out["noise"] == "callable" and out["interpretation"] == "stratonovich"


@pytest.mark.slow
def test_callable_state_dependent_diffusion_against_mfpt_2d(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """D(θ) = d(1 + ¼ tanh 2u)·I (u the valley's axis: D grows by 2/3 from well to well) on the
    rotated tilted valley, from a file: against the backward-Kolmogorov MFPT with the same α.
    Measured (points 8): τ/τ_exact = 0.896 (Itô) and 0.897 (Stratonovich) at ΔΦ = 8.7, 0.952
    at ΔΦ = 16.4 (log-log slope of the error about −1.2: the asymptotic 1/ΔΦ); the Itô /
    Stratonovich ratio 1.163 against the exact 1.165."""
    from flatminima.numerics import mfpt_2d

    file = tmp_path / "field.py"
    file.write_text(
        "import numpy as np\n"
        "SCALE = {scale}\n"
        "def D(theta):\n"
        "    t = np.asarray(theta, dtype=float)\n"
        "    u = 0.8 * t[..., 0] + 0.6 * t[..., 1]\n"
        "    return (SCALE * (1 + 0.25 * np.tanh(2 * u)))[..., None, None] * np.eye(2)\n",
        encoding="utf-8",
    )
    text = file.read_text(encoding="utf-8")
    a, b = _critical(ROTATED, (-1.1, -0.2)), _critical(ROTATED, (0.04, 0.03))
    cut = float(np.array([0.8, 0.6]) @ _critical(ROTATED, (0.9, 0.6)))

    def ratio(scale: float, alpha: str) -> tuple[float, float, float]:
        file.write_text(text.format(scale=scale), encoding="utf-8")
        out = _json(["evaluate", "callable", "--landscape", ROTATED, "--minimum",
                     ",".join(map(str, a)), "--saddle", ",".join(map(str, b)), "--diffusion",
                     f"{file}:D", "--interpretation", alpha, "--points", "8", "--dps", "15"],
                    capsys)  # fmt: skip

        def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            u = 0.8 * x + 0.6 * y
            return (scale * (1 + 0.25 * np.tanh(2 * u)))[..., None, None] * np.eye(2)

        exact = mfpt_2d(
            _numpy_loss(ROTATED), field, bounds=((-2.2, 2.2), (-2.2, 2.2)), shape=(96, 96),
            start=tuple(a), absorbing=lambda x, y: 0.8 * x + 0.6 * y > cut, levels=2,
            interpretation=alpha,
        )  # fmt: skip
        assert exact.error < 3e-3 * exact.extrapolated
        return float(out["tau"]), exact.extrapolated, float(out["barrier"])

    ito, ito_exact, low = ratio(0.17, "ito")
    strat, strat_exact, _ = ratio(0.17, "stratonovich")
    assert abs(ito / ito_exact - 1) < 0.15 and abs(strat / strat_exact - 1) < 0.15
    assert (ito / strat) / (ito_exact / strat_exact) == pytest.approx(1, abs=0.01)
    deep, deep_exact, high = ratio(0.09, "ito")
    slope = math.log(abs(deep / deep_exact - 1) / abs(ito / ito_exact - 1)) / math.log(high / low)
    assert -1.5 < slope < -0.7, slope


def test_other_minimum_finds_both_exits_and_rates_add(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """RING has two exits 0.1 apart in height. --other-minimum finds both (the saddles scipy's
    root finder locates from (0, ±1)); the summed rate equals the two single-saddle runs' sum
    and its τ is within 6% of mfpt_2d (measured 0.962 at ΔΦ = 7.6), while the lowest saddle
    alone (--keep-saddles lowest) is 1.40 of it."""
    from flatminima.numerics import mfpt_2d

    a, c = _critical(RING, (-1.2, 0.0)), _critical(RING, (1.2, 0.0))
    upper, lower = _critical(RING, (0.0, 1.0)), _critical(RING, (0.0, -1.0))
    base = ["evaluate", "white", "--landscape", RING, "--diffusion", "0.12", "--points", "8",
            "--dps", "15", "--minimum", ",".join(map(str, a))]  # fmt: skip
    found = _json([*base, "--other-minimum", ",".join(map(str, c))], capsys)
    saddles = sorted((ch["saddle"] for ch in found["channels"]), key=lambda p: p[1])
    assert saddles[0] == pytest.approx(lower, abs=1e-9)
    assert saddles[1] == pytest.approx(upper, abs=1e-9)
    singles = [_json([*base, "--saddle", ",".join(map(str, p))], capsys) for p in (lower, upper)]
    assert float(found["rate"]) == pytest.approx(sum(float(r["rate"]) for r in singles), rel=1e-12)
    lowest = _json([*base, "--other-minimum", ",".join(map(str, c)), "--keep-saddles", "lowest"],
                   capsys)  # fmt: skip
    assert lowest["channels"] == [] and lowest["saddle"] == pytest.approx(lower, abs=1e-9)
    assert lowest["tau"] == singles[0]["tau"]
    exact = mfpt_2d(
        _numpy_loss(RING), 0.12, bounds=((-1.8, 1.8), (-1.8, 1.8)), shape=(48, 48),
        start=tuple(a), absorbing=lambda x, y: x > c[0], levels=2,
    ).extrapolated  # fmt: skip
    assert abs(float(found["tau"]) / exact - 1) < 0.06
    assert float(lowest["tau"]) / exact > 1.25


def test_latex_output(capsys: pytest.CaptureFixture[str]) -> None:
    """--format latex: one display, τ = A e^{ΔΦ} with the numbers of the JSON output."""
    argv = ["evaluate", "white", "--landscape", WELL, "--minimum", "1,-0.25", "--saddle", "0,0",
            "--diffusion", "0.1", "--points", "8", "--dps", "15"]  # fmt: skip
    status, out, err = _run([*argv, "--format", "latex"], capsys)
    assert status == 0, err
    values = _json(argv, capsys)
    line = out.strip()
    assert line.startswith(r"\[ \tau = A\,e^{\Delta\Phi} = ") and line.endswith(r" \]")
    assert mpmath.nstr(mpmath.mpf(values["tau"]), 10) in line
    status, out, err = _run(["evaluate", "white", "--hess-min", "2", "--hess-saddle", "-1",
                             "--barrier", "1", "--diffusion", "0.1", "--format", "latex"],
                            capsys)  # fmt: skip
    assert status == 0 and out.startswith(r"\[ \tau = ") and r"\frac" in out, err


NOISE_BAD = (
    (["measured"], "--noise-covariance", "FILE.py:NAME"),
    (["white", "--noise-covariance", "{file}:S"], "--noise-covariance", "measured"),
    (["white", "--diffusion", "{file}:V"], "--diffusion", "evaluate callable"),
    (["callable", "--diffusion", "0.1"], "--diffusion", "FILE.py:NAME"),
    (["callable", "--diffusion", "{file}:SIGMA"], "--diffusion", "SIGMA = ndarray"),
    (["callable", "--diffusion", "{file}:bad"], "--diffusion", "noise.py:10: AttributeError"),
    (["callable", "--diffusion", "{file}:neg"], "--diffusion", "positive definite"),
    (["measured", "--noise-covariance", "{file}:S", "--diffusion", "0.1"], "--diffusion", ""),
    (["white", "--diffusion", "0.1", "--keep-saddles", "lowest"], "--keep-saddles", ""),
)


@pytest.mark.parametrize(("change", "option", "words"), NOISE_BAD)
def test_bad_noise_is_a_one_line_error_naming_the_flag(
    change: list[str], option: str, words: str, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    file = _user_file(tmp_path)
    argv = ["evaluate", *[part.format(file=file) for part in change], "--landscape", VALLEY,
            "--minimum=-1,0.5", "--saddle", "0,0", "--points", "8", "--lr", "0.1",
            "--batch-size", "2"]  # fmt: skip
    _one_line_error(argv, option, words, capsys)


#: Double well with a transverse stiffness that grows towards the saddle (H_b = diag(−1, 1.36)):
#: the harmonic-switch SGD noise has a generic saddle there (|λ_b| below the stable curvature).
STIFF = "x**4/4 - x**2/2 + (1 + 9*(x+1)/25)*y**2/2"
STIFF_SP = X**4 / 4 - X**2 / 2 + (1 + sp.Rational(9, 25) * (X + 1)) * Y**2 / 2
SGD_ARGV = ["evaluate", "sgd", "--landscape", STIFF, "--minimum=-1,0", "--saddle", "0,0",
            "--points", "8", "--dps", "15", "--lr", "0.1", "--batch-size", "2"]  # fmt: skip


def test_sgd_noise_is_passed_through(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI keeps no list of landscape noises: `sgd` (the harmonic switch) goes to the API,
    and the CLI's τ is the API's."""
    api = landscape_escape_time(
        STIFF_SP, "sgd", minimum=[-1, 0], saddle=[0, 0], points=8, dps=15, lr="0.1",
        batch_size="2",
    )  # fmt: skip
    assert _json(SGD_ARGV, capsys)["tau"] == mpmath.nstr(api.tau, 15)


def test_switch_surface_from_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--switch FILE.py:NAME``: the smallest eigenvalue of the loss's Hessian, written by hand
    in the file, is the default surface: the same τ. The plane x = −1/√3 crosses the path at
    the same point but is a different surface off the path, and the prefactor (the quasi-
    potential's Hessian carried across the surface) sees that: τ differs, by 0.5% here.
    ``--switch literal`` and ``--switch`` with white noise are one-line errors naming --switch."""
    file = tmp_path / "surface.py"
    file.write_text(
        "import math\nimport numpy as np\n\n"
        "def smallest(theta):\n"
        "    x, y = theta[..., 0], theta[..., 1]\n"
        "    h = np.stack([np.stack([3 * x**2 - 1, 0.36 * y], -1),\n"
        "                  np.stack([0.36 * y, 1 + 0.36 * (x + 1)], -1)], -2)\n"
        "    return np.linalg.eigvalsh(h)[..., 0]\n\n"
        "def plane(theta):\n"
        "    return theta[..., 0] + 1 / math.sqrt(3)\n"
    )
    harmonic = float(_json(SGD_ARGV, capsys)["tau"])
    smallest = float(_json([*SGD_ARGV, "--switch", f"{file}:smallest"], capsys)["tau"])
    assert abs(smallest / harmonic - 1) < 1e-6
    plane = float(_json([*SGD_ARGV, "--switch", f"{file}:plane"], capsys)["tau"])
    assert 1e-4 < abs(plane / harmonic - 1) < 0.05
    status, _, err = _run([*SGD_ARGV, "--switch", "literal"], capsys)
    assert status == 2 and err.count("\n") == 1 and err.startswith("flatminima: error: --switch")
    assert "κ[H(θ)]⁺" in err and "never escapes" in err
    white = ["evaluate", "white", "--landscape", STIFF, "--minimum=-1,0", "--saddle", "0,0",
             "--diffusion", "0.1", "--switch", "harmonic"]  # fmt: skip
    status, _, err = _run(white, capsys)
    assert status == 2 and err.startswith("flatminima: error: --switch"), err
    status, _, err = _run([*SGD_ARGV, "--switch", f"{tmp_path}/missing.py:plane"], capsys)
    assert status == 2 and err.startswith("flatminima: error: --switch"), err


BAD = (
    (["--landscape", "x**2 + z", "--variables", "x,y"], "--landscape", "unknown variable 'z'"),
    (["--landscape", "(x**2-1)**2 + y**2 + x*y/2", "--minimum", "1,2,3"], "--minimum", "2 "),
    (["--landscape", "(x**2-1)**2 + y**2 + x*y/2", "--saddle", "0"], "--saddle", "2 "),
    (["--landscape", "__import__('os').system('true')"], "--landscape", "call"),
    (["--landscape", "x.__class__ + y"], "--landscape", "attribute"),
    (["--landscape", "(lambda: x)() + y"], "--landscape", "call"),
    (["--landscape", "x**2 + y**2", "--variables", "x,__y"], "--variables", ""),
    (["--landscape", "x**2 + y**2", "--barrier", "1"], "--barrier", "remove it"),
    (["--landscape", "x**2 + y**2", "--diffusion", "-1"], "--diffusion", ""),
    (["--landscape", "nofile.py:L"], "--landscape", "existing Python file"),
)


@pytest.mark.parametrize(("change", "option", "words"), BAD)
def test_bad_input_is_a_one_line_error_naming_the_option(
    change: list[str], option: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--landscape": WELL, "--minimum": "1,-0.25", "--saddle": "0,0",
            "--diffusion": "0.1", "--points": "8"}  # fmt: skip
    base.update(dict(zip(change[::2], change[1::2], strict=True)))
    argv = ["evaluate", "white", *[x for item in base.items() for x in item]]
    _one_line_error(argv, option, words, capsys)


def test_hessian_mode_still_requires_its_hessians(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(["evaluate", "white", "--hess-min", "2", "--diffusion", "0.1"], capsys)
    assert status == 2 and err.startswith("flatminima: error: --hess-saddle")
    status, _, err = _run(["evaluate", "anisotropic", "--hess-min", "2", "--hess-saddle", "-1",
                           "--diffusion", "0.1"], capsys)  # fmt: skip
    assert status == 2 and "--landscape" in err


def test_docs_example_prints_what_docs_cli_says(capsys: pytest.CaptureFixture[str]) -> None:
    """The white-noise example of docs/cli.md, run: the same lines, digit for digit."""
    import re
    import shlex

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n(\$ flatminima evaluate white --landscape.*?)```", text, re.S)
    assert len(blocks) == 1
    command, *expected = blocks[0].strip().splitlines()
    status, out, err = _run(shlex.split(command)[2:], capsys)
    assert status == 0, err
    assert out.strip().splitlines() == expected


def test_parser_reads_exact_numbers_and_never_calls_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    """0.1 is 1/10, ^ is **, pi and E are SymPy's; eval, exec and sympify are never called
    (they are replaced by functions that fail while the text is parsed; SymPy is imported
    before, as the CLI has it imported by then)."""
    import builtins

    from flatminima._expression import parse_loss

    real = {"eval": builtins.eval, "exec": builtins.exec}
    seen: list[str] = []

    def guard(name: str) -> object:
        def call(source: object, *args: object) -> object:
            if isinstance(source, str | bytes):  # text run as code (an import's code object
                seen.append(f"{name}({source!r})")  # is not text: it runs)
                raise AssertionError("evaluated as code")
            return real[name](source, *args)  # type: ignore[operator]

        return call

    def forbidden(*args: object, **kwargs: object) -> None:
        seen.append("sympify")
        raise AssertionError("sympify called")

    text = "0.1*x^2 + exp(-y)*pi - 1e-3*abs(x*y)/E + 2**-1"
    with monkeypatch.context() as patched:
        for name in real:  # (compile stays: ast.parse is compile(..., ONLY_AST))
            patched.setattr(builtins, name, guard(name))
        patched.setattr(sp, "sympify", forbidden)
        patched.setattr(sp, "parse_expr", forbidden)
        expr, symbols = parse_loss(text, ["y", "x"])
    assert seen == []
    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    expected = (
        sp.Rational(1, 10) * x**2
        + sp.exp(-y) * sp.pi
        - sp.Abs(x * y) / 1000 / sp.E
        + sp.Rational(1, 2)
    )
    assert sp.simplify(expr - expected) == 0
    assert symbols == [y, x]
