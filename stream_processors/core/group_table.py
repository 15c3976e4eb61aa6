"""Stage 2's table: how each group is stored so that a step cut short by a crash is undone.

One changelog-backed table holds, per group, a value per member and one *head*, all in the
group's changelog partition:

* member ``<group>|<entity>``: ``{"c": contribution, "prev": contribution before the step
  that wrote it, "at": offset of that step}`` (a contribution of None: the entity left);
* head ``<group>|``: level, fields, latest evidence time, the last published figures, the
  rule states, and ``applied``, the offset of the last repartition message applied.

A step writes its members, then (once its outputs are durable) its head. Writes to one
partition land in order, so a durable head means every member of its step is durable
too; a member newer than its head (``at > applied``) belongs to a step that never
finished, and :func:`rebuild` puts back its ``prev``. The rebuilt state is therefore
exactly the state after the last finished step of each group, and the messages after
``applied`` are replayed against it to the same outputs (see docs/stream-processing.md,
"Crashes"). A member that left is kept as ``c: None`` until a later step of its group,
when it is committed, and then deleted (a tombstone), so a crash can never lose a
departure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dataplatform.stream_processors.core.compiled import Contribution
from dataplatform.stream_processors.core.group_state import GroupState

NOTHING_APPLIED = -1


def member_key(code: str, entity_key: str) -> str:
    """One value per member, so a change writes that member only, whatever the group's size."""
    return f"{code}|{entity_key}"


def head_key(code: str) -> str:
    return f"{code}|"


@dataclass
class HeldGroup:
    """One group as a worker holds it in memory between steps."""

    group: GroupState
    applied: int = NOTHING_APPLIED
    published: dict[str, Any] | None = None
    rules: dict[str, dict] | None = None
    departed: set[str] = field(default_factory=set)   # members stored as c: None, committed
    undone: set[str] = field(default_factory=set)     # members whose unfinished write was undone

    def head(self) -> dict[str, Any]:
        g = self.group
        return {"level": g.level, "fields": g.fields, "max_ts": g.max_ts, "applied": self.applied,
                "published": self.published, "rules": self.rules}


def member_writes(held: HeldGroup, changed: dict[str, tuple[Contribution | None, Contribution | None]],
                  offset: int) -> list[tuple[str, Any]]:
    """A step's member writes: each changed member (``entity -> (before the step, after)``)
    stamped with the step's offset; a tombstone for each departure already committed; and
    each member whose unfinished write :func:`rebuild` undid, written again as it is now
    (else that stale write would count as finished once this step's head lands)."""
    code = held.group.code
    writes: list[tuple[str, Any]] = [
        (member_key(code, entity), {"c": _stored(after), "prev": _stored(before), "at": offset})
        for entity, (before, after) in changed.items()]
    for entity in sorted(held.undone - changed.keys()):
        now = held.group.entities.get(entity)
        writes.append((member_key(code, entity), {"c": _stored(now), "prev": _stored(now), "at": offset}
                       if now is not None else None))
    writes += [(member_key(code, entity), None) for entity in sorted(held.departed - changed.keys() - held.undone)]
    return writes


def rebuild(items: Iterable[tuple[str, Any]]) -> dict[str, HeldGroup]:
    """Every group in the table, as it was after its last finished step (one pass)."""
    held: dict[str, HeldGroup] = {}
    members: list[tuple[str, str, dict]] = []
    for key, value in items:
        code, _, entity = key.partition("|")
        if value is None:
            continue
        if entity:
            members.append((code, entity, value))
        else:
            group = GroupState(code, value["level"], value["fields"], max_ts=int(value["max_ts"]))
            held[code] = HeldGroup(group, int(value["applied"]), value["published"], value["rules"])
    for code, entity, value in members:
        h = held.get(code)
        if h is None:   # only members: the group's first step never finished
            h = held[code] = HeldGroup(GroupState(code, ""))
        finished = value["at"] <= h.applied
        contribution = value["c"] if finished else value["prev"]
        if contribution is not None:
            h.group.entities[entity] = tuple(contribution)
        elif finished:
            h.departed.add(entity)
        if not finished:
            h.undone.add(entity)
    # a group whose first step never finished is kept for its undone members: the next step
    # must write them again (or delete them), else its head would make them count as finished
    return {code: h for code, h in held.items() if h.applied != NOTHING_APPLIED or h.group.entities or h.undone}


def _stored(contribution: Contribution | None) -> list | None:
    return list(contribution) if contribution is not None else None
