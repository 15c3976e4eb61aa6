"""Publish warning transitions the way the stream processor does, for tests of the pages,
the follower and webhooks."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from dataplatform.derivations.loading import get_derivation

from dataplatform.products.envelope import ChangeEvent
from dataplatform.stream_processors.core.rules import Judged, message_of
from tests.support.in_memory import housing_rule
from tests.support.sending import ChangeSender


def warning(area_code: str = "E08000003", area_name: str = "Manchester", severity: str = "RED",
            transition: str = "raised", demand: int = 41, supply: int = 12, rule_id: str = "shortfall",
            raised_at_ms: int | None = None, evidence_at_ms: int | None = None) -> dict:
    now = int(time.time() * 1000)
    return {
        "warning_id": f"{area_code}:{rule_id}", "area_code": area_code, "area_name": area_name,
        "area_level": "local_authority", "rule_id": rule_id, "severity": severity, "transition": transition,
        "supply": supply, "demand": demand, "horizon_days": 28,
        "evidence_at": evidence_at_ms if evidence_at_ms is not None else now,
        "raised_at": None if severity == "NONE" else (raised_at_ms if raised_at_ms is not None else now),
        "message": message_of(severity, transition, area_name, Judged(supply, demand), housing_rule(id=rule_id)),
    }


def interpreter_warning(court_code: str = "PBOMC", court_name: str = "Peterborough Magistrates' Court",
                        hearing_date: dt.date | None = None, language: str = "pol", language_name: str = "Polish",
                        severity: str = "RED", transition: str = "raised", hearings: int = 4, bookings: int = 1,
                        raised_at_ms: int | None = None) -> dict:
    """One interpreter shortage transition as the compiled interpreter processor publishes it."""
    rule = get_derivation("interpreter_cover").rules[0]
    day = hearing_date or dt.date.today() + dt.timedelta(days=2)
    name = " · ".join((court_name, day.isoformat(), language_name))
    now = int(time.time() * 1000)
    return {
        "warning_id": f"{court_code}/{day.isoformat()}/{language}:{rule.id}", "court_code": court_code,
        "court_name": court_name, "hearing_date": day, "language": language, "group_name": name, "rule_id": rule.id,
        "severity": severity, "transition": transition, "hearings": hearings, "bookings": bookings,
        "horizon_days": rule.horizon_days, "evidence_at": now,
        "raised_at": None if severity == "NONE" else (raised_at_ms if raised_at_ms is not None else now),
        "message": message_of(severity, transition, name, Judged(bookings, hearings), rule),
    }


def figures(area_code: str = "E08000003", supply: int = 12, demand: int = 41, as_of_ms: int | None = None) -> dict:
    """One area's figures as the processor publishes them on ``area_supply_demand``."""
    from dataplatform.products.reference import area_name, local_authorities

    la = local_authorities().get(area_code)
    return {"area_code": area_code, "area_name": area_name(area_code),
            "area_level": "local_authority" if la else "region", "region_code": la.region_code if la else area_code,
            "supply": supply, "demand": demand, "horizon_days": 28,
            "as_of": as_of_ms if as_of_ms is not None else int(time.time() * 1000)}


class WarningSender:
    """Sends the successive states of a product's entities (the warnings by default) as change
    events to ``topic``; each key's previous state becomes the next event's ``before``."""

    def __init__(self, bootstrap: str, registry_url: str, topic: str,
                 product: str = "housing_shortfall_warnings") -> None:
        self.product = product
        self.sender = ChangeSender(bootstrap, registry_url, product, topics={product: topic})
        self.position = 0
        self.previous: dict[str, dict] = {}

    def send(self, w: dict, event_id: str | None = None, ts_ms: int | None = None) -> str:
        """Send ``w``; ``ts_ms``: when the processor judged it (default now)."""
        self.position += 1
        key = self.sender.products[self.product].key_of(w)
        before = self.previous.get(key) if self.product != "housing_shortfall_warnings" else (
            dict(w) if self.position > 1 else None)
        event = ChangeEvent("u" if before else "c", before, w, source_system="test", position=self.position,
                            event_id=event_id or str(uuid.uuid4()), **({"ts_ms": ts_ms} if ts_ms is not None else {}))
        self.sender.send(self.product, event)
        self.sender.flush(30)
        self.previous[key] = dict(w)
        return event.event_id


class InterpreterWarningSender(WarningSender):
    """Interpreter shortage transitions (:func:`interpreter_warning`) to ``topic``."""

    def __init__(self, bootstrap: str, registry_url: str, topic: str) -> None:
        super().__init__(bootstrap, registry_url, topic, product="interpreter_shortage_warnings")


class FiguresSender(WarningSender):
    def __init__(self, bootstrap: str, registry_url: str, topic: str) -> None:
        super().__init__(bootstrap, registry_url, topic, product="area_supply_demand")
