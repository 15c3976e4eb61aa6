"""What stage 2 does after an area changed (or the timer ticked), in plain Python.

Given the area's contributions, its last published figures and its rule states, work out
the derived ``area_supply_demand`` change event (only when the figures moved) and the
warning transitions. The Faust agent only loads and stores these dicts in its tables.

The two are separate because they run at different rates: the rules step after every
change of an area (so the sequence of transitions does not depend on how events were
batched), the derived figures once per batch (the latest figures of the area, as a
Kafka Streams record cache would emit them).
"""

from __future__ import annotations

from typing import Any

from dataplatform.products.envelope import ChangeEvent, epoch_ms
from dataplatform.products.reference import area_name
from dataplatform.stream_processors.rules import RuleSet, evaluate
from dataplatform.stream_processors.area_state import AreaState
from dataplatform.stream_processors.clock import Clock, today_of

PROCESSOR_SYSTEM = "dataplatform-processor"


def derive_figures(area: AreaState, published: dict[str, Any] | None, rules: RuleSet,
                   clock: Clock) -> tuple[dict[str, Any] | None, ChangeEvent | None]:
    """The derived ``area_supply_demand`` event when the figures moved since ``published``
    (and the new "last published" record); ``(published, None)`` when they did not."""
    now = clock.now()
    now_ms, today = epoch_ms(now), today_of(clock)
    figures = area.figures(today, rules.horizon_days)
    record = {
        "area_code": area.area_code, "area_name": area_name(area.area_code), "area_level": area.level,
        "region_code": area.region_code, "supply": figures.supply, "demand": figures.demand,
        "horizon_days": rules.horizon_days, "as_of": now_ms,
    }
    if published is not None and _figures_of(published["record"]) == _figures_of(record):
        return published, None
    seq = (published or {}).get("seq", 0) + 1
    before = published["record"] if published else None
    change = ChangeEvent(op="u" if before else "c", before=before, after=record,
                         source_system=PROCESSOR_SYSTEM, position=seq, ts_ms=now_ms,
                         event_id=f"{area.area_code}:{seq}")
    return {"seq": seq, "record": record}, change


def evaluate_rules(area: AreaState, rule_states: dict[str, dict] | None, rules: RuleSet,
                   clock: Clock) -> tuple[dict[str, dict], list[ChangeEvent]]:
    """Step every rule's state machine for the area: (new states, warning events; the
    warning itself is each event's ``after``)."""
    now_ms, today = epoch_ms(clock.now()), today_of(clock)
    states = dict(rule_states or {})
    events = []
    for rule in rules.for_level(area.level):
        outcome = evaluate(rule, area.area_code, area.level, area.figures(today, rule.horizon_days),
                           states.get(rule.id), now_ms, area.max_ts)
        state = outcome.state
        if outcome.warning:
            warning = outcome.warning
            seq = int(state.get("seq", 0)) + 1
            before = state.get("last")
            events.append(ChangeEvent(op="u" if before else "c", before=before, after=warning,
                                      source_system=PROCESSOR_SYSTEM, position=seq, ts_ms=now_ms,
                                      event_id=f"{warning['warning_id']}:{seq}"))
            state = {**state, "seq": seq, "last": warning}
        states[rule.id] = state
    return states, events


def _figures_of(record: dict[str, Any]) -> tuple:
    return record["supply"], record["demand"], record["horizon_days"]
