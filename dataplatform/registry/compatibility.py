"""Schema evolution rules, decided by Apache Avro's own reader/writer checker.

Confluent's levels map onto reader/writer pairs: BACKWARD means the new schema (reader) can
read data written with the old one (writer); FORWARD means old readers can read data written
with the new schema; FULL is both. ``*_TRANSITIVE`` levels check every earlier version, the
others only the latest. Using ``avro.compatibility`` rather than home-grown rules keeps the
verdicts identical to the Avro specification's resolution rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from dataplatform.registry.errors import InvalidCompatibilityLevel


class CompatibilityLevel(str, Enum):
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @classmethod
    def parse(cls, value: object) -> "CompatibilityLevel":
        """Case-insensitive; raises 42203 ``InvalidCompatibilityLevel`` for anything else."""
        if isinstance(value, str):
            try:
                return cls(value.strip().upper())
            except ValueError:
                pass
        raise InvalidCompatibilityLevel(value)

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def checks_backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def checks_forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD


def _describe(kind: str, reader_role: str, writer_role: str, result) -> str:
    """One readable message naming what is wrong and where (JSON-pointer-like locations).

    Avro keeps messages and locations as sets, so they are listed rather than paired.
    """
    kinds = ", ".join(sorted({i.value.upper() for i in result.incompatibilities})) or "INCOMPATIBLE"
    where = ", ".join(sorted(result.locations))
    what = "; ".join(sorted(result.messages))
    if any(i.value == "reader_field_missing_default_value" for i in result.incompatibilities):
        what = (f"field(s) {what} in the {reader_role} have no default value and are missing from "
                f"the {writer_role}")
    return f"{kind}: {kinds} at '{where}': {what} [reader: {reader_role}, writer: {writer_role}]"


def _pair(reader: avro.schema.Schema, writer: avro.schema.Schema, kind: str, reader_role: str,
          writer_role: str) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return [_describe(kind, reader_role, writer_role, result)]


def check(new: avro.schema.Schema, existing: Sequence[tuple[int, avro.schema.Schema]],
          level: CompatibilityLevel) -> list[str]:
    """Messages explaining why ``new`` breaks ``level`` against ``existing`` (empty: compatible).

    ``existing`` is ``(version, parsed schema)`` oldest first; the caller passes only the
    latest for non-transitive levels, or all of them for transitive ones.
    """
    if level is CompatibilityLevel.NONE:
        return []
    messages: list[str] = []
    for version, old in existing:
        old_role = f"version {version}"
        if level.checks_backward:
            messages += _pair(new, old, "BACKWARD", "new schema", old_role)
        if level.checks_forward:
            messages += _pair(old, new, "FORWARD", old_role, "new schema")
    return messages
