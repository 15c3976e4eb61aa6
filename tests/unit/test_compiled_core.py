"""The counting core of a compiled spec (the housing example): horizon edges, moves between
groups, roll-ups, deletes, duplicates, replays."""

from __future__ import annotations

import datetime as dt

from dataplatform.derivations.expressions import epoch_day
from dataplatform.stream_processors.core.clock import ManualClock, today_of
from dataplatform.stream_processors.core.entity_step import Move, by_group, group_message, moves_of_message, tick_message
from dataplatform.stream_processors.core.group_state import GroupState
from tests.support.entities import HOUSING, RELEASES, housing_unit, release_case
from tests.support.in_memory import EntityTracker, GroupBook, housing

SUPPLY, DEMAND = "supply", "demand"

CLOCK = ManualClock(dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc))
TODAY = dt.date(2026, 3, 1)
LA1, LA2, REG = "E08000003", "E08000001", "E12000002"   # Manchester, Bolton: North West


def unit(uid: str, la: str = LA1, status: str = "available", days: int = 0) -> dict:
    return housing_unit(uid, la, REG, status, available_from=TODAY + dt.timedelta(days=days), provider="p",
                        updated_at=0)


def case(cid: str, la: str = LA1, status: str = "scheduled", days: int = 0) -> dict:
    return release_case(cid, la, REG, status, release_date=TODAY + dt.timedelta(days=days), person_ref="P-SECRET",
                        updated_at=0)


class Pipeline:
    """Stage 1 feeding stage 2, as the Faust topology does."""

    def __init__(self) -> None:
        self.tracker, self.book = EntityTracker(), GroupBook()

    def send(self, product: str, key: str, op: str, entity: dict, position: int, ts: int = 1) -> None:
        for move in self.tracker.apply(product, key, op, entity, position, ts):
            self.book.apply(move)

    def figures(self, area: str, horizon: int = 28) -> tuple[int, int]:
        m = self.book.measures(area, today_of(CLOCK), horizon)
        return m["supply"], m["demand"]


def test_horizon_includes_day_28_and_excludes_day_29():
    p = Pipeline()
    p.send(RELEASES, "c28", "c", case("c28", days=28), 1)
    p.send(RELEASES, "c29", "c", case("c29", days=29), 1)
    p.send(HOUSING, "u28", "c", unit("u28", days=28), 1)
    p.send(HOUSING, "u29", "c", unit("u29", days=29), 1)
    assert p.figures(LA1) == (1, 1)
    assert p.figures(LA1, horizon=29) == (2, 2)


def test_released_counts_whatever_the_date_and_housed_or_cancelled_do_not():
    p = Pipeline()
    p.send(RELEASES, "a", "c", case("a", status="released", days=-200), 1)
    p.send(RELEASES, "b", "c", case("b", status="housed"), 1)
    p.send(RELEASES, "c", "c", case("c", status="cancelled"), 1)
    p.send(HOUSING, "u", "c", unit("u", status="let"), 1)
    assert p.figures(LA1) == (0, 1)


def test_update_moves_an_entity_between_areas_and_rolls_up_to_the_region():
    p = Pipeline()
    p.send(HOUSING, "u1", "c", unit("u1", la=LA1), 1)
    assert p.figures(LA1) == (1, 0) and p.figures(REG) == (1, 0)
    p.send(HOUSING, "u1", "u", unit("u1", la=LA2), 2)
    assert p.figures(LA1) == (0, 0)
    assert p.figures(LA2) == (1, 0)
    assert p.figures(REG) == (1, 0)


def test_delete_removes_the_entity():
    p = Pipeline()
    p.send(RELEASES, "c1", "c", case("c1"), 1)
    p.send(RELEASES, "c1", "d", case("c1"), 2)
    assert p.figures(LA1) == (0, 0) and p.figures(REG) == (0, 0)


