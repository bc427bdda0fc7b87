"""The experiment registry: one registered object per experiment.

An experiment is an [`Experiment`][flatminima.validation.Experiment]: a name, the prediction it
tests, the sweep points it runs (frozen [`Point`][flatminima.validation.Point] dataclasses whose
``run`` computes a typed result), an analysis that turns points and results into a typed
[`Analysis`][flatminima.validation.Analysis] (its cases and a verdict), its figures and its
section of the report. The runner, the sweep, the report, the plots and the command line all read
this registry; nothing else lists experiments.

Resume key. A point is stored under the canonical JSON text of ``point.to_dict()``:
``{"task": TASK, <every field whose value is not None>}``, plus ``"version": VERSION`` once a
point type's ``VERSION`` is above 1. A field added later with [`added`][flatminima.validation.added]
(a default) is left out of the key while it holds that default, so adding a field does not
invalidate stored results; bumping ``VERSION`` does, deliberately.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, dataclass_transform

from flatminima.errors import ParameterError
from flatminima.theory._conventions import registered_name

__all__ = [
    "Analysis",
    "Case",
    "Experiment",
    "Point",
    "Result",
    "Row",
    "added",
    "experiment_names",
    "get_experiment",
    "point_from_dict",
    "register",
    "rows_of",
]

JSONValue = Any
"""A value read from or written to JSON (the store and the results files): the one boundary
where untyped values appear; every type below converts at it with ``to_dict``/``from_dict``."""

JSONRecord = dict[str, JSONValue]
"""A JSON object at that boundary: what a ``to_dict`` returns, a line of ``points.jsonl``, a
loaded ``results.json``. The boundaries that use it are listed in docs/architecture.md
("Typed data, JSON at the edges")."""


def added(default: object) -> Any:
    """A point field added after its type's first version: left out of the resume key while it
    holds ``default``, so stored results stay valid (bump ``VERSION`` to invalidate them)."""
    return field(default=default, metadata={"added": True})


def label(default: object = None) -> Any:
    """A label field: says where a point sits in its experiment's sweep (the experiment reads
    it back to group the results; ``run`` does not). It is part of the resume key like any
    field; ``to_dict`` lists it after the point's own fields, before the common ones."""
    return field(default=default, metadata={"label": True})


def _json(value: object) -> JSONValue:
    """Dataclasses (through their ``to_dict``), tuples and mappings as JSON-able values."""
    to_dict = getattr(value, "to_dict", None)
    if dataclasses.is_dataclass(value) and callable(to_dict):
        return to_dict()
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return value


def _from_json(cls: type[Any], data: Mapping[str, JSONValue]) -> Any:
    """An instance of dataclass ``cls`` from a mapping (unknown keys ignored; lists become
    tuples, the form the frozen dataclasses use)."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**kwargs)


class Record:
    """Mixin: ``to_dict`` (every field, JSON-able) and ``from_dict`` for a dataclass."""

    def to_dict(self) -> JSONRecord:
        assert dataclasses.is_dataclass(self)
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> Any:
        return _from_json(cls, data)


class Result(Record):
    """What a point's ``run`` returns: a dataclass stored as ``to_dict()`` in ``points.jsonl``
    and read back with ``from_dict``. ``seconds`` (the time the point took) is set by the
    sweep."""


_POINT_TYPES: dict[str, type[Point]] = {}


@dataclass(frozen=True, kw_only=True)
class Point(Record):
    """One computation of a sweep, everything it needs, as a frozen dataclass (built with
    keywords). Every point has a ``seed``, and may say which ``experiment`` it belongs to and
    the torch ``device`` it runs on; subclasses add their own fields and set ``TASK`` (a unique
    name, stored in the key), ``RESULT`` (the [`Result`][flatminima.validation.Result] type
    ``run`` returns) and may raise ``VERSION``."""

    TASK: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    RESULT: ClassVar[type[Result]]

    seed: int
    experiment: str | None = None
    device: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("TASK"):
            _POINT_TYPES[cls.TASK] = cls

    def run(self) -> Result:
        """Compute the point (in a worker process: keep it a pure function of the fields)."""
        raise NotImplementedError

    def to_dict(self) -> JSONRecord:
        """The resume key's content (see the module docstring)."""
        out: JSONRecord = {"task": self.TASK}
        # the subclass's fields first, then its labels, then the common ones (results.csv's
        # column order; a label declared on a shared base comes first among the fields)
        for f in sorted(fields(self), key=_column):
            value = getattr(self, f.name)
            if value is None or (f.metadata.get("added") and value == f.default):
                continue
            out[f.name] = _json(value)
        if self.VERSION > 1:
            out["version"] = self.VERSION
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> Any:
        if data.get("version", 1) != cls.VERSION:
            raise ParameterError(
                "point", f"a {cls.TASK!r} point of version {cls.VERSION}", data.get("version", 1)
            )
        return _from_json(cls, data)

    def key(self) -> str:
        """The identity under which the point's result is stored."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def result_from(self, record: Mapping[str, JSONValue]) -> Any:
        """This point's typed result from its stored record."""
        return self.RESULT.from_dict(record)


