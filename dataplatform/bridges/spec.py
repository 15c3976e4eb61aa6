"""Bridge specs: a service's existing HMPPS domain events made a data product, declared as data.

A product's folder (``schemas/<domain>/<name>/``) may hold a ``bridge.yaml`` beside its
manifest: which SQS queue carries the service's domain events, which ``eventType`` s (and
versions) feed the product, and for each the change it is (create, update, delete), the
ordering position and every field of the entity as a CEL expression over the event (and
the JSON at its ``detailUrl`` when the event is thin). :mod:`.parse` checks a spec against
``schemas/bridge.schema.json`` and the product; :mod:`.mapping` turns one event into an
entity; the runtime that reads the queue is :mod:`dataplatform.producers.bridges`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dataplatform.derivations.expressions import Expression

SPEC_FILE = "bridge.yaml"
OPS = {"create": "c", "update": "u", "delete": "d"}


@dataclass(frozen=True)
class EventMapping:
    """How one ``eventType`` becomes a change event of the product."""

    event_type: str
    versions: tuple[int, ...]
    op: str                                        # c, u or d (the envelope's)
    position: Expression                           # an ISO-8601 timestamp or an integer
    fields: tuple[tuple[str, Expression], ...]     # entity field -> expression
    reads_detail: bool                             # some expression reads ``detail``: fetch detailUrl


@dataclass(frozen=True)
class Bridge:
    """One checked spec: the product it feeds, where its events come from, the mappings."""

    product: str
    file: Path
    description: str
    system: str                      # source.system of every change event
    queue: str                       # the SQS queue's name or URL
    topic: str | None                # the SNS topic the queue is subscribed to (for the catalogue)
    ignore_unknown: bool             # an eventType no mapping names: ignored (True) or dead-lettered
    events: tuple[EventMapping, ...]

    @property
    def name(self) -> str:
        return self.product

    def mapping(self, event_type: str) -> EventMapping | None:
        for mapping in self.events:
            if mapping.event_type == event_type:
                return mapping
        return None

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(m.event_type for m in self.events)
