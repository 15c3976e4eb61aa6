"""Threshold rules of a derivation: the evaluator (the format lives in the spec, see
:class:`dataplatform.derivations.spec.Rule`).

Plain Python, no Faust: the processor calls :func:`evaluate` for each (group, rule) with the
rule's stored state and gets back the new state and, on a transition, a warning record.

Each (group, rule) is a small state machine over NONE < AMBER < RED, on the coverage
``have / need`` (two expressions over the group's measures):

* stepping **up** (``raised`` from NONE, ``escalated`` AMBER->RED) happens once the figures
  have called for the level at every evaluation for ``raise_for`` (Prometheus' ``for``;
  0: at once);
* stepping **down** (``deescalated`` RED->AMBER, ``cleared`` ->NONE) needs the coverage to
  sit above the threshold *plus* ``clear_margin`` for ``clear_after`` consecutive
  evaluations and for ``keep_for`` (Prometheus' ``keep_firing_for``). A figure hovering
  at a threshold therefore cannot flap, however often it is evaluated.

The times are the evaluations' own (each repartition message's ``now``), and a pending
hold is part of the state (``rising``: since when each level above the current one has
been called for; ``falling_since``: since when the figures have been clear of it), so
the state is stored with the rest and a replay after a crash resumes the same timers.
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
    a higher level still within its ``raise_for``, a step down held back by hysteresis, or
    a clear because too little is needed for the group to be judged (the rule's minimum
    volume).
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
    elif _rank(called_for) > _rank(severity) and rule.raise_for_ms:  # a higher level not yet held for raise_for
        why = f": {called_for} once that holds for {rule.raise_for}"
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
    """One evaluation of ``rule`` for a group at ``now_ms``: the rule's next state and, on a
    transition, the warning's core fields (the spec's own fields are added by the caller)."""
    state = dict(state or new_state())
    current = state["severity"]
    wanted = level_of(rule, judged)
    if _rank(wanted) >= _rank(current):
        state["pending"] = 0
        state.pop("falling_since", None)
        return _rise(rule, code, name, judged, state, current, wanted, now_ms, evidence_ms)
    state.pop("rising", None)
    with_margin = level_of(rule, judged, rule.clear_margin)
    if _rank(with_margin) >= _rank(current):
        state["pending"] = 0
        state.pop("falling_since", None)
        return Outcome(state, None)
    state["pending"] = int(state.get("pending", 0)) + 1
    since = state.setdefault("falling_since", now_ms)
    if state["pending"] < rule.clear_after or now_ms - since < rule.keep_for_ms:
        return Outcome(state, None)
    return _move(rule, code, name, judged, state, current, with_margin, now_ms, evidence_ms)


def _rise(rule: Rule, code: str, name: str, judged: Judged, state: dict[str, Any], current: str, wanted: str,
          now_ms: int, evidence_ms: int) -> Outcome:
    """Figures calling for ``current`` or more: note since when each level above ``current``
    has been called for (a level no longer called for starts again), and raise the highest
    one that has been called for ``raise_for``."""
    held = state.pop("rising", None) or {}
    rising = {level: held.get(level, now_ms) for level in SEVERITIES[_rank(current) + 1:_rank(wanted) + 1]}
    if rising:
        state["rising"] = rising
    ready = [level for level, since in rising.items() if now_ms - since >= rule.raise_for_ms]
    if ready:
        return _move(rule, code, name, judged, state, current, ready[-1], now_ms, evidence_ms)
    return Outcome(state, None)


def _move(rule: Rule, code: str, name: str, judged: Judged, state: dict[str, Any], old: str, new: str,
          now_ms: int, evidence_ms: int) -> Outcome:
    transition = transition_of(old, new)
    if transition == "raised":
        state["raised_at"] = now_ms
    elif transition == "cleared":
        state["raised_at"] = None
    state.update(severity=new, pending=0)
    state.pop("falling_since", None)
    rising = {level: since for level, since in state.pop("rising", {}).items() if _rank(level) > _rank(new)}
    if rising:
        state["rising"] = rising   # RED still pending once AMBER is raised
    warning = {
        "warning_id": f"{code}:{rule.id}", "rule_id": rule.id, "severity": new, "transition": transition,
        "horizon_days": rule.horizon_days, "evidence_at": evidence_ms, "raised_at": state["raised_at"],
        "message": message_of(new, transition, name, judged, rule),
    }
    return Outcome(state, warning)
