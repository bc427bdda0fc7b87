"""The numerics layer (mpmath, numpy, scipy): evaluation of the derived formulas at any
precision, exact first-passage references and Monte Carlo escape. Needs no torch.

Public names
------------
escape_time, escape_time_batch, log_escape_time
    The theory layer's formulas evaluated from Hessian matrices (mpmath, any precision) and on
    arrays for sweeps (log τ, numpy or torch).
mfpt_1d, splitting_probability
    Exact 1-D references at any precision.
mfpt_2d
    2-D reference: the backward Kolmogorov equation on refined grids.
simulate_escape
    Batched Monte Carlo escapes (Euler–Maruyama, which with step = η is the discrete SGD /
    white-noise GD update), numpy or torch.
"""

from ._eigen import EigenData
from ._escape_time import EscapeTime, escape_time, escape_time_batch, log_escape_time
from ._mfpt import MFPTResult, SplittingResult, mfpt_1d, splitting_probability
from ._mfpt2d import MFPT2DResult, mfpt_2d
from ._simulate import EscapeSimulation, simulate_escape

__all__ = [
    "EigenData",
    "EscapeSimulation",
    "EscapeTime",
    "MFPT2DResult",
    "MFPTResult",
    "SplittingResult",
    "escape_time",
    "escape_time_batch",
    "log_escape_time",
    "mfpt_1d",
    "mfpt_2d",
    "simulate_escape",
    "splitting_probability",
]
