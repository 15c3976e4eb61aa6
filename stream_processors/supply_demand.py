"""The counting core of the supply-versus-demand join, in plain Python (no Faust, no Kafka).

Counts are never kept as running +1/-1 totals: every area holds the set of entities that
contribute to it (entity key -> contribution) and the figures are derived from that set
when asked. Re-applying the same fact is therefore a no-op, and a duplicated, replayed or
reprocessed event can never change a count.

Two stages, mirroring the Faust topology (see docs/stream-processing.md):

* :class:`EntityTracker` (stage 1, keyed by entity id) keeps the latest state of each
  housing unit / release case, drops events older than the position already seen, and
  turns a change into :class:`Move` s: "entity X now contributes C to area A" (C is None
  when the entity left A).
* :class:`AreaState` (stage 2, keyed by area) holds the contributions of one area and
  derives supply and demand for a horizon measured from a clock.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

EPOCH = dt.date(1970, 1, 1)
SUPPLY = "supply"
DEMAND = "demand"
LOCAL_AUTHORITY = "local_authority"
REGION = "region"
HOUSING = "social_housing_availability"
RELEASES = "prison_releases_housing_need"


class Clock(Protocol):
    """Where "now" comes from; tests move a :class:`ManualClock` instead of waiting."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


@dataclass
class ManualClock:
    current: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc))

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


def epoch_day(value: dt.date | dt.datetime | int) -> int:
    """Days since 1970-01-01 (Avro's ``date``), whatever form the decoder gave us."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return (value - EPOCH).days
    return int(value)


def today_of(clock: Clock) -> int:
    return epoch_day(clock.now().astimezone(dt.timezone.utc).date())


# -- stage 1: entities -------------------------------------------------------------------

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


class EntityTracker:
    """Stage 1 in memory (for tests and the benchmark's baseline checks)."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}

    def apply(self, product: str, entity_key: str, op: str, entity: dict | None, position: int,
              ts_ms: int) -> list[Move]:
        key = f"{product}:{entity_key}"
        decision = decide(product, key, op, entity, position, ts_ms, self.states.get(key))
        if decision.state is not None:
            self.states[key] = decision.state
        return decision.moves


# -- stage 2: areas --------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    supply: int
    demand: int


@dataclass
class AreaState:
    """The contributions to one area, keyed by entity; figures derived on demand."""

    area_code: str
    level: str
    region_code: str
    entities: dict[str, Contribution] = field(default_factory=dict)
    max_ts: int = 0
    _tally: Counter | None = field(default=None, repr=False, compare=False)

    def apply(self, move: Move) -> bool:
        """Set the entity's contribution; True when that changed anything."""
        old = self.entities.get(move.entity_key)
        if old == move.contribution:
            return False
        if move.contribution is None:
            del self.entities[move.entity_key]
        else:
            self.entities[move.entity_key] = move.contribution
        if self._tally is not None:
            if old is not None:
                self._tally[old] -= 1
            if move.contribution is not None:
                self._tally[move.contribution] += 1
        self.max_ts = max(self.max_ts, move.ts_ms)
        return True

    def figures(self, today: int, horizon_days: int) -> Figures:
        """Supply and demand whose date is on or before ``today + horizon_days``.

        Counted from a tally of contributions (how many entities per kind and day), kept up
        to date by :meth:`apply`, so the rules can be evaluated after every change of a large
        area without walking all its entities.
        """
        if self._tally is None:
            self._tally = Counter(self.entities.values())
        last_day = today + horizon_days
        supply = demand = 0
        for (kind, day), n in self._tally.items():
            if day is None or day <= last_day:
                if kind == SUPPLY:
                    supply += n
                else:
                    demand += n
        return Figures(supply, demand)

    def to_dict(self) -> dict[str, Any]:
        return {"area": self.area_code, "level": self.level, "region": self.region_code,
                "entities": {k: list(v) for k, v in self.entities.items()}, "max_ts": self.max_ts}


class AreaBook:
    """Stage 2 in memory: every area's state; applies moves from stage 1."""

    def __init__(self) -> None:
        self.areas: dict[str, AreaState] = {}

    def apply(self, move: Move) -> bool:
        state = self.areas.setdefault(move.area_code, AreaState(move.area_code, move.level, move.region_code))
        return state.apply(move)

    def figures(self, area_code: str, today: int, horizon_days: int) -> Figures:
        state = self.areas.get(area_code)
        return state.figures(today, horizon_days) if state else Figures(0, 0)
