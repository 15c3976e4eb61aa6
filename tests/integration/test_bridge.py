"""The releases bridge on a real SNS/SQS server (moto's) and a real broker: domain events
published to a topic, read from the subscribed queue, become the product's change events;
every kind of bad message is dead-lettered once with its reason, and nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from dataplatform.aws import aws_client
from dataplatform.aws_local import subscribed_queue
from dataplatform.bridges.loading import get_bridge
from dataplatform.config import Settings
from dataplatform.kafka import EmbeddedKafka
from dataplatform.product_io.dead_letters import H_REASON, H_SNS_MESSAGE_ID, H_SQS_MESSAGE_ID
from dataplatform.product_io.names import dead_letter_topic
from dataplatform.producers.bridges.detail import DetailClient
from dataplatform.producers.bridges.runner import BridgeRunner
from dataplatform.products.product import get_product
from tests.support.bridges import DetailApi, publish, release_case, release_event
from tests.support.kafka import create_topic, unique_name
from tests.support.product_topics import TopicReader
from tests.support.waiting import wait_until

PRODUCT = "prison_releases_housing_need"
SCHEDULED, RELEASED = "release-planning.case.scheduled", "prison-offender-events.prisoner.released"


@pytest.fixture
def wiring(aws_endpoint, bootstrap, registry_url, tmp_path):
    return wire(Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url,
                         aws_endpoint_url=aws_endpoint, dataplatform_home=tmp_path))


def wire(settings: Settings):  # noqa: ANN201
    """An SNS topic with a subscribed queue, and a product topic (and its dead-letter topic) of the test's own."""
    sns, sqs = aws_client("sns", settings), aws_client("sqs", settings)
    name = unique_name("releases")
    topic_arn, queue = subscribed_queue(sns, sqs, name, f"{name}-queue", visibility_timeout=5)
    topic = create_topic(settings.kafka_bootstrap_servers, unique_name("bridged.releases"))
    create_topic(settings.kafka_bootstrap_servers, dead_letter_topic(topic))
    return settings, sns, sqs, topic_arn, queue, topic


