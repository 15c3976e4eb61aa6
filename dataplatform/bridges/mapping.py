"""One HMPPS domain event to one entity of the product: the expressions of a bridge spec applied.

Used twice, so both agree: by :mod:`.parse` on each mapping's example (a spec whose example
does not map to a valid entity is refused by ``schemas check``) and by the bridge on every
message. JSON has no dates, so a value for an Avro ``date`` field may be an ISO date (or
date-time) string and one for a ``timestamp-millis`` field an ISO date-time; a date-time
without an offset is taken as London time, as HMPPS services write ``LocalDateTime``.

Positions order an entity's events for every subscriber (a later change, a larger
position). A bridge has no sequence from the service, so the position is the event's
time (by default ``occurredAt``) in microseconds, times 1024, plus a tie-break from the
message id: two events of the same microsecond are ordered the same way on every
redelivery, and a redelivered message has the same position (and event id) as the first.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any
from zoneinfo import ZoneInfo

from dataplatform.bridges.spec import EventMapping
from dataplatform.products.validation import LONG_RANGE

LONDON = ZoneInfo("Europe/London")
TIE_BREAK = 1024
MAX_LONG = LONG_RANGE[1]


class MappingError(ValueError):
    """An event that cannot become an entity: what is missing or wrong, in the message."""


def identifiers_of(event: dict) -> dict[str, str]:
    """``personReference.identifiers`` as ``{type: value}`` (``identifiers.NOMS`` in expressions)."""
    reference = event.get("personReference") or {}
    found = reference.get("identifiers") if isinstance(reference, dict) else None
    return {str(i["type"]): str(i["value"]) for i in found or [] if isinstance(i, dict) and "type" in i and "value" in i}


def context_of(event: dict, detail: dict | None) -> dict[str, Any]:
    """The names expressions read."""
    return {"event": event, "identifiers": identifiers_of(event), "detail": detail if detail is not None else {}}


def parse_time(value: Any) -> dt.datetime:
    """An ISO-8601 date-time (or date) as an aware datetime; naive means London time."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise MappingError(f"{value!r} is not an ISO-8601 date-time (e.g. 2026-12-05T10:15:30+00:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=LONDON)


def occurred_ms(event: dict) -> int:
    """``occurredAt`` in epoch milliseconds: the change event's ``ts_ms``."""
    if "occurredAt" not in event:
        raise MappingError("the event has no occurredAt")
    return int(parse_time(event["occurredAt"]).timestamp() * 1000)


def position_of(value: Any, message_id: str) -> int:
    """The position of an event whose ordering value is ``value`` (see the module docstring)."""
    if isinstance(value, bool) or not isinstance(value, (int, str, dt.date)):
        raise MappingError(f"position {value!r} is neither an ISO-8601 timestamp nor an integer")
    if isinstance(value, int):
        base = value
    else:
        moment = parse_time(value)
        base = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    position = base * TIE_BREAK + zlib.crc32(message_id.encode()) % TIE_BREAK
    if not 0 <= position <= MAX_LONG:
        raise MappingError(f"position {value!r} is out of range (0 to {MAX_LONG // TIE_BREAK})")
    return position


def coerce(value: Any, avro_type: Any) -> Any:
    """A JSON value as the Avro field wants it: dates and timestamps from ISO strings."""
    logical = _logical(avro_type)
    if value is None or logical is None or not isinstance(value, str):
        return value
    if logical == "date":
        return parse_time(value).date() if "T" in value else _date(value)
    return parse_time(value)


def entity_of(mapping: EventMapping, context: dict[str, Any], types: dict[str, Any]) -> dict[str, Any]:
    """The entity ``mapping`` makes of the event in ``context`` (the product's field types in ``types``)."""
    entity = {}
    for name, expression in mapping.fields:
        try:
            value = expression(context)
        except KeyError as exc:
            raise MappingError(f"field {name}: {expression.source!r} reads {exc.args[0]!r}, which this event "
                               "does not have") from None
        except Exception as exc:  # noqa: BLE001 - CEL's runtime errors are TypeError/ValueError/RuntimeError
            raise MappingError(f"field {name}: {expression.source!r} failed: {exc}") from None
        entity[name] = coerce(value, types.get(name))
    return entity


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise MappingError(f"{value!r} is not an ISO-8601 date (e.g. 2026-12-05)") from None


def _logical(avro_type: Any) -> str | None:
    if isinstance(avro_type, list):
        found = [_logical(t) for t in avro_type if t != "null"]
        return found[0] if found else None
    if isinstance(avro_type, dict):
        return avro_type.get("logicalType")
    return None
