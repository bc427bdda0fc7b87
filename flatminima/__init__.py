"""flatminima: the density diffusion theory of SGD as formulas, numbers and experiments.

Layers (each importable on its own; torch only under `flatminima.validation`):

- `flatminima.theory` — SymPy derives the escape-time formulas (``derive_escape_time``,
  ``scaling_law``).
- `flatminima.numerics` — mpmath/numpy/scipy evaluation and exact references.
- `flatminima.validation` — PyTorch experiments and the report.

Reference: Z. Xie, I. Sato, M. Sugiyama, "A Diffusion Theory for Deep Learning Dynamics:
Stochastic Gradient Descent Exponentially Favors Flat Minima", ICLR 2021.
"""

from flatminima.errors import FlatMinimaError, ValidityWarning

__version__ = "0.1.0"

__all__ = ["FlatMinimaError", "ValidityWarning", "__version__"]
