"""Derivation specs: a derived data product declared as data, not as a stream processor.

A derived product's folder (``schemas/<domain>/<name>/``) holds, beside its manifest and
Avro schema, a ``derivation.yaml`` saying which products it joins, how their entities are
grouped (a group key, optional roll-ups through reference data), when an entity counts
(CEL predicates, which may use ``today``), which figures to derive and which threshold
rules raise warnings. The spec is checked against ``schemas/derivation.schema.json`` and
then against the products it names (:mod:`.parse`); the result is a :class:`Derivation`
whose expressions are compiled once, ready for the stream processor's compiler
(:mod:`dataplatform.stream_processors`). See docs/derived-products.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.derivations.expressions import Expression

SPEC_FILE = "derivation.yaml"
SEVERITIES = ("NONE", "AMBER", "RED")
TRANSITIONS = ("raised", "escalated", "deescalated", "cleared")
_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
# The fields every warnings (figures) product has, with their Avro types: the processor sets them.
WARNING_CORE = {"warning_id": "string", "rule_id": "string",
                "severity": {"type": "enum", "name": "Severity", "symbols": list(SEVERITIES)},
                "transition": {"type": "enum", "name": "Transition", "symbols": list(TRANSITIONS)},
                "horizon_days": "int", "evidence_at": _MILLIS, "raised_at": ["null", _MILLIS], "message": "string"}
FIGURES_CORE = {"horizon_days": "int", "as_of": _MILLIS}
# Names an expression reads besides the measures; no measure may take one.
RESERVED = frozenset({"group", "today", "horizon_days"})


class SpecError(ValueError):
    """One problem in a spec: the file, the place in it (e.g. ``inputs[1].counts_when``),
    what is wrong and how to fix it."""

    def __init__(self, file: Path | str, where: str, problem: str, fix: str = "") -> None:
        self.file, self.where, self.problem, self.fix = str(file), where, problem, fix
        super().__init__(f"{_shown(file)}: {where or 'spec'}: {problem}" + (f" ({fix})" if fix else ""))


def _shown(file: Path | str) -> str:
    """The file relative to the working directory when it is under it (as a user typed it)."""
    try:
        return str(Path(file).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


@dataclass(frozen=True)
class Input:
    """One source product, the role its counted members play, and how it is grouped."""

    product: str
    role: str
    group_by: tuple[str, ...]
    member_when: Expression
    counts_when: Expression | None
    projection: tuple[str, ...]   # fields carried to the group (read by counts_when and the role's measures)
    dates: frozenset[str]         # the entity's Avro date fields (days since 1970-01-01 in expressions)


@dataclass(frozen=True)
class NamePart:
    """One part of a group's readable name: a key field, looked up in reference data if given."""

    field: str
    reference: str | None = None
    key: str | None = None
    column: str | None = None


@dataclass(frozen=True)
class RollUp:
    """A higher level: each base group's code looked up in reference data (``from`` -> ``to``)."""

    level: str
    reference: str
    from_column: str
    to_column: str
    name_column: str | None = None


@dataclass(frozen=True)
class Groups:
    level: str
    fields: tuple[str, ...]
    name: tuple[NamePart, ...] = ()
    roll_ups: tuple[RollUp, ...] = ()
    noun: str = "groups"

    @property
    def levels(self) -> tuple[str, ...]:
        return (self.level, *(r.level for r in self.roll_ups))


@dataclass(frozen=True)
class Measure:
    """A count of a role's members (``field`` None) or a sum of one of their fields, over the
    members that count; with ``when``, only those for which it holds as well (CEL over the
    member's carried fields, ``today`` and ``horizon_days``, as ``counts_when``)."""

    name: str
    role: str
    field: str | None = None
    when: Expression | None = None


@dataclass(frozen=True)
class Output:
    """A derived product and how each field of its record is computed."""

    product: str
    fields: tuple[tuple[str, Expression], ...]


@dataclass(frozen=True)
class Rule:
    """A threshold rule over two expressions of the measures: coverage = have / need.

    RED below ``red_below``, AMBER below ``amber_below``, not judged while need is under
    ``min_need``; stepping down needs ``clear_margin`` more for ``clear_after`` evaluations
    in a row (hysteresis). Holds in time, as Prometheus' ``for`` and ``keep_firing_for``:
    a level is raised once the figures have called for it for ``raise_for``, and steps down
    once they have been clear of it for ``keep_for`` (durations such as ``30s``, ``5m``)."""

    id: str
    have: Expression
    need: Expression
    applies_to: tuple[str, ...]
    horizon_days: int
    have_unit: str = ""
    need_unit: str = ""
    need_phrase: str = ""
    consequence: str = ""
    min_need: float = 1
    red_below: float = 1.0
    amber_below: float = 1.2
    clear_margin: float = 0.1
    clear_after: int = 1
    raise_for: str = "0s"
    keep_for: str = "0s"
    description: str = ""
    runbook: str = ""   # what to do: a file in the runbook folder, or a link (default: <id>.md)

    @property
    def raise_for_ms(self) -> int:
        return duration_ms(self.raise_for)

    @property
    def keep_for_ms(self) -> int:
        return duration_ms(self.keep_for)


_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def duration_ms(text: str) -> int:
    """``30s`` -> 30000: a duration as the schema allows it (digits, then ms, s, m or h)."""
    digits = text.rstrip("hms")
    return int(digits) * _UNIT_MS[text[len(digits):]]


@dataclass(frozen=True)
class Derivation:
    name: str
    app_id: str
    file: Path
    description: str
    horizon_days: int
    inputs: tuple[Input, ...]
    groups: Groups
    own_measures: tuple[Measure, ...]   # the spec's ``measures:`` (each role's own count comes free)
    derived: tuple[tuple[str, Expression], ...]
    figures: Output
    warnings: Output
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    reference_dir: Path | None = None   # where its reference data is (None: schemas/reference of the products)

    @property
    def input_products(self) -> tuple[str, ...]:
        return tuple(i.product for i in self.inputs)

    @property
    def output_products(self) -> tuple[str, ...]:
        return self.figures.product, self.warnings.product

    @property
    def measures(self) -> tuple[str, ...]:
        """Every measure by name: one count per role, the spec's counts and sums, the derived expressions."""
        return (*(i.role for i in self.inputs), *(m.name for m in self.own_measures), *(name for name, _ in self.derived))

    def rules_for(self, level: str) -> list[Rule]:
        return [r for r in self.rules if level in r.applies_to]
