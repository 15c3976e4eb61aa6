"""Whether what an expression gives can be written to an Avro field, said before any record is.

The serializer would otherwise decide on the first record: a string into an ``int`` fails
the processor then, and a double into an ``int`` is silently truncated (1.23 becomes 1).
CEL has no static types, so a spec's output expressions are run against samples of every
situation the processor meets (each level, a roll-up missing from the reference data, the
measures at 0 and at 1) and each value is fitted here to its field's type: its base types
(``int`` takes a 32-bit int, ``long``, ``float`` and ``double`` any int, only ``float`` and
``double`` a double), its enum symbols, and whether it may be null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dataplatform.products.validation import INT_RANGE

NUMBERS = {"int", "long", "float", "double"}


@dataclass(frozen=True)
class AvroKind:
    """What an Avro field type accepts, as expressions' values see it."""

    bases: frozenset[str]                 # primitive names; "enum" for an enum; "other" for the rest
    symbols: tuple[str, ...] | None       # an enum's symbols
    nullable: bool
    shown: str                            # the type as written in entity.avsc


def named_types(fields: list[dict]) -> dict[str, dict]:
    """Named types defined in a record's fields (an enum used twice is named the second time)."""
    named: dict[str, dict] = {}

    def walk(schema: Any) -> None:
        if isinstance(schema, list):
            for branch in schema:
                walk(branch)
        elif isinstance(schema, dict):
            if schema.get("name") and schema.get("type") in ("enum", "fixed", "record"):
                named[schema["name"]] = schema
            walk(schema.get("type"))
    for f in fields:
        walk(f["type"])
    return named


def avro_kind(schema: Any, named: dict[str, dict]) -> AvroKind:
    bases: set[str] = set()
    symbols, nullable = None, False
    for branch in schema if isinstance(schema, list) else [schema]:
        if branch == "null":
            nullable = True
            continue
        if isinstance(branch, str) and branch in named:
            branch = named[branch]
        if isinstance(branch, dict):
            kind = branch.get("type")
            logical = branch.get("logicalType")
            if kind == "enum":
                bases.add("enum")
                symbols = tuple(branch["symbols"])
            elif isinstance(kind, str) and kind in NUMBERS | {"string", "boolean"} and logical != "decimal":
                bases.add(kind)
            else:
                bases.add("other")
        else:
            bases.add(str(branch))
    return AvroKind(frozenset(bases), symbols, nullable, json.dumps(schema))


def misfit(value: Any, kind: AvroKind) -> tuple[str, str] | None:
    """Why ``value`` cannot be written to a field of ``kind``, and the fix (None: it can)."""
    if value is None:
        if kind.nullable:
            return None
        return ("can be null, but the field is not nullable",
                'make the field nullable (["null", ...] with "default": null) in entity.avsc, '
                'or give a value for null, e.g. `group.region != null ? group.region : ""`')
    if isinstance(value, bool):
        ok = "boolean" in kind.bases
    elif isinstance(value, int):
        ok = bool(kind.bases & {"long", "float", "double"}) or ("int" in kind.bases and INT_RANGE[0] <= value <= INT_RANGE[1])
    elif isinstance(value, float):
        if kind.bases & {"int", "long"} and not kind.bases & {"float", "double"}:
            return ("gives a double, but the field is an integer: writing it would drop the fraction",
                    "convert it on purpose with int(...), or make the field a double")
        ok = bool(kind.bases & {"float", "double"})
    elif isinstance(value, str):
        if "string" not in kind.bases and kind.symbols is not None and value not in kind.symbols:
            return (f"gives {value!r}, which is not a symbol of the field's enum ({', '.join(kind.symbols)})",
                    f"add {value!r} to the enum's symbols in entity.avsc (every level the spec produces needs "
                    "one), or give one of its symbols")
        ok = "string" in kind.bases or kind.symbols is not None
    else:
        ok = False
    if ok:
        return None
    return (f"gives {cel_type(value)} {value!r}, but the field is {kind.shown}",
            "convert it (string(x), int(x), double(x)) or change the field's type in entity.avsc")


def cel_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "double", str: "string"}.get(type(value), type(value).__name__)
