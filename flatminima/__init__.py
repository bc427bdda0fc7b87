"""flatminima: the density diffusion theory of SGD as formulas, numbers and experiments.

Layers (each importable on its own; torch only under `flatminima.validation`):

- `flatminima.theory` — SymPy derives the escape-time formulas (``derive_escape_time``,
  ``scaling_law``).
- `flatminima.numerics` — mpmath/numpy/scipy evaluation and exact references.
- `flatminima.validation` — PyTorch experiments and the report.

Reference: Z. Xie, I. Sato, M. Sugiyama, "A Diffusion Theory for Deep Learning Dynamics:
Stochastic Gradient Descent Exponentially Favors Flat Minima", ICLR 2021.
"""

from pkgutil import extend_path

# The layers live in the top-level folders theory/, numerics/, validation/ and are installed as
# flatminima.theory, ... (pyproject.toml's package-dir; an editable install links them in
# build/__editable__.*). Run from a source checkout, Python may find this folder first (the
# current directory comes first on sys.path): extend_path adds the installed flatminima folder,
# so the layers still resolve, and resolve to the same files.
__path__ = extend_path(__path__, __name__)

from flatminima.errors import FlatMinimaError, ValidityWarning

__version__ = "0.1.0"

__all__ = ["FlatMinimaError", "ValidityWarning", "__version__"]
