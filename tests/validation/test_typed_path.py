"""The experiment path is typed: no ``dict[str, Any]`` in validation/, and the JSON aliases
(``JSONRecord``, ``JSONValue``) only in the boundary modules docs/architecture.md lists
("Typed data, JSON at the edges"); a probe stage stored in an older, untyped form is
recomputed rather than misread."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
VALIDATION = ROOT / "validation"

# dict/Dict/Mapping/MutableMapping of str to Any, however spelled (spaces, typing.Any)
UNTYPED = re.compile(r"\b(?:dict|Dict|Mapping|MutableMapping)\[\s*str\s*,\s*(?:typing\.)?Any\s*\]")
ALIASES = re.compile(r"\bJSON(?:Record|Value)\b")


def _modules() -> dict[str, str]:
    return {
        f"validation/{p.name}": p.read_text(encoding="utf-8")
        for p in sorted(VALIDATION.glob("*.py"))
    }


def _documented_boundaries() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Typed data, JSON at the edges", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `validation/")]
    return {
        name for row in rows for name in re.findall(r"`(validation/\w+\.py)`", row.split(" | ")[0])
    }


def test_the_pattern_catches_what_it_must() -> None:
    """The check can fail: every spelling of the untyped mapping is caught, typed ones are not."""
    for bad in ("dict[str, Any]", "Dict[str,Any]", "Mapping[str, typing.Any]", "dict[ str , Any ]"):
        assert UNTYPED.search(bad), bad
    for good in ("dict[str, float]", "dict[str, JSONValue]", "JSONRecord", "dict[str, Anything]"):
        assert not UNTYPED.search(good), good


def test_no_untyped_dict_on_the_experiment_path() -> None:
    found = [
        f"{name}:{number}: {line.strip()}"
        for name, text in _modules().items()
        for number, line in enumerate(text.splitlines(), 1)
        if UNTYPED.search(line)
    ]
    assert not found, "\n".join(found)


def test_json_aliases_only_in_the_documented_boundaries() -> None:
    documented = _documented_boundaries()
    assert "validation/_store.py" in documented and "validation/_registry.py" in documented
    missing = sorted(name for name in documented if not (ROOT / name).exists())
    assert not missing, f"docs/architecture.md lists modules that do not exist: {missing}"
    using = {name for name, text in _modules().items() if ALIASES.search(text)}
    undocumented = sorted(using - documented)
    assert not undocumented, (
        f"{undocumented} use JSONRecord/JSONValue but are not listed as JSON boundaries in "
        "docs/architecture.md ('Typed data, JSON at the edges'): type the data, or document why "
        "it is JSON there"
    )


def test_the_aliases_are_declared_once() -> None:
    declared = [
        name
        for name, text in _modules().items()
        if re.search(r"^JSON(?:Record|Value)\s*=", text, flags=re.MULTILINE)
    ]
    assert declared == ["validation/_registry.py"]


def test_a_stage_stored_in_an_older_form_is_recomputed(tmp_path) -> None:
    """The probe's stage store keeps typed stages; a stage stored as a dict (before they were
    typed) with a matching fingerprint is not returned as if it were one: it is recomputed."""
    from flatminima.validation._probe import _NoiseStage, _Stages

    stages = _Stages(tmp_path, "print")
    torch.save(
        {"fingerprint": "print", "value": {"sigma": np.eye(2), "seconds": 1.0}},
        tmp_path / "stage-noise.pt",
    )
    said: list[str] = []
    fresh = _NoiseStage(sigma=np.eye(2) * 3, seconds=2.0)
    got = stages.run("noise", "noise: computing", lambda: fresh, said.append, _NoiseStage)
    assert got is fresh and said == ["noise: computing"]
    # now stored typed: reused, equal to what was computed
    again = stages.run("noise", "noise: computing", lambda: None, said.append, _NoiseStage)  # type: ignore[arg-type,return-value]
    assert isinstance(again, _NoiseStage) and np.array_equal(again.sigma, fresh.sigma)
    assert said[-1] == "noise: reused from the store"
    # another fingerprint: not reused
    assert _Stages(tmp_path, "other").load("noise", _NoiseStage) is None
