"""Threshold rules of a derivation: the evaluator (the format lives in the spec, see
:class:`dataplatform.derivations.spec.Rule`).

Plain Python, no Faust: the processor calls :func:`evaluate` for each (group, rule) with the
rule's stored state and gets back the new state and, on a transition, a warning record.

Each (group, rule) is a small state machine over NONE < AMBER < RED, on the coverage
``have / need`` (two expressions over the group's measures):

* stepping **up** is immediate (``raised`` from NONE, ``escalated`` AMBER->RED);
* stepping **down** (``deescalated`` RED->AMBER, ``cleared`` ->NONE) needs the coverage to
  sit above the threshold *plus* ``clear_margin`` for ``clear_after`` consecutive
  evaluations. A figure hovering at a threshold therefore cannot flap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dataplatform.derivations.spec import SEVERITIES, Rule


@dataclass(frozen=True)
class Judged:
    """What a rule reads from a group's measures: how much there is and how much is needed."""

    have: float
    need: float

    @classmethod
    def of(cls, rule: Rule, measures: dict[str, Any]) -> "Judged":
        return cls(rule.have(measures), rule.need(measures))


def level_of(rule: Rule, judged: Judged, margin: float = 0.0) -> str:
    """The severity the figures call for, with thresholds raised by ``margin``."""
    if judged.need <= 0 or judged.need < rule.min_need:
        return "NONE"
    coverage = judged.have / judged.need
    if coverage < rule.red_below + margin:
        return "RED"
    if coverage < rule.amber_below + margin:
        return "AMBER"
    return "NONE"


def new_state() -> dict[str, Any]:
    return {"severity": "NONE", "pending": 0, "raised_at": None}


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def transition_of(old: str, new: str) -> str:
    if old == "NONE":
        return "raised"
    if new == "NONE":
        return "cleared"
    return "escalated" if _rank(new) > _rank(old) else "deescalated"


def number(x: float) -> str:
    """12 rather than 12.0; 2.5 as it is."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def message_of(severity: str, transition: str, name: str, judged: Judged, rule: Rule) -> str:
    """One line for people whose words never contradict its figures, e.g.
    ``RED raised  North West  demand 41 > supply 12 (next 28 days)``.

    When the figures alone do not call for the severity, the line says why it holds:
    a step down held back by hysteresis, or a clear because too little is needed for the
    group to be judged (the rule's minimum volume).
    """
    def have_for(ratio: float) -> int:  # least "have" with have / need >= ratio (10 * 1.2 is 12.000000000000002)
        return math.ceil(round(n * ratio, 9))

    h, n = judged.have, judged.need
    have_label, need_label = rule.have.source, rule.need.source
    shown = (f"{need_label} {number(n)} > {have_label} {number(h)}" if n > h
             else f"{need_label} {number(n)}, {have_label} {number(h)}")
    window = f"(next {rule.horizon_days} days)"
    called_for = level_of(rule, judged)
    if severity == "NONE":
        why = (f": below the minimum of {number(rule.min_need)} {rule.need_unit or need_label}, not judged"
               if n <= 0 or n < rule.min_need else ": covered")
    elif called_for != severity:  # stepping down, held back by hysteresis
        leave_at = (rule.amber_below if severity == "AMBER" else rule.red_below) + rule.clear_margin
        why = f": held at {severity} until {have_label} reaches {have_for(leave_at)} (hysteresis)"
    elif severity == "AMBER":
        why = f": {have_for(rule.amber_below)} needed for {round((rule.amber_below - 1) * 100)}% cover"
    else:
        why = "" if n > h else f": {have_for(rule.red_below)} needed"
    return f"{severity} {transition}  {name}  {shown} {window}{why}"


@dataclass
class Outcome:
    state: dict[str, Any]
    warning: dict[str, Any] | None


def evaluate(rule: Rule, code: str, name: str, judged: Judged, state: dict[str, Any] | None,
             now_ms: int, evidence_ms: int) -> Outcome:
    """One evaluation of ``rule`` for a group: the rule's next state and, on a transition,
    the warning's core fields (the spec's own fields are added by the caller)."""
    state = dict(state or new_state())
    current = state["severity"]
    wanted = level_of(rule, judged)
    if _rank(wanted) > _rank(current):
        return _move(rule, code, name, judged, state, current, wanted, now_ms, evidence_ms)
    if _rank(wanted) == _rank(current):
        state["pending"] = 0
        return Outcome(state, None)
    with_margin = level_of(rule, judged, rule.clear_margin)
    if _rank(with_margin) >= _rank(current):
        state["pending"] = 0
        return Outcome(state, None)
    state["pending"] = int(state.get("pending", 0)) + 1
    if state["pending"] < rule.clear_after:
        return Outcome(state, None)
    return _move(rule, code, name, judged, state, current, with_margin, now_ms, evidence_ms)


def _move(rule: Rule, code: str, name: str, judged: Judged, state: dict[str, Any], old: str, new: str,
          now_ms: int, evidence_ms: int) -> Outcome:
    transition = transition_of(old, new)
    if transition == "raised":
        state["raised_at"] = now_ms
    elif transition == "cleared":
        state["raised_at"] = None
    state.update(severity=new, pending=0)
    warning = {
        "warning_id": f"{code}:{rule.id}", "rule_id": rule.id, "severity": new, "transition": transition,
        "horizon_days": rule.horizon_days, "evidence_at": evidence_ms, "raised_at": state["raised_at"],
        "message": message_of(new, transition, name, judged, rule),
    }
    return Outcome(state, warning)
