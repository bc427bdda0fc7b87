"""The package face: the layer mapping, torch-free imports, doctests, the public surface."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import flatminima

ROOT = Path(__file__).resolve().parents[1]


def test_layers_map_to_the_top_level_folders() -> None:
    for layer in ("theory", "numerics", "validation"):
        module = importlib.import_module(f"flatminima.{layer}")
        assert Path(module.__file__).resolve().parent == (ROOT / layer).resolve()


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
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
