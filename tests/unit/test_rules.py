"""Threshold rules: thresholds, hysteresis, horizon, messages and the evaluator."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace

from dataplatform.derivations.loading import get_derivation
from dataplatform.stream_processors.core.clock import ManualClock, Moment, today_of
from dataplatform.stream_processors.core.compiled import CompiledDerivation
from dataplatform.stream_processors.core.entity_step import Move
from dataplatform.stream_processors.core.evaluation import derive_figures, evaluate_rules
from dataplatform.stream_processors.core.group_state import GroupState
from dataplatform.stream_processors.core.rules import Judged, evaluate, level_of, message_of
from tests.support.in_memory import HOUSING_SPEC, housing_rule

REGION = "region"
SUPPLY, DEMAND = "supply", "demand"


def Rule(**changes):  # noqa: N802 - reads like the dataclass it builds
    """The housing rule with the old defaults (judged from 1, clears after one evaluation)."""
    if "min_demand" in changes:
        changes["min_need"] = changes.pop("min_demand")
    return housing_rule(**{"min_need": 1, "clear_after": 1, **changes})


def compiled_with(*rules) -> CompiledDerivation:
    return CompiledDerivation(dataclasses.replace(get_derivation(HOUSING_SPEC), rules=rules))


def evaluate_area(compiled, area, published, rule_states, clock) -> SimpleNamespace:
    """Stage 2's two evaluations after a change, as the worker runs them (rules, then figures)."""
    states, events = evaluate_rules(compiled, area, rule_states, Moment.of(clock))
    new_published, change = derive_figures(compiled, area, published, Moment.of(clock))
    return SimpleNamespace(published=new_published, change=change, rule_states=states,
                           warnings=[e.after for e in events], warning_events=events)


RULE = Rule(id="shortfall", red_below=1.0, amber_below=1.2, clear_margin=0.1, clear_after=1, min_demand=1)
AREA = "E12000002"   # North West
FIELDS = {"region": AREA}


def run(rule, figures: list[tuple[int, int]]) -> list[str | None]:
    """Transitions (or None) for a sequence of (supply, demand) evaluations."""
    state, out = None, []
    for s, d in figures:
        o = evaluate(rule, AREA, "North West", Judged(s, d), state, now_ms=1000, evidence_ms=900)
        state = o.state
        out.append(o.warning and f"{o.warning['severity']} {o.warning['transition']}")
    return out


def test_red_amber_and_none_thresholds():
    assert level_of(RULE, Judged(12, 41)) == "RED"
    assert level_of(RULE, Judged(41, 41)) == "AMBER"       # covers, by less than 20%
    assert level_of(RULE, Judged(49, 41)) == "AMBER"
    assert level_of(RULE, Judged(50, 41)) == "NONE"        # 50/41 = 1.22
    assert level_of(RULE, Judged(0, 0)) == "NONE"


def test_min_demand_silences_small_areas():
    rule = Rule(id="r", min_demand=5)
    assert level_of(rule, Judged(0, 4)) == "NONE"
    assert level_of(rule, Judged(0, 5)) == "RED"


def test_transitions_raise_escalate_deescalate_clear():
    assert run(RULE, [(11, 10), (9, 10), (9, 10), (11, 10), (20, 10)]) == [
        "AMBER raised", "RED escalated", None, "AMBER deescalated", "NONE cleared"]


def test_hysteresis_margin_stops_flapping_at_a_threshold():
    # hovering around coverage 1.0: stays RED until coverage >= 1.1
    assert run(RULE, [(9, 10), (10, 10), (9, 10), (10, 10), (11, 10)]) == [
        "RED raised", None, None, None, "AMBER deescalated"]


def test_clear_after_needs_consecutive_evaluations():
    rule = Rule(id="r", clear_after=3, clear_margin=0.0)
    assert run(rule, [(0, 5), (9, 5), (9, 5), (0, 5), (9, 5), (9, 5), (9, 5)]) == [
        "RED raised", None, None, None, None, None, "NONE cleared"]


def test_warning_record_has_figures_rule_evidence_and_one_line_message():
    clock = ManualClock(dt.datetime(1970, 1, 1, 0, 0, 5, tzinfo=dt.timezone.utc))
    area = GroupState(AREA, REGION, FIELDS)
    for i in range(41):
        area.apply(Move(AREA, REGION, FIELDS, f"demand:c{i}", (DEMAND, None, "released"), 4000))
    for i in range(12):
        area.apply(Move(AREA, REGION, FIELDS, f"supply:u{i}", (SUPPLY, 0), 3000))
    compiled = compiled_with(RULE)
    states, (event,) = evaluate_rules(compiled, area, None, Moment.of(clock))
    w = event.after
    assert w["warning_id"] == f"{AREA}:shortfall" and w["rule_id"] == "shortfall"
    assert (w["supply"], w["demand"], w["horizon_days"], w["evidence_at"], w["raised_at"]) == (12, 41, 28, 4000, 5000)
    assert (w["area_code"], w["area_name"], w["area_level"]) == (AREA, "North West", REGION)
    assert w["message"] == "RED raised  North West  demand 41 > supply 12 (next 28 days)"
    _, again = evaluate_rules(compiled, area, states, Moment.of(clock))
    assert again == []                                 # already raised: not raised again


