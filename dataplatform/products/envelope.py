"""The change-event envelope every data product uses, modelled on Debezium.

Product authors write only their entity record (``entity.avsc``); this module wraps it:

    op      c (create), u (update), d (delete), r (snapshot read)
    before  the entity before the change (null for c and r, and for a u whose source says
            only what the entity is now, such as a bridged domain event)
    after   the entity after the change (null for d)
    ts_ms   when the change happened at the source (epoch milliseconds)
    source  system, unique event id, position (monotonically increasing per entity)
    transaction  optional: id, total_order, of the source transaction

The Kafka key is the entity's key field(s) as a string; a delete is followed by a
tombstone (null value) so compacted topics forget the entity.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

OPS = ("c", "u", "d", "r")
ENVELOPE_NAMESPACE = "dataplatform.envelope"


def epoch_ms(value: dt.datetime | int | float | None = None) -> int:
    """Epoch milliseconds (Avro's ``timestamp-millis``) of ``value``: now when None, a
    datetime (as fastavro decodes one) converted, a number taken as milliseconds already."""
    if value is None:
        return int(time.time() * 1000)
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def from_epoch_ms(ms: int | float) -> dt.datetime:
    """The aware UTC datetime of ``ms`` epoch milliseconds (a Kafka or Avro timestamp):
    the inverse of :func:`epoch_ms`."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def envelope_schema(entity_schema: dict, product_name: str, namespace: str) -> dict:
    """The Avro schema of ``product_name``'s change events, wrapping ``entity_schema``."""
    entity = copy.deepcopy(entity_schema)
    entity.setdefault("namespace", namespace)
    entity_ref = f"{entity['namespace']}.{entity['name']}"
    return {
        "type": "record",
        "name": "ChangeEvent",
        "namespace": namespace,
        "doc": f"A change to one {entity['name']} of the {product_name} data product.",
        "fields": [
            {"name": "op", "type": {"type": "enum", "name": "Op", "namespace": ENVELOPE_NAMESPACE,
                                    "symbols": list(OPS)},
             "doc": "c create, u update, d delete, r snapshot read."},
            {"name": "before", "type": ["null", entity], "default": None,
             "doc": "The entity before the change; null for creates and snapshot reads."},
            {"name": "after", "type": ["null", entity_ref], "default": None,
             "doc": "The entity after the change; null for deletes."},
            {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"},
             "doc": "When the change happened at the source."},
            {"name": "source", "type": {
                "type": "record", "name": "Source", "namespace": ENVELOPE_NAMESPACE,
                "fields": [
                    {"name": "system", "type": "string", "doc": "The service that made the change."},
                    {"name": "event_id", "type": "string", "doc": "Unique id of this event; the same on a redelivery."},
                    {"name": "position", "type": "long",
                     "doc": "Monotonically increasing per entity: a later change has a larger position."},
                ]},
             "doc": "Where the change came from."},
            {"name": "transaction", "type": ["null", {
                "type": "record", "name": "Transaction", "namespace": ENVELOPE_NAMESPACE,
                "fields": [
                    {"name": "id", "type": "string"},
                    {"name": "total_order", "type": "long"},
                ]}], "default": None,
             "doc": "The source transaction, when the service has one."},
        ],
    }


def envelope_record(op: str, before: dict | None, after: dict | None, ts_ms: int, system: str, event_id: str,
                    position: int, transaction: dict | None = None) -> dict[str, Any]:
    """The Avro record of one change event: the one place its fields are laid out (the SDK
    builds its own events with it directly, without a :class:`ChangeEvent` per event)."""
    return {"op": op, "before": before, "after": after, "ts_ms": ts_ms,
            "source": {"system": system, "event_id": event_id, "position": position},
            "transaction": transaction}


def entity_of(record: dict) -> dict | None:
    """The entity a change event's record is about: ``before`` for a delete, else ``after``
    (None when the record lacks it). The one reading of "the entity" every consumer shares."""
    return record.get("before") if record.get("op") == "d" else record.get("after")


def event_id_of(record: dict | None) -> str | None:
    """A change event's unique id, from its ``source`` (None for a tombstone or a value
    without one): what a reader de-duplicates on and a sink stores as ``_event_id``."""
    source = record.get("source") if isinstance(record, dict) else None
    return source.get("event_id") if isinstance(source, dict) else None


@dataclass
class ChangeEvent:
    """One change event, before serialization."""

    op: str
    before: dict | None
    after: dict | None
    source_system: str
    position: int
    ts_ms: int = field(default_factory=epoch_ms)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    transaction: dict | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, not {self.op!r}")
        if self.op in ("c", "r") and (self.after is None or self.before is not None):
            raise ValueError(f"op={self.op!r} needs 'after' and no 'before'")
        if self.op == "u" and self.after is None:
            raise ValueError("op='u' needs 'after' ('before' when the source knows it)")
        if self.op == "d" and (self.before is None or self.after is not None):
            raise ValueError("op='d' needs 'before' and no 'after'")

    @property
    def entity(self) -> dict:
        """The entity this event is about (after, or before for a delete)."""
        return self.before if self.op == "d" else self.after  # type: ignore[return-value]

    def to_record(self) -> dict[str, Any]:
        return envelope_record(self.op, self.before, self.after, self.ts_ms, self.source_system, self.event_id,
                               self.position, self.transaction)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ChangeEvent":
        src = record["source"]
        return cls(op=record["op"], before=record["before"], after=record["after"], ts_ms=epoch_ms(record["ts_ms"]),
                   source_system=src["system"], event_id=src["event_id"], position=src["position"],
                   transaction=record.get("transaction"))
