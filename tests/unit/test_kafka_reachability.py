"""A consumer says when it waits for brokers rather than for events: from librdkafka's
statistics, once when the outage starts and once when it ends, with a gauge in between."""

from __future__ import annotations

import json
import logging

from prometheus_client import REGISTRY

from dataplatform.kafka.reachability import KafkaReachability, unreachable


def stats(leaders: dict[int, int], up: set[int], group: str = "up", join_state: str = "steady") -> dict:
    """librdkafka's statistics (the fields read) of a consumer fetching partitions 0.. of topic t."""
    brokers = {f"127.0.0.1:{9090 + n}/{n}": {"nodeid": n, "state": "UP" if n in up else "CONNECT"} for n in (1, 2, 3)}
    brokers["GroupCoordinator"] = {"nodeid": -1, "state": "UP"}
    partitions = {str(p): {"leader": leader, "fetch_state": "active"} for p, leader in leaders.items()}
    partitions["-1"] = {"leader": -1, "fetch_state": "none"}
    partitions["9"] = {"leader": 3, "fetch_state": "none"}   # known, not assigned: not waited for
    return {"brokers": brokers, "topics": {"t": {"partitions": partitions}},
            "cgrp": {"state": group, "join_state": join_state}}


def test_partitions_whose_leader_is_down_or_unknown_and_a_lost_coordinator_are_named() -> None:
    assert unreachable(stats({0: 1, 1: 2}, up={1, 2, 3})) == []
    assert unreachable(stats({0: 1, 1: 2, 2: -1}, up={1}, group="wait-coord")) == [
        "t[1] (leader 2)", "t[2] (leader none)", "the group coordinator (wait-coord)"]
    # a reader that assigns its partitions itself is no group member: its coordinator does not matter
    assert unreachable(stats({0: 1}, up={1}, group="query-coord", join_state="init")) == []


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends_with_the_gauge(caplog) -> None:
    watch = KafkaReachability("sink-under-test", logging.getLogger("test.reachability"), interval_s=1)
    gauge = lambda: REGISTRY.get_sample_value("dataplatform_kafka_up", {"component": "sink-under-test"})  # noqa: E731
    down, fine = json.dumps(stats({0: 1, 1: 2}, up={1})), json.dumps(stats({0: 1, 1: 2}, up={1, 2}))
    assert watch.consumer_config()["statistics.interval.ms"] == 1000
    with caplog.at_level(logging.INFO, logger="test.reachability"):
        watch.on_statistics(down)   # once: perhaps a connection still being made
        assert watch.up and gauge() == 1 and not caplog.records
        for _ in range(5):
            watch.on_statistics(down)
        assert not watch.up and gauge() == 0
        watch.on_statistics(fine)
        watch.on_statistics(fine)
    assert watch.up and gauge() == 1
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(said) == 2, said
    assert said[0][0] == "ERROR" and "sink-under-test: Kafka unavailable" in said[0][1]
    assert "t[1] (leader 2)" in said[0][1]
    assert said[1][0] == "WARNING" and "Kafka is back after" in said[1][1] and "5 failed attempts" in said[1][1]