def queue_empty(sqs, queue: str) -> bool:
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_domain_events_become_change_events_and_bad_messages_dead_letters(wiring, bootstrap, registry_url, tmp_path):
    settings, sns, sqs, topic_arn, queue, topic = wiring
    good: dict[str, str] = {}   # event id -> case id
    with DetailApi() as api:
        a_v1 = api.add(release_case("RC-A"), 1)
        a_v2 = api.add(release_case("RC-A", status="released"), 2)
        b_v1 = api.add(release_case("RC-B", area="E06000001", region="E12000001"), 1)
        bad = api.add({**release_case("RC-X"), "housingNeed": "mansion"}, 1)
        # out of order: the release is published before the case was scheduled
        good[publish(sns, topic_arn, release_event(RELEASED, "RC-A", "A1111AA", "2026-12-05T11:00:00Z", a_v2))] = "RC-A"
        good[publish(sns, topic_arn, release_event(SCHEDULED, "RC-A", "A1111AA", "2026-12-05T10:00:00Z", a_v1))] = "RC-A"
        # SQS delivering the same notification twice
        sns_id = str(uuid.uuid4())
        envelope = json.dumps({"Type": "Notification", "MessageId": sns_id, "TopicArn": topic_arn, "Timestamp": "x",
                               "Message": json.dumps(release_event(SCHEDULED, "RC-B", "B2222BB",
                                                                   "2026-12-05T10:30:00+01:00", b_v1))})
        for _ in range(2):
            sqs.send_message(QueueUrl=queue, MessageBody=envelope)
        good[sns_id] = "RC-B"
        # raw message delivery: the event itself, no envelope (its SQS id is the event id)
        raw_id = sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(
            release_event(SCHEDULED, "RC-C", "C3333CC", "2026-12-05T09:00:00", api.add(release_case("RC-C"), 1))))["MessageId"]
        good[raw_id] = "RC-C"
        # poison, one of each reason, and a type to ignore
        sqs.send_message(QueueUrl=queue, MessageBody="{not json")
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Type": "Notification", "Message": "[1]"}))
        publish(sns, topic_arn, release_event(SCHEDULED, "RC-V", "V1", "2026-12-05T10:00:00Z", a_v1, version=2))
        publish(sns, topic_arn, release_event(SCHEDULED, "RC-N", "N1", "2026-12-05T10:00:00Z", api.url + "/cases/none"))
        publish(sns, topic_arn, release_event(SCHEDULED, "RC-X", "X1", "2026-12-05T10:00:00Z", bad))
        publish(sns, topic_arn, {**release_event("another-service.thing.happened", "RC-I", "I1", "2026-12-05T10:00:00Z",
                                                 a_v1)})

        runner = BridgeRunner(get_bridge(PRODUCT), settings, queue=queue, wait_seconds=1, topic=topic,
                              detail=DetailClient(retry_seconds=1.0), status_dir=tmp_path / "bridges")
        stop = threading.Event()
        worker = threading.Thread(target=runner.run, args=(stop,))
        worker.start()
        try:
            wait_until(lambda: sum(runner.counts.values()) >= 11, timeout=60, message="every message finished")
            wait_until(lambda: queue_empty(sqs, queue), timeout=30, message="the queue emptied")
        finally:
            stop.set()
            worker.join(30)

    assert runner.counts == {"published": 5, "ignored": 1, "not-json": 1, "not-a-domain-event": 1,
                             "unknown-version": 1, "detail-unavailable": 1, "invalid-entity": 1}
    product = get_product(PRODUCT)
    with TopicReader(bootstrap, registry_url, {topic: product}) as reader:
        records = reader.read_to_end()
    by_id: dict[str, list] = {}
    for r in records:
        by_id.setdefault(r.value["source"]["event_id"], []).append(r)
    assert set(by_id) == set(good)   # one event id per good message: the SNS MessageId (raw: the SQS one)
    assert len(by_id[sns_id]) == 2 and by_id[sns_id][0].message.value() == by_id[sns_id][1].message.value()
    latest = {}
    for r in sorted(records, key=lambda r: r.value["source"]["position"]):
        latest[r.key] = r.value["after"]
    assert latest["RC-A"]["status"] == "released"          # the later event wins, though it came first
    assert latest["RC-B"]["local_authority_code"] == "E06000001"
    assert {r.value["source"]["system"] for r in records} == {"releases-service"}

    with TopicReader(bootstrap, registry_url, {dead_letter_topic(topic): None}) as reader:
        dead = reader.read_to_end()
    assert Counter(d.headers[H_REASON] for d in dead) == {"not-json": 1, "not-a-domain-event": 1,
                                                        "unknown-version": 1, "detail-unavailable": 1,
                                                        "invalid-entity": 1}
    assert all(d.headers[H_SQS_MESSAGE_ID] for d in dead)
    assert {d.message.value() for d in dead if d.headers[H_REASON] == "not-json"} == {b"{not json"}
    assert sum(H_SNS_MESSAGE_ID in d.headers for d in dead) == 3
    assert "X1" not in "".join(d.headers["dlq.error.message"] for d in dead)   # identifiers scrubbed
    assert REGISTRY.get_sample_value("dataplatform_bridge_messages_total",
                                     {"bridge": PRODUCT, "outcome": "invalid-entity"}) >= 1
    status = json.loads((tmp_path / "bridges" / f"{PRODUCT}.json").read_text())
    assert status["counts"]["published"] == 5 and status["topic"] == topic


