"""The processor's continuity check (stream_processors/engine/continuity.py): a batch that would go on
past a record that never reached the stream is refused; a hole the broker confirms is not."""

from __future__ import annotations

from collections import namedtuple

from dataplatform.stream_processors.engine.continuity import Continuity

TP = namedtuple("TP", "topic partition")
A, B = TP("proc-area-contributions", 0), TP("hmpps.releases.v1", 1)


class Partitions:
    """What the broker holds: the offsets present in each partition (a compacted one has holes)."""

    def __init__(self, **present: list[int]) -> None:
        self.present = {name: sorted(offsets) for name, offsets in present.items()}
        self.asked: list[tuple[str, int]] = []

    def probe(self, topic: str, partition: int, offset: int) -> int | None:
        self.asked.append((topic, offset))
        return next((o for o in self.present[topic] if o >= offset), None)


def test_a_batch_going_on_from_the_committed_offset_is_processed_without_asking_the_broker():
    broker = Partitions(**{A.topic: list(range(10))})
    check = Continuity(broker.probe)
    check.seeked({A: 3})
    assert check.dropped([(A, 3), (A, 4)]) is None
    assert check.dropped([(A, 5), (A, 6)]) is None
    assert broker.asked == []


def test_records_missing_after_a_seek_stop_the_batch():
    broker = Partitions(**{A.topic: list(range(10))})
    check = Continuity(broker.probe)
    check.seeked({A: 1})
    assert "record at 1" in check.dropped([(A, 3), (A, 4)])


def test_records_missing_between_batches_stop_the_batch():
    broker = Partitions(**{A.topic: list(range(10))})
    check = Continuity(broker.probe)
    check.seeked({A: 0})
    assert check.dropped([(A, 0), (A, 1)]) is None
    assert "record at 2" in check.dropped([(A, 5)])


def test_a_hole_of_a_compacted_topic_is_not_a_drop():
    broker = Partitions(**{B.topic: [0, 1, 7, 8]})
    check = Continuity(broker.probe)
    check.seeked({B: 2})
    assert check.dropped([(B, 7), (B, 8)]) is None
    assert broker.asked == [(B.topic, 2)]


def test_a_record_from_before_the_seek_is_let_through_and_the_start_still_checked():
    broker = Partitions(**{A.topic: list(range(10))})
    check = Continuity(broker.probe)
    check.seeked({A: 4})
    assert check.dropped([(A, 2)]) is None          # fetched before the seek: processed again, harmless
    assert check.dropped([(A, 6)]) is not None      # 4 and 5 still never arrived


def test_partitions_without_a_committed_offset_are_not_checked_until_they_are_seeked():
    check = Continuity(Partitions(**{A.topic: []}).probe)
    check.seeked({A: None})
    assert check.dropped([(A, 9)]) is None
