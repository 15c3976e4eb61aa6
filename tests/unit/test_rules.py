"""Threshold rules: the file format, thresholds, hysteresis, horizon and the evaluator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest

from dataplatform.stream_processors.evaluation import derive_figures, evaluate_rules
from dataplatform.stream_processors.rules import DEFAULT_RULES_PATH, Rule, RulesFileError, evaluate, load_rules, parse_rules
from dataplatform.stream_processors.area_state import AreaState, Figures
from dataplatform.stream_processors.clock import ManualClock, today_of
from dataplatform.stream_processors.supply_demand import DEMAND, LOCAL_AUTHORITY, REGION, SUPPLY, Move


def evaluate_area(area, published, rule_states, rules, clock) -> SimpleNamespace:
    """Stage 2's two evaluations after a change, as the worker runs them (rules, then figures)."""
    states, events = evaluate_rules(area, rule_states, rules, clock)
    new_published, change = derive_figures(area, published, rules, clock)
    return SimpleNamespace(published=new_published, change=change, rule_states=states,
                           warnings=[e.after for e in events], warning_events=events)


RULE = Rule(id="shortfall", red_below=1.0, amber_below=1.2, clear_margin=0.1, clear_after=1, min_demand=1)
AREA = "E12000002"   # North West


def run(rule: Rule, figures: list[tuple[int, int]]) -> list[str | None]:
    """Transitions (or None) for a sequence of (supply, demand) evaluations."""
    state, out = None, []
    for s, d in figures:
        o = evaluate(rule, AREA, REGION, Figures(s, d), state, now_ms=1000, evidence_ms=900)
        state = o.state
        out.append(o.warning and f"{o.warning['severity']} {o.warning['transition']}")
    return out


def test_red_amber_and_none_thresholds():
    assert RULE.level(Figures(12, 41)) == "RED"
    assert RULE.level(Figures(41, 41)) == "AMBER"       # covers, by less than 20%
    assert RULE.level(Figures(49, 41)) == "AMBER"
    assert RULE.level(Figures(50, 41)) == "NONE"        # 50/41 = 1.22
    assert RULE.level(Figures(0, 0)) == "NONE"


def test_min_demand_silences_small_areas():
    rule = Rule(id="r", min_demand=5)
    assert rule.level(Figures(0, 4)) == "NONE"
    assert rule.level(Figures(0, 5)) == "RED"


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
    o = evaluate(RULE, AREA, REGION, Figures(12, 41), None, now_ms=5000, evidence_ms=4000)
    w = o.warning
    assert w["warning_id"] == f"{AREA}:shortfall" and w["rule_id"] == "shortfall"
    assert (w["supply"], w["demand"], w["horizon_days"], w["evidence_at"], w["raised_at"]) == (12, 41, 28, 4000, 5000)
    assert w["message"] == "RED raised  North West  demand 41 > supply 12 (next 28 days)"
    again = evaluate(RULE, AREA, REGION, Figures(12, 41), o.state, now_ms=6000, evidence_ms=4000)
    assert again.warning is None                       # already raised: not raised again


def test_rules_file_loads_and_horizon_override():
    rules = load_rules(DEFAULT_RULES_PATH)
    assert rules.horizon_days == 28 and rules.rules[0].id == "shortfall"
    assert rules.rules[0].applies_to == (LOCAL_AUTHORITY, REGION)
    assert load_rules(DEFAULT_RULES_PATH, horizon_days=7).rules[0].horizon_days == 7


def test_rules_file_errors_say_where(tmp_path: Path):
    with pytest.raises(RulesFileError, match="no such rules file"):
        load_rules(tmp_path / "missing.yaml")
    with pytest.raises(RulesFileError, match=r"rules\[0\].*unknown keys colour"):
        parse_rules({"rules": [{"id": "x", "colour": "red"}]})
    with pytest.raises(RulesFileError, match="applies_to"):
        parse_rules({"rules": [{"id": "x", "applies_to": ["county"]}]})
    with pytest.raises(RulesFileError, match="twice"):
        parse_rules({"rules": [{"id": "x"}, {"id": "x"}]})


