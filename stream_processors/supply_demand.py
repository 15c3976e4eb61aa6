"""Stage 1 of the supply-versus-demand join, in plain Python (no Faust, no Kafka).

Stage 1 (keyed by entity id) keeps the latest state of each housing unit / release case,
drops events older than the position already seen (:func:`decide`), and turns a change
into :class:`Move` s: "entity X now contributes C to area A" (C is None when the entity
left A), carried to stage 2 in repartition messages (:func:`area_message`). Stage 2 holds
each area's contributions (:mod:`.area_state`); see docs/stream-processing.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataplatform.stream_processors.clock import epoch_day

SUPPLY = "supply"
DEMAND = "demand"
LOCAL_AUTHORITY = "local_authority"
REGION = "region"
HOUSING = "social_housing_availability"
RELEASES = "prison_releases_housing_need"


Contribution = tuple  # (kind, day) where day None means "counts whatever the horizon"


def contribution_of(product: str, entity: dict | None) -> Contribution | None:
    """What one entity adds to its area: supply, demand (with its date) or nothing.

    * a housing unit with status ``available`` is supply from its ``available_from`` date;
    * a release case ``scheduled`` is demand from its ``expected_release_date``;
      ``released`` (left prison, not housed yet) is demand whatever the horizon;
      ``housed`` and ``cancelled`` add nothing.
    """
    if entity is None:
        return None
    status = str(entity.get("status"))
    if product == HOUSING:
        return (SUPPLY, epoch_day(entity["available_from"])) if status == "available" else None
    if product == RELEASES:
        if status == "scheduled":
            return (DEMAND, epoch_day(entity["expected_release_date"]))
        if status == "released":
            return (DEMAND, None)
        return None
    raise ValueError(f"no supply/demand rule for product {product!r}")


def areas_of(entity: dict | None) -> list[tuple[str, str, str]]:
    """(area_code, level, region_code) of an entity: its local authority and its region."""
    if entity is None:
        return []
    la, region = str(entity["local_authority_code"]), str(entity["region_code"])
    return [(la, LOCAL_AUTHORITY, region), (region, REGION, region)]


@dataclass(frozen=True)
class Move:
    """Entity ``entity_key`` contributes ``contribution`` to ``area_code`` (None: nothing)."""

    area_code: str
    level: str
    region_code: str
    entity_key: str
    contribution: Contribution | None
    ts_ms: int


def area_message(moves: list[Move], now_ms: int) -> dict[str, Any]:
    """One repartition message carrying every move of a batch into one area (same area).

    ``now_ms`` is the time stage 2 evaluates these moves at (so a replay evaluates them at
    the same time, see :mod:`dataplatform.stream_processors.area_step`)."""
    first = moves[0]
    return {"area": first.area_code, "level": first.level, "region": first.region_code, "now": now_ms,
            "moves": [[m.entity_key, list(m.contribution) if m.contribution else None, m.ts_ms] for m in moves]}


def tick_message(area_code: str, now_ms: int) -> dict[str, Any]:
    """The timer's "re-evaluate this area at ``now_ms``" message (the horizon moved with the clock)."""
    return {"area": area_code, "tick": True, "now": now_ms}


def moves_of_message(m: dict[str, Any]) -> list[Move]:
    """The moves an :func:`area_message` carries, in the order they happened (none for a tick)."""
    return [Move(m["area"], m["level"], m["region"], entity, tuple(c) if c else None, int(ts))
            for entity, c, ts in m.get("moves", ())]


def by_area(moves: list[Move]) -> dict[str, list[Move]]:
    """Moves grouped per area, each group in its original order."""
    groups: dict[str, list[Move]] = {}
    for move in moves:
        groups.setdefault(move.area_code, []).append(move)
    return groups


def entity_state(product: str, op: str, entity: dict | None, position: int, ts_ms: int,
                 previous: dict | None) -> dict:
    """The stored state of one entity after an event (JSON-friendly, no personal data)."""
    live = None if op == "d" else entity
    areas = areas_of(live)
    old_areas = [tuple(a) for a in (previous or {}).get("areas", [])]
    contribution = contribution_of(product, live)
    return {
        "pos": position, "ts": ts_ms,
        "areas": [list(a) for a in areas],
        # areas left by the last change, so a reprocessed event can repeat the removals
        "left": [list(a) for a in old_areas if a not in areas],
        "contribution": list(contribution) if contribution else None,
    }


def moves_of(entity_key: str, state: dict) -> list[Move]:
    """Every contribution message implied by a stored entity state (idempotent to apply)."""
    contribution = tuple(state["contribution"]) if state.get("contribution") else None
    moves = [Move(a, lvl, r, entity_key, None, state["ts"]) for a, lvl, r in state.get("left", [])]
    moves += [Move(a, lvl, r, entity_key, contribution, state["ts"]) for a, lvl, r in state.get("areas", [])]
    return moves


@dataclass
class Decision:
    """What stage 1 does with an event: the new state to store (None: keep) and the moves."""

    state: dict | None
    moves: list[Move]


def decide(product: str, entity_key: str, op: str, entity: dict | None, position: int, ts_ms: int,
           previous: dict | None) -> Decision:
    """Stage 1 for one event.

    Older than, or the same as, the position already seen: nothing to do. (The processor
    stores an entity's state only once the moves it implies are durable, so a redelivered
    event's moves were sent already; sending them again could undo a later move of the
    same entity that stage 2 has applied since.) Newer: stored, and its moves sent
    (removals from areas left, the contribution to the others).
    """
    if previous is not None and position < previous["pos"]:
        return Decision(None, [])
    if previous is not None and position == previous["pos"]:
        return Decision(None, [])
    state = entity_state(product, op, entity, position, ts_ms, previous)
    return Decision(state, moves_of(entity_key, state))


