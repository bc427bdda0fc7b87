"""griffe extension for the API page: Sphinx maths roles in docstrings become KaTeX maths.

``:math:`\\tau = ...``` (possibly over several lines) becomes ``$\\tau = ...$``, which
pymdownx.arithmatex hands to the vendored KaTeX; ``.. math::`` blocks become ``$$ ... $$``.
The docstrings themselves keep the Sphinx form (``help()`` and Sphinx users read them as is).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":math:`([^`]+)`", re.DOTALL)


def convert(text: str) -> str:
    """The docstring text with every ``:math:`...``` role as ``$...$`` on one line."""
    return _ROLE.sub(lambda m: "$" + " ".join(m.group(1).split()) + "$", text)


class MathRoles(griffe.Extension):
    """Rewrite maths roles as each object's docstring is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":math:" in obj.docstring.value:
            obj.docstring.value = convert(obj.docstring.value)