def test_applies_to_limits_levels():
    rules = parse_rules({"rules": [{"id": "la-only", "applies_to": ["local_authority"]}]})
    assert [r.id for r in rules.for_level(LOCAL_AUTHORITY)] == ["la-only"] and rules.for_level(REGION) == []


def test_area_evaluation_moves_with_the_clock_and_emits_change_events_without_personal_data():
    clock = ManualClock(dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc))
    rules = parse_rules({"horizon_days": 28, "rules": [{"id": "shortfall", "clear_after": 1}]})
    today = today_of(clock)
    area = AreaState(AREA, REGION, AREA)
    area.apply(Move(AREA, REGION, AREA, "releases:c1", (DEMAND, today + 30), 111))
    area.apply(Move(AREA, REGION, AREA, "releases:c2", (DEMAND, today + 29), 222))
    area.apply(Move(AREA, REGION, AREA, "housing:u1", (SUPPLY, today), 100))
    first = evaluate_area(area, None, None, rules, clock)
    assert first.change.op == "c" and first.change.after["supply"] == 1 and first.change.after["demand"] == 0
    assert first.warnings == []
    clock.advance(days=1)                              # c2 (day 29) enters the horizon
    second = evaluate_area(area, first.published, first.rule_states, rules, clock)
    assert second.change.op == "u" and second.change.before == first.change.after
    assert second.change.after["demand"] == 1
    assert [w["transition"] for w in second.warnings] == ["raised"] and second.warnings[0]["severity"] == "AMBER"
    assert second.warnings[0]["evidence_at"] == 222
    clock.advance(days=1)                              # c1 enters too: escalated
    third = evaluate_area(area, second.published, second.rule_states, rules, clock)
    assert [(w["severity"], w["transition"]) for w in third.warnings] == [("RED", "escalated")]
    unchanged = evaluate_area(area, third.published, third.rule_states, rules, clock)
    assert unchanged.change is None and unchanged.warnings == []
    assert "person_ref" not in repr([first, second, third])


def test_warnings_are_change_events_c_then_u_with_before():
    clock = ManualClock(dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc))
    rules = parse_rules({"rules": [{"id": "shortfall", "clear_after": 1}]})
    area = AreaState(AREA, REGION, AREA)
    area.apply(Move(AREA, REGION, AREA, "releases:c1", (DEMAND, None), 5))
    raised = evaluate_area(area, None, None, rules, clock)
    area.apply(Move(AREA, REGION, AREA, "housing:u1", (SUPPLY, None), 6))
    area.apply(Move(AREA, REGION, AREA, "housing:u2", (SUPPLY, None), 7))
    cleared = evaluate_area(area, raised.published, raised.rule_states, rules, clock)
    (first,), (second,) = raised.warning_events, cleared.warning_events
    assert (first.op, first.before, first.after["transition"]) == ("c", None, "raised")
    assert (second.op, second.before, second.after["transition"]) == ("u", first.after, "cleared")
    assert second.after["severity"] == "NONE" and second.after["raised_at"] is None and second.after["evidence_at"] == 7


def message(severity: str, transition: str, supply: int, demand: int, rule: Rule = RULE) -> str:
    from dataplatform.stream_processors.rules import message_of

    return message_of(severity, transition, "Liverpool", Figures(supply, demand), rule)


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
    raised = evaluate(rule, AREA, REGION, Figures(3, 5), None, now_ms=1, evidence_ms=1)
    down = evaluate(rule, AREA, REGION, Figures(6, 5), raised.state, now_ms=2, evidence_ms=2)
    assert down.warning["transition"] == "deescalated" and "held at AMBER until supply reaches 7" in down.warning["message"]
    cleared = evaluate(rule, AREA, REGION, Figures(2, 4), down.state, now_ms=3, evidence_ms=3)
    assert cleared.warning["transition"] == "cleared" and "below the minimum of 5 people" in cleared.warning["message"]
