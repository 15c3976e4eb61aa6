"""Stage 2's crash safety in plain Python: a step cut short anywhere is undone by the
rebuild, and the replay sends the very same events (stream_processors/core/group_step.py,
group_table.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest

from dataplatform.derivations.expressions import epoch_day
from dataplatform.derivations.loading import get_derivation
from dataplatform.stream_processors.core.compiled import CompiledDerivation
from dataplatform.stream_processors.core.entity_step import Move, group_message, tick_message
from dataplatform.stream_processors.core.group_state import GroupState
from dataplatform.stream_processors.core.group_step import step_group
from dataplatform.stream_processors.core.group_table import HeldGroup, head_key, member_key, rebuild
from tests.support.in_memory import HOUSING_SPEC, housing_rule
from tests.support.published_figures import assert_warnings_carry_published_figures

LA = "E08000003"   # Manchester
REG = "E12000002"
DAY = epoch_day(dt.date(2026, 3, 1))
NOON_MS = int(dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc).timestamp() * 1000)
COMPILED = CompiledDerivation(dataclasses.replace(get_derivation(HOUSING_SPEC), rules=(
    housing_rule(min_need=1, red_below=1.0, amber_below=1.2, clear_margin=0.1, clear_after=2),)))
# the same rule held in time (messages come a minute apart): raised after 2 minutes, down after 3
HELD = CompiledDerivation(dataclasses.replace(get_derivation(HOUSING_SPEC), rules=(
    housing_rule(min_need=1, red_below=1.0, amber_below=1.2, clear_margin=0.1, clear_after=2,
                 raise_for="2m", keep_for="3m"),)))
SUPPLY, DEMAND = ("supply", DAY), ("demand", DAY + 3, "scheduled")
RELEASED = ("demand", None, "released")
FIELDS = {"area_code": LA, "local_authority": LA, "region": REG}


def move(entity: str, contribution: tuple | None, ts: int = 1) -> Move:
    return Move(LA, "local_authority", FIELDS, entity, contribution, ts)


def random_messages(seed: int, n: int = 60) -> list[tuple[int, dict]]:
    """Repartition messages for one group: entities come, change kind, leave, come back;
    with exact repeats and ticks, as stage 1 and the timer send them."""
    rnd = random.Random(seed)
    messages: list[tuple[int, dict]] = []
    last_moves: list[Move] = []
    for offset in range(n):
        now = NOON_MS + offset * 60_000
        if rnd.random() < 0.15:
            messages.append((offset, tick_message(LA, now)))
            continue
        moves = []
        for _ in range(rnd.randint(1, 3)):
            entity = f"e{rnd.randint(0, 9)}"
            contribution = rnd.choice([SUPPLY, DEMAND, RELEASED, None])
            moves.append(move(entity, contribution, offset))
        if rnd.random() < 0.2:
            moves += last_moves   # a repeat of earlier moves
        messages.append((offset, group_message(moves, now)))
        last_moves = moves
    return messages


class Table(dict):
    """What a changelog partition restores: the last value of each key, writes in order."""

    def write(self, writes: list[tuple[str, object]]) -> None:
        for key, value in writes:
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value


def run(messages: list[tuple[int, dict]], batches: list[int], table: Table | None = None,
        cut: tuple[int, int] | None = None, compiled: CompiledDerivation = COMPILED) -> tuple[Table, list]:
    """Step the messages in batches of the given sizes, writing members then head per step.

    ``cut=(batch number, how many of its member writes land)`` stops as a crash would:
    that many member writes reach the changelog, its head does not.
    """
    table = Table() if table is None else table
    held = rebuild(table.items()).get(LA) or HeldGroup(GroupState(LA, ""))
    events, at = [], 0
    for number, size in enumerate(batches):
        batch, at = messages[at:at + size], at + size
        step = step_group(compiled, held, batch)
        if step is None:
            continue
        events += [("figures", e.to_record()) for e in step.figures] + [("warnings", e.to_record()) for e in step.warnings]
        if cut is not None and cut[0] == number:
            table.write(step.members[:cut[1]])
            return table, events
        table.write(step.members)
        table.write([step.head])
    return table, events


def per_topic(events: list) -> dict[str, list[dict]]:
    """The events as each output topic orders them (there is no order across topics)."""
    topics: dict[str, list[dict]] = {"figures": [], "warnings": []}
    for topic, record in events:
        topics[topic].append(record)
    return topics


def state_of(table: Table) -> tuple:
    """The group as a rebuild sees it (which departures still await their tombstone aside)."""
    h = rebuild(table.items())[LA]
    return h.group, h.group.max_ts, h.applied, h.published, h.rules


def sizes(n: int, seed: int) -> list[int]:
    rnd, out = random.Random(seed), []
    while sum(out) < n:
        out.append(rnd.randint(1, 7))
    return out


def assert_published(events: list) -> int:
    """Every warning carries the figures in force when it was judged: those of the last
    figures event of its area at or before it."""
    topics = per_topic(events)
    return assert_warnings_carry_published_figures(topics["figures"], topics["warnings"], ("area_code",),
                                                   ("supply", "demand"), latest=True)


@pytest.mark.parametrize("compiled", [COMPILED, HELD], ids=["at-once", "held"])
def test_outputs_do_not_depend_on_how_messages_were_batched(compiled):
    messages = random_messages(seed=1)
    _, one_by_one = run(messages, [1] * len(messages), compiled=compiled)
    for seed in range(5):
        _, batched = run(messages, sizes(len(messages), seed), compiled=compiled)
        assert per_topic(batched) == per_topic(one_by_one)
    assert len(per_topic(one_by_one)["figures"]) >= 10
    assert assert_published(one_by_one) >= 2   # (holds raise fewer: 2 where at once raises 3 or more)


@pytest.mark.parametrize("compiled", [COMPILED, HELD], ids=["at-once", "held"])
@pytest.mark.parametrize("seed", [2, 5, 9])
def test_a_step_cut_short_anywhere_is_undone_and_its_replay_sends_the_same_events(seed, compiled):
    """With holds, a pending hold is rule state in the head: the replay resumes the same timers."""
    messages = random_messages(seed=seed)
    table_ok, expected = run(messages, [4] * 15, compiled=compiled)
    assert assert_published(expected) >= 1
    crashes = 0
    for batch_number in range(15):
        for landed in (0, 1, 3, 100):
            table, before_crash = run(messages, [4] * 15, cut=(batch_number, landed), compiled=compiled)
            held = rebuild(table.items()).get(LA)
            applied = held.applied if held else -1
            rest = messages[applied + 1:]
            _, replayed = run(rest, sizes(len(rest), seed + batch_number), table, compiled=compiled)   # other batches
            # what a subscriber sees, exact repeats dropped: the events of the run without a crash
            seen: dict[tuple, dict] = {}
            for topic, event in before_crash + replayed:
                assert seen.setdefault((topic, event["source"]["event_id"]), event) == event   # never two contents
            assert per_topic([(topic, e) for (topic, _), e in seen.items()]) == per_topic(expected)
            assert state_of(table) == state_of(table_ok)
            crashes += 1
    assert crashes == 60


def test_a_finished_step_is_never_applied_twice():
    messages = random_messages(seed=3, n=20)
    table, events = run(messages, [20])
    again_table, again = run(messages, [20], Table(table))   # the same messages, redelivered
    assert again == [] and again_table == table


def test_a_departure_is_kept_until_committed_then_deleted():
    held = HeldGroup(GroupState(LA, "local_authority", FIELDS))
    table = Table()
    for offset, moves in enumerate([[move("a", SUPPLY), move("b", DEMAND)], [move("a", None)]]):
        step = step_group(COMPILED, held, [(offset, group_message(moves, NOON_MS))])
        table.write(step.members + [step.head])
    assert table[member_key(LA, "a")] == {"c": None, "prev": list(SUPPLY), "at": 1}   # not a tombstone yet
    step = step_group(COMPILED, held, [(2, tick_message(LA, NOON_MS))])
    assert (member_key(LA, "a"), None) in step.members                                # now it is
    table.write(step.members + [step.head])
    rebuilt = rebuild(table.items())[LA]
    assert rebuilt.group.entities == {"b": DEMAND} and rebuilt.applied == 2
    assert table[head_key(LA)]["applied"] == 2


def test_a_group_whose_first_step_never_finished_keeps_its_undone_members():
    table = Table({member_key(LA, "a"): {"c": list(SUPPLY), "prev": None, "at": 0}})
    held = rebuild(table.items())[LA]
    assert (held.applied, held.group.entities, held.undone) == (-1, {}, {"a"})


def test_a_member_of_a_first_step_cut_short_does_not_come_back_when_the_replay_removes_it():
    # found by the crash test: the first step of a group added "a" and was cut short after its
    # member write; the replay adds and removes "a" in one message, so "a" is unchanged by it,
    # and unless the rebuild remembers "a" as undone its stale write counts once a head lands
    messages = [(0, group_message([move("a", DEMAND)], NOON_MS)),
                (1, group_message([move("a", DEMAND), move("a", None, 2)], NOON_MS)),
                (2, group_message([move("b", SUPPLY)], NOON_MS))]
    table, _ = run(messages, [1, 2], cut=(0, 100))
    table, _ = run(messages, [3], table)
    assert rebuild(table.items())[LA].group.entities == {"b": SUPPLY}


def test_time_comes_from_the_message_not_the_clock():
    held = HeldGroup(GroupState(LA, "local_authority", FIELDS))
    step = step_group(COMPILED, held, [(0, group_message([move("c", DEMAND)], NOON_MS))])
    warning = step.warnings[0]
    assert warning.ts_ms == NOON_MS and warning.after["raised_at"] == NOON_MS
    assert step.figures[0].after["as_of"] == NOON_MS


def test_a_hearing_and_its_booking_in_one_message_raise_nothing():
    # demand applied before its supply in the same message: judged per move, that raised RED
    # and cleared it at once on figures (1 demand, 0 supply) that no figures event ever showed
    held = HeldGroup(GroupState(LA, "local_authority", FIELDS))
    moves = [move("c", DEMAND), move("u1", SUPPLY), move("u2", SUPPLY)]
    step = step_group(COMPILED, held, [(0, group_message(moves, NOON_MS))])
    assert step.warnings == [] and (step.figures[0].after["supply"], step.figures[0].after["demand"]) == (2, 1)


def test_a_pending_hold_is_stored_in_the_head_and_resumed_after_a_restart():
    messages = [(0, group_message([move("c", DEMAND)], NOON_MS)),
                (1, tick_message(LA, NOON_MS + 60_000)),
                (2, tick_message(LA, NOON_MS + 119_999)),
                (3, tick_message(LA, NOON_MS + 120_000))]
    table, events = run(messages[:2], [1, 1], compiled=HELD)
    assert per_topic(events)["warnings"] == []
    assert table[head_key(LA)]["rules"]["shortfall"]["rising"] == {"AMBER": NOON_MS, "RED": NOON_MS}
    table, events = run(messages[2:], [1, 1], table, compiled=HELD)   # a new worker, from the table alone
    (raised,) = per_topic(events)["warnings"]
    assert (raised["after"]["transition"], raised["after"]["severity"], raised["after"]["raised_at"]) == (
        "raised", "RED", NOON_MS + 120_000)


def test_the_interpreter_spec_does_not_flap_on_a_booking_seconds_after_its_hearing():
    compiled = CompiledDerivation(get_derivation("interpreter_cover"))
    day = dt.date(2026, 3, 2)
    hearing = {"court_code": "PBOMC", "hearing_date": day, "language": "pol", "interpreter_required": True,
               "status": "listed"}
    booking = {"court_code": "PBOMC", "hearing_date": day, "language": "pol", "status": "booked"}
    ((code, level, fields),) = compiled.groups_of("court_hearings_interpreter_need", hearing)

    def arrives(entity_key: str, product: str, entity: dict, at_ms: int) -> dict:
        return group_message([Move(code, level, fields, entity_key, compiled.contribution_of(product, entity), at_ms)],
                             at_ms)

    def warnings(messages: list[dict]) -> list[tuple[str, str, int]]:
        held = HeldGroup(GroupState(code, ""))
        out = []
        for offset, message in enumerate(messages):
            step = step_group(compiled, held, [(offset, message)])
            out += [(w.after["severity"], w.after["transition"], w.ts_ms - NOON_MS) for w in (step.warnings if step else [])]
        return out

    hearing_listed = arrives("h1", "court_hearings_interpreter_need", hearing, NOON_MS)
    booked_after = [arrives("b1", "interpreter_bookings", booking, NOON_MS + 4_500), tick_message(code, NOON_MS + 60_000)]
    # the booking 4.5 s after its hearing: nothing raised, nothing cleared (at once: RED, then cleared 4.5 s later)
    assert warnings([hearing_listed, tick_message(code, NOON_MS + 2_000), *booked_after]) == []
    # no booking: RED once the court day has been short for 10 s, at the first evaluation after
    assert warnings([hearing_listed, tick_message(code, NOON_MS + 5_000), tick_message(code, NOON_MS + 10_000)]) == [
        ("RED", "raised", 10_000)]
