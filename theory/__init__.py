"""The theory layer: SymPy derives the escape-time formulas of the density diffusion theory.

Public names
------------
derive_escape_time
    Flux-over-population derivation for white, SGD and loss-dependent noise, any dimension and
    interpretation; returns a [`Derivation`][flatminima.theory.Derivation] with steps, LaTeX and compilers.
NOISE_MODELS, register_noise_model, NoiseModel
    The noise-model registry (declared once, read by every layer) and how to add a model.
INTERPRETATIONS, interpretation_alpha, numeric_alpha
    The interpretations of a state-dependent noise and their α (``numeric_alpha`` refuses the
    symbolic α: what evaluating code reads).
lyapunov_covariance, quasi_potential_hessian, langer_unstable_eigenvalue, quadratic_prefactor
    The quadratic model for any constant diffusion tensor (Lyapunov equation, unstable
    eigenvalue, determinant ratio): the pieces of the general n-D prefactor.
"""

from flatminima._lazy import lazy_names, refuse_source_folder

# installed as flatminima.theory; the bare folder would be a second copy of every class
refuse_source_folder(__name__, "theory")

from typing import TYPE_CHECKING

# What `import flatminima.theory` loads: the escape-time derivation and what it needs. The
# combined formulas (ratios, fractions), the quadratic-model helpers and the scaling laws are
# imported on first use (PEP 562 module __getattr__, `_LAZY` below); `from flatminima.theory
# import X`, `dir()` and `__all__` see every name.
from ._compile import CompiledFormula
from ._conventions import INTERPRETATIONS, NOISE_MODELS, interpretation_alpha, numeric_alpha
from ._derivation import Derivation, Formula
from ._derive import derive_escape_time
from ._noise import NoiseModel, register_noise_model

if TYPE_CHECKING:  # type checkers and the API docs read the names from here
    from ._combine import derive_occupation_ratio, derive_selection_ratio, derive_switch_fraction
    from ._quadratic import (
        langer_unstable_eigenvalue,
        lyapunov_covariance,
        quadratic_prefactor,
        quasi_potential_hessian,
    )
    from ._scaling import ScalingLaw, scaling_law

#: Public names imported on first use, by the private module that gives them.
_LAZY = {
    "_combine": ("derive_occupation_ratio", "derive_selection_ratio", "derive_switch_fraction"),
    "_quadratic": (
        "langer_unstable_eigenvalue",
        "lyapunov_covariance",
        "quadratic_prefactor",
        "quasi_potential_hessian",
    ),
    "_scaling": ("ScalingLaw", "scaling_law"),
}


__all__ = [
    "INTERPRETATIONS",
    "NOISE_MODELS",
    "CompiledFormula",
    "Derivation",
    "Formula",
    "NoiseModel",
    "ScalingLaw",
    "derive_escape_time",
    "derive_occupation_ratio",
    "derive_selection_ratio",
    "derive_switch_fraction",
    "interpretation_alpha",
    "langer_unstable_eigenvalue",
    "lyapunov_covariance",
    "numeric_alpha",
    "quadratic_prefactor",
    "quasi_potential_hessian",
    "register_noise_model",
    "scaling_law",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