def test_duplicates_and_replays_change_nothing():
    p = Pipeline()
    events = [(HOUSING, "u1", "c", unit("u1"), 1), (RELEASES, "c1", "c", case("c1"), 1),
              (RELEASES, "c2", "c", case("c2"), 1), (RELEASES, "c2", "u", case("c2", la=LA2), 2),
              (HOUSING, "u1", "u", unit("u1", status="let"), 2)]
    for e in events:
        p.send(*e)
    expected = {a: p.figures(a) for a in (LA1, LA2, REG)}
    for e in events + list(reversed(events)):   # redelivered, then replayed out of order
        p.send(*e)
    assert {a: p.figures(a) for a in (LA1, LA2, REG)} == expected == {LA1: (0, 1), LA2: (0, 1), REG: (0, 2)}


def test_a_redelivered_event_sends_no_moves_again():
    # the processor stores a state only once its moves are durable, so a redelivery's moves
    # were sent already; re-sending the stored ones could undo a later move stage 2 applied
    tracker = EntityTracker()
    assert tracker.apply(HOUSING, "u1", "c", unit("u1"), 5, 1)
    assert tracker.apply(HOUSING, "u1", "c", unit("u1"), 5, 1) == []


def test_older_position_is_ignored():
    p = Pipeline()
    p.send(HOUSING, "u1", "u", unit("u1", status="let"), 5)
    p.send(HOUSING, "u1", "c", unit("u1"), 3)
    assert p.figures(LA1) == (0, 0)


def test_snapshot_loads_state():
    p = Pipeline()
    for i in range(3):
        p.send(HOUSING, f"u{i}", "r", unit(f"u{i}"), 10)
    p.send(RELEASES, "c1", "r", case("c1", days=3), 10)
    assert p.figures(REG) == (3, 1)


def test_counts_are_derived_per_role_without_personal_data():
    p = Pipeline()
    p.send(RELEASES, "c1", "c", case("c1"), 1)
    state = p.book.groups[LA1]
    assert "P-SECRET" not in repr(state) and "P-SECRET" not in repr(p.tracker.states)
    # the contribution: the role, then what counts_when reads (release date, status)
    assert list(state.entities.values()) == [(DEMAND, epoch_day(TODAY), "scheduled")]


def test_group_messages_carry_a_batch_of_moves_in_order():
    fields = {"area_code": LA1, "region": REG}
    moves = [Move(LA1, "local_authority", fields, "supply:u1", (SUPPLY, 5), 1),
             Move(REG, "region", {"region": REG}, "supply:u1", (SUPPLY, 5), 1),
             Move(LA1, "local_authority", fields, "supply:u1", None, 2)]
    groups = by_group(moves)
    assert list(groups) == [LA1, REG] and [m.ts_ms for m in groups[LA1]] == [1, 2]
    assert moves_of_message(group_message(groups[LA1], 7)) == groups[LA1]   # a round trip, order kept
    assert moves_of_message(tick_message(LA1, 7)) == []
    assert group_message(groups[LA1], 7)["now"] == tick_message(LA1, 7)["now"] == 7


def test_figures_follow_moves_after_the_tally_is_built():
    compiled, fields = housing(), {"area_code": LA1}
    group = GroupState(LA1, "local_authority", fields)

    def figures(today: int, horizon: int) -> tuple[int, int]:
        m = group.measures(compiled, today, horizon)
        return m["supply"], m["demand"]

    group.apply(Move(LA1, "local_authority", fields, "a", (SUPPLY, 10), 1))
    assert figures(10, 0) == (1, 0)
    group.apply(Move(LA1, "local_authority", fields, "a", (DEMAND, None, "released"), 2))  # the entity changes role
    group.apply(Move(LA1, "local_authority", fields, "b", (SUPPLY, 40), 3))                # beyond the horizon
    assert figures(10, 28) == (0, 1)
    group.apply(Move(LA1, "local_authority", fields, "a", None, 4))                        # gone
    assert figures(20, 28) == (1, 0)