def test_an_operations_rules_file_replaces_the_specs_rules_and_the_horizon_can_be_overridden(tmp_path):
    from dataplatform.derivations.loading import load_derivation

    spec = get_derivation(HOUSING_SPEC)
    assert spec.horizon_days == 28 and spec.rules[0].id == "shortfall"
    assert spec.rules[0].applies_to == ("local_authority", REGION)
    rules = tmp_path / "rules.yaml"
    rules.write_text("horizon_days: 14\nrules:\n  - {id: tight, have: supply, need: demand, red_below: 2.0, "
                     "amber_below: 3.0, applies_to: [region]}\n")
    tuned = load_derivation(spec.file, rules)
    assert [(r.id, r.red_below, r.applies_to, r.horizon_days) for r in tuned.rules] == [("tight", 2.0, (REGION,), 14)]
    assert load_derivation(spec.file, horizon_days=7).rules[0].horizon_days == 7


def test_applies_to_limits_levels():
    spec = dataclasses.replace(get_derivation(HOUSING_SPEC), rules=(Rule(id="la-only", applies_to=("local_authority",)),))
    assert [r.id for r in spec.rules_for("local_authority")] == ["la-only"] and spec.rules_for(REGION) == []


def test_area_evaluation_moves_with_the_clock_and_emits_change_events_without_personal_data():
    clock = ManualClock(dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc))
    compiled = compiled_with(Rule(id="shortfall", clear_after=1))
    today = today_of(clock)
    area = GroupState(AREA, REGION, FIELDS)
    area.apply(Move(AREA, REGION, FIELDS, "demand:c1", (DEMAND, today + 30, "scheduled"), 111))
    area.apply(Move(AREA, REGION, FIELDS, "demand:c2", (DEMAND, today + 29, "scheduled"), 222))
    area.apply(Move(AREA, REGION, FIELDS, "supply:u1", (SUPPLY, today), 100))
    first = evaluate_area(compiled, area, None, None, clock)
    assert first.change.op == "c" and first.change.after["supply"] == 1 and first.change.after["demand"] == 0
    assert first.warnings == []
    clock.advance(days=1)                              # c2 (day 29) enters the horizon
    second = evaluate_area(compiled, area, first.published, first.rule_states, clock)
    assert second.change.op == "u" and second.change.before == first.change.after
    assert second.change.after["demand"] == 1
    assert [w["transition"] for w in second.warnings] == ["raised"] and second.warnings[0]["severity"] == "AMBER"
    assert second.warnings[0]["evidence_at"] == 222
    clock.advance(days=1)                              # c1 enters too: escalated
    third = evaluate_area(compiled, area, second.published, second.rule_states, clock)
    assert [(w["severity"], w["transition"]) for w in third.warnings] == [("RED", "escalated")]
    unchanged = evaluate_area(compiled, area, third.published, third.rule_states, clock)
    assert unchanged.change is None and unchanged.warnings == []
    assert "person_ref" not in repr([first, second, third])


def test_warnings_are_change_events_c_then_u_with_before():
    clock = ManualClock(dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc))
    compiled = compiled_with(Rule(id="shortfall", clear_after=1))
    today = today_of(clock)
    area = GroupState(AREA, REGION, FIELDS)
    area.apply(Move(AREA, REGION, FIELDS, "demand:c1", (DEMAND, None, "released"), 5))
    raised = evaluate_area(compiled, area, None, None, clock)
    area.apply(Move(AREA, REGION, FIELDS, "supply:u1", (SUPPLY, today), 6))
    area.apply(Move(AREA, REGION, FIELDS, "supply:u2", (SUPPLY, today), 7))
    cleared = evaluate_area(compiled, area, raised.published, raised.rule_states, clock)
    (first,), (second,) = raised.warning_events, cleared.warning_events
    assert (first.op, first.before, first.after["transition"]) == ("c", None, "raised")
    assert (second.op, second.before, second.after["transition"]) == ("u", first.after, "cleared")
    assert second.after["severity"] == "NONE" and second.after["raised_at"] is None and second.after["evidence_at"] == 7


def message(severity: str, transition: str, supply: int, demand: int, rule=RULE) -> str:
    return message_of(severity, transition, "Liverpool", Judged(supply, demand), rule)


def test_messages_never_contradict_their_figures():
    rule = Rule(id="shortfall", min_demand=5, red_below=1.0, amber_below=1.2, clear_margin=0.1, clear_after=2)
    assert message("RED", "raised", 12, 41, rule) == "RED raised  Liverpool  demand 41 > supply 12 (next 28 days)"
    # AMBER on its figures: says how much supply would give the 20% cover
    assert message("AMBER", "raised", 11, 10, rule) == (
        "AMBER raised  Liverpool  demand 10, supply 11 (next 28 days): 12 needed for 20% cover")
    # demand 5, supply 6 is cover of exactly 1.2 (not AMBER on its figures): held by hysteresis until 1.3
    assert message("AMBER", "deescalated", 6, 5, rule) == (
        "AMBER deescalated  Liverpool  demand 5, supply 6 (next 28 days): held at AMBER until supply reaches 7 (hysteresis)")
    # cleared with demand over supply: only because the area is below the minimum volume
    assert message("NONE", "cleared", 2, 4, rule) == (
        "NONE cleared  Liverpool  demand 4 > supply 2 (next 28 days): below the minimum of 5 people, not judged")
    assert message("NONE", "cleared", 90, 68, rule) == "NONE cleared  Liverpool  demand 68, supply 90 (next 28 days): covered"