_COMMON_FIELDS = frozenset(f.name for f in fields(Point))


def _column(f: dataclasses.Field[Any]) -> int:
    """Where a point's field goes in its dict: own fields (0), labels (1), common fields (2)."""
    return 2 if f.name in _COMMON_FIELDS else 1 if f.metadata.get("label") else 0


@dataclass(frozen=True, kw_only=True)
class SweepLabels:
    """The labels that the escape experiments' sweeps share, declared once for the point types
    that carry them (`RatePoint`, `OccupationPoint`, `NetworkRatePoint`): the step multiplier
    ``k`` of a sharpness sweep, the ``B_over_eta`` of a selection sweep and ``which`` minimum
    (``"flat"`` or ``"sharp"``) a selection point starts in. None (the default) is left out of
    the resume key."""

    k: float | None = label()
    B_over_eta: float | None = label()
    which: str | None = label()


_P = TypeVar("_P", bound=Point)


@dataclass_transform(frozen_default=True)
def point_type(task: str, result: type[Result]) -> Callable[[type[_P]], type[_P]]:
    """Class decorator that declares a point type in one line: a frozen dataclass whose
    ``TASK`` is ``task`` and ``RESULT`` is ``result``, registered under ``task`` (the same as
    ``@dataclass(frozen=True)`` with the two class variables set in the class body)."""

    def declare(cls: type[_P]) -> type[_P]:
        cls.TASK, cls.RESULT = task, result
        _POINT_TYPES[task] = dataclass(frozen=True)(cls)
        return cls

    return declare


def point_from_dict(data: Mapping[str, JSONValue]) -> Point:
    """The typed point a stored or hand-written dict describes (dispatch on ``"task"``)."""
    _load_builtins()
    task = data.get("task") if isinstance(data, Mapping) else None
    point: Point = _POINT_TYPES[registered_name("task", task, _POINT_TYPES)].from_dict(data)
    return point


@dataclass
class Case(Record):
    """One case of an experiment (a landscape, a model, a noise): what was expected, whether
    it held. Subclasses add their numbers and say how a case is named and summarised."""

    expected: str
    held: bool

    def to_dict(self) -> JSONRecord:
        """Every field, except optional ones (with a default) that hold their default."""
        return {
            f.name: _json(getattr(self, f.name))
            for f in fields(self)
            if f.default is dataclasses.MISSING or getattr(self, f.name) != f.default
        }

    @property
    def label(self) -> str:
        """Where the case ran, such as ``double-well/sgd``."""
        return ""

    @property
    def detail(self) -> str:
        """The measured outcome in one line (the report's "measured" column)."""
        return ""

    @property
    def summary(self) -> str:
        """One line for the progress output and the verdict."""
        verdict = "as predicted" if self.held else "NOT as predicted"
        return f"{self.label}: {self.detail} ({verdict})"


C = TypeVar("C", bound=Case)


