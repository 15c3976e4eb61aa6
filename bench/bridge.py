"""Bridge throughput: SQS messages per second from the queue to an acknowledged change event,
with and without a detailUrl fetch, against the bare receive-and-delete loop in the same process.

    .venv/bin/python -m bench.bridge [--messages N] [--passes P]

Every pass fills one queue of a local SNS/SQS server (moto's, as in the tests) with N
releases domain events in SNS envelopes and drains it three ways, in rotating order:

* baseline:  ``receive_message`` (10 at a time) and ``delete_message_batch``, nothing else:
             the floor any SQS reader pays on this server;
* bridge:    :class:`BridgeRunner` with a spec whose fields read only the event;
* +detail:   the releases spec as shipped: one ``GET detailUrl`` per message (a local HTTP server).

The bridge publishes each to Kafka (acks=all) before deleting it. The median of the passes
is reported, with the ratio to the baseline and the load average. Starts its own broker and
registry unless KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL are set. Writes bench/results/bridge.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from bench.common import load_average, machine, platform_services, write_results
from dataplatform.aws import aws_client
from dataplatform.aws_local import LocalAws
from dataplatform.bridges.loading import get_bridge
from dataplatform.bridges.parse import parse
from dataplatform.config import Settings
from dataplatform.producers.bridges.detail import DetailClient
from dataplatform.producers.bridges.runner import BridgeRunner
from dataplatform.products.product import load_products
from tests.support.bridges import DetailApi, release_case, release_event
from tests.support.kafka import create_topic, unique_name

RESULTS = Path(__file__).resolve().parent / "results" / "bridge.json"
PRODUCT = "prison_releases_housing_need"
CONSTANTS = {"expected_release_date": '"2026-12-19"', "local_authority_code": '"E08000003"',
             "region_code": '"E12000002"', "housing_need": '"general"'}


def bridge_without_detail():
    """The shipped spec with every detail-reading field made a constant: no fetch."""
    products = load_products()
    file = products[PRODUCT].folder / "bridge.yaml"
    doc = copy.deepcopy(yaml.safe_load(file.read_text()))
    for event in doc["events"]:
        event["fields"] = {**event["fields"], **CONSTANTS, "status": '"scheduled"'}
    bridge, problems = parse(doc, file, products)
    assert bridge is not None and not bridge.events[0].reads_detail, problems
    return bridge


def fill(sqs, queue: str, api: DetailApi, n: int) -> None:
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(start + 10, n)):
            case = f"RC-{uuid.uuid4().hex[:8]}"
            event = release_event("release-planning.case.scheduled", case, f"N{i}", "2026-12-05T10:00:00Z",
                                  api.add(release_case(case), 1))
            entries.append({"Id": str(i - start), "MessageBody": json.dumps(
                {"Type": "Notification", "MessageId": str(uuid.uuid4()), "Message": json.dumps(event)})})
        failed = sqs.send_message_batch(QueueUrl=queue, Entries=entries).get("Failed")
        assert not failed, failed


def drain_bare(sqs, queue: str, n: int) -> None:
    done = 0
    while done < n:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            done += len(messages)


def drain_bridge(runner: BridgeRunner, n: int) -> None:
    start = sum(runner.counts.values())
    while sum(runner.counts.values()) - start < n:
        runner.poll_once()
    assert runner.counts.get("published", 0) == sum(runner.counts.values()), runner.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp_name, platform_services(Path(tmp_name)) as (bootstrap, registry), \
            LocalAws(Path(tmp_name) / "moto.log") as aws, DetailApi() as api:
        settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry, aws_endpoint_url=aws.url)
        sqs = aws_client("sqs", settings)
        queue = sqs.create_queue(QueueName=unique_name("bench-bridge"))["QueueUrl"]
        runners = {}
        for name, bridge in (("bridge", bridge_without_detail()), ("+detail", get_bridge(PRODUCT))):
            topic = create_topic(bootstrap, unique_name(f"bench.bridge.{name.strip('+')}"))
            runners[name] = BridgeRunner(bridge, settings, queue=queue, topic=topic, wait_seconds=1,
                                         detail=DetailClient(retry_seconds=5)).open()
        ways = {"baseline": lambda: drain_bare(sqs, queue, args.messages),
                **{name: (lambda r=r: drain_bridge(r, args.messages)) for name, r in runners.items()}}
        for runner in runners.values():   # warm-up: connections, the producer's first PID, the detail client
            fill(sqs, queue, api, 20)
            drain_bridge(runner, 20)
        fill(sqs, queue, api, 20)
        drain_bare(sqs, queue, 20)
        rates: dict[str, list[float]] = {name: [] for name in ways}
        order = list(ways)
        for p in range(args.passes):
            for name in order[p % 3:] + order[:p % 3]:
                fill(sqs, queue, api, args.messages)
                started = time.perf_counter()
                ways[name]()
                rates[name].append(args.messages / (time.perf_counter() - started))
                console.print(f"pass {p + 1} {name}: {rates[name][-1]:,.0f} messages/s")
        for runner in runners.values():
            runner.close()
    median = {name: statistics.median(r) for name, r in rates.items()}
    table = Table(title=f"bridge: {args.messages} messages per pass, median of {args.passes} (load {load_average()})")
    for column in ("way", "messages/s", "x baseline"):
        table.add_column(column)
    for name, rate in median.items():
        table.add_row(name, f"{rate:,.0f}", f"{rate / median['baseline']:.2f}")
    console.print(table)
    write_results(RESULTS, {"messages": args.messages, "passes": args.passes, "rates": rates, "median": median,
                            "ratio": {n: r / median["baseline"] for n, r in median.items()},
                            "load_average": load_average(), "machine": machine()}, console)


if __name__ == "__main__":
    main()
