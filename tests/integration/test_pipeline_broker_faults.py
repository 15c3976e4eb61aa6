"""The housing pipeline on a three-node cluster while brokers die: nothing the producers had
acknowledged is lost, the processor says nothing twice, the SQL sink ends at the true
state, the Parquet sink holds each event once, the warnings follower each transition
once, and every component resumes by itself.

One cluster for the whole run (starting three JVMs is the dearest part). A seeded, messy
stream (duplicates, late events, deletes with tombstones) and a service's outbox relay
flow through the processor's two workers, the SQL and Parquet sinks and the web
service's followers (warnings, area figures) while, in turn: the broker leading the most
partitions is killed (-9) and restarted once its partitions have new leaders; every broker is restarted
with SIGTERM, one at a time, each time waiting for every replica to be back in sync; and
the active controller is killed (-9) and restarted. Then two of the three nodes go down at
once (with ``min.insync.replicas=2`` nothing can be written, and the controller quorum is
lost too): the SDK's publish fails with a clear error within its delivery timeout, the
relay keeps its rows and retries, the processor, sinks and followers wait without dying
and say so (log lines, ``/metrics``), and all go on when the nodes return.
The stalls of each component after each fault are printed (and quoted in
docs/operations.md, "Running on a cluster").
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from dataplatform.config import Settings
from dataplatform.heartbeat import HeartbeatBoard
from dataplatform.kafka import EmbeddedKafkaCluster
from dataplatform.kafka_config import client_config
from dataplatform.producers.publisher import DeliveryError, Publisher
from dataplatform.products.product import get_product
from dataplatform.sinks.parquet import ParquetSink
from dataplatform.sinks.sql.writer import SqlSink
from dataplatform.stream_processors.deployment.pool import start_workers
from tests.support.change_streams import seeded_stream
from tests.support.cluster_faults import (
    ProgressClock, active_controller, busiest_leader, cluster_admin, partition_leaders, stall_table,
    wait_for_new_leaders, wait_in_sync,
)
from tests.support.fault_pipeline import Followers, OutboxService, back_said, logged_since, outage_said, unguarded
from tests.support.pipeline_checks import (
    check_inputs_hold_every_acknowledged_event, check_parquet_holds_each_event_once, check_tables,
    follower_holds_each_transition_once, group_at_end, parquet_latest, sink_at_end,
)
from tests.support.entities import HOUSING, RELEASES, housing_unit
from tests.support.processor_harness import TODAY, caught_up, expected_figures, processor_config
from tests.support.processor_outputs import check_each_event_once_and_in_order, read_outputs
from tests.support.sending import ChangeSender
from tests.support.waiting import wait_until

SLICE, PACE_S = 40, 0.4   # the stream's rate: about 100 events a second
HEARTBEAT_S = 1.0         # the processor's heartbeats: silent for 5 of them is an outage on /metrics


T0 = time.monotonic()


def say(what: str, clock: "ProgressClock | None" = None) -> None:
    """Progress on the test's output: where a slow or failed run was, and how long ago
    each component last moved."""
    now = time.monotonic()
    moved = "" if clock is None else "; last moved " + ", ".join(
        f"{name} {now - times[-1]:.1f}s ago" if times else f"{name} never" for name, times in clock.moved.items())
    print(f"[{now - T0:6.1f}s] {what}{moved}", flush=True)


@pytest.fixture
def cluster(tmp_path):
    cluster = EmbeddedKafkaCluster(tmp_path / "cluster")
    cluster.start()
    yield cluster
    cluster.stop()


class StreamFeeder(threading.Thread):
    """Publishes the seeded stream slice by slice, at a steady pace, until told to finish."""

    def __init__(self, sender: ChangeSender, stream: list) -> None:
        super().__init__(daemon=True)
        self.sender, self.stream, self.published = sender, stream, 0
        self.finish = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.published < len(self.stream) and not self.finish.is_set():
                for product, item in self.stream[self.published:self.published + SLICE]:
                    (self.sender.tombstone(item, product) if isinstance(item, str) else self.sender.send(product, item))
                self.published = min(len(self.stream), self.published + SLICE)
                self.sender.producer.poll(0)
                self.finish.wait(PACE_S)   # the stream's pace, not a synchronisation
            self.sender.flush(120)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc


def test_the_pipeline_loses_nothing_and_resumes_through_broker_faults(cluster, registry_url, tmp_path, caplog):
    bootstrap = cluster.bootstrap_servers
    admin = cluster_admin(bootstrap)
    config = processor_config(bootstrap, registry_url, tmp_path, "faults", tick_seconds=3600, batch_size=40,
                              heartbeat_seconds=HEARTBEAT_S)
    pool = start_workers(2, config=config)
    pool.stall_after_s = 0   # a stall must end by itself: no restart by the supervisor
    config = pool.config
    settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url)
    outputs = {config.topic(p): get_product(p) for p in ("area_supply_demand", "housing_shortfall_warnings")}
    database_url = f"sqlite:///{tmp_path / 'faults.db'}"
    sink = SqlSink(settings, topics=list(outputs), topic_products=outputs, database_url=database_url,
                   group=f"{config.app_id}-sql", batch_timeout=0.5)
    parquet = ParquetSink(settings, topics=list(outputs), topic_products=outputs, path=str(tmp_path / "parquet"),
                          group=f"{config.app_id}-parquet", batch_timeout=0.5, roll_seconds=2, compact_seconds=0)
    stop_sink = threading.Event()
    sink_threads = [threading.Thread(target=s.run, args=(stop_sink,), daemon=True) for s in (sink, parquet)]
    figures_topic, warnings_topic = outputs
    followers = Followers(f"sqlite:///{tmp_path / 'web.db'}", warnings_topic, figures_topic, bootstrap, registry_url,
                          settings)
    service = OutboxService(f"sqlite:///{tmp_path / 'outbox.db'}", config.topic(HOUSING), settings,
                            delivery_timeout_ms=8000)
    board = HeartbeatBoard(bootstrap, settings)
    sender = ChangeSender(bootstrap, registry_url, HOUSING, RELEASES,
                          topics={p: config.topic(p) for p in (HOUSING, RELEASES)})
    feeder = StreamFeeder(sender, seeded_stream(27, events=60_000, today=TODAY))

    offsets_probe = Consumer({**client_config(bootstrap), "group.id": config.app_id})   # reads, never joins
    inputs = [TopicPartition(config.topic(p), i) for p in (HOUSING, RELEASES) for i in range(config.partitions)]

    def committed() -> int:
        return sum(tp.offset for tp in offsets_probe.committed(inputs, timeout=5) if tp.offset > 0)
    clock = ProgressClock({"publisher": lambda: len(sender.acked), "outbox relay": lambda: service.relay.published,
                           "processor": committed, "sql sink": lambda: sink.rows_written,
                           "parquet sink": lambda: parquet.rows_written, "followers": followers.rows})
    restarts: list[str] = []

    def settle(wait, *args) -> None:   # noqa: ANN001 - a wait on the cluster, then a round of supervision
        wait(*args)
        restarts.extend(pool.supervise())

    def kill_and_restart(node_id: int, fault: str) -> None:
        """kill -9 a node; start it again once its partitions have new leaders; wait until
        every replica is in sync."""
        clock.fault(fault)
        cluster.nodes[node_id - 1].kill()
        settle(wait_for_new_leaders, admin, node_id)
        cluster.nodes[node_id - 1].start()
        settle(wait_in_sync, admin)
        say(f"{fault}: back and in sync", clock)

    try:
        for thread in sink_threads:
            thread.start()
        followers.start()
        board.start()
        feeder.start()
        service.start()
        clock.start()
        wait_until(lambda: sink.rows_written > 0 and parquet.rows_written > 0 and followers.rows() > 0
                   and service.relay.published > 0 and len(sender.acked) > 500, timeout=120,
                   message="events flowing through the processor into the sinks and followers")

        say("events flowing", clock)
        killed = busiest_leader(admin)
        kill_and_restart(killed, f"kill -9 node {killed} (most leaders)")

        clock.fault("rolling restart (SIGTERM each)")
        for node in cluster.nodes:
            assert node.stop(), f"node {node.node.node_id} was not running"
            node.start()
            settle(wait_in_sync, admin)
            say(f"node {node.node.node_id} restarted", clock)

        say("rolling restart done", clock)
        controller = active_controller(cluster)
        kill_and_restart(controller, f"kill -9 active controller {controller}")
        rows = sink.rows_written
        wait_until(lambda: (restarts.extend(pool.supervise()) or True) and sink.rows_written > rows,
                   timeout=60, message="the sink writing again after the last fault")
        say("the sink writes again", clock)

        # two of three nodes down: no write can reach min.insync.replicas=2 (and the KRaft
        # quorum is lost); the feeder goes on sending, its producer holding and retrying
        down = [n for n in cluster.nodes if n.node.node_id != controller][:2]
        going = {n.node.node_id for n in down}
        led_by_going = {t for (t, _), leader in partition_leaders(admin).items() if leader in going}
        reads = {sink.group: list(outputs), parquet.group: list(outputs),
                 followers.warnings.thread_name: [warnings_topic], followers.figures.thread_name: [figures_topic]}
        cut_off = [who for who, topics in reads.items() if led_by_going & set(topics)]   # must say they wait
        clock.fault("two of three nodes down")
        logged = [path.stat().st_size for path in pool.logs]
        caplog.clear()
        for node in down:
            node.kill()
        started = time.monotonic()
        let = dict(status="let")   # counted nowhere: the probe events change no figure
        with Publisher(get_product(HOUSING), source_system="faults", settings=settings, topic=config.topic(HOUSING),
                       producer_config={"delivery.timeout.ms": 8000, "request.timeout.ms": 4000}) as pub:
            with pytest.raises(DeliveryError) as failed:
                pub.created(housing_unit("FAULT-1", "E08000003", "E12000002", **let))
            waited = time.monotonic() - started
            assert waited < 8 + 10, f"publish failed only after {waited:.0f}s"
            said = str(failed.value)   # which event, where, why, and that it may be sent again
            assert "'FAULT-1'" in said and config.topic(HOUSING) in said and "min.insync.replicas" in said, said
            outage_said(len(pool.processes), cut_off, service, board, caplog.records, HEARTBEAT_S)
            assert all(pool.alive()) and all(t.is_alive() for t in sink_threads), \
                "a component died while no write could be taken"
            wait_until(lambda: all("Kafka unavailable: KafkaUnreachable: no heartbeat acknowledged" in text
                                   for text in logged_since(pool.logs, logged)), timeout=30,
                       message="each worker saying, in its own words, that Kafka does not take its writes")
            for path, text in zip(pool.logs, logged_since(pool.logs, logged)):
                assert re.search(r"Unable connect to node|Failed fetch messages from", text), \
                    f"{path} does not say the worker waits for the brokers"
            assert any(r.filename == "reader.py" and "Connect to" in r.getMessage() for r in caplog.records), \
                "the sink's log does not say it waits"
            down[0].start()   # a majority again: the quorum and min.insync.replicas are back
            back = time.monotonic()
            down[1].start()
            pub.created(housing_unit("FAULT-2", "E08000003", "E12000002", **let))   # the SDK sends again by itself
        settle(wait_in_sync, admin)
        outage_over = time.monotonic()
        say("two nodes down and back", clock)
        back_said(cut_off, board, caplog.records, HEARTBEAT_S)
        wait_until(lambda: all(re.search(r"Kafka is back after [0-9.]+ s down", text)
                               for text in logged_since(pool.logs, logged)), timeout=30,
                   message="each worker saying Kafka takes its writes again")
        feeder.finish.set()
        service.finish.set()
        feeder.join(180)
        assert feeder.error is None, feeder.error
        assert not sender.failed, sender.failed[:5]
        wait_until(lambda: service.unsent() == 0, timeout=60, message="the outbox relay sent every row")
        assert service.error is None, service.error
        wait_until(lambda: (restarts.extend(pool.supervise()) or True) and caught_up(bootstrap, config),
                   timeout=180, interval=0.5, message="the processor caught up")
        wait_until(lambda: sink_at_end(database_url, sink.group, outputs, bootstrap, config.partitions),
                   timeout=120, interval=0.5, message="the SQL sink's offsets at the end offsets")
        wait_until(lambda: group_at_end(bootstrap, parquet.group, list(outputs), config.partitions), timeout=120,
                   interval=0.5, message="the Parquet sink's files at the end offsets")
        clock.stop()
        print("\nstalls (longest time without progress from each fault until the next, or until every replica"
              " was in sync again after the outage):")
        print(stall_table(clock.stalls(end=outage_over)))
        print("two of three nodes down for {:.0f}s; moved again after the first node returned in: {}".format(
            back - started, ", ".join(f"{name} {clock.first_move_after(name, back):.1f}s" for name in clock.moved)))
        print(f"publish failed after {waited:.1f}s with: {' '.join(str(failed.value).split())}")
        if restarts:
            print("worker restarts (a guard's stop is the designed recovery):\n" + "\n".join(restarts))
        assert not unguarded(restarts), f"components needed a restart: {unguarded(restarts)}"

        check_inputs_hold_every_acknowledged_event(bootstrap, registry_url, config, sender, service.event_ids())
        produced = read_outputs(bootstrap, registry_url, config)
        check_each_event_once_and_in_order(produced)
        expected = expected_figures(sender.acked)
        final = {area: events[-1]["after"] for area, events in produced["figures"].items()}
        for area in set(expected) | set(final):
            got = (final[area]["supply"], final[area]["demand"]) if area in final else (0, 0)
            assert got == expected.get(area, (0, 0)), f"figures of {area}"
        check_tables(database_url, outputs, produced)
        wait_until(lambda: follower_holds_each_transition_once(followers.stored_warnings(), produced) is None,
                   timeout=60, message="the warnings follower's store equal to the warnings topic's chains")
        stop_sink.set()   # the Parquet sink writes its open files
        for thread in sink_threads:
            thread.join(30)
        rows = check_parquet_holds_each_event_once(tmp_path / "parquet", outputs, bootstrap, registry_url)
        latest = parquet_latest(tmp_path / "parquet", get_product("area_supply_demand"), "area_code",
                                ["supply", "demand"])   # each area's last row: the recomputed figures
        assert all(latest.get(a, (0, 0)) == expected.get(a, (0, 0)) for a in set(expected) | set(latest))
        print(f"Parquet: {rows} rows, each event once; outbox: {len(service.event_ids())} rows relayed")
    finally:
        clock.stop()
        offsets_probe.close()
        feeder.finish.set()
        service.stop()
        stop_sink.set()
        for thread in sink_threads:
            thread.join(30)
        followers.stop()
        board.stop()
        pool.stop()
