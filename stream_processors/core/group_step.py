"""One step of stage 2 for one group, in plain Python: messages in, outputs and writes out.

The step is a pure function of the group's stored state and the repartition messages it
is given, so a step replayed after a crash produces the very same outputs, byte for byte:

* a message at or below the group's ``applied`` offset was applied by a finished step and
  is skipped;
* "now" (the horizon, ``as_of``, ``raised_at``, each event's ``ts_ms``) is the time the
  message carries (its ``now``), set by stage 1 or the timer when it was sent,
  never the clock at the time of processing;
* after each message that changed the group, and on every tick, the derived figures are
  emitted (when they moved) and then the rules are judged, once, on those very figures:
  every warning carries figures that a figures event of its group published, never an
  intermediate state inside one message (a hearing applied before its booking), and the
  outputs do not depend on how messages were batched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataplatform.products.envelope import ChangeEvent
from dataplatform.stream_processors.core.clock import Moment
from dataplatform.stream_processors.core.compiled import CompiledDerivation, Contribution
from dataplatform.stream_processors.core.entity_step import moves_of_message
from dataplatform.stream_processors.core.evaluation import derive_figures, evaluate_rules
from dataplatform.stream_processors.core.group_table import HeldGroup, head_key, member_writes


@dataclass
class GroupStep:
    """What one step of a group sends and writes (outputs first, then members, then head)."""

    code: str
    figures: list[ChangeEvent] = field(default_factory=list)
    warnings: list[ChangeEvent] = field(default_factory=list)
    members: list[tuple[str, Any]] = field(default_factory=list)
    head: tuple[str, dict[str, Any]] | None = None

    @property
    def outputs(self) -> int:
        return len(self.figures) + len(self.warnings)


def step_group(compiled: CompiledDerivation, held: HeldGroup, messages: list[tuple[int, dict[str, Any]]]
               ) -> GroupStep | None:
    """Apply ``(offset, message)`` pairs, in order, to ``held`` (changed in place).

    None when nothing changed (every message already applied, or a no-op): nothing is
    sent and nothing written, and a replay of those messages is a no-op again.
    """
    group = held.group
    step = GroupStep(group.code)
    before: dict[str, Contribution | None] = {}
    old_rules, old_published, old_max_ts = held.rules, held.published, group.max_ts
    for offset, message in messages:
        if offset <= held.applied:
            continue
        at = Moment.of_ms(int(message["now"]))
        moves = moves_of_message(message)
        if moves and not group.level:
            group.level, group.fields = moves[0].level, moves[0].fields
        tick = bool(message.get("tick")) and bool(group.level)   # (a group never moved into: nothing to judge)
        touched = tick
        for move in moves:
            previous = group.entities.get(move.entity_key)
            if not group.apply(move):
                continue   # a duplicate or replay changes nothing
            touched = True
            before.setdefault(move.entity_key, previous)
        if touched:
            held.published, change = derive_figures(compiled, group, held.published, at)
            if change is not None:
                step.figures.append(change)
            held.rules, events = evaluate_rules(compiled, group, held.rules, at)
            step.warnings += events
        held.applied = offset
    changed = {entity: (old, group.entities.get(entity)) for entity, old in before.items()
               if old != group.entities.get(entity)}
    if (not changed and not held.departed and not held.undone and held.rules == old_rules
            and held.published == old_published and group.max_ts == old_max_ts):
        return None   # (an entity that came and went within the step still moved max_ts: kept)
    step.members = member_writes(held, changed, held.applied)
    held.departed = {entity for entity, (_, after) in changed.items() if after is None}
    held.undone = set()
    step.head = (head_key(group.code), held.head())
    return step
