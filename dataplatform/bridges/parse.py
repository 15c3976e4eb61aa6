"""From a ``bridge.yaml`` document to a checked :class:`~dataplatform.bridges.spec.Bridge`.

As for derivation specs (:mod:`dataplatform.derivations.parse`): the JSON Schema
(``schemas/bridge.schema.json``) first, then every name against the product it feeds, then
each mapping's expressions compiled with :mod:`dataplatform.derivations.expressions` and run
on the mapping's ``example``, whose entity must pass the product's schema. So a typo, a
field the product does not have, a field no expression sets or a wrong type is refused by
``schemas check`` with the file, the place and the fix, never met on the thousandth message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cel

from dataplatform.bridges.mapping import MappingError, context_of, entity_of, position_of
from dataplatform.bridges.spec import OPS, Bridge, EventMapping
from dataplatform.derivations.expressions import ExpressionError, compile_expression
from dataplatform.derivations.shape import schema_problems
from dataplatform.derivations.spec import SpecError
from dataplatform.products.product import PACKAGE_SCHEMAS, DataProduct
from dataplatform.products.validation import RecordValidationError

SCHEMA = json.loads((PACKAGE_SCHEMAS / "bridge.schema.json").read_text())
DOCS = "see docs/bridges.md"
EXAMPLE_TIME = "2026-12-05T10:15:30+00:00"
EXAMPLE_MESSAGE_ID = "00000000-0000-4000-8000-000000000000"


def example_event(event_type: str, version: int, example: dict) -> dict[str, Any]:
    """The domain event a mapping's ``example`` stands for: the standard fields filled in."""
    return {"eventType": event_type, "version": version, "occurredAt": example.get("occurredAt", EXAMPLE_TIME),
            "description": "example", "detailUrl": "https://example.invalid/detail",
            "additionalInformation": example.get("additionalInformation", {}),
            "personReference": example.get("personReference", {"identifiers": []})}


class _Parser:
    def __init__(self, file: Path, product: DataProduct) -> None:
        self.file, self.product = file, product
        self.types = {f["name"]: f["type"] for f in product.entity_fields()}
        self.problems: list[SpecError] = []

    def fail(self, where: str, problem: str, fix: str = "") -> None:
        self.problems.append(SpecError(self.file, where, problem, fix))

    def expression(self, source: str, where: str, samples: dict):
        try:
            return compile_expression(source, samples)
        except ExpressionError as exc:
            self.fail(where, f"{source!r}: {exc}", f"{DOCS}, 'Expressions'; the example is what it was checked on")
            return None

    def event(self, i: int, raw: dict) -> EventMapping | None:
        at = f"events[{i}]"
        versions = tuple(raw.get("versions", [1]))
        example = raw["example"]
        event = example_event(raw["type"], versions[0], example)
        reads_detail = any("detail" in _names(s) for s in [*raw["fields"].values(), raw.get("position", "")])
        if reads_detail and "detail" not in example:
            self.fail(f"{at}.example", "the expressions read detail but the example has none",
                      "add example.detail: what the event's detailUrl returns")
        samples = context_of(event, example.get("detail"))
        for name in raw["fields"]:
            if name not in self.types:
                self.fail(f"{at}.fields.{name}", f"{self.product.name}'s schema has no field {name!r}",
                          f"its fields: {', '.join(self.types)}")
        missing = [f["name"] for f in self.product.entity_fields()
                   if f["name"] not in raw["fields"] and "default" not in f]
        if missing:
            self.fail(f"{at}.fields", f"{self.product.name}'s schema has field(s) {', '.join(missing)} that no "
                      "expression sets", "add an expression for each (the event, or its detail, must say it)")
        fields = [(name, self.expression(source, f"{at}.fields.{name}", samples))
                  for name, source in raw["fields"].items() if name in self.types]
        position = self.expression(raw.get("position", "event.occurredAt"), f"{at}.position", samples)
        if position is None or any(e is None for _, e in fields) or missing:
            return None
        mapping = EventMapping(raw["type"], versions, OPS[raw["op"]], position, tuple(fields), reads_detail)  # type: ignore[arg-type]
        self.check_example(at, mapping, samples)
        return mapping

    def check_example(self, at: str, mapping: EventMapping, context: dict) -> None:
        try:
            position_of(mapping.position(context), EXAMPLE_MESSAGE_ID)
        except MappingError as exc:
            self.fail(f"{at}.position", f"on the example: {exc}", "give an ISO-8601 timestamp or an integer")
        try:
            self.product.validate_entity(entity_of(mapping, context, self.types))
        except (MappingError, RecordValidationError) as exc:
            self.fail(f"{at}.example", f"the example does not make a valid {self.product.name}: {exc}",
                      "fix the expressions (or the example, if it is not what the service sends)")


def _names(source: str) -> set[str]:
    """The top-level names an expression reads, as far as ``reads detail`` needs to know."""
    try:
        return set(cel.compile(source).variables())
    except ValueError:
        return set()


def parse(doc: Any, file: Path, products: dict[str, DataProduct]) -> tuple[Bridge | None, list[SpecError]]:
    """The bridge in ``doc`` and every problem found (None when there is any)."""
    problems = schema_problems(doc, file, SCHEMA, "bridge.schema.json")
    if problems:
        return None, problems
    name = doc["product"]
    if name not in products:
        return None, [SpecError(file, "product", f"no data product named {name!r}",
                                f"known: {', '.join(sorted(products))}")]
    product = products[name]
    p = _Parser(file, product)
    if file.parent.resolve() != product.folder.resolve():
        p.fail("product", f"{name}'s folder is {product.folder}, not this file's",
               "keep bridge.yaml in the folder of the product it feeds")
    types = [raw["type"] for raw in doc["events"]]
    repeated = sorted({t for t in types if types.count(t) > 1})
    if repeated:
        p.fail("events", f"eventType(s) {', '.join(repeated)} mapped more than once",
               "map each eventType once; list its versions in versions")
    events = [m for i, raw in enumerate(doc["events"]) if (m := p.event(i, raw))]
    if p.problems:
        return None, p.problems
    source = doc["source"]
    return Bridge(name, file, str(doc.get("description", "")).strip(), source["system"], source["queue"],
                  source.get("topic"), source.get("unknown_event_types", "dead-letter") == "ignore",
                  tuple(events)), []
