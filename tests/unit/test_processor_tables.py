"""The processor's table writes (stream_processors/engine/faust_patches/tables.py): the store and the
changelog records of a step's writes, the records byte for byte those of Faust's own write path.

Delivery itself (batches, the barrier, a restarted worker restoring the records) is exercised
against the broker by tests/integration/test_processor.py and test_processor_crashes.py.
"""

from __future__ import annotations

import pytest
from faust.types import TP

from dataplatform.stream_processors.config import GROUPS_TABLE
from dataplatform.stream_processors.engine.checkpoint import durable
from tests.support.tables import Event, run_with_table


STORES = ["memory://", "rocksdb://"]


@pytest.mark.parametrize("store", STORES)
def test_a_write_sends_what_faust_would_send_and_the_store_takes_it_once_acknowledged(tmp_path, store):
    member = {"c": ["supply", 1], "ts": 5}

    async def scenario(table, sent):
        await table.write(Event(3), [("E1|U1", member), ("E1|head", {"applied": 7})])
        faust_records = [(table.changelog_topic.prepare_key(k, None)[0], table.changelog_topic.prepare_value(v, None)[0])
                         for k, v in [("E1|U1", member), ("E1|head", {"applied": 7})]]
        before = [table.read(Event(3), key) for key in ("E1|U1", "E1|head")]
        await durable(table.app)
        tp = TP(table.changelog_topic.get_topic_name(), 3)
        after = [table.read(Event(3), key) for key in ("E1|U1", "E1|head")]
        return before, after, table.data.persisted_offset(tp), sent, faust_records, tp.topic

    before, after, offset, sent, faust_records, changelog = run_with_table(tmp_path, scenario, store)
    assert before == [None, None]   # not before the barrier has seen the records acknowledged
    assert after == [member, {"applied": 7}]
    assert offset == (1 if store == "rocksdb://" else None)   # rocksdb:// restores after the last one
    assert sent == [(changelog, 3, faust_records)]
    assert changelog == f"tables-test-{GROUPS_TABLE}-changelog"


@pytest.mark.parametrize("store", STORES)
def test_a_write_whose_records_were_lost_never_reaches_the_store(tmp_path, store):
    async def scenario(table, sent):
        await table.write(Event(0), [("E1|U1", {"c": 1})])
        await durable(table.app)
        await table.write(Event(1), [("E2|U2", {"c": 2})])   # partition 1's batch fails
        with pytest.raises(ConnectionError):
            await durable(table.app)
        return table.read(Event(0), "E1|U1"), table.read(Event(1), "E2|U2")

    assert run_with_table(tmp_path, scenario, store, failing=frozenset({1})) == ({"c": 1}, None)


def test_none_deletes_a_key_with_a_tombstone_and_a_missing_key_sends_nothing(tmp_path):
    async def scenario(table, sent):
        await table.write(Event(0), [("E1|U1", {"c": None})])
        await durable(table.app)
        await table.write(Event(0), [("E1|U1", None), ("E1|never-there", None)])
        await durable(table.app)
        await table.write(Event(0), [("E1|never-there", None)])
        await durable(table.app)
        return dict(table.data.items()), sent

    store, sent = run_with_table(tmp_path, scenario)
    assert store == {}
    # keys as Faust's json key codec writes them; a deletion's value is None (Faust's tombstone)
    assert [records for _, _, records in sent] == [[(b'"E1|U1"', b'{"c":null}')], [(b'"E1|U1"', None)]]