def start_bridge(settings: Settings, queue: str, topic: str, home, plan_dir) -> subprocess.Popen:
    """``dataplatform bridge run`` as its own process, as in production, armed with the crash plans."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url, "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
           "DATAPLATFORM_HOME": str(home), "DATAPLATFORM_CRASH_PLAN": str(plan_dir)}
    return subprocess.Popen([sys.executable, "-m", "dataplatform.cli", "bridge", "run", PRODUCT, "--queue", queue,
                             "--topic", topic, "--wait-seconds", "1", "--visibility-timeout", "4",
                             "--detail-retry-seconds", "60"], env=env,
                            stdout=(home / "bridge.log").open("ab"), stderr=subprocess.STDOUT)


def test_kill_9_at_chosen_points_and_a_detail_api_outage_lose_nothing_and_repeat_nothing(wiring, bootstrap,
                                                                                          registry_url, tmp_path):
    settings, sns, sqs, topic_arn, queue, topic = wiring
    plans = tmp_path / "plans"
    plans.mkdir()
    for i, (point, n) in enumerate([("bridge.published", 1), ("bridge.detail-fetch", 3), ("bridge.mid-batch", 2)]):
        (plans / f"{i:03d}.plan").write_text(f"{point} {n}")
    expected: dict[str, tuple[str, str]] = {}   # case -> (status of its latest event, event id)
    ids: set[str] = set()
    with DetailApi() as api:
        def case_events(case: str, outage: bool = False) -> None:
            scheduled = api.add(release_case(case), 1)
            released = api.add(release_case(case, status="released"), 2)
            later = release_event(RELEASED, case, "N" + case, "2026-12-05T12:00:00Z", released)
            earlier = release_event(SCHEDULED, case, "N" + case, "2026-12-05T08:00:00Z", scheduled)
            for event in (later, earlier):   # out of order
                ids.add(publish(sns, topic_arn, event))
        for n in range(12):
            case_events(f"RC-{n:02d}")
        for body in ("{poison", json.dumps({"Type": "Notification", "MessageId": "m", "Message": "7"})):
            sqs.send_message(QueueUrl=queue, MessageBody=body)
        twice = release_event(SCHEDULED, "RC-D", "ND", "2026-12-05T09:00:00Z", api.add(release_case("RC-D"), 1))
        envelope = json.dumps({"Type": "Notification", "MessageId": str(uuid.uuid4()), "Message": json.dumps(twice)})
        for _ in range(2):   # SQS delivering one notification twice
            sqs.send_message(QueueUrl=queue, MessageBody=envelope)
        ids.add(json.loads(envelope)["MessageId"])

        deaths = 0
        while list(plans.glob("*.plan")) or list(plans.glob("*.claimed-*")):
            process = start_bridge(settings, queue, topic, tmp_path, plans)
            assert process.wait(120) == -signal.SIGKILL, (tmp_path / "bridge.log").read_text()[-3000:]
            deaths += 1
        assert deaths == 3 and len(list(plans.glob("*.done"))) == 3

        # the detail API goes down for 20 s with events still coming; the bridge waits, loses nothing
        api.down.set()
        threading.Timer(20.0, api.down.clear).start()
        for n in range(12, 16):
            case_events(f"RC-{n:02d}")
        process = start_bridge(settings, queue, topic, tmp_path, plans)
        try:
            wait_until(lambda: not api.down.is_set() and queue_empty(sqs, queue), timeout=120,
                       message="the queue emptied after the outage")
        finally:
            process.terminate()
            process.wait(30)

    with TopicReader(bootstrap, registry_url, {topic: get_product(PRODUCT)}) as reader:
        records = reader.read_to_end()
    contents: dict[str, set[bytes]] = {}
    for r in records:
        contents.setdefault(r.value["source"]["event_id"], set()).add(r.message.value())
    assert set(contents) == ids                                   # nothing lost, nothing made up
    assert all(len(c) == 1 for c in contents.values())            # one content per event id
    latest = {}
    for r in sorted(records, key=lambda r: r.value["source"]["position"]):
        latest[r.key] = r.value["after"]["status"]
    assert latest == {**{f"RC-{n:02d}": "released" for n in range(16)}, "RC-D": "scheduled"}
    with TopicReader(bootstrap, registry_url, {dead_letter_topic(topic): None}) as reader:
        dead = reader.read_to_end()
    assert Counter(d.headers[H_REASON] for d in dead) == {"not-json": 1, "not-a-domain-event": 1}   # once each
    assert "retrying" in (tmp_path / "bridge.log").read_text()   # it did meet the outage


def test_a_20s_broker_outage_delays_the_bridge_and_loses_nothing(aws_endpoint, registry_url, tmp_path):
    """The test's own broker (the session's is shared) is stopped for 20 s with events on the queue."""
    broker = EmbeddedKafka(tmp_path / "kafka")
    bootstrap = broker.start()
    try:
        settings, sns, sqs, topic_arn, queue, topic = wire(Settings(
            kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url, aws_endpoint_url=aws_endpoint,
            dataplatform_home=tmp_path))
        ids = set()
        with DetailApi() as api:
            def events(first: int, last: int) -> None:
                for n in range(first, last):
                    url = api.add(release_case(f"RC-{n}"), 1)
                    ids.add(publish(sns, topic_arn, release_event(SCHEDULED, f"RC-{n}", f"N{n}",
                                                                  "2026-12-05T10:00:00Z", url)))
            runner = BridgeRunner(get_bridge(PRODUCT), settings, queue=queue, wait_seconds=1, visibility_timeout=5,
                                  topic=topic, detail=DetailClient(retry_seconds=5.0))
            stop = threading.Event()
            worker = threading.Thread(target=runner.run, args=(stop,))
            worker.start()
            try:
                events(0, 5)
                wait_until(lambda: runner.counts.get("published") == 5, timeout=60, message="the first events")
                broker.stop()
                events(5, 10)
                outage_ends = time.monotonic() + 20
                while time.monotonic() < outage_ends:   # the outage: nothing acknowledged, nothing deleted
                    assert runner.counts == {"published": 5}
                    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
                    in_queue = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
                    assert in_queue == 5, attrs
                    stop.wait(1.0)
                broker.start()
                wait_until(lambda: runner.counts.get("published") == 10 and queue_empty(sqs, queue), timeout=120,
                           message="the events held during the outage")
            finally:
                stop.set()
                worker.join(60)
        assert runner.counts == {"published": 10}
        with TopicReader(bootstrap, registry_url, {topic: get_product(PRODUCT)}) as reader:
            assert {r.value["source"]["event_id"] for r in reader.read_to_end()} == ids
    finally:
        broker.stop()
