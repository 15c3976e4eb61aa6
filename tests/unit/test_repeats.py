"""Subscribers drop exact repeats (an event id seen before), with bounded memory."""

from dataplatform.repeats import RepeatFilter


def test_an_event_id_is_let_through_once_per_topic():
    f = RepeatFilter()
    assert [f.first_time("t", i) for i in ["a", "b", "a", "c", "b"]] == [True, True, False, True, False]
    assert f.first_time("other", "a") and f.repeats == 2
    assert f.first_time("t", None) and f.first_time("t", None)    # a tombstone has no id: never a repeat


def test_memory_is_bounded_to_the_most_recent_ids():
    f = RepeatFilter(capacity=3)
    for i in "abcd":
        f.first_time("t", i)
    assert f.first_time("t", "a")           # forgotten: the oldest
    assert not f.first_time("t", "d")
