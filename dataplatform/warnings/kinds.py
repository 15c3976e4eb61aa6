"""Each kind of warning the platform raises, read from the derivation specs.

Every derivation names a warnings product and says how each field of its records is
computed. That is all the live warnings side needs to show any kind of warning without
knowing its field names: the group's readable name is the field computed as ``group.name``,
its level the field computed as ``group.level`` (or the spec's one level), and what a rule
has and needs are the fields computed as the rule's ``have`` and ``need`` measures, shown
with the rule's own words ("bookings" and "hearings", not "supply" and "demand").
A warning's group code is its ``warning_id`` without the ``:<rule_id>`` the processor
appends, so no field is needed for it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dataplatform.derivations.loading import load_derivations
from dataplatform.derivations.spec import Derivation, Rule
from dataplatform.products.product import get_product


@dataclass(frozen=True)
class Measure:
    """The record field holding one side of a rule, and the words to show it with."""

    field: str
    label: str   # the measure's name, as the rule's message uses it (e.g. "demand", "bookings")
    unit: str    # what is counted (e.g. "people", "interpreters"); the label when the rule gives none


@dataclass(frozen=True)
class WarningKind:
    """One warnings product and how its records read as warnings on the page."""

    product: str
    title: str                   # the warnings product's title, e.g. "Interpreter shortage warnings"
    description: str             # the derivation's, e.g. "Court hearings in the coming week that need ..."
    derivation: str
    base_level: str              # the level of the spec's groups (roll-ups are levels above it)
    figures_product: str
    fields: frozenset[str]       # the fields the spec computes (besides the core every warning has)
    name_field: str | None
    level_field: str | None
    rules: dict[str, tuple[Measure, Measure]]   # rule id -> (have, need)

    def group_code(self, record: dict) -> str:
        suffix = f":{record['rule_id']}"
        warning_id = record["warning_id"]
        return warning_id[:-len(suffix)] if warning_id.endswith(suffix) else warning_id

    def measures(self, rule_id: str) -> tuple[Measure, Measure] | None:
        return self.rules.get(rule_id) or next(iter(self.rules.values()), None)

    def row(self, record: dict) -> dict[str, Any]:
        """The columns every kind shares, from one warnings record."""
        code = self.group_code(record)
        have, need = self.measures(record["rule_id"]) or (None, None)
        return {"product": self.product, "group_code": code,
                "group_name": (record.get(self.name_field) if self.name_field else None) or code,
                "group_level": (record.get(self.level_field) if self.level_field else None) or self.base_level,
                "have": record.get(have.field) if have else None, "need": record.get(need.field) if need else None}


def _field_computed_as(derivation: Derivation, source: str) -> str | None:
    return next((name for name, expression in derivation.warnings.fields if expression.source.strip() == source), None)


def _measures(derivation: Derivation, rule: Rule) -> tuple[Measure, Measure] | None:
    have = _field_computed_as(derivation, rule.have.source.strip())
    need = _field_computed_as(derivation, rule.need.source.strip())
    if have is None or need is None:
        return None
    return (Measure(have, rule.have.source, rule.have_unit or rule.have.source),
            Measure(need, rule.need.source, rule.need_unit or rule.need.source))


def kind_of(derivation: Derivation) -> WarningKind:
    product = derivation.warnings.product
    try:
        title = get_product(product).manifest.title or product
    except KeyError:
        title = product
    rules = {r.id: m for r in derivation.rules if (m := _measures(derivation, r))}
    return WarningKind(product=product, title=title, description=derivation.description.strip(),
                       derivation=derivation.name, base_level=derivation.groups.level,
                       figures_product=derivation.figures.product,
                       fields=frozenset(name for name, _ in derivation.warnings.fields),
                       name_field=_field_computed_as(derivation, "group.name"),
                       level_field=_field_computed_as(derivation, "group.level"), rules=rules)


@lru_cache(maxsize=1)
def warning_kinds() -> dict[str, WarningKind]:
    """Every kind of warning, by warnings product, in the order the specs are found."""
    return {d.warnings.product: kind_of(d) for d in load_derivations().values()}


def kind_for(product: str) -> WarningKind:
    kinds = warning_kinds()
    if product not in kinds:
        raise KeyError(f"no derivation declares the warnings product {product!r}; "
                       f"known: {', '.join(kinds) or 'none'}")
    return kinds[product]


def recognise(record: dict) -> WarningKind | None:
    """The kind whose fields the record has (for a topic read without knowing its product)."""
    return next((k for k in warning_kinds().values() if k.fields <= record.keys()), None)


def plain(value: Any) -> Any:
    """A record value as JSON has it: times and dates in ISO 8601."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value
