"""The package face: the layer mapping, torch-free imports, doctests, the public surface."""

from __future__ import annotations

import doctest
import importlib
import json
import math
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import flatminima

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("theory", "numerics", "validation")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_layers_map_to_the_top_level_folders() -> None:
    for layer in ("theory", "numerics", "validation"):
        module = importlib.import_module(f"flatminima.{layer}")
        assert Path(module.__file__).resolve().parent == (ROOT / layer).resolve()


def _run(
    code: str, cwd: Path | str, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize("layer", LAYERS)
def test_bare_folder_import_is_refused_from_the_repository_root(layer: str) -> None:
    # `python -c` puts the current directory first on sys.path: `import theory` finds the
    # folder. It must not become a second copy of the classes: it refuses, naming the fix.
    result = _run(f"import {layer}", cwd=ROOT)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert f"import flatminima.{layer}" in result.stderr
    # a submodule loads its package first, so it is refused the same way
    result = _run(f"import {layer}._conventions" if layer == "theory" else f"import {layer}", ROOT)
    assert f"import flatminima.{layer}" in result.stderr


def test_the_issue_example_from_the_repository_root() -> None:
    # the issue: from the root, theory.derive_escape_time(...) made a Derivation that
    # scaling_law rejected ("expected a Derivation, got Derivation"). From the root the
    # package resolves to the same one tree (./flatminima first on sys.path, then the layers).
    code = (
        "import flatminima.theory as T, flatminima.numerics as N\n"
        "from flatminima import theory\n"
        "assert theory is T\n"
        "law = T.scaling_law(theory.derive_escape_time('white', 1, 'ito'), 'sharpness')\n"
        "import flatminima.theory._derivation as d\n"
        "assert T.Derivation is d.Derivation\n"
        "print(law.kind)\n"
    )
    result = _run(code, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_no_symlinks_in_the_repository() -> None:
    # the layers used to be symlinked into flatminima/; one mapping (package-dir) replaces them
    listing = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        pytest.skip("not a git checkout")
    links = [
        line.split("\t")[1] for line in listing.stdout.splitlines() if line.startswith("120000")
    ]
    assert links == []
    for layer in LAYERS:
        assert not (ROOT / "flatminima" / layer).exists()


def _package_files() -> dict[str, Path]:
    """Installed path (flatminima/theory/_derive.py) → source file, from package-dir."""
    mapping: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == set(mapping)
    out = {}
    for package, folder in mapping.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            out[package.replace(".", "/") + "/" + path.name] = path
    return out


def _editable_tree() -> Path | None:
    """The strict editable install's link tree, when flatminima is installed that way."""
    theory_init = Path(importlib.import_module("flatminima.theory").__file__ or "")
    tree = theory_init.parents[2]
    return tree if tree.name.startswith("__editable__.flatminima-") else None


def test_one_mapping_for_python_mypy_and_mkdocstrings() -> None:
    tree = _editable_tree()
    if tree is None:
        pytest.skip("flatminima is not installed in strict editable mode (make setup)")
    # every package file is linked: a file added since the install needs `make setup`
    missing = [name for name in _package_files() if not (tree / name).exists()]
    assert not missing, f"not linked into {tree} (run `make setup`): {missing}"
    for name, source in _package_files().items():
        assert (tree / name).resolve() == source.resolve(), name
    # mypy reads the same tree (before ./flatminima, which lacks the layers) ...
    mypy_path = PYPROJECT["tool"]["mypy"]["mypy_path"].replace("$MYPY_CONFIG_FILE_DIR", str(ROOT))
    assert Path(mypy_path).resolve() == tree.resolve()
    # ... and so does mkdocstrings (griffe), through a glob in mkdocs.yml
    config = (ROOT / "mkdocs.yml").read_text()
    paths = re.search(r"^\s+paths: \[(.+)\]$", config, re.MULTILINE)
    assert paths is not None
    assert [p.resolve() for p in ROOT.glob(paths.group(1))] == [tree.resolve()]


def test_mypy_checks_every_layer() -> None:
    # `mypy -p flatminima` from the root must check the layers' files, not only flatminima/*.py
    # (which it did when the layers resolved to the installed package: silently, unchecked)
    if _editable_tree() is None:
        pytest.skip("flatminima is not installed in strict editable mode (make setup)")
    code = (
        "import sys\n"
        "from mypy import build, modulefinder, options\n"
        "from mypy.config_parser import parse_config_file\n"
        "opts = options.Options()\n"
        "parse_config_file(opts, lambda: None, 'pyproject.toml', sys.stdout, sys.stderr)\n"
        "paths = modulefinder.compute_search_paths([], opts, '')\n"
        "finder = modulefinder.FindModuleCache(paths, None, opts)\n"
        "print(' '.join(s.module for s in finder.find_modules_recursive('flatminima')))\n"
    )
    result = _run(code, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    found = set(result.stdout.split())
    expected = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in _package_files()
    }
    assert expected - found == set()
    assert {"flatminima.theory._derive", "flatminima.validation._runner"} <= found


def test_theory_and_numerics_import_without_torch() -> None:
    code = (
        "import sys\n"
        "class Block:\n"  # any `import torch` now raises ImportError, as if not installed
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import flatminima, flatminima.theory, flatminima.numerics, flatminima.cli\n"
        "from flatminima.theory import derive_escape_time\n"
        "from flatminima.numerics import escape_time, mfpt_1d, simulate_escape\n"
        "d = derive_escape_time('sgd', 2, 'ito'); d.compile('mpmath'); d.compile('numpy')\n"
        "escape_time('white', hess_min=2, hess_saddle=-1, barrier=1, diffusion='0.05')\n"
        "simulate_escape(lambda x: x, start=[0.0], diffusion=1.0, step=0.1, max_steps=5,\n"
        "                escaped=lambda x: x[:, 0] > 9)\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_public_names() -> None:
    from flatminima import theory

    for name in ("derive_escape_time", "scaling_law", "Derivation", "CompiledFormula"):
        assert name in theory.__all__ and hasattr(theory, name)
    assert flatminima.__version__
    assert issubclass(flatminima.FlatMinimaError, ValueError)


@pytest.mark.parametrize(
    "module",
    [
        "flatminima.errors",
        "flatminima.theory._conventions",
        "flatminima.theory._derive",
        "flatminima.theory._scaling",
        "flatminima.theory._combine",
        "flatminima.numerics._escape_time",
        "flatminima.numerics._mfpt",
        "flatminima.numerics._simulate",
        "flatminima.numerics._budget",
        "flatminima.validation._custom_landscape",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0


# --- built distributions: a wheel and an sdist install and work outside the repository ---

_SMOKE = """
import json, math, sys
from pathlib import Path
import flatminima, flatminima.theory as T, flatminima.numerics as N, flatminima.validation as V
r = N.escape_time("white", hess_min=2, hess_saddle=-1, barrier=1, diffusion="0.05")
law = T.scaling_law(T.derive_escape_time("white", 1, "ito"), "sharpness")
# the derivations shipped precomputed are installed, and their key fits the installed sources
from flatminima.theory import _shipped
from flatminima.theory._conventions import interpretation_alpha, parse_dim
shipped = [
    _shipped.lookup(_shipped.KIND, (n, parse_dim(d), interpretation_alpha(i), 1))
    for n, d, i in _shipped.COMMON
]
files = sorted(
    str(Path(m.__file__).resolve())
    for name, m in list(sys.modules.items())
    if name.split(".")[0] == "flatminima" and getattr(m, "__file__", None)
)
print(json.dumps({"tau": float(r.tau), "files": files, "law": law.kind,
                  "shipped": [type(d).__name__ for d in shipped],
                  "layers": [T.__name__, N.__name__, V.__name__], "prefix": sys.prefix}))
"""


def _tracked(*folders: str) -> list[str]:
    """The checkout's files under ``folders`` (tracked, or new and not ignored)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:  # not a git checkout (an unpacked sdist): what is on disk
        skip = {"__pycache__", ".venv", "build", "dist", "site", "generated", ".git"}
        return sorted(
            str(p.relative_to(ROOT))
            for folder in folders
            for p in (ROOT / folder).rglob("*")
            if p.is_file()
            and not skip & set(p.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in p.parts)
        )
    return [line for line in listing.stdout.splitlines() if line]


def _backend(hook: str, out: Path, cwd: Path) -> Path:
    """Run a PEP 517 hook of the project's backend (setuptools, no isolation: no network)."""
    code = f"from setuptools import build_meta as b; print(b.{hook}({str(out)!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / result.stdout.split()[-1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist built from the checkout, and the wheel built from the unpacked sdist (as
    `python -m build` does: a file the sdist forgets is missing from the wheel too)."""
    out = tmp_path_factory.mktemp("dist")
    # from a copy of the checkout's files: setuptools would also pack whatever an earlier
    # build listed in ./flatminima.egg-info/SOURCES.txt, hiding a file MANIFEST.in forgets
    checkout = out / "checkout"
    for name in _tracked("."):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    sdist = _backend("build_sdist", out, checkout)
    with tarfile.open(sdist) as tar:
        tar.extractall(out / "unpacked", filter="data")
    (source,) = (out / "unpacked").iterdir()
    wheel = _backend("build_wheel", out, source)
    return {"sdist": sdist, "wheel": wheel}


def _install(dist: Path, venv: Path) -> Path:
    """A fresh venv outside the repository with ``dist`` installed (no deps: those come from
    this environment through a .pth line, appended after the venv's own site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    Path(purelib, "_flatminima_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --ignore-installed: this environment's (editable) flatminima is visible through the .pth
    # line and must be neither used nor touched; the build of an sdist uses its setuptools
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--ignore-installed",
            str(dist),
        ],
        capture_output=True,
        text=True,
        cwd=venv,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(purelib)


def _smoke(venv: Path, purelib: Path) -> None:
    result = _run(_SMOKE, cwd=venv, python=str(venv / "bin" / "python"))
    assert result.returncode == 0, result.stderr[-3000:]

    found = json.loads(result.stdout.splitlines()[-1])
    # Kramers' law for white noise in 1-D, τ = 2π/√(H_a|H_b|) · exp(ΔL/D), independent of the code
    kramers = 2 * math.pi / math.sqrt(2 * 1) * math.exp(1 / 0.05)
    assert found["tau"] == pytest.approx(kramers, rel=1e-10)
    assert found["layers"] == [f"flatminima.{layer}" for layer in LAYERS]
    # every flatminima module came from the install, none from the repository
    assert found["files"] and all(f.startswith(str(purelib.resolve())) for f in found["files"])
    assert not any(f.startswith(str(ROOT)) for f in found["files"])
    for name in _package_files():  # every module and the typing marker are installed
        assert (purelib / name).is_file(), name
    assert (purelib / "flatminima" / "py.typed").is_file()
    assert (purelib / "flatminima" / "theory" / "_derivations.txt").is_file()
    assert found["shipped"] == ["Derivation"] * len(found["shipped"]) and len(found["shipped"]) > 20
    assert (purelib / "flatminima" / "_vendor" / "katex" / "katex.min.js").is_file()
    cli = subprocess.run(
        [str(venv / "bin" / "flatminima"), "--help"], capture_output=True, text=True, cwd=venv
    )
    assert cli.returncode == 0, cli.stderr
    assert "usage: flatminima" in cli.stdout


def test_sdist_ships_every_test_doc_and_benchmark(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = [
        name
        for name in _tracked("tests", "docs", "benchmarks", ".ci")
        if not name.startswith("docs/generated/")
    ]
    assert len([n for n in wanted if n.startswith("tests/") and n.endswith(".py")]) > 20
    assert sorted(set(wanted) - names) == []
    for name in ("Makefile", "mkdocs.yml", "README.md", "CHANGELOG.md", "pyproject.toml"):
        assert name in names
    for source in _package_files().values():
        assert str(source.relative_to(ROOT)) in names
    with zipfile.ZipFile(dists["wheel"]) as whl:
        in_wheel = set(whl.namelist())
    assert set(_package_files()) <= in_wheel
    # the derivations shipped precomputed (package data), in both
    assert "theory/_derivations.txt" in names
    assert "flatminima/theory/_derivations.txt" in in_wheel
    assert not any(name.startswith(("tests/", "theory/", "docs/")) for name in in_wheel)


def test_wheel_installs_and_runs_outside_the_repository(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _smoke(venv, _install(dists["wheel"], venv))


def test_sdist_installs_and_runs_outside_the_repository(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    # pip builds the sdist itself (setuptools from this environment), then installs it
    venv = tmp_path / "venv"
    _smoke(venv, _install(dists["sdist"], venv))
