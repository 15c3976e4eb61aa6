"""The processor's table writes (stream_processors/faust_patches/tables.py): the store and the
changelog records of a step's writes, the records byte for byte those of Faust's own write path.

Delivery itself (batches, the barrier, a restarted worker restoring the records) is exercised
against the broker by tests/integration/test_processor.py and test_processor_crashes.py.
"""

from __future__ import annotations

from dataplatform.stream_processors.config import GROUPS_TABLE
from tests.support.tables import Event, run_with_table


def test_a_write_sets_the_store_and_sends_what_faust_would_send(tmp_path):
    member = {"c": ["supply", 1], "ts": 5}

    async def scenario(table, sent):
        await table.write(Event(3), [("E1|U1", member), ("E1|head", {"applied": 7})])
        faust_records = [(table.changelog_topic.prepare_key(k, None)[0], table.changelog_topic.prepare_value(v, None)[0])
                         for k, v in [("E1|U1", member), ("E1|head", {"applied": 7})]]
        return dict(table.data.items()), sent, faust_records, table.changelog_topic.get_topic_name()

    store, sent, faust_records, changelog = run_with_table(tmp_path, scenario)
    assert store == {"E1|U1": member, "E1|head": {"applied": 7}}
    assert sent == [(changelog, 3, faust_records)]
    assert changelog == f"tables-test-{GROUPS_TABLE}-changelog"


def test_none_deletes_a_key_with_a_tombstone_and_a_missing_key_sends_nothing(tmp_path):
    async def scenario(table, sent):
        await table.write(Event(0), [("E1|U1", {"c": None})])
        await table.write(Event(0), [("E1|U1", None), ("E1|never-there", None)])
        await table.write(Event(0), [("E1|never-there", None)])
        return dict(table.data.items()), sent

    store, sent = run_with_table(tmp_path, scenario)
    assert store == {}
    # keys as Faust's json key codec writes them; a deletion's value is None (Faust's tombstone)
    assert [records for _, _, records in sent] == [[(b'"E1|U1"', b'{"c":null}')], [(b'"E1|U1"', None)]]