def test_the_evaluator_words_a_held_step_down_and_a_minimum_volume_clear():
    rule = Rule(id="shortfall", min_demand=5, clear_margin=0.1, clear_after=1)
    raised = evaluate(rule, AREA, "North West", Judged(3, 5), None, now_ms=1, evidence_ms=1)
    down = evaluate(rule, AREA, "North West", Judged(6, 5), raised.state, now_ms=2, evidence_ms=2)
    assert down.warning["transition"] == "deescalated" and "held at AMBER until supply reaches 7" in down.warning["message"]
    cleared = evaluate(rule, AREA, "North West", Judged(2, 4), down.state, now_ms=3, evidence_ms=3)
    assert cleared.warning["transition"] == "cleared" and "below the minimum of 5 people" in cleared.warning["message"]


def timed(rule, evaluations: list[tuple[int, int, int]]) -> list[str | None]:
    """Transitions (or None) for ``(seconds, supply, demand)`` evaluations at those times."""
    state, out = None, []
    for seconds, s, d in evaluations:
        o = evaluate(rule, AREA, "North West", Judged(s, d), state, now_ms=seconds * 1000, evidence_ms=0)
        state = o.state
        out.append(o.warning and f"{o.warning['severity']} {o.warning['transition']}")
    return out


def test_raise_for_raises_only_once_the_level_held_that_long():
    rule = Rule(id="r", raise_for="30s", clear_margin=0.0)
    # RED called for at 0 s; evaluations at 10 and 29 s still inside the hold; raised at 30 s
    assert timed(rule, [(0, 0, 5), (10, 0, 5), (29, 0, 5), (30, 0, 5)]) == [None, None, None, "RED raised"]
    # a booking seconds later covers it: nothing is ever raised, nothing clears
    assert timed(rule, [(0, 0, 5), (4, 10, 5), (40, 10, 5)]) == [None, None, None]
    # a dip below the level starts the hold again
    assert timed(rule, [(0, 0, 5), (20, 9, 5), (25, 0, 5), (50, 0, 5), (55, 0, 5)]) == [
        None, None, None, None, "RED raised"]


def test_raise_for_holds_each_level_on_its_own():
    rule = Rule(id="r", raise_for="30s")
    # AMBER since 0 s, RED since 20 s: AMBER at 30 s (RED still pending), RED at 50 s
    assert timed(rule, [(0, 11, 10), (20, 9, 10), (30, 9, 10), (49, 9, 10), (50, 9, 10)]) == [
        None, None, "AMBER raised", None, "RED escalated"]
    state = None
    for seconds in (0, 20):   # the pending holds are state, stored with the rest
        o = evaluate(rule, AREA, "North West", Judged(9 if seconds else 11, 10), state, seconds * 1000, 0)
        state = o.state
    assert o.warning is None and state["rising"] == {"AMBER": 0, "RED": 20_000}


def test_an_amber_raised_while_red_is_pending_says_so():
    rule = Rule(id="r", raise_for="30s")
    state = evaluate(rule, AREA, "North West", Judged(11, 10), None, 0, 0).state
    state = evaluate(rule, AREA, "North West", Judged(9, 10), state, 20_000, 0).state
    warning = evaluate(rule, AREA, "North West", Judged(9, 10), state, 30_000, 0).warning
    assert warning["message"] == "AMBER raised  North West  demand 10 > supply 9 (next 28 days): RED once that holds for 30s"


def test_keep_for_steps_down_only_once_the_figures_stayed_clear_that_long():
    rule = Rule(id="r", keep_for="2m", clear_margin=0.0)
    assert timed(rule, [(0, 0, 5), (10, 10, 5), (60, 10, 5), (129, 10, 5), (130, 10, 5)]) == [
        "RED raised", None, None, None, "NONE cleared"]
    # back below within the hold: the clock starts again when it recovers
    assert timed(rule, [(0, 0, 5), (10, 10, 5), (100, 0, 5), (110, 10, 5), (200, 10, 5), (230, 10, 5)]) == [
        "RED raised", None, None, None, None, "NONE cleared"]


def test_keep_for_and_clear_after_both_hold():
    rule = Rule(id="r", keep_for="1m", clear_after=3, clear_margin=0.0)
    # a minute passed after two evaluations: the third clears it
    assert timed(rule, [(0, 0, 5), (10, 10, 5), (90, 10, 5), (91, 10, 5)]) == ["RED raised", None, None, "NONE cleared"]
