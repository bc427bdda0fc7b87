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
    status, out, err = _run(argv, capsys)
    assert status == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"flatminima: error: {option}"), err
    assert words in lines[0]


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
