"""Producer SDK throughput against bare confluent-kafka + fastavro, in the same process.

    .venv/bin/python -m bench.producer [--events N] [--rounds R]

Both sides publish the same housing-unit change events to their own topic with the same
reliable producer settings (acks=all, idempotence, lz4, linger 5 ms):

* sdk:      ``Publisher.created(entity, wait=False)`` for each, then ``flush()``; validation,
            envelope, event id, headers, delivery tracking included.
* baseline: ``Producer.produce(topic, 5-byte Confluent header + fastavro schemaless_writer
            body, key)`` for each, then ``flush()``; no validation, no headers, no callback.

Rounds alternate who goes first (after a warm-up) so background load hits both; the
best round of each is reported, and the median of the per-round ratios. Starts its own
broker and registry unless KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL are set. Writes bench/results/producer.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import io
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro import parse_schema, schemaless_writer
from rich.console import Console
from rich.table import Table

from bench.common import machine, platform_services, write_results
from dataplatform.config import Settings
from dataplatform.kafka_config import client_config, redacted, reliable_producer_config
from dataplatform.product_io import wire
from dataplatform.product_io.names import value_subject
from dataplatform.producers.publisher import Publisher
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product

RESULTS = Path(__file__).resolve().parent / "results" / "producer.json"
PRODUCT = get_product("social_housing_availability")


def units(n: int) -> list[dict]:
    base = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    return [{"unit_id": f"HU-{i:07d}", "local_authority_code": "E08000003", "region_code": "E12000002",
             "provider": "Manchester City Council", "bedrooms": 1 + i % 4, "accessible": i % 7 == 0,
             "status": ("available", "reserved", "let", "void")[i % 4],
             "available_from": dt.date(2026, 12, 1) + dt.timedelta(days=i % 30),
             "weekly_rent": decimal.Decimal(9000 + i % 5000) / 100, "updated_at": base + dt.timedelta(seconds=i)}
            for i in range(n)]


def new_topic(bootstrap: str, name: str) -> str:
    admin = AdminClient(client_config(bootstrap, Settings()))  # keep it alive until the answer arrives
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def run_sdk(bootstrap: str, registry: str, topic: str, entities: list[dict]) -> tuple[float, int]:
    with Publisher(PRODUCT, bootstrap=bootstrap, registry_url=registry, source_system="bench",
                   settings=Settings(), topic=topic) as pub:
        size = sum(len(pub.encoder.encode(ChangeEvent("c", None, e, "bench", position=1).to_record())) for e in entities)
        start = time.perf_counter()
        for i, entity in enumerate(entities):
            pub.created(entity, position=i, wait=False)
        pub.flush(120)
        return time.perf_counter() - start, size


def run_baseline(bootstrap: str, schema_id: int, topic: str, entities: list[dict]) -> tuple[float, int]:
    producer = Producer(reliable_producer_config(bootstrap, Settings()))
    event_ids = [str(uuid.uuid4()) for _ in entities]  # the same bytes on the wire, made outside the clock
    schema = parse_schema(PRODUCT.value_schema)
    header = wire.header(schema_id)
    size = 0
    start = time.perf_counter()
    for i, entity in enumerate(entities):
        record = {"op": "c", "before": None, "after": entity, "ts_ms": int(time.time() * 1000),
                  "source": {"system": "bench", "event_id": event_ids[i], "position": i}, "transaction": None}
        buf = io.BytesIO()
        buf.write(header)
        schemaless_writer(buf, schema, record)
        value = buf.getvalue()
        size += len(value)
        while True:
            try:
                producer.produce(topic, value, entity["unit_id"].encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - start
    if remaining:
        raise RuntimeError(f"baseline: {remaining} messages not delivered")
    return elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per side")
    args = parser.parse_args()
    entities = units(args.events)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-producer-") as tmp, \
            platform_services(Path(tmp)) as (bootstrap, registry):
        sdk_runs, base_runs = [], []
        schema_id = None
        for r in range(args.rounds):
            if schema_id is None:  # a warm-up SDK run registers the schema (not counted)
                topic = new_topic(bootstrap, f"bench-warmup-{os.getpid()}")
                run_sdk(bootstrap, registry, topic, entities[:2000])
                from dataplatform.product_io.serialization import registry_client

                schema_id = registry_client(registry).get_latest_version(value_subject(topic)).schema_id
            sides = [("sdk", lambda t: sdk_runs.append(run_sdk(bootstrap, registry, t, entities))),
                     ("base", lambda t: base_runs.append(run_baseline(bootstrap, schema_id, t, entities)))]
            for side, run in sides if r % 2 == 0 else sides[::-1]:  # alternate who goes first
                run(new_topic(bootstrap, f"bench-{side}-{os.getpid()}-{r}"))
            console.print(f"round {r + 1}: sdk {args.events / sdk_runs[-1][0]:,.0f} ev/s, "
                          f"baseline {args.events / base_runs[-1][0]:,.0f} ev/s")
    sdk_s, sdk_bytes = min(sdk_runs)
    base_s, base_bytes = min(base_runs)
    result = {
        "benchmark": "producer", "date": dt.date.today().isoformat(), "events": args.events, "rounds": args.rounds,
        "events_per_s": round(args.events / sdk_s), "bytes_per_s": round(sdk_bytes / sdk_s),
        "baseline_events_per_s": round(args.events / base_s), "baseline_bytes_per_s": round(base_bytes / base_s),
        "ratio_vs_baseline": round(base_s / sdk_s, 3), "machine": machine(),
        "median_round_ratio": round(statistics.median(b / t for (t, _), (b, _) in zip(sdk_runs, base_runs)), 3),
        "rounds_events_per_s": {"sdk": [round(args.events / t) for t, _ in sdk_runs],
                                "baseline": [round(args.events / t) for t, _ in base_runs]},
        "settings": {k: v for k, v in redacted(reliable_producer_config("x", Settings())).items()
                     if k != "bootstrap.servers"},
    }
    table = Table(title=f"Producer SDK vs bare confluent-kafka + fastavro ({args.events:,} events, best of {args.rounds})")
    for column in ("path", "events/s", "MB/s (values)", "ratio"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("Publisher (async + flush)", f"{result['events_per_s']:,}", f"{result['bytes_per_s'] / 1e6:.2f}",
                  f"{result['ratio_vs_baseline']:.2f}")
    table.add_row("baseline Producer + fastavro", f"{result['baseline_events_per_s']:,}",
                  f"{result['baseline_bytes_per_s'] / 1e6:.2f}", "1.00")
    console.print(table)
    write_results(RESULTS, result, console)


if __name__ == "__main__":
    main()
