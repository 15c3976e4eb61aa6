"""The heartbeat contract: its JSON, the key, and late / on time / never heard."""

from __future__ import annotations

import pytest

from dataplatform.heartbeat import Heartbeat, HeartbeatBoard, ProcessorStatus


def beat(component: str = "processor-0", product: str = "area_supply_demand", ts_ms: int = 100_000, **kw) -> Heartbeat:
    return Heartbeat(component, product, last_evaluation_ms=ts_ms - 1000, last_input_event_ms=ts_ms - 5000,
                     ts_ms=ts_ms, **kw)


def test_json_round_trip_and_key_per_component_and_product():
    hb = beat(step_seconds=0.01, events_in=5, events_out=2)
    assert Heartbeat.from_json(hb.to_json()) == hb
    assert hb.key == b"processor-0:area_supply_demand"


def test_newer_writers_may_add_fields_but_the_core_is_required():
    assert Heartbeat.from_json(b'{"component": "p", "derived_product": "x", "last_evaluation_ms": 1, '
                               b'"last_input_event_ms": 2, "ts_ms": 3, "cpu": 0.5}').ts_ms == 3
    with pytest.raises(ValueError, match="derived_product"):
        Heartbeat.from_json(b'{"component": "p", "ts_ms": 3}')


def watching(since_ms: int = 0) -> HeartbeatBoard:
    """A board that started at ``since_ms`` and has read the topic."""
    board = HeartbeatBoard("unused:9092")
    board.started_ms = since_ms
    board.caught_up.set()
    return board


def test_status_is_late_only_after_the_refresh_period_and_unknown_when_never_heard():
    board = watching()
    board.record(beat(ts_ms=100_000))
    on_time, never = board.status({"area_supply_demand": 60, "housing_shortfall_warnings": 60}, at_ms=160_000)
    assert (on_time.state, never.state) == ("ok", "unknown")
    (late,) = board.status({"area_supply_demand": 60}, at_ms=160_001)
    assert late.state == "late" and late.to_dict()["heartbeat_age_s"] == 60.0
    assert ProcessorStatus("x", 60, None, 0).to_dict()["last_evaluation_at"] is None


def test_the_newest_heartbeat_of_any_component_speaks_for_the_product_and_old_ones_never_replace_new():
    board = HeartbeatBoard("unused:9092")
    board.record(beat("processor-0", ts_ms=100_000))
    board.record(beat("processor-1", ts_ms=150_000))
    board.record(beat("processor-1", ts_ms=120_000))   # arrives late: ignored
    assert board.latest()["area_supply_demand"].component == "processor-1"
    assert board.latest()["area_supply_demand"].ts_ms == 150_000
    assert [h.component for h in board.components()] == ["processor-0", "processor-1"]


def test_a_processor_has_its_refresh_period_from_the_start_to_report_before_it_is_late():
    """At start the topic holds an old run's heartbeat: "starting", not a false alarm, until
    the refresh period since the start has passed; then late. Never heard: starting, then unknown."""
    board = watching(since_ms=1_000_000)
    board.record(beat(ts_ms=100_000))                        # from a run long ago
    period = {"area_supply_demand": 60, "housing_shortfall_warnings": 60}
    states = lambda at: [s.state for s in board.status(period, at_ms=at)]  # noqa: E731
    assert states(1_000_000 + 60_000) == ["starting", "starting"]
    assert not any(s.alarming for s in board.status(period, at_ms=1_060_000))
    board.record(beat(ts_ms=1_030_000))                      # the processor reports
    assert states(1_060_000) == ["ok", "starting"]
    assert states(1_060_001) == ["ok", "unknown"]
    assert states(1_090_001) == ["late", "unknown"]
    assert all(s.alarming for s in board.status(period, at_ms=1_090_001))


def test_until_the_topic_is_read_a_processor_is_starting_never_never_heard():
    board = HeartbeatBoard("unused:9092")
    board.started_ms = 0
    (st,) = board.status({"area_supply_demand": 60}, at_ms=10**9)
    assert st.state == "starting" and not st.alarming
    board.caught_up.set()
    assert board.status({"area_supply_demand": 60}, at_ms=10**9)[0].state == "unknown"
