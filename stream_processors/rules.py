"""Threshold rules for housing shortfall warnings: the YAML format and the evaluator.

Plain Python, no Faust: the processor calls :func:`evaluate` for each (area, rule) with the
rule's stored state and gets back the new state and, on a transition, a warning record.

Each (area, rule) is a small state machine over NONE < AMBER < RED:

* stepping **up** is immediate (``raised`` from NONE, ``escalated`` AMBER->RED);
* stepping **down** (``deescalated`` RED->AMBER, ``cleared`` ->NONE) needs the coverage to
  sit above the threshold *plus* ``clear_margin`` for ``clear_after`` consecutive
  evaluations. A figure hovering at a threshold therefore cannot flap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataplatform.products.reference import area_name
from dataplatform.stream_processors.area_state import Figures
from dataplatform.stream_processors.supply_demand import LOCAL_AUTHORITY, REGION

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yaml")
SEVERITIES = ("NONE", "AMBER", "RED")
LEVELS = (LOCAL_AUTHORITY, REGION)


class RulesFileError(ValueError):
    """A rules file that cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True)
class Rule:
    id: str
    applies_to: tuple[str, ...] = LEVELS
    horizon_days: int = 28
    min_demand: int = 1
    red_below: float = 1.0
    amber_below: float = 1.2
    clear_margin: float = 0.1
    clear_after: int = 1
    description: str = ""
    runbook: str = ""   # what to do: a file in the runbook folder, or a link (default: <id>.md)

    def level(self, figures: Figures, margin: float = 0.0) -> str:
        """The severity the figures call for, with thresholds raised by ``margin``."""
        if figures.demand < max(self.min_demand, 1):
            return "NONE"
        coverage = figures.supply / figures.demand
        if coverage < self.red_below + margin:
            return "RED"
        if coverage < self.amber_below + margin:
            return "AMBER"
        return "NONE"


@dataclass(frozen=True)
class RuleSet:
    horizon_days: int
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def for_level(self, level: str) -> list[Rule]:
        return [r for r in self.rules if level in r.applies_to]


def load_rules(path: Path | str | None = None, horizon_days: int | None = None) -> RuleSet:
    """Read and check a rules file; ``horizon_days`` overrides every rule's horizon."""
    path = Path(path or DEFAULT_RULES_PATH)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RulesFileError(f"{path}: no such rules file; pass --rules with the path of a YAML rules file") from None
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_rules(doc, str(path), horizon_days)


def parse_rules(doc: Any, where: str = "rules", horizon_days: int | None = None) -> RuleSet:
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise RulesFileError(f"{where}: expected a mapping with a non-empty 'rules' list")
    default_horizon = int(horizon_days or doc.get("horizon_days", 28))
    rules, seen = [], set()
    known = set(Rule.__dataclass_fields__)
    for i, raw in enumerate(doc["rules"]):
        at = f"{where}: rules[{i}]"
        if not isinstance(raw, dict) or not raw.get("id"):
            raise RulesFileError(f"{at}: each rule needs an 'id'")
        unknown = set(raw) - known
        if unknown:
            raise RulesFileError(f"{at}: unknown keys {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        values = dict(raw)
        values["applies_to"] = tuple(values.get("applies_to", LEVELS))
        bad = [lvl for lvl in values["applies_to"] if lvl not in LEVELS]
        if bad:
            raise RulesFileError(f"{at}: applies_to {bad} is not one of {', '.join(LEVELS)}")
        values["horizon_days"] = int(horizon_days or values.get("horizon_days", default_horizon))
        rule = Rule(**values)
        if rule.id in seen:
            raise RulesFileError(f"{at}: rule id {rule.id!r} is used twice")
        if not (0 <= rule.red_below <= rule.amber_below) or rule.clear_margin < 0 or rule.clear_after < 1:
            raise RulesFileError(f"{at}: need 0 <= red_below <= amber_below, clear_margin >= 0, clear_after >= 1")
        if rule.horizon_days < 0:
            raise RulesFileError(f"{at}: horizon_days must be >= 0")
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(default_horizon, tuple(rules))


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


def message_of(severity: str, transition: str, name: str, figures: Figures, rule: Rule) -> str:
    """One line for people whose words never contradict its figures, e.g.
    ``RED raised  North West  demand 41 > supply 12 (next 28 days)``.

    When the figures alone do not call for the severity, the line says why it holds:
    a step down held back by hysteresis, or a clear because too few people need housing
    for the area to be judged (the rule's minimum volume).
    """
    def supply_for(ratio: float) -> int:  # least supply with supply / demand >= ratio (10 * 1.2 is 12.000000000000002)
        return math.ceil(round(d * ratio, 9))

    s, d = figures.supply, figures.demand
    shown = f"demand {d} > supply {s}" if d > s else f"demand {d}, supply {s}"
    window = f"(next {rule.horizon_days} days)"
    called_for = rule.level(figures)
    if severity == "NONE":
        why = (f": below the minimum of {rule.min_demand} people, not judged" if d < max(rule.min_demand, 1)
               else ": covered")
    elif called_for != severity:  # stepping down, held back by hysteresis
        leave_at = (rule.amber_below if severity == "AMBER" else rule.red_below) + rule.clear_margin
        why = f": held at {severity} until supply reaches {supply_for(leave_at)} (hysteresis)"
    elif severity == "AMBER":
        why = f": {supply_for(rule.amber_below)} needed for {round((rule.amber_below - 1) * 100)}% cover"
    else:
        why = "" if d > s else f": {supply_for(rule.red_below)} needed"
    return f"{severity} {transition}  {name}  {shown} {window}{why}"


@dataclass
class Outcome:
    state: dict[str, Any]
    warning: dict[str, Any] | None


def evaluate(rule: Rule, area_code: str, level: str, figures: Figures, state: dict[str, Any] | None,
             now_ms: int, evidence_ms: int) -> Outcome:
    """One evaluation of ``rule`` for an area: the rule's next state and any warning."""
    state = dict(state or new_state())
    current = state["severity"]
    wanted = rule.level(figures)
    if _rank(wanted) > _rank(current):
        return _move(rule, area_code, level, figures, state, current, wanted, now_ms, evidence_ms)
    if _rank(wanted) == _rank(current):
        state["pending"] = 0
        return Outcome(state, None)
    with_margin = rule.level(figures, rule.clear_margin)
    if _rank(with_margin) >= _rank(current):
        state["pending"] = 0
        return Outcome(state, None)
    state["pending"] = int(state.get("pending", 0)) + 1
    if state["pending"] < rule.clear_after:
        return Outcome(state, None)
    return _move(rule, area_code, level, figures, state, current, with_margin, now_ms, evidence_ms)


def _move(rule: Rule, area_code: str, level: str, figures: Figures, state: dict[str, Any], old: str, new: str,
          now_ms: int, evidence_ms: int) -> Outcome:
    transition = transition_of(old, new)
    if transition == "raised":
        state["raised_at"] = now_ms
    elif transition == "cleared":
        state["raised_at"] = None
    state.update(severity=new, pending=0)
    name = area_name(area_code)
    warning = {
        "warning_id": f"{area_code}:{rule.id}", "area_code": area_code, "area_name": name,
        "area_level": level, "rule_id": rule.id, "severity": new, "transition": transition,
        "supply": figures.supply, "demand": figures.demand, "horizon_days": rule.horizon_days,
        "evidence_at": evidence_ms, "raised_at": state["raised_at"],
        "message": message_of(new, transition, name, figures, rule),
    }
    return Outcome(state, warning)
