"""Seeded streams of housing and release change events, as messy as real services send them.

Creates, updates that move an entity between areas or change its status, deletes followed
by tombstones, exact duplicates, a replayed slice, and late events (an older position
arriving after a newer one). Each item is ``(product, event)``, or ``(product, key)`` for
a tombstone; the same seed always gives the same stream.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from dataplatform.products.envelope import ChangeEvent
from tests.support.entities import housing_unit, release_case
from tests.support.entities import HOUSING, RELEASES

AREAS = {"E08000003": "E12000002", "E08000001": "E12000002",     # Manchester, Bolton: North West
         "E08000035": "E12000003", "E08000032": "E12000003",     # Leeds, Bradford: Yorkshire
         "E08000021": "E12000001", "E08000024": "E12000001"}     # Newcastle, Sunderland: North East
UNIT_STATUSES = ("available", "available", "reserved", "let")
CASE_STATUSES = ("scheduled", "scheduled", "released", "housed")
Item = tuple[str, ChangeEvent | str]


@dataclass
class _Entity:
    product: str
    key: str
    position: int = 0
    state: dict | None = None
    history: list[ChangeEvent] = field(default_factory=list)


def seeded_stream(seed: int, events: int, today: dt.date, entities: int = 120) -> list[Item]:
    """About ``events`` change events for ``entities`` units and as many cases."""
    rnd = random.Random(seed)
    pool = [_Entity(HOUSING, f"u{seed}-{i}") for i in range(entities)] + \
           [_Entity(RELEASES, f"c{seed}-{i}") for i in range(entities)]
    out: list[Item] = []
    while len(out) < events:
        entity = rnd.choice(pool)
        roll = rnd.random()
        if roll < 0.04 and out:
            out.append(rnd.choice(out[-50:]))                      # an exact duplicate
        elif roll < 0.06 and len(entity.history) > 1:
            out.append((entity.product, entity.history[-2]))       # late: an older position after a newer one
        elif roll < 0.07 and len(out) > 40:
            start = rnd.randrange(len(out) - 40)
            out.extend(out[start:start + 20])                      # a replayed slice
        else:
            out.extend(_change(rnd, entity, today))
    return out


def _change(rnd: random.Random, e: _Entity, today: dt.date) -> list[Item]:
    e.position += 1
    ts = 1_700_000_000_000 + e.position
    if e.state is not None and rnd.random() < 0.12:
        event = ChangeEvent("d", e.state, None, "test-service", e.position, ts_ms=ts)
        e.state = None
        e.history.append(event)
        return [(e.product, event), (e.product, e.key)]           # the delete, then its tombstone
    la = rnd.choice(list(AREAS))
    days = rnd.randint(-3, 40)
    if e.product == HOUSING:
        after = housing_unit(e.key, la, AREAS[la], status=rnd.choice(UNIT_STATUSES),
                             available_from=today + dt.timedelta(days=days), ts_ms=ts)
    else:
        after = release_case(e.key, la, AREAS[la], status=rnd.choice(CASE_STATUSES),
                             release_date=today + dt.timedelta(days=days), person_ref=f"SECRET-{e.key}", ts_ms=ts)
    event = ChangeEvent("u" if e.state else "c", e.state, after, "test-service", e.position, ts_ms=ts)
    e.state = after
    e.history.append(event)
    return [(e.product, event)]


def change_events(stream: list[Item]) -> list[tuple[str, ChangeEvent]]:
    """The change events of a stream (tombstones left out), for a recomputation."""
    return [(product, item) for product, item in stream if isinstance(item, ChangeEvent)]
