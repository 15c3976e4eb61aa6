"""Stage 2's groups read from the real groups table on either store
(stream_processors/engine/held_groups.py): on rocksdb:// one group's keys when first needed, on
memory:// every group at once; either way exactly the groups a full rebuild gives."""

from __future__ import annotations

import pytest

from dataplatform.stream_processors.engine.checkpoint import durable
from dataplatform.stream_processors.core.group_table import head_key, member_key, rebuild
from dataplatform.stream_processors.engine.held_groups import HeldGroups
from tests.support.tables import Event, run_with_table

STORES = ["memory://", "rocksdb://"]


def _head(applied: int) -> dict:
    return {"level": "la", "fields": {"name": "x"}, "max_ts": 1, "applied": applied, "published": None, "rules": None}


def _member(contribution: str | None, at: int, prev: str | None = None) -> dict:
    return {"c": [contribution] if contribution else None, "prev": [prev] if prev else None, "at": at}


# E1 and E10 in partition 0 (E10 starts like E1); E2 and E3 in partition 1; E3's first step never finished
TABLE = {
    0: [(head_key("E1"), _head(10)), (member_key("E1", "a"), _member("supply", 5)),
        (member_key("E1", "b"), _member("demand", 12, prev="supply")),   # after E1's head: undone
        (member_key("E1", "gone"), _member(None, 9)),
        (head_key("E10"), _head(4)), (member_key("E10", "z"), _member("supply", 4))],
    1: [(head_key("E2"), _head(3)), (member_key("E2", "c"), _member("demand", 2)),
        (member_key("E3", "d"), _member("supply", 7))],
}


def _scenario(body):
    async def scenario(table, sent):
        for partition, writes in TABLE.items():
            await table.write(Event(partition), writes)
        await durable(table.app)
        generation = [0]
        asked: list[str] = []
        scan = table.scan
        table.scan = lambda prefix, event=None: (asked.append(prefix), scan(prefix, event))[1]
        return await body(table, HeldGroups(table, lambda: generation[0]), generation, asked)
    return scenario


@pytest.mark.parametrize("store", STORES)
def test_a_group_is_read_as_a_full_rebuild_would_read_it(tmp_path, store):
    async def body(table, held, generation, asked):
        full = rebuild(kv for _, writes in TABLE.items() for kv in writes)
        got = {code: held.get(code, Event(p)) for code, p in [("E1", 0), ("E10", 0), ("E2", 1), ("E3", 1)]}
        return full, got, asked, table.seeks

    full, got, asked, seeks = run_with_table(tmp_path, _scenario(body), store)
    assert set(full) == {"E1", "E10", "E2", "E3"}
    for code, group in got.items():
        assert (group.group.entities, group.applied, group.departed, group.undone) == \
               (full[code].group.entities, full[code].applied, full[code].departed, full[code].undone), code
    assert got["E1"].group.entities == {"a": ("supply",), "b": ("supply",)} and got["E1"].undone == {"b"}
    # rocksdb:// reads each group's own keys when first needed; memory:// every key once
    assert (seeks, asked) == ((True, ["E1|", "E10|", "E2|", "E3|"]) if store == "rocksdb://" else (False, [""]))


@pytest.mark.parametrize("store", STORES)
def test_a_group_is_read_once_per_rebalance_and_absent_groups_are_new(tmp_path, store):
    async def body(table, held, generation, asked):
        first = held.get("E2", Event(1))
        await table.write(Event(1), [(head_key("E2"), _head(99))])   # as a restore after a rebalance would
        await durable(table.app)
        again = held.get("E2", Event(1))
        new = held.get("E7", Event(1))
        generation[0] += 1
        held.renew()
        return first, again, held.get("E2", Event(1)), new, held.get("E7", Event(1)) is new

    first, again, renewed, new, same_new = run_with_table(tmp_path, _scenario(body), store)
    assert again is first and first.applied == 3
    assert renewed.applied == 99
    assert (new.applied, new.group.entities, same_new) == (-1, {}, False)   # not held until kept


@pytest.mark.parametrize("store", STORES)
def test_the_tick_sees_every_group_with_a_head_read_or_not(tmp_path, store):
    async def body(table, held, generation, asked):
        before = held.stepped_codes()
        held.get("E1", Event(0))
        return before, held.stepped_codes(), asked

    before, after, asked = run_with_table(tmp_path, _scenario(body), store)
    assert before == after == ["E1", "E10", "E2"]   # not E3: its first step never finished
    assert asked == (["E1|"] if store == "rocksdb://" else [""])   # heads only, no group read for the tick


@pytest.mark.parametrize("store", STORES)
def test_prefixes_of_keys_with_and_without_the_separator(tmp_path, store):
    async def scenario(table, sent):
        await table.write(Event(0), [("abc", 1), ("abcd", 2), ("abc|x", 3), ("abc|y", 4), ("b|", 5)])
        await durable(table.app)
        return table.prefixes("|"), sorted(k for k, _ in table.scan("abc|", Event(0)))

    prefixes, scanned = run_with_table(tmp_path, scenario, store)
    assert prefixes == {"abc", "abcd", "b"}
    assert scanned == ["abc|x", "abc|y"]
