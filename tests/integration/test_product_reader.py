"""The product reader on the real broker: what the SDK publishes comes back decoded, with
personal fields redacted, from each kind of starting position."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.product_io import wire
from dataplatform.product_io.reader import Position, ProductRecord, ReadError
from dataplatform.producers.publisher import Publisher
from dataplatform.products.personal_data import REDACTED
from dataplatform.products.product import get_product
from tests.support.entities import release_case
from tests.support.kafka import create_topic, unique_name
from tests.support.product_topics import TopicReader
from tests.support.waiting import wait_until

RELEASES = get_product("prison_releases_housing_need")
MANCHESTER, NORTH_WEST = "E08000003", "E12000002"


@pytest.fixture
def publish(bootstrap: str, registry_url: str) -> Iterator:
    """``publish(topic, *case_ids)``: a created case each, sent with the SDK and acknowledged."""
    publishers: dict[str, Publisher] = {}

    def send(topic: str, *case_ids: str) -> None:
        if topic not in publishers:
            publishers[topic] = Publisher(RELEASES, bootstrap=bootstrap, registry_url=registry_url,
                                          source_system="prison-releases", settings=Settings(), topic=topic).open()
        for case_id in case_ids:
            publishers[topic].created(release_case(case_id, MANCHESTER, NORTH_WEST, person_ref=f"SECRET-{case_id}"))
        publishers[topic].flush()
    yield send
    for pub in publishers.values():
        pub.close()


def reader(bootstrap: str, registry_url: str, topic: str, position: Position, **kw: object) -> TopicReader:
    return TopicReader(bootstrap, registry_url, {topic: RELEASES}, position, Settings(), **kw)


def cases(records: list[ProductRecord]) -> list[str]:
    return [r.value["after"]["case_id"] for r in records]


def test_from_the_beginning_every_event_decoded_with_personal_fields_redacted(bootstrap, registry_url, publish):
    topic = create_topic(bootstrap, unique_name("reader-begin"), partitions=3)
    publish(topic, "c1", "c2", "c3", "c4", "c5")
    with reader(bootstrap, registry_url, topic, Position.beginning()) as r:
        records = list(r.follow(until_end=True))
    assert sorted(cases(records)) == ["c1", "c2", "c3", "c4", "c5"]
    assert {(r.value["op"], r.value["after"]["person_ref"]) for r in records} == {("c", REDACTED)}
    assert all(r.key == r.value["after"]["case_id"] and r.event_id == r.value["source"]["event_id"]
               and r.headers["event_id"] == r.event_id and r.timestamp_ms for r in records)
    assert "SECRET" not in repr([r.value for r in records])

    with reader(bootstrap, registry_url, topic, Position.beginning(), show_personal=True) as r:
        shown = list(r.follow(until_end=True))
    assert sorted(r.value["after"]["person_ref"] for r in shown) == [f"SECRET-c{i}" for i in range(1, 6)]


def test_from_the_end_only_what_comes_after_joining(bootstrap, registry_url, publish):
    topic = create_topic(bootstrap, unique_name("reader-end"), partitions=2)
    publish(topic, "old1", "old2")
    with reader(bootstrap, registry_url, topic, Position.end()) as r:
        assert r.read_to_end() == []       # joined at the end: nothing of what was there
        publish(topic, "new1", "new2")
        records: list[ProductRecord] = []
        wait_until(lambda: records.extend(r.drain()) or len(records) >= 2, timeout=30, message="the new events")
    assert sorted(cases(records)) == ["new1", "new2"]
    assert {r.value["after"]["person_ref"] for r in records} == {REDACTED}


def test_from_a_groups_committed_offsets(bootstrap, registry_url, publish, topic):
    group = unique_name("reader-group")
    publish(topic, "c1", "c2", "c3")
    with reader(bootstrap, registry_url, topic, Position.committed(group)) as r:
        first = r.read_to_end()
        r.commit(first[1])                # handled c1 and c2, not c3
    assert cases(first) == ["c1", "c2", "c3"]
    publish(topic, "c4")
    with reader(bootstrap, registry_url, topic, Position.committed(group)) as r:
        again = list(r.follow(until_end=True))
    assert cases(again) == ["c3", "c4"]
    assert again[0].offset == first[2].offset and again[0].value["after"]["person_ref"] == REDACTED


def test_from_given_offsets_every_partition_assigned(bootstrap, registry_url, publish, topic):
    publish(topic, "c1", "c2", "c3", "c4")
    with reader(bootstrap, registry_url, topic, Position.at({(topic, 0): 2})) as r:
        records = list(r.follow(until_end=True))
    assert [(r.offset, r.value["after"]["case_id"]) for r in records] == [(2, "c3"), (3, "c4")]
    assert {r.value["after"]["person_ref"] for r in records} == {REDACTED}


def test_an_unreadable_value_stops_the_reader_unless_asked_to_skip_it(bootstrap, registry_url, publish, topic):
    publish(topic, "c1")
    producer = Producer(client_config(bootstrap, Settings()))
    producer.produce(topic, key=b"junk", value=wire.header(1) + b"not avro at all")
    producer.flush(30)
    publish(topic, "c2")
    with reader(bootstrap, registry_url, topic, Position.beginning()) as r:
        with pytest.raises(ReadError, match=topic):
            list(r.follow(until_end=True))
    with reader(bootstrap, registry_url, topic, Position.beginning(), skip_unreadable=True) as r:
        assert cases(list(r.follow(until_end=True))) == ["c1", "c2"]



def test_a_group_member_starts_where_its_hook_says_and_hands_over_what_it_cannot_decode(
        bootstrap, registry_url, publish):
    """What a sink needs: ``on_assign`` seeks to offsets kept elsewhere, ``on_unreadable``
    receives an undecodable value and reading goes on, ``on_revoke`` hears of the
    partitions given back when the reader leaves the group."""
    topic = create_topic(bootstrap, unique_name("reader-hooks"), partitions=1)
    publish(topic, "c1", "c2", "c3")                                  # offsets 0, 1, 2
    producer = Producer(client_config(bootstrap, Settings()))
    producer.produce(topic, key=b"junk", value=wire.header(1) + b"not avro at all")   # offset 3
    producer.flush(30)
    publish(topic, "c4")                                              # offset 4
    assigned, unreadable, revoked = [], [], []

    def start_after_the_first(partitions):  # noqa: ANN001, ANN202 - as a sink reads its store
        assigned.extend(partitions)
        return {(topic, 0): 1}

    r = reader(bootstrap, registry_url, topic, Position.committed(unique_name("hooks-group")),
               on_assign=start_after_the_first, on_revoke=revoked.extend,
               on_unreadable=lambda msg, exc: unreadable.append((msg.offset(), exc)))
    try:
        records = r.read_to_end()
    finally:
        r.close()
    assert assigned == [(topic, 0)]
    assert [(x.offset, x.value["after"]["case_id"]) for x in records] == [(1, "c2"), (2, "c3"), (4, "c4")]
    assert [offset for offset, _ in unreadable] == [3]   # once, and the record after it was read
    assert revoked == [(topic, 0)]