@dataclass
class Analysis(Record, Generic[C]):
    """An experiment's analysis: its cases, its per-point rows (``results.csv``) and, once the
    runner has finished, the verdict, figures and timing."""

    cases: list[C]
    rows: Sequence[Record] = field(default_factory=list)
    experiment: str = ""
    prediction: str = ""
    quick: bool = False
    seconds: float = 0.0
    figures: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        """Whether every case came out as predicted."""
        return all(c.held for c in self.cases)

    @property
    def summary(self) -> str:
        return "; ".join(c.summary for c in self.cases)

    def to_dict(self) -> JSONRecord:
        """``results.json``: the cases and extras, the verdict, figures and timing (no rows)."""
        out = {f.name: _json(getattr(self, f.name)) for f in fields(self) if f.name != "rows"}
        out["held"] = self.held
        out["verdict"] = {"prediction": self.prediction, "held": self.held, "summary": self.summary}
        return out


P = TypeVar("P", bound=Point)
R = TypeVar("R", bound=Result)
A = TypeVar("A", bound=Analysis[Any])


class Experiment(ABC, Generic[P, A]):
    """A registered experiment. Subclasses set ``name`` and ``prediction`` and implement
    ``points`` and ``analyse``; ``figures`` and ``report_body`` have defaults."""

    name: ClassVar[str]
    prediction: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def points(self, quick: bool, device: str) -> list[P]:
        """The sweep: every point, ``quick`` for the reduced version."""

    @abstractmethod
    def analyse(self, points: list[P], results: list[Any]) -> A:
        """Cases and rows from the points and their typed results (same order)."""

    def figures(self, analysis: A, folder: Path) -> list[Path]:
        """Write the figures to ``folder`` (it exists); return their paths."""
        return []

    def report_body(self, analysis: A) -> str:
        """The report section's body (HTML) under the headline; default: a table of cases."""
        from .report import case_table

        return case_table(analysis.cases)


_EXPERIMENTS: dict[str, Experiment[Any, Any]] = {}

#: The modules that register the experiments shipped with flatminima, in report order.
_BUILTIN_MODULES = ("._covariance", "._experiments", "._probe_experiment")
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module, __package__)


E = TypeVar("E", bound=Experiment[Any, Any])


def register(experiment: E) -> E:
    """Add an experiment to the registry (``flatminima validate NAME``, the report, ``"all"``);
    returns it, so that ``FOO = register(Foo())`` reads well. A name already registered is
    replaced."""
    if not isinstance(experiment, Experiment):
        raise ParameterError("experiment", "an Experiment instance", experiment)
    if not isinstance(getattr(experiment, "name", None), str) or not experiment.name:
        raise ParameterError("experiment.name", "a non-empty string", experiment)
    _EXPERIMENTS[experiment.name] = experiment
    return experiment


def experiment_names() -> tuple[str, ...]:
    """Every registered experiment, in registration (report) order."""
    _load_builtins()
    return tuple(_EXPERIMENTS)


def get_experiment(name: str) -> Experiment[Any, Any]:
    """The registered experiment called ``name`` (or one of its aliases)."""
    _load_builtins()
    if isinstance(name, str):
        if name in _EXPERIMENTS:
            return _EXPERIMENTS[name]
        for experiment in _EXPERIMENTS.values():
            if name in experiment.aliases:
                return experiment
    raise ParameterError("experiment", f"one of {sorted(_EXPERIMENTS)}", name)


@dataclass
class Row(Record, Generic[P, R]):
    """A point and its result, side by side (a row of ``results.csv``: the point's fields
    without ``task`` and ``device``, then the result's)."""

    point: P
    result: R

    def to_dict(self) -> JSONRecord:
        head = {k: v for k, v in self.point.to_dict().items() if k not in ("task", "device")}
        return {**head, **self.result.to_dict()}


def rows_of(points: Sequence[P], results: Sequence[R]) -> list[Row[P, R]]:
    """The points beside their results."""
    return [Row(p, r) for p, r in zip(points, results, strict=True)]


def split_by_type(
    points: Sequence[Point], results: Sequence[Any], kind: type[P]
) -> tuple[list[P], list[Any], list[Point], list[Any]]:
    """The points of type ``kind`` with their results, and the others with theirs."""
    mine = [(p, r) for p, r in zip(points, results, strict=True) if isinstance(p, kind)]
    rest = [(p, r) for p, r in zip(points, results, strict=True) if not isinstance(p, kind)]
    return [p for p, _ in mine], [r for _, r in mine], [p for p, _ in rest], [r for _, r in rest]
