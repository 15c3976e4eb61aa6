"""What stage 2 does after a group changed (or the timer ticked), in plain Python.

Given the group's contributions, its last published figures and its rule states, work out
the derived figures change event (only when the figures moved) and the warning
transitions. The Faust agent only loads and stores these dicts in its tables.

Both run once per repartition message that changed the group (or tick), the figures
first: the rules are judged on the figures the step publishes (see group_step.py), so a
warning's figures are always those of a figures event of its group.
"""

from __future__ import annotations

from typing import Any

from dataplatform.products.envelope import ChangeEvent
from dataplatform.stream_processors.core.clock import Moment
from dataplatform.stream_processors.core.compiled import CompiledDerivation
from dataplatform.stream_processors.core.group_state import GroupState
from dataplatform.stream_processors.core.rules import Judged, evaluate

PROCESSOR_SYSTEM = "dataplatform-processor"


def derive_figures(compiled: CompiledDerivation, group: GroupState, published: dict[str, Any] | None,
                   at: Moment) -> tuple[dict[str, Any] | None, ChangeEvent | None]:
    """The derived figures event when the figures moved since ``published`` (and the new
    "last published" record); ``(published, None)`` when they did not."""
    spec = compiled.derivation
    now_ms = at.now_ms
    measures = group.measures(compiled, at.today, spec.horizon_days)
    view = compiled.view_of(group)
    record = {**compiled.record(spec.figures.fields, view, measures), "horizon_days": spec.horizon_days}
    if published is not None and _figures_of(published["record"]) == _figures_of(record):
        return published, None
    record["as_of"] = now_ms
    seq = (published or {}).get("seq", 0) + 1
    before = published["record"] if published else None
    change = ChangeEvent(op="u" if before else "c", before=before, after=record,
                         source_system=PROCESSOR_SYSTEM, position=seq, ts_ms=now_ms,
                         event_id=f"{group.code}:{seq}")
    return {"seq": seq, "record": record}, change


def evaluate_rules(compiled: CompiledDerivation, group: GroupState, rule_states: dict[str, dict] | None,
                   at: Moment) -> tuple[dict[str, dict], list[ChangeEvent]]:
    """Step every rule's state machine for the group: (new states, warning events; the
    warning itself is each event's ``after``)."""
    now_ms = at.now_ms
    spec = compiled.derivation
    states = dict(rule_states or {})
    events = []
    view = compiled.view_of(group)
    for rule in compiled.rules_for(group.level):
        measures = group.measures(compiled, at.today, rule.horizon_days)
        outcome = evaluate(rule, group.code, view["name"], Judged.of(rule, measures), states.get(rule.id),
                           now_ms, group.max_ts)
        state = outcome.state
        if outcome.warning:
            warning = {**compiled.record(spec.warnings.fields, view, measures), **outcome.warning}
            seq = int(state.get("seq", 0)) + 1
            before = state.get("last")
            events.append(ChangeEvent(op="u" if before else "c", before=before, after=warning,
                                      source_system=PROCESSOR_SYSTEM, position=seq, ts_ms=now_ms,
                                      event_id=f"{warning['warning_id']}:{seq}"))
            state = {**state, "seq": seq, "last": warning}
        states[rule.id] = state
    return states, events


def _figures_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its time: the figures moved when anything else did."""
    return {k: v for k, v in record.items() if k != "as_of"}
