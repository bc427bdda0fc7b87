"""The validation layer (torch, matplotlib): experiments, sweeps, fits, figures and the report.

Today it holds the report's theory sections (:mod:`flatminima.validation.report`); the
experiments arrive with issue 4.
"""

__all__: list[str] = []
