"""The numerics layer (mpmath, numpy, scipy): evaluation, exact first-passage references and
Monte Carlo escape. Not implemented yet (issue 3); importing it needs no torch."""

__all__: list[str] = []
