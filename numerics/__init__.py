"""The numerics layer (mpmath, numpy, scipy): evaluation of the derived formulas at any
precision, exact first-passage references and Monte Carlo escape. Needs no torch.

Public names
------------
escape_time, escape_time_batch, log_escape_time
    The theory layer's formulas evaluated from Hessian matrices (mpmath, any precision) and on
    arrays for sweeps (log τ, numpy or torch).
mfpt_1d, splitting_probability
    Exact 1-D references at any precision.
VerificationCheck
    One check made by ``verify=True`` (listed in the result's ``checks``).
minimum_action_path, landscape_escape_time
    Any landscape (a SymPy or torch loss) and any noise D(θ): the quasi-potential barrier and
    the minimum-action path (gMAM), and the escape time with the non-reversible
    Eyring–Kramers prefactor (Bouchet–Reygner).
mfpt_2d
    2-D reference: the backward Kolmogorov equation on refined grids.
landscape_case, LandscapeCase, LANDSCAPE_CASES
    The test landscapes (double well, Styblinski–Tang) declared once: SymPy loss, array
    callables, critical points and exact references, for experiments, tests, docs, benchmarks.
work_budget
    A ``with`` block that raises the budget of estimated work per call (default 600 s).
simulate_escape
    Batched Monte Carlo escapes (Euler–Maruyama, which with step = η is the discrete SGD /
    white-noise GD update), numpy or torch.
"""

from flatminima._lazy import lazy_names, refuse_source_folder

# installed as flatminima.numerics; the bare folder would be a second copy of every class
refuse_source_folder(__name__, "numerics")

from typing import TYPE_CHECKING

# What `import flatminima.numerics` loads: the escape-time evaluation (the common call) and the
# work budget. The other public names are imported on first use (PEP 562 module __getattr__,
# `_LAZY` below): the landscape, path, MFPT, Monte Carlo and verification modules, their
# scipy pieces, and the theory layer's combined formulas. `from flatminima.numerics import X`,
# `dir()` and `__all__` see every name; tests/numerics/test_cold_start.py checks what an
# import loads.
from ._budget import work_budget
from ._eigen import EigenData
from ._escape_time import EscapeTime, escape_time, escape_time_batch, log_escape_time

if TYPE_CHECKING:  # type checkers and the API docs read the names from here
    from ._action import MinimumActionPath, minimum_action_path
    from ._cases import LANDSCAPE_CASES, LandscapeCase, landscape_case
    from ._landscape import LandscapeEscapeTime, landscape_escape_time
    from ._mfpt import MFPTResult, SplittingResult, mfpt_1d, splitting_probability
    from ._mfpt2d import MFPT2DResult, mfpt_2d
    from ._simulate import EscapeSimulation, simulate_escape
    from ._verify import VerificationCheck

#: Public names imported on first use, by the private module that gives them.
_LAZY = {
    "_action": ("MinimumActionPath", "minimum_action_path"),
    "_cases": ("LANDSCAPE_CASES", "LandscapeCase", "landscape_case"),
    "_landscape": ("LandscapeEscapeTime", "landscape_escape_time"),
    "_mfpt": ("MFPTResult", "SplittingResult", "mfpt_1d", "splitting_probability"),
    "_mfpt2d": ("MFPT2DResult", "mfpt_2d"),
    "_simulate": ("EscapeSimulation", "simulate_escape"),
    "_verify": ("VerificationCheck",),
}


__all__ = [
    "LANDSCAPE_CASES",
    "EigenData",
    "EscapeSimulation",
    "EscapeTime",
    "LandscapeCase",
    "LandscapeEscapeTime",
    "MFPT2DResult",
    "MFPTResult",
    "MinimumActionPath",
    "SplittingResult",
    "VerificationCheck",
    "escape_time",
    "escape_time_batch",
    "landscape_case",
    "landscape_escape_time",
    "log_escape_time",
    "mfpt_1d",
    "mfpt_2d",
    "minimum_action_path",
    "simulate_escape",
    "splitting_probability",
    "work_budget",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
