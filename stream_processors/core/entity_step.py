"""Stage 1 of a derivation, in plain Python (no Faust, no Kafka): one change of one entity.

Stage 1 (keyed by entity id) keeps the latest state of each entity, drops events older than
the position already seen (:func:`decide`), and turns a change into :class:`Move` s:
"entity X now contributes C to group G" (C is None when the entity left G), carried to
stage 2 in repartition messages (:func:`group_message`). What an entity contributes and to
which groups comes from the compiled spec (:mod:`.compiled`). Stage 2 holds each group's
contributions (:mod:`.group_state`); see docs/stream-processing.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataplatform.stream_processors.core.compiled import CompiledDerivation, Contribution


@dataclass(frozen=True)
class Move:
    """Entity ``entity_key`` contributes ``contribution`` to group ``code`` (None: nothing)."""

    code: str
    level: str
    fields: dict
    entity_key: str
    contribution: Contribution | None
    ts_ms: int


def group_message(moves: list[Move], now_ms: int) -> dict[str, Any]:
    """One repartition message carrying every move of a batch into one group (same group).

    ``now_ms`` is the time stage 2 evaluates these moves at (so a replay evaluates them at
    the same time, see :mod:`dataplatform.stream_processors.core.group_step`)."""
    first = moves[0]
    return {"group": first.code, "level": first.level, "fields": first.fields, "now": now_ms,
            "moves": [[m.entity_key, list(m.contribution) if m.contribution else None, m.ts_ms] for m in moves]}


def tick_message(code: str, now_ms: int) -> dict[str, Any]:
    """The timer's "re-evaluate this group at ``now_ms``" message (the horizon moved with the clock)."""
    return {"group": code, "tick": True, "now": now_ms}


def moves_of_message(m: dict[str, Any]) -> list[Move]:
    """The moves a :func:`group_message` carries, in the order they happened (none for a tick)."""
    return [Move(m["group"], m["level"], m["fields"], entity, tuple(c) if c else None, int(ts))
            for entity, c, ts in m.get("moves", ())]


def by_group(moves: list[Move]) -> dict[str, list[Move]]:
    """Moves grouped per group, each in its original order."""
    groups: dict[str, list[Move]] = {}
    for move in moves:
        groups.setdefault(move.code, []).append(move)
    return groups


def entity_state(compiled: CompiledDerivation, product: str, op: str, entity: dict | None, position: int,
                 ts_ms: int, previous: dict | None) -> dict:
    """The stored state of one entity after an event (JSON-friendly, no personal data)."""
    live = None if op == "d" else entity
    groups = [[code, level, fields] for code, level, fields in compiled.groups_of(product, live)]
    codes = {g[0] for g in groups}
    contribution = compiled.contribution_of(product, live)
    return {
        "pos": position, "ts": ts_ms,
        "groups": groups,
        # groups left by the last change, so a reprocessed event can repeat the removals
        "left": [g for g in (previous or {}).get("groups", []) if g[0] not in codes],
        "contribution": list(contribution) if contribution else None,
    }


def moves_of(entity_key: str, state: dict) -> list[Move]:
    """Every contribution message implied by a stored entity state (idempotent to apply)."""
    contribution = tuple(state["contribution"]) if state.get("contribution") else None
    moves = [Move(code, level, fields, entity_key, None, state["ts"]) for code, level, fields in state.get("left", [])]
    moves += [Move(code, level, fields, entity_key, contribution, state["ts"])
              for code, level, fields in state.get("groups", [])]
    return moves


@dataclass
class Decision:
    """What stage 1 does with an event: the new state to store (None: keep) and the moves."""

    state: dict | None
    moves: list[Move]


def decide(compiled: CompiledDerivation, product: str, entity_key: str, op: str, entity: dict | None,
           position: int, ts_ms: int, previous: dict | None) -> Decision:
    """Stage 1 for one event.

    Older than, or the same as, the position already seen: nothing to do. (The processor
    stores an entity's state only once the moves it implies are durable, so a redelivered
    event's moves were sent already; sending them again could undo a later move of the
    same entity that stage 2 has applied since.) Newer: stored, and its moves sent
    (removals from groups left, the contribution to the others).
    """
    if previous is not None and position <= previous["pos"]:
        return Decision(None, [])
    state = entity_state(compiled, product, op, entity, position, ts_ms, previous)
    return Decision(state, moves_of(entity_key, state))
